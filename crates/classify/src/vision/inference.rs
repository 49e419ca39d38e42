//! `image predict` and `image eval`: a loaded model over images in
//! batches, streaming through folders of any size (only one batch is
//! decoded at a time).

use std::io::Write;
use std::path::Path;

use burn::tensor::Device;
use serde::Serialize;

use crate::metrics::{Evaluation, Ranked, top_k};
use tidewatch_stream::source::file::csv_field;

use crate::vision::artifact::{self, ArtifactError, ImageManifest};
use crate::vision::data::{DataError, ImageSet, image_batch, to_pixels};
use crate::vision::model::Cnn;

#[derive(Debug, thiserror::Error)]
pub enum InferenceError {
    #[error(transparent)]
    Data(#[from] DataError),
    #[error(transparent)]
    Artifact(#[from] ArtifactError),
    #[error("{path}: {message}")]
    Output { path: String, message: String },
}

/// A model ready to classify.
pub struct Classifier {
    pub manifest: ImageManifest,
    model: Cnn,
    device: Device,
}

impl Classifier {
    pub fn load(dir: &Path) -> Result<Classifier, ArtifactError> {
        let device = Device::flex();
        let (manifest, model) = artifact::load(dir, &device)?;
        Ok(Classifier {
            manifest,
            model,
            device,
        })
    }

    /// Class probabilities of each image, in the model's class order.
    pub fn probabilities(&self, images: &[image::DynamicImage]) -> Vec<Vec<f32>> {
        let pixels: Vec<Vec<f32>> = images.iter().map(|image| self.pixels(image)).collect();
        self.probabilities_of(&pixels)
    }

    /// An image as the network takes it: resized and normalised.
    fn pixels(&self, image: &image::DynamicImage) -> Vec<f32> {
        let m = &self.manifest;
        let mut pixels = to_pixels(image, m.size_px, m.channels);
        m.normalisation.apply(&mut pixels);
        pixels
    }

    /// Class probabilities of images given as [`Classifier::pixels`].
    fn probabilities_of(&self, pixels: &[Vec<f32>]) -> Vec<Vec<f32>> {
        if pixels.is_empty() {
            return Vec::new();
        }
        let m = &self.manifest;
        let refs: Vec<&[f32]> = pixels.iter().map(Vec::as_slice).collect();
        let batch = image_batch(&refs, m.channels, m.size_px as usize, &self.device);
        let probabilities = self.model.probabilities(batch);
        let classes = m.classes.len();
        probabilities
            .to_data()
            .try_to_vec::<f32>()
            .expect("f32 probabilities")
            .chunks_exact(classes)
            .map(<[f32]>::to_vec)
            .collect()
    }

    /// Runs every image of `set` through the model, `batch_size` at a
    /// time, calling `each(item index, probabilities)`. An unreadable image
    /// is an error when `strict`, else skipped with a warning naming it;
    /// returns how many were skipped. A set with no readable image is an
    /// error: there was nothing to classify.
    pub fn classify_set(
        &self,
        set: &ImageSet,
        batch_size: usize,
        strict: bool,
        mut each: impl FnMut(usize, &[f32]) -> Result<(), InferenceError>,
    ) -> Result<usize, InferenceError> {
        let indices: Vec<usize> = (0..set.items.len()).collect();
        let mut skipped = 0;
        for chunk in indices.chunks(batch_size.max(1)) {
            let mut readable = Vec::with_capacity(chunk.len());
            let mut pixels = Vec::with_capacity(chunk.len());
            for &i in chunk {
                // Resized as soon as decoded: one full-size image at a time.
                match set.decode_or_skip(i, strict)? {
                    Some(image) => {
                        readable.push(i);
                        pixels.push(self.pixels(&image));
                    }
                    None => skipped += 1,
                }
            }
            for (i, probabilities) in readable.into_iter().zip(self.probabilities_of(&pixels)) {
                each(i, &probabilities)?;
            }
        }
        if skipped == set.items.len() {
            return Err(DataError::NothingReadable(set.root.clone()).into());
        }
        Ok(skipped)
    }
}

/// How predictions are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PredictionFormat {
    /// `file,class,probability,top_k` with top-k as `class:probability`
    /// pairs separated by `;`.
    Csv,
    /// One JSON object per line: file, class, probability, top_k.
    JsonLines,
}

#[derive(Debug, Serialize)]
struct PredictionRow<'a> {
    file: &'a str,
    class: &'a str,
    probability: f32,
    top_k: &'a [Ranked],
}

/// Counts of a prediction run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PredictSummary {
    pub predicted: usize,
    pub skipped: usize,
}

/// Classifies `set` and writes one row per image to `out`.
pub fn predict(
    classifier: &Classifier,
    set: &ImageSet,
    batch_size: usize,
    top: usize,
    format: PredictionFormat,
    strict: bool,
    out: &mut impl Write,
) -> Result<PredictSummary, InferenceError> {
    let output_error = |e: std::io::Error| InferenceError::Output {
        path: "output".into(),
        message: e.to_string(),
    };
    if format == PredictionFormat::Csv {
        writeln!(out, "file,class,probability,top_k").map_err(output_error)?;
    }
    let classes = &classifier.manifest.classes;
    let mut summary = PredictSummary::default();
    summary.skipped = classifier.classify_set(set, batch_size, strict, |i, probabilities| {
        let name = set.items[i].0.name();
        let ranked = top_k(classes, probabilities, top);
        let best = &ranked[0];
        match format {
            PredictionFormat::Csv => {
                let top_k: Vec<String> = ranked
                    .iter()
                    .map(|r| format!("{}:{:.6}", r.class, r.probability))
                    .collect();
                writeln!(
                    out,
                    "{},{},{:.6},{}",
                    csv_field(&name),
                    csv_field(&best.class),
                    best.probability,
                    csv_field(&top_k.join(";"))
                )
            }
            PredictionFormat::JsonLines => {
                let row = PredictionRow {
                    file: &name,
                    class: &best.class,
                    probability: best.probability,
                    top_k: &ranked,
                };
                writeln!(
                    out,
                    "{}",
                    serde_json::to_string(&row).expect("row serialises")
                )
            }
        }
        .map_err(output_error)?;
        summary.predicted += 1;
        Ok(())
    })?;
    Ok(summary)
}

/// Classifies a labelled set and scores the predictions.
pub fn evaluate(
    classifier: &Classifier,
    set: &mut ImageSet,
    batch_size: usize,
    strict: bool,
) -> Result<Evaluation, InferenceError> {
    let classes = classifier.manifest.classes.clone();
    set.relabel(&classes)?;
    let mut confusion = vec![vec![0usize; classes.len()]; classes.len()];
    let set = &*set;
    let skipped = classifier.classify_set(set, batch_size, strict, |i, probabilities| {
        let truth = set.items[i].1.expect("labelled set");
        let predicted = top_k(&classes, probabilities, 1);
        let predicted = classes
            .iter()
            .position(|c| *c == predicted[0].class)
            .expect("known class");
        confusion[truth][predicted] += 1;
        Ok(())
    })?;
    Ok(Evaluation::from_confusion(classes, confusion, skipped))
}
