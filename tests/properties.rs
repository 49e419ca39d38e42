//! Properties every input must keep, whatever its bytes: the decoders
//! (CSV and JSON Lines files, Kafka payloads) never panic, and a record
//! they accept has finite inputs; a key fed random readings (finite,
//! huge, tiny, or not numbers at all) through the decoder and the scoring
//! path never gets a score, error or threshold that is not finite, and
//! still scores a normal reading finitely afterwards. 10,000 cases each.

use std::io::Write;
use std::sync::{Arc, LazyLock};

use ndarray::Array2;
use proptest::prelude::*;
use tidewatch_learn::fit::Progress;
use tidewatch_learn::train::learn;
use tidewatch_runtime::source::kafka::MessageDecoder;
use tidewatch_stream::config::StreamConfig;
use tidewatch_stream::learner::Series;
use tidewatch_stream::model::ScoringModel;
use tidewatch_stream::pipeline::{ModelSource, Pipeline, Verdict};
use tidewatch_stream::source::Record;
use tidewatch_stream::source::decode::Decoder;
use tidewatch_stream::source::file::{FileSource, ReadOptions};

const CASES: u32 = 10_000;

/// A keyed sensor stream with an amount (log1p), a category and the hour.
fn config() -> StreamConfig {
    toml::from_str(
        r#"
        [schema]
        name = "prop"
        key_field = "device"
        features = [
            { name = "reading" },
            { name = "amount", transform = "log1p" },
            { name = "channel", transform = "one_hot", vocabulary = ["web", "pos"] },
            { name = "hour", transform = "hour_of_day" },
        ]
        [model]
        window_len = 8
        burn_in_steps = 2
        forecaster = { hidden_size = 8 }
        autoencoder = { hidden_widths = [8, 2] }
        [training]
        max_epochs = 2
        "#,
    )
    .expect("the property tests' config parses")
}

fn message_decoder() -> MessageDecoder {
    MessageDecoder {
        decoder: Decoder::new(config().schema),
        wire: None,
        key_from_message: false,
        timestamp_from_message: false,
        max_message_bytes: 4096,
    }
}

fn assert_finite(record: &Record) {
    assert!(
        record.inputs.iter().all(|x| x.is_finite()),
        "{record:?} has an input that is not finite"
    );
}

/// A model trained once on a clean series of the config's schema.
static MODEL: LazyLock<Arc<ScoringModel>> = LazyLock::new(|| {
    let config = config();
    let decoder = Decoder::new(config.schema.clone());
    let rows: Vec<Vec<f32>> = (0..400)
        .map(|i| {
            let payload = event(i, &format!("{}", (i as f64 / 7.0).sin()));
            let fields = tidewatch_stream::source::json::JsonFields::parse(&payload).unwrap();
            decoder.decode(&fields).unwrap().inputs
        })
        .collect();
    let width = rows[0].len();
    let series = Series {
        rows: Array2::from_shape_vec((rows.len(), width), rows.concat()).unwrap(),
        usable: vec![true; 400],
    };
    let learned = learn(&[series], &config, None, 2, Progress::Quiet).unwrap();
    Arc::new(learned.model)
});

/// The JSON of event `i` of device d1 with `reading` written as given.
fn event(i: usize, reading: &str) -> Vec<u8> {
    format!(
        r#"{{"device":"d1","timestamp":{},"reading":{reading},"amount":{},"channel":"{}"}}"#,
        1_700_000_000_000i64 + 60_000 * i as i64,
        (i % 13) as f64 * 3.5,
        ["web", "pos", "atm"][i % 3]
    )
    .into_bytes()
}

fn check_verdict(verdict: &Verdict) {
    assert!(
        verdict.score.is_finite() && (0.0..=1.0).contains(&verdict.score),
        "{verdict:?}"
    );
    assert!(verdict.threshold.is_none_or(f64::is_finite), "{verdict:?}");
    assert!(
        verdict
            .errors
            .is_none_or(|errors| errors.iter().all(|e| e.is_finite())),
        "{verdict:?}"
    );
}

/// A reading as JSON: a number of any size, or a string that may or may
/// not be one.
fn reading() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<f64>().prop_map(|x| if x.is_finite() {
            format!("{x:e}")
        } else {
            format!("\"{x}\"")
        }),
        (-1e3f64..1e3).prop_map(|x| format!("{x}")),
        prop::sample::select(vec![
            "1e308",
            "-1e308",
            "3.4e38",
            "-3.4e38",
            "1e39",
            "5e-324",
            "0",
            "\"NaN\"",
            "\"inf\"",
            "\"-inf\"",
            "\"1e400\"",
            "null",
            "\"\"",
            "true",
            "[1]",
            "{}",
        ])
        .prop_map(str::to_owned),
        "\\PC{0,12}".prop_map(|s| serde_json::to_string(&s).unwrap()),
    ]
}

/// A byte string near a valid event: truncated, with bytes replaced or
/// inserted.
fn mutated_event() -> impl Strategy<Value = Vec<u8>> {
    (
        0usize..50,
        prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 0..6),
    )
        .prop_map(|(i, edits)| {
            let mut bytes = event(i, "1.5");
            for (at, byte, kind) in edits {
                if bytes.is_empty() {
                    break;
                }
                let at = at.index(bytes.len());
                match kind {
                    0 => bytes[at] = byte,
                    1 => bytes.insert(at, byte),
                    _ => bytes.truncate(at),
                }
            }
            bytes
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: CASES, ..ProptestConfig::default() })]

    #[test]
    fn kafka_payloads_of_any_bytes_decode_or_are_refused(
        payload in prop_oneof![prop::collection::vec(any::<u8>(), 0..300), mutated_event()],
    ) {
        if let Ok(record) = message_decoder().decode(Some(&payload), Some(b"d1"), Some(0)) {
            assert_finite(&record);
        }
    }

    #[test]
    fn csv_files_of_any_bytes_read_or_are_refused(
        body in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..300),
            prop::collection::vec(
                prop::sample::select(b"0123456789.,;\t\"\r\n-e+ abcNaIf".to_vec()),
                0..300,
            ),
        ],
        skip in any::<bool>(),
    ) {
        let mut file = tempfile::Builder::new().suffix(".csv").tempfile().unwrap();
        file.write_all(b"timestamp,device,reading,amount,channel\n").unwrap();
        file.write_all(&body).unwrap();
        read_file(file.path(), skip);
    }

    #[test]
    fn json_lines_files_of_any_bytes_read_or_are_refused(
        lines in prop::collection::vec(
            prop_oneof![mutated_event(), prop::collection::vec(any::<u8>(), 0..80)],
            0..8,
        ),
        skip in any::<bool>(),
    ) {
        let mut file = tempfile::Builder::new().suffix(".jsonl").tempfile().unwrap();
        for line in lines {
            file.write_all(&line).unwrap();
            file.write_all(b"\n").unwrap();
        }
        read_file(file.path(), skip);
    }

    #[test]
    fn a_key_fed_any_readings_keeps_finite_scores_and_state(
        readings in prop::collection::vec(reading(), 1..24),
    ) {
        let config = Arc::new(config());
        let decoder = message_decoder();
        let mut pipeline = Pipeline::new(
            Arc::clone(&config),
            ModelSource::Bundle(Arc::clone(&MODEL)),
        );
        let mut i = 0;
        for reading in &readings {
            if let Ok(record) = decoder.decode(Some(&event(i, reading)), None, None) {
                assert_finite(&record);
                check_verdict(&pipeline.process(&record));
                i += 1;
            }
        }
        // The key still scores a normal reading finitely afterwards.
        for _ in 0..10 {
            let record = decoder.decode(Some(&event(i, "0.5")), None, None).unwrap();
            check_verdict(&pipeline.process(&record));
            i += 1;
        }
    }
}

/// Reads a whole file: no panic, and every record it yields is finite.
fn read_file(path: &std::path::Path, skip: bool) {
    let schema = config().schema;
    let Ok(source) = FileSource::open(path, schema, ReadOptions::skipping_bad_rows(skip)) else {
        return;
    };
    for row in source {
        match row {
            Ok(row) => assert_finite(&row.record),
            Err(_) => return,
        }
    }
}
