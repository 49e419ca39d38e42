//! Text classifier prediction speed on one thread: sentences/s for each
//! model kind this build has (the baseline), on batches of 256 generated
//! reviews, from text to class probabilities.
//!
//! Run: `cargo bench --bench sentiment`.

use clap::ValueEnum;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

use tidewatch::text::data::{ReadSpec, read_file};
use tidewatch::text::jobs::BATCH_ROWS;
use tidewatch::text::model::{ModelKind, train};
use tidewatch::text::reviews::reviews_csv;

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
    for &kind in ModelKind::value_variants() {
        let classifier = train(&set, &path, kind).unwrap();
        group.bench_function(BenchmarkId::new(format!("{kind:?}"), BATCH_ROWS), |b| {
            b.iter(|| classifier.model.probabilities(&texts).unwrap())
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
