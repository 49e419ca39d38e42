//! Online learning with the neural models: the stream core's
//! [`Learner`] for one key, training on its history and continuing from
//! its last models at each refit.

use tidewatch_stream::config::StreamConfig;
use tidewatch_stream::learner::{LearnError, Learner, LearnerFactory, Series};
use tidewatch_stream::model::ScoringModel;
use tidewatch_stream::state::store::KeyState;

use burn::tensor::Device;

use crate::export::modules_from_kernels;
use crate::fit::Progress;
use crate::train::{Modules, learn};

/// One key's trainer: keeps the burn models to continue from.
#[derive(Debug, Default)]
pub struct NeuralLearner {
    modules: Option<Modules>,
}

impl Learner for NeuralLearner {
    fn learn(
        &mut self,
        history: &Series,
        config: &StreamConfig,
        max_epochs: usize,
    ) -> Result<(ScoringModel, KeyState), LearnError> {
        let learned = learn(
            std::slice::from_ref(history),
            config,
            self.modules.as_ref(),
            max_epochs,
            Progress::Quiet,
        )?;
        self.modules = Some(learned.modules);
        let state = learned
            .states
            .into_iter()
            .next()
            .expect("one state per series");
        Ok((learned.model, state))
    }

    fn resume(&mut self, model: &ScoringModel) {
        let (forecaster, autoencoder) = modules_from_kernels(&model.kernels, &Device::flex());
        self.modules = Some(Modules {
            forecaster,
            autoencoder,
        });
    }
}

/// A [`NeuralLearner`] for every new key.
#[derive(Debug, Default, Clone, Copy)]
pub struct NeuralLearners;

impl LearnerFactory for NeuralLearners {
    fn learner(&self) -> Box<dyn Learner> {
        Box::<NeuralLearner>::default()
    }
}
