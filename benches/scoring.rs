//! Per-event scoring cost of the hot path: 8 features, window 64, LSTM
//! hidden 64, autoencoder 512-128-32-128-512, one thread.
//!
//! `kernels/*` runs the streaming pipeline (key lookup, scaling, LSTM step,
//! forecast head, autoencoder, per-feature error tails, threshold,
//! hygiene) over a micro-batch of distinct keys, with a model briefly
//! trained on the same kind of readings so scoring is in its steady state;
//! `kernels_level_relative/*` the same with the autoencoder on windows
//! relative to their mean (`level_relative`); `burn/*` runs the same models' forward pass in burn (flex backend) on
//! the same batch: one LSTM step with the head, and the autoencoder.
//!
//! Run: `cargo bench --bench scoring`

use std::sync::Arc;

use burn::nn::LstmState;
use burn::tensor::{Device, Distribution, Tensor};
use criterion::measurement::WallTime;
use criterion::{
    BatchSize, BenchmarkGroup, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main,
};

use ndarray::Array2;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tidewatch_learn::fit::Progress;
use tidewatch_learn::forecaster::RecurrentState;
use tidewatch_learn::train::{Learned, learn};
use tidewatch_stream::config::StreamConfig;
use tidewatch_stream::learner::Series;
use tidewatch_stream::model::ScoringModel;
use tidewatch_stream::pipeline::{ModelSource, Pipeline};
use tidewatch_stream::source::{Record, Schema};

const FEATURES: usize = 8;
const WINDOW: usize = 64;
const HIDDEN: usize = 64;
const BATCHES: [usize; 2] = [1, 256];

fn config() -> StreamConfig {
    let names: Vec<String> = (0..FEATURES).map(|i| format!("sensor_{i}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut config = StreamConfig::for_schema(Schema::identity("bench", "timestamp", &names));
    config.model.window_len = WINDOW;
    config.model.forecaster.hidden_size = HIDDEN;
    config.model.autoencoder.hidden_widths = vec![128, 32];
    config.validate().unwrap();
    config
}

/// Reading `step` of `key`: eight sensors on a shared cycle with their own
/// phases, plus noise.
fn reading(key: usize, step: usize, rng: &mut StdRng) -> Vec<f32> {
    (0..FEATURES)
        .map(|f| {
            let phase = (step as f32 + key as f32 * 7.0) * 0.05 + f as f32;
            10.0 + 3.0 * phase.sin() + 0.3 * rng.random::<f32>()
        })
        .collect()
}

fn records(keys: usize, step: usize, rng: &mut StdRng) -> Vec<Record> {
    (0..keys)
        .map(|k| Record {
            key: format!("device-{k}"),
            timestamp_ms: 1_700_000_000_000 + step as i64 * 1000,
            inputs: reading(k, step, rng),
        })
        .collect()
}

/// A model trained briefly on the same kind of readings, so that scoring
/// runs in its steady state: errors mostly normal, few peaks, few flags.
fn trained(config: &StreamConfig, rng: &mut StdRng) -> Learned {
    let series: Vec<Series> = (0..4)
        .map(|k| {
            let rows: Vec<f32> = (0..1500).flat_map(|t| reading(k, t, rng)).collect();
            Series {
                rows: Array2::from_shape_vec((1500, FEATURES), rows).unwrap(),
                usable: vec![true; 1500],
            }
        })
        .collect();
    learn(&series, config, None, 2, Progress::Quiet).unwrap()
}

/// `name/batch`: the streaming pipeline over micro-batches of `batch` keys.
fn bench_kernels(
    group: &mut BenchmarkGroup<WallTime>,
    name: &str,
    config: &StreamConfig,
    model: &ScoringModel,
    batch: usize,
    rng: &mut StdRng,
) {
    let mut pipeline = Pipeline::new(
        Arc::new(config.clone()),
        ModelSource::Bundle(Arc::new(model.clone())),
    );
    // Fill every key's window so each event runs both detectors.
    for step in 0..WINDOW {
        pipeline.process_batch(&records(batch, step, rng));
    }
    // Fresh readings for every batch, so the stream moves on in time as
    // a real one does; making them is not timed.
    let mut step = WINDOW;
    group.bench_function(BenchmarkId::new(name, batch), |b| {
        b.iter_batched(
            || {
                step += 1;
                records(batch, step, rng)
            },
            |input| pipeline.process_batch(&input),
            BatchSize::LargeInput,
        )
    });
    // The figure is only the steady state's if the readings were normal
    // to the model: a flag takes the slower path that names features.
    let flagged = (0..64)
        .flat_map(|_| {
            step += 1;
            pipeline.process_batch(&records(batch, step, rng))
        })
        .filter(|v| v.is_anomaly)
        .count();
    assert!(
        flagged * 100 <= 64 * batch,
        "{name}: {flagged} of {} events flagged: not a steady state",
        64 * batch
    );
}

fn bench(c: &mut Criterion) {
    rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build_global()
        .unwrap();
    let mut config = config();
    config.training.max_epochs = 2;
    let mut rng = StdRng::seed_from_u64(3);
    let learned = trained(&config, &mut rng);
    // The same with the autoencoder on level-relative windows.
    let mut level_relative = config.clone();
    level_relative.model.autoencoder.level_relative = true;
    let learned_level_relative = trained(&level_relative, &mut rng);
    let (forecaster, autoencoder) = (&learned.modules.forecaster, &learned.modules.autoencoder);
    let device = Device::flex();

    let mut group = c.benchmark_group("score_events");
    for batch in BATCHES {
        group.throughput(Throughput::Elements(batch as u64));
        bench_kernels(
            &mut group,
            "kernels",
            &config,
            &learned.model,
            batch,
            &mut rng,
        );
        bench_kernels(
            &mut group,
            "kernels_level_relative",
            &level_relative,
            &learned_level_relative.model,
            batch,
            &mut rng,
        );

        let x = Tensor::<3>::random([batch, 1, FEATURES], Distribution::Default, &device);
        let state = RecurrentState::Lstm(LstmState::new(
            Tensor::random([batch, HIDDEN], Distribution::Default, &device),
            Tensor::random([batch, HIDDEN], Distribution::Default, &device),
        ));
        let windows =
            Tensor::<2>::random([batch, WINDOW * FEATURES], Distribution::Default, &device);
        group.bench_function(BenchmarkId::new("burn", batch), |b| {
            b.iter(|| {
                let (forecast, next_state) = forecaster.forward(x.clone(), Some(state.clone()));
                let rebuilt = autoencoder.forward(windows.clone());
                (forecast.into_data(), rebuilt.into_data(), next_state)
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
