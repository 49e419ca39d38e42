//! Per-event scoring cost of the hot path: 8 features, window 64, LSTM
//! hidden 64, autoencoder 512-128-32-128-512, one thread.
//!
//! `kernels/*` runs the streaming pipeline (key lookup, scaling, LSTM step,
//! forecast head, autoencoder, error tails, threshold, hygiene) over a
//! micro-batch of distinct keys; `burn/*` runs the same models' forward
//! pass in burn (flex backend) on the same batch: one LSTM step with the
//! head, and the autoencoder.
//!
//! Run: `cargo bench --bench scoring`

use std::sync::Arc;

use burn::nn::LstmState;
use burn::tensor::{Device, Distribution, Tensor};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

use tidewatch::config::StreamConfig;
use tidewatch::detect::score::ErrorTail;
use tidewatch::detect::threshold::Threshold;
use tidewatch::nn::export::kernel_model;
use tidewatch::nn::forecaster::RecurrentState;
use tidewatch::nn::training::init_seeded;
use tidewatch::pipeline::{ModelSource, Pipeline, ScoringModel};
use tidewatch::source::{Record, Schema};
use tidewatch::state::scaler::ScalerStats;

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

fn records(keys: usize, step: usize) -> Vec<Record> {
    (0..keys)
        .map(|k| Record {
            key: format!("device-{k}"),
            timestamp_ms: 1_700_000_000_000 + step as i64 * 1000,
            inputs: (0..FEATURES)
                .map(|f| ((step * 7 + k * 3 + f) % 17) as f32 * 0.1)
                .collect(),
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build_global()
        .unwrap();
    let config = config();
    let device = Device::flex();
    let forecaster = init_seeded(1, &device, |d| config.model.forecaster.init(FEATURES, d));
    let autoencoder = init_seeded(2, &device, |d| {
        config.model.autoencoder.init(WINDOW * FEATURES, d)
    });
    let calibration: Vec<f64> = (1..=1000).map(|i| f64::from(i) / 1000.0).collect();
    let tail = ErrorTail::fit(&calibration, &config.detect.score);
    let model = ScoringModel {
        kernels: kernel_model(&forecaster, &autoencoder, WINDOW),
        scaler: ScalerStats {
            mean: vec![0.8; FEATURES],
            std: vec![0.5; FEATURES],
            count: 1000,
        },
        error_tails: vec![tail; 2 * FEATURES],
        threshold: Threshold::Fixed { value: 0.85 },
    };

    let mut group = c.benchmark_group("score_events");
    for batch in BATCHES {
        group.throughput(Throughput::Elements(batch as u64));
        let mut pipeline = Pipeline::new(
            Arc::new(config.clone()),
            ModelSource::Bundle(Arc::new(model.clone())),
        );
        // Fill every key's window so each event runs both detectors.
        for step in 0..WINDOW {
            pipeline.process_batch(&records(batch, step)).unwrap();
        }
        let inputs: Vec<Vec<Record>> = (0..16).map(|s| records(batch, WINDOW + s)).collect();
        let mut next = 0;
        group.bench_function(BenchmarkId::new("kernels", batch), |b| {
            b.iter(|| {
                next = (next + 1) % inputs.len();
                pipeline.process_batch(&inputs[next]).unwrap()
            })
        });

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
