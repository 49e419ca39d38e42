//! Bad input as a hostile new user would feed it, through the real command
//! line: every case ends in a one-line error naming the place and the cause
//! with a non-zero exit (or, where the command is told to skip bad input,
//! a count of what was skipped), never a panic, a hang or a silent wrong
//! answer. One test per class of the bad-input issue.

mod support;

use std::path::Path;
use std::process::{Command, Output};

use support::{score_online, stderr, tidewatch, write};

/// The command failed with exit 1 and its last line (after any warnings
/// logged on the way) is the one error line, naming `place` and `cause`;
/// no panic and no backtrace.
fn refused(output: &Output, place: &str, cause: &str) {
    let log = stderr(output);
    assert_eq!(output.status.code(), Some(1), "{log}");
    assert!(
        !log.contains("panicked") && !log.contains("RUST_BACKTRACE"),
        "{log}"
    );
    let errors: Vec<&str> = log
        .lines()
        .filter(|l| l.starts_with("tidewatch: "))
        .collect();
    assert_eq!(errors.len(), 1, "{log}");
    assert_eq!(log.lines().last(), Some(errors[0]), "{log}");
    assert!(errors[0].contains(place), "no {place:?} in {log}");
    assert!(errors[0].contains(cause), "no {cause:?} in {log}");
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
        let output = score_online(&config, &input, &scores);
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
    for huge in ["1e308", "1e39", "-1e39"] {
        let input = write(dir.path(), "huge.csv", &sine_csv(Some(huge)));
        let output = score_online(
            &config,
            &input,
            &dir.path().join("huge.scores.csv").display().to_string(),
        );
        refused(
            &output,
            "huge.csv:102",
            "beyond the largest input a model takes",
        );
    }
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

/// Generated shapes in `dir/shapes` and an image model trained on them
/// for one epoch in `dir/image`.
fn tiny_image_model(dir: &Path) -> (String, String) {
    let shapes = dir.join("shapes");
    tidewatch_classify::vision::shapes::write_shapes(&shapes, 8, 16, 1).unwrap();
    let image_model = dir.join("image");
    let (shapes, image_model) = (
        shapes.display().to_string(),
        image_model.display().to_string(),
    );
    let output = tidewatch(&[
        "image",
        "train",
        "--data",
        &shapes,
        "--out",
        &image_model,
        "--size",
        "16",
        "--epochs",
        "1",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    (shapes, image_model)
}

#[test]
fn an_inconsistent_image_or_text_manifest_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let (shapes, image_model) = tiny_image_model(dir.path());
    let image_model = Path::new(&image_model);
    edit_manifest(image_model, |m| {
        m["normalisation"] = serde_json::json!({ "mean": [], "std": [] })
    });
    let output = tidewatch(&[
        "image",
        "predict",
        "--model",
        &image_model.display().to_string(),
        "--input",
        &shapes,
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

// Class 3: hangs and resource bombs (eval nab's scores: tests/cli.rs).

/// A valid PNG header and a few kilobytes of data that claim a
/// `side` x `side` RGB image.
fn png_claiming(side: u32) -> Vec<u8> {
    let chunk = |kind: &[u8], data: &[u8]| {
        let mut crc = crc32fast::Hasher::new();
        crc.update(kind);
        crc.update(data);
        [
            &(data.len() as u32).to_be_bytes()[..],
            kind,
            data,
            &crc.finalize().to_be_bytes(),
        ]
        .concat()
    };
    let mut header = side.to_be_bytes().to_vec();
    header.extend(side.to_be_bytes());
    header.extend([8, 2, 0, 0, 0]);
    // Deflate, stored: one empty block is enough for the decoder to start
    // allocating what the header claims.
    let data = [
        0x78, 0x01, 0x01, 0x00, 0x00, 0xff, 0xff, 0x00, 0x00, 0x00, 0x01,
    ];
    [
        &b"\x89PNG\r\n\x1a\n"[..],
        &chunk(b"IHDR", &header),
        &chunk(b"IDAT", &data),
        &chunk(b"IEND", &[]),
    ]
    .concat()
}

#[test]
fn an_image_that_claims_a_huge_size_is_refused_before_it_is_decoded() {
    let dir = tempfile::tempdir().unwrap();
    let (shapes, image_model) = tiny_image_model(dir.path());
    let bomb = dir.path().join("bomb.png");
    std::fs::write(&bomb, png_claiming(20_000)).unwrap();
    let predict = |strict: bool| {
        let output = dir.path().join("classes.csv").display().to_string();
        let bomb = bomb.display().to_string();
        let mut args = vec![
            "image",
            "predict",
            "--model",
            &image_model,
            "--input",
            &bomb,
            "--output",
            &output,
        ];
        if strict {
            args.push("--strict");
        }
        tidewatch(&args)
    };
    refused(
        &predict(true),
        "bomb.png",
        "20000 x 20000 px is beyond the limits of 8192 px a side and 128 MiB decoded",
    );
    // Skipped, it leaves nothing to classify: an error too.
    refused(&predict(false), "bomb.png", "every image was unreadable");

    // A file of one endless line is refused before it is held in memory.
    let endless = dir.path().join("endless.csv");
    let mut text = String::from("timestamp,value\n1700000000,");
    text.push_str(&"9".repeat(65 << 20));
    std::fs::write(&endless, text).unwrap();
    let output = tidewatch(&[
        "score",
        "--online",
        "--input",
        &endless.display().to_string(),
        "--output",
        &dir.path().join("scores.csv").display().to_string(),
    ]);
    refused(&output, "endless.csv", "line 2 is longer than 64 MiB");

    let config = write(dir.path(), "huge.toml", "[input]\nsize_px = 100000\n");
    let output = tidewatch(&[
        "image",
        "train",
        "--data",
        &shapes,
        "--config",
        &config,
        "--out",
        &dir.path().join("never").display().to_string(),
    ]);
    refused(
        &output,
        "huge.toml",
        "input.size_px must be in [4, 1024], got 100000",
    );
}

// Class 4: silent nothing.

/// A SKAB file of `rows` steady rows with its columns separated by
/// `delimiter`.
fn skab_csv(delimiter: char, rows: usize) -> String {
    let header = [
        "datetime",
        "Accelerometer1RMS",
        "Accelerometer2RMS",
        "Current",
        "Pressure",
        "Temperature",
        "Thermocouple",
        "Voltage",
        "Volume Flow RateRMS",
        "anomaly",
        "changepoint",
    ];
    let mut text = header.join(&delimiter.to_string()) + "\n";
    for i in 0..rows {
        let time = format!("2020-03-09 10:{:02}:{:02}", i / 60, i % 60);
        let row = [
            &time[..],
            "0.02",
            "0.03",
            "1.0",
            "0.05",
            "75.0",
            "25.0",
            "230.0",
            "32.0",
            "0.0",
            "0.0",
        ];
        text.push_str(&(row.join(&delimiter.to_string()) + "\n"));
    }
    text
}

#[test]
fn a_command_with_nothing_to_work_on_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let scores = dir.path().join("scores.csv").display().to_string();

    // Every row bad, and told to skip bad rows.
    let input = write(
        dir.path(),
        "allbad.csv",
        "timestamp,value\n1700000000,a\n1700000060,b\n",
    );
    let output = tidewatch(&[
        "score",
        "--online",
        "--input",
        &input,
        "--output",
        &scores,
        "--skip-bad-rows",
    ]);
    refused(
        &output,
        "allbad.csv",
        "every row was bad and skipped: nothing to work on (2 rows; the first: ",
    );

    // A schema whose only feature is the calendar can never flag.
    let config = write(
        dir.path(),
        "calendar.toml",
        "[schema]\nname = 's'\nfeatures = [{ name = 'hour', transform = 'hour_of_day' }]\n",
    );
    let input = write(dir.path(), "sine.csv", &sine_csv(None));
    let output = score_online(&config, &input, &scores);
    refused(&output, "calendar.toml", "nothing could ever be flagged");

    // A SKAB file too short for the protocol's 400 training rows.
    let skab = dir.path().join("skab");
    std::fs::create_dir(&skab).unwrap();
    write(&skab, "short.csv", &skab_csv(';', 300));
    let output = tidewatch(&["eval", "skab", "--data", &skab.display().to_string()]);
    refused(
        &output,
        "short.csv",
        "300 rows: SKAB's protocol trains on the first 400 and tests on the rest",
    );

    // A class folder whose every image is unreadable.
    let shapes = dir.path().join("shapes");
    tidewatch_classify::vision::shapes::write_shapes(&shapes, 4, 16, 1).unwrap();
    for entry in std::fs::read_dir(shapes.join("circle")).unwrap() {
        std::fs::write(entry.unwrap().path(), b"not a png").unwrap();
    }
    let output = tidewatch(&[
        "image",
        "train",
        "--data",
        &shapes.display().to_string(),
        "--out",
        &dir.path().join("never").display().to_string(),
        "--size",
        "16",
        "--epochs",
        "1",
    ]);
    refused(
        &output,
        "shapes",
        "every image of class \"circle\" was unreadable",
    );
}

// Class 6: the right place and cause in messages.

#[test]
fn messages_name_the_real_line_and_quote_little() {
    let dir = tempfile::tempdir().unwrap();
    let scores = dir.path().join("scores.csv");
    let score = |input: &str, extra: &[&str]| {
        let out = scores.display().to_string();
        let args = [
            &["score", "--online", "--input", input, "--output", &out][..],
            extra,
        ]
        .concat();
        tidewatch(&args)
    };

    // CRLF: errors and the `line` column count lines as an editor does.
    let crlf = sine_csv(Some("n/a")).replace('\n', "\r\n");
    let input = write(dir.path(), "crlf.csv", &crlf);
    refused(&score(&input, &[]), "crlf.csv:102", "not a number: \"n/a\"");
    let output = score(&input, &["--skip-bad-rows"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let written = std::fs::read_to_string(&scores).unwrap();
    let lines: Vec<&str> = written
        .lines()
        .skip(1)
        .map(|row| row.split(',').next().unwrap())
        .collect();
    assert_eq!(&lines[99..102], ["101", "103", "104"]);

    // Not UTF-8, in CSV and in JSON Lines.
    let mut bytes = b"timestamp,value\n1700000000,\xff\xfe\n".to_vec();
    let input = dir.path().join("latin1.csv");
    std::fs::write(&input, &bytes).unwrap();
    refused(
        &score(&input.display().to_string(), &[]),
        "latin1.csv:2",
        "not UTF-8",
    );
    let config = write(
        dir.path(),
        "one.toml",
        "[schema]\nname = 's'\nfeatures = [{ name = 'value' }]\n",
    );
    bytes = b"{\"timestamp\": 1700000000, \"value\": \"\xff\"}\n".to_vec();
    let input = dir.path().join("latin1.jsonl");
    std::fs::write(&input, &bytes).unwrap();
    refused(
        &score(&input.display().to_string(), &["--config", &config]),
        "latin1.jsonl:1",
        "not UTF-8",
    );

    // A 10 MB header is named, not echoed.
    let header = format!("{},value\n1700000000,1\n", "h".repeat(10_000_000));
    let input = write(dir.path(), "wide.csv", &header);
    let output = score(&input, &[]);
    refused(&output, "wide.csv:1", "... (10000007 bytes)");
    assert!(output.stderr.len() < 1000, "{} bytes", output.stderr.len());

    // A timestamp no calendar holds is refused as written.
    let input = write(
        dir.path(),
        "future.csv",
        "timestamp,value\n99999999999999999,1\n",
    );
    refused(
        &score(&input, &[]),
        "future.csv:2",
        "timestamp 99999999999999999 is outside the years 0 to 9999",
    );

    // An unclosed quote in a sentiment CSV is named where it opens, and
    // the rows it swallowed count as skipped.
    let mut reviews = String::from("review,sentiment\n\"great film,positive\n");
    for i in 0..50 {
        reviews.push_str(&format!(
            "fine film {i},positive\nawful film {i},negative\n"
        ));
    }
    // The quote closes here, leaving the row with no label.
    reviews.push_str("the end\"\n");
    for i in 0..20 {
        reviews.push_str(&format!(
            "lovely film {i},positive\nbad film {i},negative\n"
        ));
    }
    let input = write(dir.path(), "quote.csv", &reviews);
    let train = |extra: &[&str]| {
        let out = dir.path().join("text").display().to_string();
        let args = [
            &[
                "sentiment",
                "train",
                "--data",
                &input,
                "--text-column",
                "review",
                "--label-column",
                "sentiment",
                "--out",
                &out,
            ][..],
            extra,
        ]
        .concat();
        tidewatch(&args)
    };
    refused(
        &train(&[]),
        "quote.csv:2",
        "is a quote left open on line 2?",
    );
    let output = train(&["--skip-bad-rows"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("trained Baseline on 40 texts, 102 bad rows skipped"),
        "{}",
        stderr(&output)
    );

    // A comma-separated SKAB file is read as such.
    let skab = dir.path().join("skab");
    std::fs::create_dir(&skab).unwrap();
    write(&skab, "commas.csv", &skab_csv(',', 300));
    let output = tidewatch(&["eval", "skab", "--data", &skab.display().to_string()]);
    refused(&output, "commas.csv", "300 rows: SKAB's protocol");
}

// Class 9: settings out of range, in every config.

#[test]
fn a_setting_out_of_its_range_is_refused_with_the_range() {
    let dir = tempfile::tempdir().unwrap();
    let input = write(dir.path(), "sine.csv", &sine_csv(None));
    let scores = dir.path().join("scores.csv").display().to_string();
    for (name, setting, message) in [
        (
            "quantile.toml",
            "[detect.score]\ntail_quantile = 1.5\n",
            "detect.score.tail_quantile must be in (0, 1), got 1.5",
        ),
        (
            "nan.toml",
            "[training]\nlearning_rate = nan\n",
            "training.learning_rate must be in (0, inf), got NaN",
        ),
    ] {
        let config = write(
            dir.path(),
            name,
            &format!("[schema]\nname = 's'\nfeatures = [{{ name = 'value' }}]\n{setting}"),
        );
        let output = score_online(&config, &input, &scores);
        refused(&output, name, message);
    }

    let reviews = write(
        dir.path(),
        "reviews.csv",
        &tidewatch_classify::text::reviews::reviews_csv(60, 5),
    );
    let settings = write(dir.path(), "rnn.toml", "[rnn]\ndropout = 1.5\n");
    let output = tidewatch(&[
        "sentiment",
        "train",
        "--data",
        &reviews,
        "--text-column",
        "review",
        "--label-column",
        "sentiment",
        "--kind",
        "rnn",
        "--settings",
        &settings,
        "--out",
        &dir.path().join("never").display().to_string(),
    ]);
    refused(
        &output,
        "rnn.toml",
        "rnn.dropout must be in [0, 1), got 1.5",
    );

    write(
        dir.path(),
        "stream.toml",
        "[schema]\nname = 's'\nkey_field = 'device'\nfeatures = [{ name = 'value' }]\n",
    );
    for (daemon, message) in [
        ("workers = 0", "daemon.workers must be in [1, 1024], got 0"),
        (
            "max_message_bytes = 2000000",
            "daemon.max_message_bytes must be in [1, 934464] (message.max.bytes less 64 KiB), got 2000000",
        ),
    ] {
        let run = write(
            dir.path(),
            "run.toml",
            &format!(
                "[kafka]\nbrokers = '127.0.0.1:1'\ngroup_id = 'g'\n[daemon]\n{daemon}\n[http]\nlisten = '127.0.0.1:0'\n\
                 [[streams]]\nconfig = 'stream.toml'\ninput_topic = 'in'\nflags_topic = 'flags'\ndead_letter_topic = 'dead'\n"
            ),
        );
        refused(&tidewatch(&["run", "--config", &run]), "run.toml", message);
    }
}

// Class 7: the daemon against a dead broker.

#[test]
fn against_a_dead_broker_the_daemon_logs_each_error_once_and_says_what_it_committed() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "stream.toml",
        "[schema]\nname = 's'\nkey_field = 'device'\nfeatures = [{ name = 'value' }]\n",
    );
    // Nothing listens on port 1.
    let run = write(
        dir.path(),
        "run.toml",
        "[kafka]\nbrokers = '127.0.0.1:1'\ngroup_id = 'g'\n[http]\nlisten = '127.0.0.1:0'\n\
         [[streams]]\nconfig = 'stream.toml'\ninput_topic = 'in'\nflags_topic = 'flags'\ndead_letter_topic = 'dead'\n",
    );
    let child = Command::new(env!("CARGO_BIN_EXE_tidewatch"))
        .args(["run", "--config", &run])
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Long enough for librdkafka to retry the connection dozens of times.
    std::thread::sleep(std::time::Duration::from_secs(6));
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let output = child.wait_with_output().unwrap();
    let log = stderr(&output);
    assert!(output.status.success(), "{log}");
    // Before: about 40 lines a second, the same few errors over and over.
    assert!(
        log.lines().count() <= 20,
        "{} lines:\n{log}",
        log.lines().count()
    );
    assert!(
        log.lines()
            .last()
            .is_some_and(|l| l.ends_with("drained; no new offsets to commit")),
        "{log}"
    );
}

// Class 8: the main job judges only what it scored.

#[test]
fn the_demo_with_no_time_to_show_flags_still_scores_everything_before_it_judges() {
    let output = tidewatch(&[
        "demo",
        "--duration-secs",
        "0",
        "--devices",
        "2",
        "--accounts",
        "10",
        "--http-listen",
        "127.0.0.1:0",
    ]);
    let log = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{}{log}", stderr(&output));
    assert!(log.contains("draining the rest before judging"), "{log}");
    assert!(!log.contains("not scored"), "{log}");
    for stream in ["payments", "pump"] {
        let summary = log
            .lines()
            .find(|l| l.starts_with(stream) && l.contains(" events, "))
            .unwrap_or_else(|| panic!("no summary for {stream}: {log}"));
        assert!(summary.contains("recall"), "{summary}");
    }
}
