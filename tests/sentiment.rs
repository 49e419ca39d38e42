//! The text job on a generated three-class review set: learned, saved and
//! loaded to identical probabilities, predictions written per row.

use tidewatch::text::data::{ReadSpec, read_file};
use tidewatch::text::jobs::{evaluate, predict};
use tidewatch::text::model::{ModelKind, TextClassifier, train};
use tidewatch::text::reviews::reviews_csv as reviews;

fn spec(labels_required: bool) -> ReadSpec {
    ReadSpec {
        text_field: "review".into(),
        label_field: "sentiment".into(),
        ..ReadSpec::new(labels_required, false)
    }
}

#[test]
fn the_baseline_learns_reviews_and_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let (train_path, test_path) = (dir.path().join("train.csv"), dir.path().join("test.csv"));
    std::fs::write(&train_path, reviews(300, 1)).unwrap();
    std::fs::write(&test_path, reviews(90, 2)).unwrap();
    let set = read_file(&train_path, &spec(true)).unwrap();
    let classifier = train(&set, &train_path, ModelKind::Baseline).unwrap();
    assert_eq!(
        classifier.manifest.labels,
        vec!["dissatisfied", "neutral", "satisfied"]
    );

    let test = read_file(&test_path, &spec(true)).unwrap();
    let evaluation = evaluate(&classifier, &test, &test_path).unwrap();
    assert!(evaluation.accuracy >= 0.95, "{}", evaluation.table());

    let out = dir.path().join("model");
    classifier.save(&out).unwrap();
    let loaded = TextClassifier::load(&out).unwrap();
    let texts: Vec<String> = test.examples.iter().map(|e| e.text.clone()).collect();
    assert_eq!(
        classifier.model.probabilities(&texts).unwrap(),
        loaded.model.probabilities(&texts).unwrap()
    );
    // One text alone gets the probabilities it got in the batch.
    let alone = loaded.model.probabilities(&texts[..1]).unwrap();
    assert_eq!(
        alone.row(0),
        loaded.model.probabilities(&texts).unwrap().row(0)
    );

    let mut csv = Vec::new();
    let rows = predict(
        &loaded,
        &read_file(&test_path, &spec(false)).unwrap(),
        true,
        &mut csv,
    )
    .unwrap();
    assert_eq!(rows, 90);
    let csv = String::from_utf8(csv).unwrap();
    assert_eq!(
        csv.lines().next(),
        Some("line,label,p_dissatisfied,p_neutral,p_satisfied")
    );
    assert_eq!(csv.lines().count(), 91);

    let weights = out.join("baseline.json");
    let mut bytes = std::fs::read(&weights).unwrap();
    bytes[10] ^= 1;
    std::fs::write(&weights, bytes).unwrap();
    let error = TextClassifier::load(&out).unwrap_err().to_string();
    assert!(error.contains("checksum mismatch"), "{error}");
}

#[test]
fn one_label_is_refused_with_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("one.tsv");
    std::fs::write(&path, "good\tpos\nfine\tpos\n").unwrap();
    let set = read_file(&path, &ReadSpec::new(true, false)).unwrap();
    let error = train(&set, &path, ModelKind::Baseline)
        .unwrap_err()
        .to_string();
    assert!(error.contains("one.tsv: only one label (pos)"), "{error}");
}
