//! The daemon's models, from the learning crate: bundles read from disk and
//! neural learners for online keys. This is where the runtime and the
//! learning crate meet, so that neither depends on the other.

use std::path::Path;
use std::sync::Arc;

use tidewatch_learn::bundle::{self, BundleError};
use tidewatch_learn::online::NeuralLearners;
use tidewatch_runtime::error::BoxError;
use tidewatch_runtime::models::{BundledModel, ModelProvider};
use tidewatch_stream::config::online::SHIPPED_PRIOR;
use tidewatch_stream::learner::LearnerFactory;
use tidewatch_stream::model::ScoringModel;
use tidewatch_stream::source::Schema;

/// The prior `online.prior` names, if it reads the inputs `schema` gives.
pub fn load_prior(prior: &str, schema: &Schema) -> Result<Arc<ScoringModel>, BundleError> {
    let bundle = if prior == SHIPPED_PRIOR {
        bundle::shipped_prior()?
    } else {
        bundle::load(Path::new(prior))?
    };
    bundle.check_inputs(schema)?;
    Ok(Arc::new(bundle.model))
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

    fn prior(&self, prior: &str, schema: &Schema) -> Result<Arc<ScoringModel>, BoxError> {
        Ok(load_prior(prior, schema)?)
    }

    fn learners(&self) -> Arc<dyn LearnerFactory> {
        Arc::new(NeuralLearners)
    }
}
