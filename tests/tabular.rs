//! The tabular and reduce jobs on generated tables: a regression target
//! and a class that are known non-linear functions of numeric and
//! categorical columns with missing values are learned; the model
//! directory round-trips to identical predictions; a missing column, an
//! unseen category and a word in a numeric column behave as the README's
//! hardening rules say; the autoencoder beats PCA on rows from a curved
//! surface and its codes are written per row.

mod support;

use std::fmt::Write as _;
use std::path::Path;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tidewatch_classify::reduce::config::ReduceConfig;
use tidewatch_classify::reduce::jobs::{InputKind, ReduceRequest, evaluate as reduce_evaluate};
use tidewatch_classify::tabular::artifact;
use tidewatch_classify::tabular::config::TabularConfig;
use tidewatch_classify::tabular::features::Task;
use tidewatch_classify::tabular::inference::{
    Prediction, TabularEvaluation, TabularModel, evaluate, predict_encoded,
};
use tidewatch_classify::tabular::table::Table;
use tidewatch_classify::tabular::training::{Prepared, TrainRequest, fit_ensemble, train};
use tidewatch_learn::fit::Progress;

use support::tidewatch;

const CITIES: [&str; 3] = ["east", "north", "south"];

/// `rows` rows of `x1` (uniform in [-2, 2]), `x2` (uniform in [0, 10],
/// missing one time in ten), `city` (one of three) and `noise`, with
///
/// - `price = 3 sin(x1 * 1.5) + 0.5 x2 + city effect + x1 * [city = east]`,
/// - `band`: `low`, `mid` or `high` by `x1² + 0.2 x2 + city effect`.
fn generated_table(rows: usize, seed: u64) -> String {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut csv = String::from("x1,x2,city,noise,price,band\n");
    for _ in 0..rows {
        let x1: f64 = rng.random_range(-2.0..2.0);
        let x2: f64 = rng.random_range(0.0..10.0);
        let city = rng.random_range(0..3);
        let noise: f64 = rng.random_range(-1.0..1.0);
        let effect = [-2.0, 0.0, 2.0][city];
        let price = 3.0 * (x1 * 1.5).sin() + 0.5 * x2 + effect + if city == 0 { x1 } else { 0.0 };
        let score = x1 * x1 + 0.2 * x2 + effect;
        let band = if score < 1.0 {
            "low"
        } else if score < 3.0 {
            "mid"
        } else {
            "high"
        };
        let x2_cell = if rng.random_bool(0.1) {
            String::new()
        } else {
            format!("{x2:.4}")
        };
        writeln!(
            csv,
            "{x1:.4},{x2_cell},{},{noise:.4},{price:.4},{band}",
            CITIES[city]
        )
        .unwrap();
    }
    csv
}

fn request(data: &Path, target: &str, task: Option<Task>) -> TrainRequest {
    TrainRequest {
        data: data.to_owned(),
        target: target.to_owned(),
        task,
        config: TabularConfig::default(),
        skip_bad_rows: false,
        progress: Progress::Quiet,
    }
}

/// Train and test files of the generated table in `dir`.
fn write_tables(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let (train_path, test_path) = (dir.join("train.csv"), dir.join("test.csv"));
    std::fs::write(&train_path, generated_table(2000, 1)).unwrap();
    std::fs::write(&test_path, generated_table(500, 2)).unwrap();
    (train_path, test_path)
}

#[test]
fn a_nonlinear_regression_is_learned_and_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let (train_path, test_path) = write_tables(dir.path());
    // `band` is a function of the features too: it would give the answer
    // away, so the config leaves it out.
    let mut request = request(&train_path, "price", None);
    // Two networks: the round trip below covers averaging.
    request.config = toml::from_str("ensemble = 2\n[columns.band]\nkind = \"ignore\"\n").unwrap();
    let out = dir.path().join("model");
    let manifest = train(&request, &out).unwrap();
    assert_eq!(
        manifest.target.task(),
        Task::Regression,
        "fractions: regression"
    );

    let model = TabularModel::load(&out).unwrap();
    let test = Table::read(&test_path).unwrap();
    let (evaluation, _) = evaluate(&model, &test, false).unwrap();
    let TabularEvaluation::Regression { metrics, .. } = evaluation else {
        panic!("a regression model")
    };
    // The target's standard deviation is about 3.3; one row in ten lacks
    // x2, which costs about 0.45 of RMSE that no model can recover.
    assert!(
        metrics.r2 > 0.93 && metrics.rmse < 0.9,
        "{}",
        evaluation_text(&metrics)
    );

    // The network in memory and the one read back predict identically.
    let table = Table::read(&train_path).unwrap();
    let prepared = Prepared::fit(&table, &request).unwrap();
    let (network, _) = fit_ensemble(&prepared, &request.config, Progress::Quiet).unwrap();
    let saved = dir.path().join("again");
    let mut manifest = manifest.clone();
    manifest.features = prepared.features.clone();
    manifest.target = prepared.target.clone();
    artifact::save(&saved, &manifest, &network).unwrap();
    let encoded = prepared.features.encode(&test, false).unwrap();
    let before = predict_encoded(&network, &prepared.target, &encoded);
    let (_, after) = TabularModel::load(&saved)
        .unwrap()
        .predict(&test, false)
        .unwrap();
    assert_eq!(before, after);
    assert!(matches!(before[0], Prediction::Value(_)));
}

fn evaluation_text(metrics: &tidewatch_classify::tabular::inference::RegressionMetrics) -> String {
    format!("RMSE {} R² {}", metrics.rmse, metrics.r2)
}

#[test]
fn a_nonlinear_class_is_learned() {
    let dir = tempfile::tempdir().unwrap();
    let (train_path, test_path) = write_tables(dir.path());
    let mut request = request(&train_path, "band", None);
    request.config = toml::from_str("ensemble = 1\n[columns.price]\nkind = \"ignore\"\n").unwrap();
    let out = dir.path().join("model");
    let manifest = train(&request, &out).unwrap();
    assert_eq!(
        manifest.target.task(),
        Task::Classification,
        "words: classes"
    );
    let model = TabularModel::load(&out).unwrap();
    let (evaluation, _) = evaluate(&model, &Table::read(&test_path).unwrap(), false).unwrap();
    let TabularEvaluation::Classification(evaluation) = evaluation else {
        panic!("a classifier")
    };
    assert_eq!(evaluation.classes, ["high", "low", "mid"]);
    // x2 is missing for one row in ten and weighs 0.2 in the score: a few
    // rows near a boundary cannot be placed.
    assert!(evaluation.accuracy > 0.9, "{}", evaluation.table());
}

/// Trains a small regression model through the command line.
fn trained_model(dir: &Path) -> std::path::PathBuf {
    let (train_path, _) = write_tables(dir);
    let config = dir.join("tabular.toml");
    std::fs::write(
        &config,
        "ensemble = 1\n[columns.band]\nkind = \"ignore\"\n[training]\nepochs = 5\n",
    )
    .unwrap();
    let out = dir.join("model");
    let run = tidewatch(&[
        "tabular",
        "train",
        "--data",
        train_path.to_str().unwrap(),
        "--target",
        "price",
        "--config",
        config.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    out
}

#[test]
fn bad_tables_at_predict_time_follow_the_hardening_rules() {
    let dir = tempfile::tempdir().unwrap();
    let model = trained_model(dir.path());
    let predict = |name: &str, csv: &str, extra: &[&str]| {
        let input = dir.path().join(name);
        std::fs::write(&input, csv).unwrap();
        let output = dir.path().join(format!("{name}.out.csv"));
        let mut args = vec![
            "tabular",
            "predict",
            "--model",
            model.to_str().unwrap(),
            "--input",
            input.to_str().unwrap(),
            "--output",
            output.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let run = tidewatch(&args);
        let written = std::fs::read_to_string(&output).unwrap_or_default();
        (
            run.status.code(),
            String::from_utf8_lossy(&run.stderr).into_owned(),
            written,
        )
    };

    // A column the model needs is missing: an error naming it, no output.
    let (code, stderr, written) = predict("no_x2.csv", "x1,city,noise\n0.5,east,0\n", &[]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("no_x2.csv: no column named \"x2\""),
        "{stderr}"
    );
    assert!(written.is_empty());

    // A category never seen: predicted with no category, and said.
    let (code, stderr, written) = predict(
        "west.csv",
        "x1,x2,city,noise\n0.5,3,west,0\n0.5,3,east,0\n",
        &[],
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("1 value(s) of column \"city\" were categories training never saw (west)"),
        "{stderr}"
    );
    let lines: Vec<&str> = written.lines().collect();
    assert_eq!(lines[0], "line,prediction");
    assert_eq!(lines.len(), 3, "{written}");
    assert!(lines[1].starts_with("2,"), "{written}");

    // A word in a numeric column: bad input naming file, line and column;
    // skipped and counted with --skip-bad-rows.
    let words = "x1,x2,city,noise\n0.5,3,east,0\nlots,3,east,0\n";
    let (code, stderr, written) = predict("word.csv", words, &[]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "word.csv:3: column \"x1\": \"lots\" is not a number (--skip-bad-rows skips such rows)"
        ),
        "{stderr}"
    );
    assert!(written.is_empty());
    let (code, stderr, written) = predict("word2.csv", words, &["--skip-bad-rows"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("1 rows predicted, 1 bad skipped"),
        "{stderr}"
    );
    assert_eq!(written.lines().count(), 2, "{written}");
}

#[test]
fn a_damaged_or_foreign_model_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let model = trained_model(dir.path());
    let manifest = model.join("manifest.json");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(&manifest, text.replace("\"log\": false", "\"log\": true")).unwrap();
    let error = TabularModel::load(&model).unwrap_err().to_string();
    assert!(error.contains("manifest_sha256 does not match"), "{error}");
    std::fs::write(
        &manifest,
        text.replace("\"format_version\": 1", "\"format_version\": 9"),
    )
    .unwrap();
    let error = TabularModel::load(&model).unwrap_err().to_string();
    assert!(error.contains("retrain it with this tidewatch"), "{error}");
}

/// Rows of 8 inputs that are smooth non-linear functions of two hidden
/// numbers, with a label by quadrant of the first.
fn curved_rows(rows: usize, seed: u64) -> String {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut csv = String::from("a,b,c,d,e,f,g,h,part\n");
    for _ in 0..rows {
        let u: f64 = rng.random_range(-1.5..1.5);
        let v: f64 = rng.random_range(-1.0..1.0);
        let values = [
            u.sin(),
            u.cos(),
            (2.0 * u).sin() * 0.5,
            v,
            v * u,
            (u + v).tanh(),
            u * u - 0.5,
            v * v * v,
        ];
        let cells: Vec<String> = values.iter().map(|x| format!("{x:.5}")).collect();
        writeln!(
            csv,
            "{},{}",
            cells.join(","),
            if u < 0.0 { "left" } else { "right" }
        )
        .unwrap();
    }
    csv
}

#[test]
fn the_autoencoder_beats_pca_on_a_curved_surface_and_writes_codes() {
    let dir = tempfile::tempdir().unwrap();
    let (train_path, test_path) = (dir.path().join("train.csv"), dir.path().join("test.csv"));
    std::fs::write(&train_path, curved_rows(1500, 3)).unwrap();
    std::fs::write(&test_path, curved_rows(300, 4)).unwrap();
    let request = ReduceRequest {
        data: train_path.clone(),
        input: InputKind::Table {
            label: Some("part".into()),
        },
        config: ReduceConfig::default(),
        skip_bad_rows: false,
        progress: Progress::Quiet,
    };
    let (evaluation, two_d) = reduce_evaluate(&request, Some(&test_path), &[2], |_| {}).unwrap();
    let comparison = &evaluation.comparisons[0];
    assert_eq!(evaluation.width, 8, "the label is not an input");
    assert!(
        comparison.autoencoder_mse < 0.7 * comparison.pca_mse,
        "{}",
        evaluation.table()
    );
    let two_d = two_d.expect("k = 2 gives 2-D codes");
    assert_eq!(two_d.autoencoder.len(), 300);
    assert_eq!(two_d.label_names, ["left", "right"]);

    let out = dir.path().join("model");
    let codes = dir.path().join("codes.csv");
    for args in [
        vec![
            "reduce",
            "train",
            "--data",
            train_path.to_str().unwrap(),
            "--label",
            "part",
            "-k",
            "2",
            "--out",
            out.to_str().unwrap(),
            "--quiet",
        ],
        vec![
            "reduce",
            "transform",
            "--model",
            out.to_str().unwrap(),
            "--input",
            test_path.to_str().unwrap(),
            "--output",
            codes.to_str().unwrap(),
        ],
    ] {
        let run = tidewatch(&args);
        assert!(
            run.status.success(),
            "{}",
            String::from_utf8_lossy(&run.stderr)
        );
    }
    let written = std::fs::read_to_string(&codes).unwrap();
    let lines: Vec<&str> = written.lines().collect();
    assert_eq!(lines[0], "row,label,code_1,code_2");
    assert_eq!(lines.len(), 301);
    assert!(lines[1].starts_with("2,"), "{}", lines[1]);
}
