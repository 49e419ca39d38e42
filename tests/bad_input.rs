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

// Class 2: trusted manifests.

/// Rewrites `dir/manifest.json` with `edit` applied to its JSON.
fn edit_manifest(dir: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let path = dir.join("manifest.json");
    let mut manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    edit(&mut manifest);
    std::fs::write(&path, serde_json::to_string_pretty(&manifest).unwrap()).unwrap();
}

/// Copies the files of `from` into a new folder `to`.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

#[test]
fn an_inconsistent_or_edited_bundle_manifest_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(dir.path(), "small.toml", SMALL);
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
    assert!(output.status.success(), "{}", stderr(&output));

    type Edit = fn(&mut serde_json::Value);
    let edits: [(&str, Edit, &str); 5] = [
        (
            "shortened scaler",
            |m| m["scaler"]["mean"] = serde_json::json!([]),
            "scaler.mean has 0 values; the schema has 1 inputs",
        ),
        (
            "negative input_clip",
            |m| m["state"]["input_clip"] = serde_json::json!(-1.0),
            "state.input_clip must be in (0, inf), got -1",
        ),
        (
            "zero std",
            |m| m["scaler"]["std"][0] = serde_json::json!(0.0),
            "scaler.std[0] must be in (0, inf), got 0",
        ),
        (
            "error tail out of range",
            |m| m["error_tails"][0]["rate"] = serde_json::json!(1.5),
            "error_tails[0].rate must be in [0, 1], got 1.5",
        ),
        (
            "error tail in range but not what training wrote",
            |m| m["error_tails"][0]["threshold"] = serde_json::json!(1e30),
            "manifest_sha256 does not match its content",
        ),
    ];
    for (i, (what, edit, cause)) in edits.into_iter().enumerate() {
        let edited = dir.path().join(format!("edited{i}"));
        copy_dir(&bundle, &edited);
        edit_manifest(&edited, edit);
        let output = tidewatch(&[
            "score",
            "--model",
            &edited.display().to_string(),
            "--input",
            &input,
            "--output",
            &dir.path().join("scores.csv").display().to_string(),
        ]);
        eprintln!("{what}");
        refused(&output, &format!("edited{i}/manifest.json"), cause);
    }
}

#[test]
fn an_inconsistent_image_or_text_manifest_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let shapes = dir.path().join("shapes");
    tidewatch_classify::vision::shapes::write_shapes(&shapes, 8, 16, 1).unwrap();
    let image_model = dir.path().join("image");
    let output = tidewatch(&[
        "image",
        "train",
        "--data",
        &shapes.display().to_string(),
        "--out",
        &image_model.display().to_string(),
        "--size",
        "16",
        "--epochs",
        "1",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    edit_manifest(&image_model, |m| {
        m["normalisation"] = serde_json::json!({ "mean": [], "std": [] })
    });
    let output = tidewatch(&[
        "image",
        "predict",
        "--model",
        &image_model.display().to_string(),
        "--input",
        &shapes.display().to_string(),
        "--output",
        &dir.path().join("classes.csv").display().to_string(),
    ]);
    refused(
        &output,
        "image/manifest.json",
        "normalisation.mean has 0 values; the model has 3 channel(s)",
    );

    let reviews = write(
        dir.path(),
        "reviews.csv",
        &tidewatch_classify::text::reviews::reviews_csv(60, 5),
    );
    let text_model = dir.path().join("text");
    let columns = ["--text-column", "review", "--label-column", "sentiment"];
    let train = [
        "sentiment",
        "train",
        "--data",
        &reviews,
        "--out",
        &text_model.display().to_string(),
    ];
    let output = tidewatch(&[&train[..], &columns].concat());
    assert!(output.status.success(), "{}", stderr(&output));
    for (labels, cause) in [
        (
            serde_json::json!(["negative"]),
            "labels lists 1 label(s); a classifier has at least two",
        ),
        (
            serde_json::json!(["negative", "negative", "positive"]),
            "labels lists \"negative\" twice",
        ),
        (
            serde_json::json!(["negative", "positive"]),
            "manifest_sha256 does not match its content",
        ),
    ] {
        let edited = dir.path().join("edited-text");
        let _ = std::fs::remove_dir_all(&edited);
        copy_dir(&text_model, &edited);
        edit_manifest(&edited, |m| m["labels"] = labels);
        let predict = [
            "sentiment",
            "predict",
            "--model",
            &edited.display().to_string(),
            "--input",
            &reviews,
            "--output",
            &dir.path().join("labels.jsonl").display().to_string(),
        ];
        let output = tidewatch(&[&predict[..], &columns].concat());
        refused(&output, "edited-text/manifest.json", cause);
    }
}
