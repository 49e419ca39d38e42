//! The daemon's models, from the learning crate: bundles read from disk and
//! neural learners for online keys. This is where the runtime and the
//! learning crate meet, so that neither depends on the other.

use std::path::Path;
use std::sync::Arc;

use tidewatch_learn::bundle::{self, BundleError};
use tidewatch_learn::online::NeuralLearners;
use tidewatch_runtime::error::BoxError;
use tidewatch_runtime::models::{BundledModel, ModelProvider, OnlineModels};
use tidewatch_stream::config::StreamConfig;
use tidewatch_stream::config::online::SHIPPED_PRIOR;
use tidewatch_stream::source::Schema;

/// The learners of an online stream and the prior `online.prior` names,
/// if it reads the inputs the stream's schema gives. A key's own model
/// starts from fresh weights, not the prior's: continuing from the shipped
/// prior's cost nab-dev 15 points (46.62 against 61.42).
pub fn online_models(config: &StreamConfig) -> Result<OnlineModels, BundleError> {
    let Some(prior) = &config.online.prior else {
        return Ok(OnlineModels {
            learners: Arc::new(NeuralLearners),
            prior: None,
        });
    };
    let bundle = if prior == SHIPPED_PRIOR {
        bundle::shipped_prior()?
    } else {
        bundle::load(Path::new(prior))?
    };
    bundle.check_inputs(&config.schema)?;
    Ok(OnlineModels {
        learners: Arc::new(NeuralLearners),
        prior: Some(Arc::new(bundle.model)),
    })
}

/// Models as `tidewatch train` writes them and online mode learns them.
#[derive(Debug, Default, Clone, Copy)]
pub struct LearnedModels;

impl ModelProvider for LearnedModels {
    fn bundle(&self, dir: &Path, schema: &Schema) -> Result<BundledModel, BoxError> {
        let bundle = bundle::load(dir)?;
        bundle.check_schema(schema)?;
        Ok(BundledModel {
            config: bundle.stream_config(),
            name: bundle.manifest.model_name.clone(),
            version: bundle.manifest.model_version.clone(),
            model: Arc::new(bundle.model),
        })
    }

    fn online(&self, config: &StreamConfig) -> Result<OnlineModels, BoxError> {
        Ok(online_models(config)?)
    }
}
