//! A new key starts from the shipped prior: with `online.prior = "shipped"`
//! it is scored from its 64th event, long before its own model is trained,
//! and flags a spike or a level shift injected at its 91st event by its
//! 100th, in its own units (from thousandths to millions), while keys
//! without an anomaly raise no flag at all.

mod support;

use rand::SeedableRng;
use rand::rngs::StdRng;
use tidewatch::simulate::standard_normal;

/// Events of each generated key.
const EVENTS: usize = 300;
/// Where the anomaly starts: the key's 91st event.
const ANOMALY_AT: usize = 90;
/// The key must have flagged it by its 100th event.
const FLAGGED_BY: usize = 99;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Shape {
    /// A daily cycle at 5-minute steps (288 a day): the first events see
    /// a ninth of it.
    Daily,
    /// A daily cycle at hourly steps.
    Hourly,
    /// A random walk.
    Walk,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Anomaly {
    None,
    /// One reading 8 noise-free amplitudes off.
    Spike,
    /// The level moves by 4 amplitudes and stays.
    Shift,
}

/// One key's readings, in units of `scale` around `offset`.
fn readings(shape: Shape, scale: f64, offset: f64, anomaly: Anomaly, seed: u64) -> Vec<f64> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut walk = 0.0;
    (0..EVENTS)
        .map(|t| {
            let base = match shape {
                Shape::Daily => (std::f64::consts::TAU * t as f64 / 288.0).sin(),
                Shape::Hourly => (std::f64::consts::TAU * t as f64 / 24.0).sin(),
                Shape::Walk => {
                    walk += 0.1 * standard_normal(&mut rng);
                    walk
                }
            };
            let noise = 0.1 * standard_normal(&mut rng);
            let injected = match anomaly {
                Anomaly::Spike if t == ANOMALY_AT => 8.0,
                Anomaly::Shift if t >= ANOMALY_AT => 4.0,
                _ => 0.0,
            };
            offset + scale * (base + noise + injected)
        })
        .collect()
}

/// The shipped NAB settings keyed by series, scored by the prior for
/// every event of these short keys (their own warm-up would end at 750).
fn prior_config() -> String {
    let nab = include_str!("../examples/nab.toml");
    assert!(
        nab.contains("prior = \"shipped\""),
        "examples/nab.toml starts keys from the prior"
    );
    nab.replace(
        "timestamp_field = \"timestamp\"",
        "timestamp_field = \"timestamp\"\nkey_field = \"series\"",
    )
    .replace("[online]\n", "[online]\nwarmup_events = 750\n")
}

#[test]
fn new_keys_flag_an_anomaly_by_their_100th_event_from_the_shipped_prior() {
    let dir = tempfile::tempdir().unwrap();
    let config = support::write(dir.path(), "stream.toml", &prior_config());
    let mut keys = Vec::new();
    let mut csv = String::from("series,timestamp,value\n");
    let mut seed = 0;
    for shape in [Shape::Daily, Shape::Hourly, Shape::Walk] {
        for (scale, offset) in [(0.05, 0.5), (300.0, 5000.0), (1e5, 1e6)] {
            for anomaly in [Anomaly::None, Anomaly::Spike, Anomaly::Shift] {
                seed += 1;
                let key = format!("{shape:?}-{scale}-{anomaly:?}");
                let step_secs = if shape == Shape::Hourly { 3600 } else { 300 };
                for (t, value) in readings(shape, scale, offset, anomaly, seed)
                    .iter()
                    .enumerate()
                {
                    csv.push_str(&format!(
                        "{key},{},{value}\n",
                        1_700_000_000 + t as i64 * step_secs
                    ));
                }
                keys.push((key, anomaly));
            }
        }
    }
    let input = support::write(dir.path(), "keys.csv", &csv);
    let output = dir.path().join("scores.csv");
    let run = support::score_online(&config, &input, &output.display().to_string());
    assert!(run.status.success(), "{}", support::stderr(&run));

    // Per key: the index of each event that was scored, and of each flag.
    let scores = std::fs::read_to_string(&output).unwrap();
    let mut rows = scores.lines();
    let header: Vec<&str> = rows.next().unwrap().split(',').collect();
    let column = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let (key_column, status_column, flag_column) =
        (column("key"), column("status"), column("flag"));
    let mut seen: std::collections::HashMap<String, usize> = Default::default();
    let mut first_scored: std::collections::HashMap<String, usize> = Default::default();
    let mut flags: std::collections::HashMap<String, Vec<usize>> = Default::default();
    for row in rows {
        let fields: Vec<&str> = row.split(',').collect();
        let key = fields[key_column].to_owned();
        let index = *seen.entry(key.clone()).and_modify(|n| *n += 1).or_insert(0);
        if fields[status_column] == "scored" {
            first_scored.entry(key.clone()).or_insert(index);
        }
        if fields[flag_column] == "1" {
            flags.entry(key).or_default().push(index);
        }
    }
    let mut failures = Vec::new();
    for (key, anomaly) in &keys {
        // Scored from its 64th event on: 32 events to learn its scaling,
        // then a window of 32.
        assert_eq!(first_scored.get(key), Some(&63), "{key}");
        let flagged = flags.get(key).cloned().unwrap_or_default();
        let as_expected = match anomaly {
            Anomaly::None => flagged.is_empty(),
            _ => flagged
                .first()
                .is_some_and(|&first| (ANOMALY_AT..=FLAGGED_BY).contains(&first)),
        };
        if !as_expected {
            failures.push(format!("{key}: flags at {flagged:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
