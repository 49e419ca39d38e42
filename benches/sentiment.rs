//! Text classifiers on one thread: prediction speed (sentences/s for each
//! model kind, on batches of 256 generated reviews, from text to class
//! probabilities), and the baseline's training time on 11,712 generated
//! reviews, as many as the airline tweets it once took 17 minutes on. The
//! pretrained kind needs an encoder (see `installed_encoder_dir`;
//! scripts/test.sh installs one).
//!
//! Run: `cargo bench --bench sentiment`.

use clap::ValueEnum;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

use tidewatch_classify::text::baseline::BaselineConfig;
use tidewatch_classify::text::data::{ReadSpec, read_file};
use tidewatch_classify::text::encoder::{ENCODER_HINT, installed_encoder_dir};
use tidewatch_classify::text::jobs::BATCH_ROWS;
use tidewatch_classify::text::model::{KindConfig, ModelKind, train};
use tidewatch_classify::text::pretrained::PretrainedConfig;
use tidewatch_classify::text::reviews::reviews_csv;
use tidewatch_classify::text::rnn::RnnConfig;
use tidewatch_learn::fit::Progress;

fn bench(c: &mut Criterion) {
    rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build_global()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("reviews.csv");
    std::fs::write(&path, reviews_csv(1000, 1)).unwrap();
    let spec = ReadSpec {
        text_field: "review".into(),
        label_field: "sentiment".into(),
        ..ReadSpec::new(true, false)
    };
    let set = read_file(&path, &spec).unwrap();
    let texts: Vec<String> = set.examples[..BATCH_ROWS]
        .iter()
        .map(|e| e.text.clone())
        .collect();

    let mut group = c.benchmark_group("sentiment_predict");
    group.throughput(Throughput::Elements(BATCH_ROWS as u64));
    group.sample_size(10);
    for &kind in ModelKind::value_variants() {
        let config = match kind {
            ModelKind::Baseline => KindConfig::Baseline(BaselineConfig::default()),
            ModelKind::Rnn => KindConfig::Rnn(RnnConfig::default()),
            ModelKind::Pretrained => KindConfig::Pretrained(PretrainedConfig {
                encoder_dir: installed_encoder_dir().unwrap_or_else(|| {
                    panic!("the pretrained kind needs an encoder: {ENCODER_HINT}")
                }),
                ..PretrainedConfig::default()
            }),
        };
        let classifier = train(&set, &path, &config, Progress::Quiet).unwrap();
        group.bench_function(BenchmarkId::new(format!("{kind:?}"), BATCH_ROWS), |b| {
            b.iter(|| classifier.model.probabilities(&texts).unwrap())
        });
    }
    group.finish();

    let training_path = dir.path().join("training.csv");
    std::fs::write(&training_path, reviews_csv(TRAINING_TEXTS, 2)).unwrap();
    let training = read_file(&training_path, &spec).unwrap();
    assert_eq!(training.examples.len(), TRAINING_TEXTS);
    let mut group = c.benchmark_group("sentiment_train");
    group.sample_size(10);
    group.bench_function(BenchmarkId::new("Baseline", TRAINING_TEXTS), |b| {
        b.iter(|| {
            let config = KindConfig::Baseline(BaselineConfig::default());
            train(&training, &training_path, &config, Progress::Quiet).unwrap()
        })
    });
    group.finish();
}

/// Texts the baseline's training is timed on.
const TRAINING_TEXTS: usize = 11_712;

criterion_group!(benches, bench);
criterion_main!(benches);
