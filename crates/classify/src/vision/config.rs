//! How an image classifier is built and trained: the optional `--config`
//! TOML of `tidewatch image train`. Every section and field has a default.
//!
//! ```toml
//! [input]
//! size_px = 28            # images are resized to size_px x size_px
//! colour = "auto"         # auto | grey | rgb
//!
//! [model]
//! conv_channels = [16, 32, 64] # one block each: conv, batch norm, ReLU, 2x2 max pool
//! dense_widths = [64]
//! dropout = 0.1
//!
//! [training]
//! optimizer = "adam"       # adam | sgd (with momentum)
//! learning_rate = 0.003
//! schedule = "cosine"      # constant | cosine | step
//!
//! [augment]
//! shift_px = 2
//! rotate_degrees = 10.0
//! flip_horizontal = false
//! ```

use std::path::Path;

use serde::{Deserialize, Serialize};
use tidewatch_stream::config::check_ranges;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageConfig {
    #[serde(default)]
    pub input: InputConfig,
    #[serde(default)]
    pub model: CnnConfig,
    #[serde(default)]
    pub training: ImageTrainingConfig,
    #[serde(default)]
    pub augment: AugmentConfig,
}

impl ImageConfig {
    pub fn load(path: &Path) -> Result<ImageConfig, String> {
        let text = tidewatch_stream::config::env::read_config(path)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let config: ImageConfig =
            toml::from_str(&text).map_err(|e| format!("{}: {}", path.display(), e.message()))?;
        config
            .validate()
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(config)
    }

    pub fn validate(&self) -> Result<(), String> {
        let (t, a) = (&self.training, &self.augment);
        let size_px = f64::from(self.input.size_px);
        // (setting, value, in range, the range): NaN is in no range.
        let ranges = [
            (
                "input.size_px",
                size_px,
                (4.0..=f64::from(MAX_SIZE_PX)).contains(&size_px),
                "[4, 1024]",
            ),
            (
                "model.dropout",
                self.model.dropout,
                (0.0..1.0).contains(&self.model.dropout),
                "[0, 1)",
            ),
            ("training.epochs", t.epochs as f64, t.epochs > 0, "[1, inf)"),
            (
                "training.batch_size",
                t.batch_size as f64,
                t.batch_size > 0,
                "[1, inf)",
            ),
            (
                "training.learning_rate",
                t.learning_rate,
                t.learning_rate > 0.0 && t.learning_rate.is_finite(),
                "(0, inf)",
            ),
            (
                "training.momentum",
                t.momentum,
                (0.0..1.0).contains(&t.momentum),
                "[0, 1)",
            ),
            (
                "training.validation_fraction",
                t.validation_fraction,
                (0.0..0.9).contains(&t.validation_fraction),
                "[0, 0.9)",
            ),
            (
                "augment.rotate_degrees",
                f64::from(a.rotate_degrees),
                (0.0..=180.0).contains(&a.rotate_degrees),
                "[0, 180]",
            ),
            (
                "augment.shift_px",
                f64::from(a.shift_px),
                a.shift_px < self.input.size_px / 2,
                "[0, size_px / 2)",
            ),
        ];
        check_ranges(ranges)?;
        let widths = self.model.conv_channels(self.input.size_px);
        if widths.contains(&0) || self.model.dense_widths.contains(&0) {
            return Err("model.conv_channels and model.dense_widths must be positive".into());
        }
        if self.input.size_px >> self.model.conv_channels(self.input.size_px).len() == 0 {
            return Err(format!(
                "model.conv_channels: {} pooling blocks shrink a {} px image to nothing",
                self.model.conv_channels(self.input.size_px).len(),
                self.input.size_px
            ));
        }
        if self.model.kernel_size.is_multiple_of(2)
            || self.model.kernel_size > self.input.size_px as usize
        {
            return Err(format!(
                "model.kernel_size must be odd and at most input.size_px, got {}",
                self.model.kernel_size
            ));
        }
        Ok(())
    }
}

/// What the network sees.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputConfig {
    /// Images are resized to `size_px` x `size_px`.
    #[serde(default = "default_size_px")]
    pub size_px: u32,
    /// Colour handling; `auto` is RGB when any training image has colour.
    #[serde(default)]
    pub colour: ColourMode,
}

/// Largest image side the network takes: a 1024 x 1024 RGB image is 12 MB
/// of floats per image in a batch.
pub const MAX_SIZE_PX: u32 = 1024;

fn default_size_px() -> u32 {
    28
}

impl Default for InputConfig {
    fn default() -> Self {
        InputConfig {
            size_px: default_size_px(),
            colour: ColourMode::default(),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ColourMode {
    #[default]
    Auto,
    Grey,
    Rgb,
}

/// The network: convolution blocks, then dense layers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CnnConfig {
    /// Output channels of each block (convolution, batch norm, ReLU, 2x2 max
    /// pooling). Unset: `[16, 32, 64]` up to 32 px; for larger images blocks of
    /// 32, 64, 128, 128... until the feature map is at most 8 px.
    #[serde(default)]
    pub conv_channels: Option<Vec<usize>>,
    /// Convolution kernel side (odd; padded to keep the size).
    #[serde(default = "default_kernel_size")]
    pub kernel_size: usize,
    /// Hidden dense layers after the convolutions.
    #[serde(default = "default_dense_widths")]
    pub dense_widths: Vec<usize>,
    /// Dropout after each block and hidden dense layer, while training.
    #[serde(default = "default_dropout")]
    pub dropout: f64,
}

fn default_kernel_size() -> usize {
    3
}
fn default_dense_widths() -> Vec<usize> {
    vec![64]
}
fn default_dropout() -> f64 {
    0.1
}

impl Default for CnnConfig {
    fn default() -> Self {
        CnnConfig {
            conv_channels: None,
            kernel_size: default_kernel_size(),
            dense_widths: default_dense_widths(),
            dropout: default_dropout(),
        }
    }
}

impl CnnConfig {
    /// The convolution blocks for images of `size_px`.
    pub fn conv_channels(&self, size_px: u32) -> Vec<usize> {
        if let Some(channels) = &self.conv_channels {
            return channels.clone();
        }
        if size_px <= 32 {
            return vec![16, 32, 64];
        }
        let mut channels = Vec::new();
        let mut side = size_px;
        while side > 8 {
            channels.push((32usize << channels.len()).min(128));
            side /= 2;
        }
        channels
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageTrainingConfig {
    /// Upper bound on passes over the training images.
    #[serde(default = "default_epochs")]
    pub epochs: usize,
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    #[serde(default)]
    pub optimizer: OptimizerKind,
    /// Peak learning rate (the schedule scales it down).
    #[serde(default = "default_learning_rate")]
    pub learning_rate: f64,
    /// SGD momentum (unused by Adam).
    #[serde(default = "default_momentum")]
    pub momentum: f64,
    #[serde(default)]
    pub schedule: Schedule,
    /// Share of the training images held out for validation when no
    /// validation folder is given.
    #[serde(default = "default_validation_fraction")]
    pub validation_fraction: f64,
    /// Stop after this many epochs without a better validation loss.
    #[serde(default = "default_patience_epochs")]
    pub patience_epochs: usize,
    /// Seed for the split, initial weights, shuffling and augmentation.
    #[serde(default = "default_seed")]
    pub seed: u64,
}

fn default_epochs() -> usize {
    20
}
fn default_batch_size() -> usize {
    32
}
fn default_learning_rate() -> f64 {
    3e-3
}
fn default_momentum() -> f64 {
    0.9
}
fn default_validation_fraction() -> f64 {
    0.2
}
fn default_patience_epochs() -> usize {
    5
}
fn default_seed() -> u64 {
    42
}

impl Default for ImageTrainingConfig {
    fn default() -> Self {
        ImageTrainingConfig {
            epochs: default_epochs(),
            batch_size: default_batch_size(),
            optimizer: OptimizerKind::default(),
            learning_rate: default_learning_rate(),
            momentum: default_momentum(),
            schedule: Schedule::default(),
            validation_fraction: default_validation_fraction(),
            patience_epochs: default_patience_epochs(),
            seed: default_seed(),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    #[default]
    Adam,
    /// Stochastic gradient descent with momentum.
    Sgd,
}

/// How the learning rate moves over the run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Schedule {
    Constant,
    /// Half a cosine from the peak down to 1% of it over all epochs.
    #[default]
    Cosine,
    /// Halved every quarter of the epochs.
    Step,
}

impl Schedule {
    /// The learning rate at `progress` in [0, 1] of the run.
    pub fn rate(self, peak: f64, progress: f64) -> f64 {
        let progress = progress.clamp(0.0, 1.0);
        match self {
            Schedule::Constant => peak,
            Schedule::Cosine => {
                let floor = peak * 0.01;
                floor + (peak - floor) * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
            }
            Schedule::Step => peak * 0.5f64.powi((progress * 4.0).floor().min(3.0) as i32),
        }
    }
}

/// Random distortions of training images (never of validation or
/// prediction images). Flips are off by default: they change the meaning
/// of digits and text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AugmentConfig {
    /// Largest shift along each axis, in pixels of the resized image.
    #[serde(default = "default_shift_px")]
    pub shift_px: u32,
    /// Largest rotation either way, in degrees.
    #[serde(default = "default_rotate_degrees")]
    pub rotate_degrees: f32,
    /// Mirror left-right with probability 1/2.
    #[serde(default)]
    pub flip_horizontal: bool,
    /// Mirror top-bottom with probability 1/2.
    #[serde(default)]
    pub flip_vertical: bool,
}

fn default_shift_px() -> u32 {
    2
}
fn default_rotate_degrees() -> f32 {
    10.0
}

impl Default for AugmentConfig {
    fn default() -> Self {
        AugmentConfig {
            shift_px: default_shift_px(),
            rotate_degrees: default_rotate_degrees(),
            flip_horizontal: false,
            flip_vertical: false,
        }
    }
}

impl AugmentConfig {
    pub fn is_off(&self) -> bool {
        self.shift_px == 0
            && self.rotate_degrees == 0.0
            && !self.flip_horizontal
            && !self.flip_vertical
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_blocks_follow_the_image_size() {
        let model = CnnConfig::default();
        assert_eq!(model.conv_channels(28), vec![16, 32, 64]);
        assert_eq!(model.conv_channels(64), vec![32, 64, 128]);
        assert_eq!(model.conv_channels(128), vec![32, 64, 128, 128]);
    }

    #[test]
    fn schedules_start_at_the_peak_and_decay() {
        for schedule in [Schedule::Cosine, Schedule::Step] {
            assert_eq!(schedule.rate(1.0, 0.0), 1.0);
            assert!(schedule.rate(1.0, 1.0) < 0.2);
        }
        assert_eq!(Schedule::Constant.rate(0.5, 0.7), 0.5);
    }

    #[test]
    fn unknown_fields_and_bad_values_are_refused() {
        assert!(toml::from_str::<ImageConfig>("[model]\nconv = [1]").is_err());
        let mut config = ImageConfig::default();
        config.model.conv_channels = Some(vec![8; 6]);
        assert!(config.validate().unwrap_err().contains("shrink"));
    }
}
