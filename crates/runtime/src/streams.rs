//! The streams a daemon runs: each binding's config, model and decoder,
//! loaded once at start-up and again, for bundles, on a reload.

use std::sync::Arc;

use tidewatch_stream::config::StreamConfig;
use tidewatch_stream::pipeline::ModelSource;
use tidewatch_stream::source::decode::Decoder;

use crate::config::FlagsFormat;
use crate::config::StreamBinding;
use crate::error::{BoxError, DaemonError};
use crate::models::ModelProvider;
use crate::sink::alert::FLAG_AVRO_SCHEMA;
use crate::sink::alert::ModelRef;
use crate::source::kafka::MessageDecoder;
use crate::source::registry::{MessageFormat, WireDecoder, WireEncoder};
use tidewatch_stream::config::ConfigError;

/// One stream as the daemon runs it.
pub struct StreamRuntime {
    pub name: Arc<str>,
    pub binding: StreamBinding,
    /// The model the stream started with; a reload hands the workers a
    /// [`LoadedModel`] instead.
    pub model: LoadedModel,
    pub decoder: MessageDecoder,
    /// Writes flags as Avro, for `flags_format = "avro"` (registered at
    /// start-up by [`StreamRuntime::register_flag_schema`]).
    pub flag_encoder: Option<Arc<WireEncoder>>,
}

/// A stream's model, as its workers score with it.
#[derive(Clone)]
pub struct LoadedModel {
    pub config: Arc<StreamConfig>,
    pub source: ModelSource,
    /// What every flag reports.
    pub reference: ModelRef,
}

impl LoadedModel {
    /// The model id checkpoint records are written for: `name@version`.
    pub fn id(&self) -> String {
        format!("{}@{}", self.reference.name, self.reference.version)
    }
}

impl StreamRuntime {
    pub fn load(
        binding: &StreamBinding,
        models: &dyn ModelProvider,
        max_message_bytes: usize,
    ) -> Result<StreamRuntime, DaemonError> {
        let config = StreamConfig::load(&binding.config)?;
        let name: Arc<str> = Arc::from(config.schema.name.as_str());
        let model_error = |source| DaemonError::Model {
            stream: name.to_string(),
            source,
        };
        let model = match &binding.model {
            Some(_) => bundle(binding, &config, models).map_err(model_error)?,
            None => {
                let warmup_events = config.online.warmup_for(None);
                let online = models.online(&config).map_err(model_error)?;
                LoadedModel {
                    reference: ModelRef {
                        name: name.to_string(),
                        version: "online".to_owned(),
                    },
                    source: ModelSource::Online {
                        warmup_events,
                        learners: online.learners,
                        prior: online.prior,
                    },
                    config: Arc::new(config),
                }
            }
        };
        let wire = match (binding.format, &binding.schema_registry) {
            (MessageFormat::Json, _) => None,
            (format, Some(registry)) => Some(Arc::new(WireDecoder::new(format, registry))),
            (format, None) => {
                return Err(DaemonError::Config(ConfigError::Invalid(format!(
                    "stream {name}: format {} needs a schema_registry",
                    format.name()
                ))));
            }
        };
        let decoder = MessageDecoder {
            decoder: Decoder::new(model.config.schema.clone()),
            wire,
            key_from_message: binding.key_from_message,
            timestamp_from_message: binding.timestamp_from_message,
            max_message_bytes,
        };
        Ok(StreamRuntime {
            name,
            binding: binding.clone(),
            model,
            decoder,
            flag_encoder: None,
        })
    }

    /// Registers the flag schema, for a stream whose flags are Avro.
    pub fn register_flag_schema(&mut self) -> Result<(), DaemonError> {
        let (FlagsFormat::Avro, Some(registry)) =
            (self.binding.flags_format, &self.binding.schema_registry)
        else {
            return Ok(());
        };
        let subject = format!("{}-value", self.binding.flags_topic);
        let encoder =
            WireEncoder::register(registry, &subject, MessageFormat::Avro, FLAG_AVRO_SCHEMA)
                .map_err(|message| DaemonError::Registry {
                    stream: self.name.to_string(),
                    message: format!("registering the flag schema as {subject}: {message}"),
                })?;
        self.flag_encoder = Some(Arc::new(encoder));
        Ok(())
    }

    /// The stream's bundle read again from its directory; `None` for an
    /// online stream, which has none. A bundle for another schema is
    /// refused.
    pub fn reload(&self, models: &dyn ModelProvider) -> Option<Result<LoadedModel, BoxError>> {
        self.binding.model.as_ref()?;
        Some(bundle(&self.binding, &self.model.config, models))
    }
}

/// The bundle `binding` names, for a stream of `config`'s schema; the
/// stream keeps its own online settings.
fn bundle(
    binding: &StreamBinding,
    config: &StreamConfig,
    models: &dyn ModelProvider,
) -> Result<LoadedModel, BoxError> {
    let dir = binding.model.as_ref().expect("a bundle stream");
    let bundle = models.bundle(dir, &config.schema)?;
    Ok(LoadedModel {
        reference: ModelRef {
            name: bundle.name,
            version: bundle.version,
        },
        source: ModelSource::Bundle(bundle.model),
        config: Arc::new(StreamConfig {
            online: config.online.clone(),
            ..bundle.config
        }),
    })
}
