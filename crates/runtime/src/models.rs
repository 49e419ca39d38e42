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

pub trait ModelProvider: Send + Sync {
    /// The bundle in `dir`, refused unless it was trained on `schema`.
    fn bundle(&self, dir: &Path, schema: &Schema) -> Result<BundledModel, BoxError>;

    /// What the keys of an online stream learn with: a learner each and,
    /// with `online.prior` set, the prior they start from (refused unless
    /// it reads the inputs the stream's schema gives).
    fn online(&self, config: &StreamConfig) -> Result<OnlineModels, BoxError>;
}

/// Where the keys of an online stream get their models.
#[derive(Debug, Clone)]
pub struct OnlineModels {
    pub learners: Arc<dyn LearnerFactory>,
    /// Scores a new key until its own model is trained.
    pub prior: Option<Arc<ScoringModel>>,
}
