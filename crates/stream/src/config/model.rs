//! The shape of a stream's two models: window length, the recurrent
//! forecaster and the reconstruction autoencoder. Plain data: the learning
//! crate builds burn modules from it, the bundle records it.

use serde::{Deserialize, Serialize};

use crate::infer::activation::Activation;

/// Shape of both models.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// Events in the autoencoder's window and in each training sequence of
    /// the forecaster; a key is scored once it has seen this many.
    #[serde(default = "default_window_len")]
    pub window_len: usize,
    /// Forecaster steps whose predictions are left out of the training loss
    /// while the recurrent state builds up from zero.
    #[serde(default = "default_burn_in_steps")]
    pub burn_in_steps: usize,
    #[serde(default)]
    pub forecaster: ForecasterConfig,
    #[serde(default)]
    pub autoencoder: AutoencoderConfig,
}

fn default_window_len() -> usize {
    64
}
fn default_burn_in_steps() -> usize {
    8
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            window_len: default_window_len(),
            burn_in_steps: default_burn_in_steps(),
            forecaster: ForecasterConfig::default(),
            autoencoder: AutoencoderConfig::default(),
        }
    }
}

/// Which recurrent cell the forecaster uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum CellKind {
    #[default]
    Lstm,
    Gru,
}

impl CellKind {
    /// Every cell, by the name configs and flags use.
    pub const NAMES: [&'static str; 2] = ["lstm", "gru"];
}

impl std::str::FromStr for CellKind {
    type Err = String;

    fn from_str(name: &str) -> Result<CellKind, String> {
        match name {
            "lstm" => Ok(CellKind::Lstm),
            "gru" => Ok(CellKind::Gru),
            other => Err(format!("unknown cell {other:?}: expected lstm or gru")),
        }
    }
}

impl std::fmt::Display for CellKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CellKind::Lstm => "lstm",
            CellKind::Gru => "gru",
        })
    }
}

/// Shape of the forecaster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForecasterConfig {
    /// Recurrent cell: `lstm` or `gru`.
    #[serde(default)]
    pub cell: CellKind,
    /// Width of the recurrent state.
    #[serde(default = "default_hidden_size")]
    pub hidden_size: usize,
}

fn default_hidden_size() -> usize {
    64
}

impl Default for ForecasterConfig {
    fn default() -> Self {
        ForecasterConfig {
            cell: CellKind::default(),
            hidden_size: default_hidden_size(),
        }
    }
}

/// Shape of the autoencoder. The encoder narrows through `hidden_widths`,
/// the decoder mirrors it: widths `[128, 32]` over a window of 64 x 8 inputs
/// give 512-128-32-128-512.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AutoencoderConfig {
    /// Encoder widths after the input, narrowest (the code) last.
    #[serde(default = "default_hidden_widths")]
    pub hidden_widths: Vec<usize>,
    /// Activation between layers (the output layer is linear).
    #[serde(default)]
    pub activation: Activation,
    /// Rebuild each window's evidence inputs relative to their mean over
    /// the window (calendar context stays as it is), so the autoencoder
    /// judges a window's shape and leaves its level to the forecaster: a
    /// level the warm-up never saw is not by itself a bad reconstruction.
    #[serde(default)]
    pub level_relative: bool,
}

fn default_hidden_widths() -> Vec<usize> {
    vec![128, 32]
}

impl Default for AutoencoderConfig {
    fn default() -> Self {
        AutoencoderConfig {
            hidden_widths: default_hidden_widths(),
            activation: Activation::default(),
            level_relative: false,
        }
    }
}

impl AutoencoderConfig {
    /// All layer widths from input to output.
    pub fn widths(&self, window_inputs: usize) -> Vec<usize> {
        let mut widths = vec![window_inputs];
        widths.extend(&self.hidden_widths);
        widths.extend(self.hidden_widths.iter().rev().skip(1));
        widths.push(window_inputs);
        widths
    }

    /// For each model input, whether the autoencoder takes it relative to
    /// its window's mean: the `measured` ones when `level_relative`.
    pub fn centred_inputs(&self, measured: &[bool]) -> Vec<bool> {
        measured.iter().map(|&m| m && self.level_relative).collect()
    }
}
