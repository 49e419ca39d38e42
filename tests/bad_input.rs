//! Bad input as a hostile new user would feed it, through the real command
//! line: every case ends in a one-line error naming the place and the cause
//! with a non-zero exit (or, where the command is told to skip bad input,
//! a count of what was skipped), never a panic, a hang or a silent wrong
//! answer. One test per class of the bad-input issue.

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

/// The command failed with exit 1 and one line naming `place` and `cause`,
/// no panic and no backtrace.
fn refused(output: &Output, place: &str, cause: &str) {
    let message = stderr(output);
    assert_eq!(output.status.code(), Some(1), "{message}");
    assert_eq!(message.lines().count(), 1, "{message}");
    assert!(
        !message.contains("panicked") && !message.contains("RUST_BACKTRACE"),
        "{message}"
    );
    assert!(message.starts_with("tidewatch: "), "{message}");
    assert!(message.contains(place), "no {place:?} in {message}");
    assert!(message.contains(cause), "no {cause:?} in {message}");
}

/// A small stream config that trains in a second.
const SMALL: &str = "[schema]\nname = 's'\nfeatures = [{ name = 'value' }]\n[model]\nwindow_len = 8\n\
     burn_in_steps = 2\nforecaster = { hidden_size = 8 }\nautoencoder = { hidden_widths = [8, 2] }\n\
     [training]\nmax_epochs = 5\n";

/// A sine with an anomaly (+4 for three points) at rows 900..903 and,
/// when given, `reading` in place of row 100.
fn sine_csv(reading: Option<&str>) -> String {
    let mut text = String::from("timestamp,value\n");
    for i in 0..1200 {
        let mut value = format!(
            "{}",
            (i as f64 / 10.0).sin() + if (900..903).contains(&i) { 4.0 } else { 0.0 }
        );
        if let (100, Some(reading)) = (i, reading) {
            value = reading.to_owned();
        }
        text.push_str(&format!("{},{value}\n", 1_700_000_000 + 60 * i));
    }
    text
}

/// The `is_anomaly` column of a scores file.
fn anomalies(scores: &str) -> Vec<usize> {
    std::fs::read_to_string(scores)
        .unwrap()
        .lines()
        .skip(1)
        .enumerate()
        .filter(|(_, line)| line.split(',').nth(6) == Some("1"))
        .map(|(row, _)| row)
        .collect()
}

// Class 1: state poisoning.

#[test]
fn one_absurd_reading_in_the_warm_up_changes_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(dir.path(), "small.toml", SMALL);
    let score = |name: &str, reading: Option<&str>| {
        let input = write(dir.path(), &format!("{name}.csv"), &sine_csv(reading));
        let scores = dir.path().join(format!("{name}.scores.csv"));
        let scores = scores.display().to_string();
        let output = tidewatch(&[
            "score", "--online", "--config", &config, "--input", &input, "--output", &scores,
        ]);
        assert!(output.status.success(), "{}", stderr(&output));
        anomalies(&scores)
    };
    let clean = score("clean", None);
    assert!(
        clean.contains(&900),
        "the injected anomaly is found: {clean:?}"
    );
    // Finite in f32 and in f64, absurd for a sine.
    for absurd in ["3e38", "-1e30"] {
        assert_eq!(
            score("absurd", Some(absurd)),
            clean,
            "with {absurd} at row 100"
        );
    }
    // Beyond f32: bad input, named.
    let input = write(dir.path(), "huge.csv", &sine_csv(Some("1e308")));
    let output = tidewatch(&[
        "score",
        "--online",
        "--config",
        &config,
        "--input",
        &input,
        "--output",
        &dir.path().join("huge.scores.csv").display().to_string(),
    ]);
    refused(
        &output,
        "huge.csv:102",
        "beyond the largest input a model takes",
    );
}

#[test]
fn training_that_diverges_stops_and_writes_no_bundle() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(
        dir.path(),
        "wild.toml",
        &format!("{SMALL}learning_rate = 1e9\n"),
    );
    let input = write(dir.path(), "train.csv", &sine_csv(None));
    let bundle = dir.path().join("bundle");
    let output = tidewatch(&[
        "train",
        "--quiet",
        "--input",
        &input,
        "--schema",
        &config,
        "--out",
        &bundle.display().to_string(),
    ]);
    refused(&output, "training diverged", "lower training.learning_rate");
    assert!(!bundle.exists());
}
