//! The command line as a user meets it: one-line errors with a non-zero
//! exit code, and the train -> score round trip.

mod support;

use std::path::Path;
use std::process::Command;

use support::{score_online, stderr, tidewatch, write};

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
    let output = score_online(&config, &input, &output_path);
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

/// `tidewatch eval nab --scores` on a one-series corpus whose scores file
/// has `bad` (timestamp, score) at row `bad_row`; the child is killed after
/// 60 s so a hang fails the test instead of stalling the suite.
fn eval_nab_with_bad_score(bad_row: usize, bad: (&str, &str)) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let (data, scores) = (dir.path().join("data/cat"), dir.path().join("scores/cat"));
    std::fs::create_dir_all(&data).unwrap();
    std::fs::create_dir_all(&scores).unwrap();
    let time = |i: usize| format!("2014-04-01 {:02}:{:02}:00", i / 60, i % 60);
    let mut series = String::from("timestamp,value\n");
    let mut scored = String::from("timestamp,value,anomaly_score\n");
    for i in 0..200 {
        series.push_str(&format!("{},{i}\n", time(i)));
        let (stamp, score) = if i == bad_row {
            (bad.0.to_owned(), bad.1.to_owned())
        } else {
            (time(i), "0.1".to_owned())
        };
        scored.push_str(&format!("{stamp},{i},{score}\n"));
    }
    write(&data, "x.csv", &series);
    write(&scores, "x.csv", &scored);
    let labels = write(
        dir.path(),
        "labels.json",
        &format!(r#"{{"cat/x.csv": [["{}", "{}"]]}}"#, time(150), time(160)),
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_tidewatch"))
        .args(["eval", "nab", "--labels", &labels, "--data"])
        .arg(dir.path().join("data"))
        .arg("--scores")
        .arg(dir.path().join("scores"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > std::time::Duration::from_secs(60) {
            child.kill().unwrap();
            panic!("eval nab still running after 60 s with {bad:?} at row {bad_row}");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let mut message = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut message).unwrap();
    (status.code(), message)
}

#[test]
fn eval_nab_refuses_scores_that_are_not_numbers_in_0_1_or_times_it_cannot_read() {
    for (row, bad, cause) in [
        (
            30,
            ("2014-04-01 00:30:00", "NaN"),
            "anomaly_score \"NaN\" is not a number in [0, 1]",
        ),
        (
            40,
            ("2014-04-01 00:40:00", "inf"),
            "anomaly_score \"inf\" is not a number in [0, 1]",
        ),
        (
            50,
            ("2014-04-01 00:50:00", "1.5"),
            "anomaly_score \"1.5\" is not a number in [0, 1]",
        ),
        (
            60,
            ("2014-04-01 01:00:00", "-0.2"),
            "anomaly_score \"-0.2\" is not a number in [0, 1]",
        ),
        (
            70,
            ("2014-13-45 99:00:00", "0.1"),
            "bad timestamp \"2014-13-45 99:00:00\"",
        ),
        (
            80,
            ("2014-04-01 09:00:00", "0.1"),
            "timestamp \"2014-04-01 09:00:00\" is not the data's row 81",
        ),
    ] {
        let (code, message) = eval_nab_with_bad_score(row, bad);
        assert_eq!(code, Some(1), "{bad:?}: {message}");
        assert_eq!(message.lines().count(), 1, "{message}");
        assert!(!message.contains("panicked"), "{message}");
        let place = format!("x.csv: line {}: {cause}", row + 2);
        assert!(
            message.contains(&place),
            "expected {place:?} in {message:?}"
        );
    }
}

/// The files in `dir`, by name.
fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn an_output_that_is_an_input_is_refused_and_the_input_kept() {
    let dir = tempfile::tempdir().unwrap();
    let series = series_csv(50, None);
    let input = write(dir.path(), "series.csv", &series);
    // The same file under another name.
    let same = dir
        .path()
        .join(".")
        .join("series.csv")
        .display()
        .to_string();
    let images = dir.path().join("images");
    std::fs::create_dir_all(&images).unwrap();
    let picture = write(&images, "a.png", "not really a png");
    for (args, input_named) in [
        (
            vec!["score", "--online", "--input", &input, "--output", &same],
            &input,
        ),
        (
            vec![
                "sentiment",
                "predict",
                "--model",
                "nowhere",
                "--input",
                &input,
                "--output",
                &input,
            ],
            &input,
        ),
        (
            vec![
                "image",
                "predict",
                "--model",
                "nowhere",
                "--input",
                &images.display().to_string(),
                "--output",
                &picture,
            ],
            &picture,
        ),
    ] {
        let output = tidewatch(&args);
        let message = stderr(&output);
        assert_eq!(output.status.code(), Some(1), "{args:?}: {message}");
        assert_eq!(message.lines().count(), 1, "{message}");
        assert!(
            message.contains("the output is the input"),
            "{args:?}: {message}"
        );
        assert!(std::path::Path::new(input_named).is_file());
    }
    assert_eq!(std::fs::read_to_string(&input).unwrap(), series);
    assert_eq!(
        std::fs::read_to_string(&picture).unwrap(),
        "not really a png"
    );
}

#[test]
fn a_failed_command_leaves_no_output_file() {
    let dir = tempfile::tempdir().unwrap();
    let input = write(dir.path(), "bad.csv", &series_csv(50, Some(7)));
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let scores = out.join("scores.csv").display().to_string();
    let output = tidewatch(&["score", "--online", "--input", &input, "--output", &scores]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(
        files_in(&out).is_empty(),
        "left behind: {:?}",
        files_in(&out)
    );
}
