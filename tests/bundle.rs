//! Model bundles: what is trained is what is served, byte for byte, and a
//! bundle that is not what it claims is refused.

use std::path::Path;
use std::sync::Arc;

use tidewatch::jobs::score::{Models, score_file};
use tidewatch::jobs::train::{read_series, train_file};
use tidewatch::simulate::{SensorSeries, SensorShape};
use tidewatch_learn::bundle::{self, BundleError};
use tidewatch_learn::checksum::WeightFileError;
use tidewatch_learn::export::{autoencoder_gap, forecaster_gap};
use tidewatch_learn::fit::Progress;
use tidewatch_learn::model_dir::ModelDirError;
use tidewatch_learn::train::learn;
use tidewatch_stream::config::StreamConfig;
use tidewatch_stream::source::file::ReadOptions;

fn config(cell: &str, level_relative: bool) -> StreamConfig {
    let text = format!(
        r#"
        [schema]
        name = "pump"
        features = [{{ name = "temperature" }}, {{ name = "pressure" }}, {{ name = "hour", transform = "hour_of_day" }}]
        [model]
        window_len = 12
        forecaster = {{ cell = "{cell}", hidden_size = 12 }}
        autoencoder = {{ hidden_widths = [12, 4], level_relative = {level_relative} }}
        [training]
        max_epochs = 4
        "#
    );
    toml::from_str(&text).unwrap()
}

fn sensor_csv(dir: &Path, points: usize) -> std::path::PathBuf {
    let shape = SensorShape {
        points,
        ..SensorShape::default()
    };
    let path = dir.join("pump.csv");
    std::fs::write(&path, SensorSeries::generate(&shape, &[], 5).to_csv()).unwrap();
    path
}

#[test]
fn a_loaded_bundle_scores_exactly_like_the_trained_model() {
    let dir = tempfile::tempdir().unwrap();
    let input = sensor_csv(dir.path(), 800);
    // The GRU's autoencoder also takes its windows level-relative, which
    // the manifest must carry for the loaded kernels to centre them too.
    for (cell, level_relative) in [("lstm", false), ("gru", true)] {
        let config = config(cell, level_relative);
        let (series, _) = read_series(&input, &config, ReadOptions::default()).unwrap();
        let learned = learn(
            &series,
            &config,
            None,
            config.training.max_epochs,
            Progress::Quiet,
        )
        .unwrap();
        let out = dir.path().join(format!("bundle-{cell}"));
        bundle::save(&out, &learned.model, &config, &learned.summary).unwrap();
        let loaded = bundle::load(&out).unwrap();
        assert!(
            loaded.model == learned.model,
            "{cell}: weights and calibration survive the round trip"
        );
        assert_eq!(loaded.stream_config().schema, config.schema);

        let score = |models: Models| {
            let scored = score_file(
                &input,
                Arc::new(config.clone()),
                &models,
                ReadOptions::default(),
            )
            .unwrap();
            scored
                .rows
                .into_iter()
                .map(|r| r.verdict)
                .collect::<Vec<_>>()
        };
        let (trained, served) = (
            score(Models::Bundle(Arc::new(learned.model))),
            score(Models::Bundle(Arc::new(loaded.model))),
        );
        let first_difference = trained.iter().zip(&served).position(|(a, b)| a != b);
        assert_eq!(
            first_difference,
            None,
            "{cell}: {:?}",
            first_difference.map(|i| (&trained[i], &served[i]))
        );
    }
}

#[test]
fn kernels_match_the_trained_burn_models() {
    let dir = tempfile::tempdir().unwrap();
    let input = sensor_csv(dir.path(), 600);
    let config = config("lstm", true);
    let (series, _) = read_series(&input, &config, ReadOptions::default()).unwrap();
    let learned = learn(&series, &config, None, 3, Progress::Quiet).unwrap();
    // The training data itself, scaled as training saw it.
    let rows = &series[0].rows;
    let stats = &learned.model.scaler;
    let scaled = ndarray::Array2::from_shape_fn(rows.dim(), |(t, i)| {
        (rows[[t, i]] - stats.mean[i]) / stats.std[i]
    });
    let sequences = scaled
        .clone()
        .into_shape_with_order((1, rows.nrows(), rows.ncols()))
        .unwrap();
    let gap = forecaster_gap(&learned.modules.forecaster, &sequences);
    assert!(gap < 1e-4, "forecaster: {gap}");
    let window = config.model.window_len * rows.ncols();
    let windows = ndarray::Array2::from_shape_fn(
        (rows.nrows() - config.model.window_len, window),
        |(b, j)| scaled[[b + j / rows.ncols(), j % rows.ncols()]],
    );
    let gap = autoencoder_gap(&learned.modules.autoencoder, &windows);
    assert!(gap < 1e-4, "autoencoder: {gap}");
}

fn trained_bundle(dir: &Path) -> std::path::PathBuf {
    let input = sensor_csv(dir, 500);
    let out = dir.join("bundle");
    train_file(
        &input,
        &config("gru", false),
        ReadOptions::default(),
        &out,
        Progress::Quiet,
    )
    .unwrap();
    out
}

#[test]
fn a_tampered_weight_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = trained_bundle(dir.path());
    let weights = out.join("autoencoder.safetensors");
    let mut bytes = std::fs::read(&weights).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    std::fs::write(&weights, bytes).unwrap();
    let err = bundle::load(&out).unwrap_err();
    assert!(
        matches!(
            err,
            BundleError::Dir(ModelDirError::WeightFile(WeightFileError::Mismatch { .. }))
        ),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("autoencoder.safetensors: checksum mismatch"),
        "{err}"
    );
}

#[test]
fn an_unknown_format_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = trained_bundle(dir.path());
    let manifest = out.join("manifest.json");
    let text = std::fs::read_to_string(&manifest)
        .unwrap()
        .replace("\"format_version\": 1", "\"format_version\": 7");
    std::fs::write(&manifest, text).unwrap();
    let err = bundle::load(&out).unwrap_err().to_string();
    assert!(
        err.ends_with(
            "bundle format version 7; this tidewatch reads version 1: retrain it with this tidewatch"
        ),
        "{err}"
    );
}

#[test]
fn a_different_schema_is_refused_naming_the_difference() {
    let dir = tempfile::tempdir().unwrap();
    let out = trained_bundle(dir.path());
    let loaded = bundle::load(&out).unwrap();
    let mut other = loaded.manifest.schema.clone();
    other.features.pop();
    let err = loaded.check_schema(&other).unwrap_err().to_string();
    assert!(
        err.starts_with("the bundle was trained on a different schema: features:"),
        "{err}"
    );
    loaded.check_schema(&loaded.manifest.schema).unwrap();

    // Input without a column the bundle needs is refused by the reader.
    let input = dir.path().join("short.csv");
    std::fs::write(&input, "timestamp,temperature\n2024-01-01 00:00:00,1\n").unwrap();
    let config = loaded.stream_config();
    let err = score_file(
        &input,
        Arc::new(config),
        &Models::Bundle(Arc::new(loaded.model)),
        ReadOptions::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.ends_with("short.csv:1: column \"pressure\": not in the header (the header has: timestamp, temperature)"), "{err}");
}
