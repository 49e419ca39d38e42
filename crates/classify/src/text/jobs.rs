//! `sentiment predict`, `sentiment eval` and `sentiment split` over a
//! trained [`TextClassifier`].

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::metrics::Evaluation;
use crate::split::stratified_holdout;
use ndarray::Array2;

use crate::text::data::{Example, ReadSpec, TextSet, visit_file};
use crate::text::error::TextModelError;
use crate::text::model::{TextClassifier, argmax};

/// Texts per model call.
pub const BATCH_ROWS: usize = 256;

#[derive(Debug, Serialize)]
struct PredictionRow<'a> {
    line: u64,
    label: &'a str,
    /// Probability per label, in the model's label order.
    probabilities: LabelProbabilities<'a>,
}

/// Label -> probability, serialised as a JSON object in label order.
#[derive(Debug)]
struct LabelProbabilities<'a>(&'a [String], Vec<f64>);

impl Serialize for LabelProbabilities<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (label, p) in self.0.iter().zip(&self.1) {
            map.serialize_entry(label, p)?;
        }
        map.end()
    }
}

/// Runs the model over the rows of `paths` as they are read, in batches
/// of [`BATCH_ROWS`], calling `each` with the file, the batch and its
/// probabilities `[batch, labels]`; a file is never held whole. Returns the
/// rows classified and the bad rows skipped.
pub fn classify_rows(
    classifier: &TextClassifier,
    paths: &[PathBuf],
    spec: &ReadSpec,
    mut each: impl FnMut(&Path, &[Example], Array2<f64>) -> Result<(), TextModelError>,
) -> Result<(usize, usize), TextModelError> {
    let (mut rows, mut skipped) = (0, 0);
    for path in paths {
        let mut batch: Vec<Example> = Vec::with_capacity(BATCH_ROWS);
        let mut flush = |batch: &mut Vec<Example>| -> Result<(), TextModelError> {
            let texts: Vec<String> = batch.iter().map(|e| e.text.clone()).collect();
            let probabilities = classifier.model.probabilities(&texts)?;
            each(path, batch, probabilities)?;
            rows += batch.len();
            batch.clear();
            Ok(())
        };
        skipped += visit_file(path, spec, |example| {
            batch.push(example);
            if batch.len() == BATCH_ROWS {
                flush(&mut batch)?;
            }
            Ok::<_, TextModelError>(())
        })?;
        if !batch.is_empty() {
            flush(&mut batch)?;
        }
    }
    Ok((rows, skipped))
}

/// Writes one row per input row: CSV (`line,label,p_<label>...`) when
/// `csv`, else JSON Lines. Returns the rows written and the bad rows
/// skipped.
pub fn predict(
    classifier: &TextClassifier,
    input: &Path,
    spec: &ReadSpec,
    csv: bool,
    out: &mut impl Write,
) -> Result<(usize, usize), TextModelError> {
    let labels = &classifier.manifest.labels;
    let output = |e: std::io::Error| TextModelError::Io {
        path: PathBuf::from("output"),
        message: e.to_string(),
    };
    if csv {
        let header: Vec<String> = labels.iter().map(|l| format!("p_{l}")).collect();
        writeln!(out, "line,label,{}", header.join(",")).map_err(output)?;
    }
    classify_rows(
        classifier,
        &[input.to_owned()],
        spec,
        |_, batch, probabilities| {
            for (example, row) in batch.iter().zip(probabilities.rows()) {
                let row = row.to_vec();
                let label = &labels[argmax(&row)];
                if csv {
                    let values: Vec<String> = row.iter().map(|p| format!("{p:.6}")).collect();
                    writeln!(out, "{},{},{}", example.line, label, values.join(","))
                        .map_err(output)?;
                } else {
                    let json = PredictionRow {
                        line: example.line,
                        label,
                        probabilities: LabelProbabilities(labels, row),
                    };
                    writeln!(
                        out,
                        "{}",
                        serde_json::to_string(&json).expect("row serialises")
                    )
                    .map_err(output)?;
                }
            }
            Ok(())
        },
    )
}

/// Scores the model on labelled files; a label the model does not know is
/// an error naming its line.
pub fn evaluate(
    classifier: &TextClassifier,
    paths: &[PathBuf],
    spec: &ReadSpec,
) -> Result<Evaluation, TextModelError> {
    let labels = &classifier.manifest.labels;
    let mut confusion = vec![vec![0usize; labels.len()]; labels.len()];
    let (_, skipped) = classify_rows(classifier, paths, spec, |path, batch, probabilities| {
        for (example, row) in batch.iter().zip(probabilities.rows()) {
            let truth = example.label.as_deref().unwrap_or_default();
            let Some(t) = labels.iter().position(|l| l == truth) else {
                return Err(TextModelError::Model(format!(
                    "{}:{}: label {truth:?} is not one the model knows ({})",
                    path.display(),
                    example.line,
                    labels.join(", ")
                )));
            };
            confusion[t][argmax(row.as_slice().expect("contiguous"))] += 1;
        }
        Ok(())
    })?;
    Ok(Evaluation::from_confusion(
        labels.clone(),
        confusion,
        skipped,
    ))
}

/// Writes `out/train.tsv` and `out/test.tsv` (`text<TAB>label`), holding
/// out `test_fraction` of each label by a seeded shuffle.
pub fn split(
    set: &TextSet,
    out: &Path,
    test_fraction: f64,
    seed: u64,
) -> std::io::Result<(usize, usize)> {
    let classes = set.class_indices(&set.labels());
    let (kept, held) = stratified_holdout(&classes, test_fraction, seed);
    let rows = |indices: Vec<usize>| -> Vec<&Example> {
        indices.into_iter().map(|i| &set.examples[i]).collect()
    };
    let (train, test) = (rows(kept), rows(held));
    std::fs::create_dir_all(out)?;
    for (name, rows) in [("train.tsv", &train), ("test.tsv", &test)] {
        let mut file = std::io::BufWriter::new(std::fs::File::create(out.join(name))?);
        for row in rows {
            let text = row.text.replace(['\t', '\n', '\r'], " ");
            writeln!(file, "{text}\t{}", row.label.as_deref().unwrap_or_default())?;
        }
        file.flush()?;
    }
    Ok((train.len(), test.len()))
}
