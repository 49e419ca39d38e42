//! The command line as a user meets it: one-line errors with a non-zero
//! exit code, and the train -> score round trip.

use std::path::Path;
use std::process::{Command, Output};

fn tidewatch(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tidewatch"))
        .args(args)
        .output()
        .unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

fn series_csv(rows: usize, bad_line: Option<usize>) -> String {
    let mut text = String::from("timestamp,value\n");
    for i in 0..rows {
        let line = i + 2;
        let value = if Some(line) == bad_line {
            "n/a".to_owned()
        } else {
            format!("{:.3}", (i as f64 / 10.0).sin())
        };
        text.push_str(&format!("{},{value}\n", 1_700_000_000 + 60 * i));
    }
    text
}

#[test]
fn bad_input_is_one_line_with_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let input = write(dir.path(), "bad.csv", &series_csv(50, Some(7)));
    let output_path = dir.path().join("out.csv").display().to_string();
    let output = tidewatch(&[
        "score",
        "--online",
        "--input",
        &input,
        "--output",
        &output_path,
    ]);
    assert_eq!(output.status.code(), Some(1));
    let message = stderr(&output);
    assert_eq!(message.lines().count(), 1, "{message}");
    assert!(
        message.ends_with("bad.csv:7: column \"value\": not a number: \"n/a\"\n"),
        "{message}"
    );
}

#[test]
fn a_bad_config_is_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let input = write(dir.path(), "ok.csv", &series_csv(50, None));
    let config = write(
        dir.path(),
        "bad.toml",
        "[schema]\nname = 's'\nfeatures = [{ name = 'value', transform = 'cube' }]\n",
    );
    let output_path = dir.path().join("out.csv").display().to_string();
    let output = tidewatch(&[
        "score",
        "--online",
        "--config",
        &config,
        "--input",
        &input,
        "--output",
        &output_path,
    ]);
    assert_eq!(output.status.code(), Some(1));
    let message = stderr(&output);
    assert_eq!(message.lines().count(), 1, "{message}");
    assert!(
        message.contains("bad.toml") && message.contains("unknown variant `cube`"),
        "{message}"
    );
}

#[test]
fn skipped_rows_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let input = write(dir.path(), "gappy.csv", &series_csv(300, Some(100)));
    let config = write(
        dir.path(),
        "small.toml",
        "[schema]\nname = 's'\nfeatures = [{ name = 'value' }]\n[model]\nwindow_len = 8\nburn_in_steps = 2\n\
         forecaster = { hidden_size = 8 }\nautoencoder = { hidden_widths = [8, 2] }\n[training]\nmax_epochs = 2\n",
    );
    let scores = dir.path().join("scores.csv");
    let output = tidewatch(&[
        "score",
        "--online",
        "--config",
        &config,
        "--input",
        &input,
        "--output",
        &scores.display().to_string(),
        "--skip-bad-rows",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("1 bad rows skipped (not_numeric: 1)"),
        "{}",
        stderr(&output)
    );
    let written = std::fs::read_to_string(scores).unwrap();
    assert_eq!(
        written.lines().count(),
        300,
        "header plus the 299 good rows"
    );
}

#[test]
fn train_then_score_with_the_bundle() {
    let dir = tempfile::tempdir().unwrap();
    let input = write(dir.path(), "train.csv", &series_csv(400, None));
    let config = write(
        dir.path(),
        "stream.toml",
        "[schema]\nname = 'sine'\nfeatures = [{ name = 'value' }]\n[model]\nwindow_len = 8\nburn_in_steps = 2\n\
         forecaster = { cell = 'gru', hidden_size = 8 }\nautoencoder = { hidden_widths = [8, 2] }\n[training]\nmax_epochs = 3\n",
    );
    let bundle = dir.path().join("bundle").display().to_string();
    let output = tidewatch(&[
        "train", "--quiet", "--input", &input, "--schema", &config, "--out", &bundle,
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("trained sine"),
        "{}",
        stderr(&output)
    );

    let scores = dir.path().join("scores.csv");
    let output = tidewatch(&[
        "score",
        "--model",
        &bundle,
        "--input",
        &input,
        "--output",
        &scores.display().to_string(),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let written = std::fs::read_to_string(&scores).unwrap();
    let header = written.lines().next().unwrap();
    assert_eq!(
        header,
        "line,key,timestamp,status,score,threshold,is_anomaly,flag,forecast_error,reconstruction_error,top_features"
    );
    assert_eq!(written.lines().count(), 401);
    assert!(written.lines().nth(20).unwrap().contains(",scored,"));

    // Neither or both of --model and --online is a usage error.
    let output = tidewatch(&["score", "--input", &input, "--output", "x.csv"]);
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn sentiment_train_predict_eval_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let data = write(
        dir.path(),
        "reviews.csv",
        &tidewatch_classify::text::reviews::reviews_csv(200, 5),
    );
    let model = dir.path().join("model").display().to_string();
    let columns = ["--text-column", "review", "--label-column", "sentiment"];

    let no_encoder = tidewatch(&[
        "sentiment",
        "train",
        "--data",
        &data,
        "--kind",
        "pretrained",
        "--out",
        &model,
    ]);
    assert_eq!(no_encoder.status.code(), Some(1));
    assert!(
        stderr(&no_encoder).contains("needs --encoder DIR"),
        "{}",
        stderr(&no_encoder)
    );

    let wrong_flag = tidewatch(&[
        "sentiment",
        "train",
        "--data",
        &data,
        "--cell",
        "lstm",
        "--out",
        &model,
    ]);
    assert_eq!(wrong_flag.status.code(), Some(1));
    assert!(
        stderr(&wrong_flag).contains("--cell does not apply to --kind baseline"),
        "{}",
        stderr(&wrong_flag)
    );

    let trained = tidewatch(
        &[
            &["sentiment", "train", "--data", &data, "--out", &model][..],
            &columns,
        ]
        .concat(),
    );
    assert!(trained.status.success(), "{}", stderr(&trained));

    let predictions = dir.path().join("labels.jsonl").display().to_string();
    let predicted = tidewatch(
        &[
            &[
                "sentiment",
                "predict",
                "--model",
                &model,
                "--input",
                &data,
                "--output",
                &predictions,
            ][..],
            &columns,
        ]
        .concat(),
    );
    assert!(predicted.status.success(), "{}", stderr(&predicted));
    let first: serde_json::Value = serde_json::from_str(
        std::fs::read_to_string(&predictions)
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(first["line"], 2);
    assert_eq!(first["probabilities"].as_object().unwrap().len(), 3);

    let evaluated = tidewatch(
        &[
            &["sentiment", "eval", "--model", &model, "--data", &data][..],
            &columns,
        ]
        .concat(),
    );
    assert!(evaluated.status.success(), "{}", stderr(&evaluated));
    let report = String::from_utf8_lossy(&evaluated.stdout);
    assert!(report.starts_with("accuracy "), "{report}");
    assert!(report.contains("confusion"), "{report}");
}
