//! Where the daemon's streams get their models. The runtime neither trains
//! nor reads bundles itself: the binary hands it a [`ModelProvider`]
//! backed by the learning crate.

use std::path::Path;
use std::sync::Arc;

use tidewatch_stream::config::StreamConfig;
use tidewatch_stream::learner::LearnerFactory;
use tidewatch_stream::model::ScoringModel;
use tidewatch_stream::source::Schema;

use crate::error::BoxError;

/// A trained model bundle, ready to score a stream.
pub struct BundledModel {
    /// The configuration the bundle was trained with.
    pub config: StreamConfig,
    pub model: Arc<ScoringModel>,
    /// Name and version, as every flag reports them.
    pub name: String,
    pub version: String,
}

pub trait ModelProvider {
    /// The bundle in `dir`, refused unless it was trained on `schema`.
    fn bundle(&self, dir: &Path, schema: &Schema) -> Result<BundledModel, BoxError>;

    /// The prior new keys of an online stream start from (`online.prior`:
    /// the shipped one or a bundle directory), refused unless it reads the
    /// inputs `schema` gives.
    fn prior(&self, prior: &str, schema: &Schema) -> Result<Arc<ScoringModel>, BoxError>;

    /// Gives each key of an online stream its learner.
    fn learners(&self) -> Arc<dyn LearnerFactory>;
}
