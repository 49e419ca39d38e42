//! Image classifier speed on one thread for the default 28x28 network
//! (three blocks of 16, 32, 64 channels, dense 64): training images/s (one
//! optimiser step on a batch of 32: augmentation, forward, backward,
//! update) and prediction images/s (batches of 64 decoded images:
//! resize, normalise, forward, softmax). Grey images, 10 classes, as in
//! the digits data set.
//!
//! Run: `cargo bench --bench image`.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rand::SeedableRng;
use rand::rngs::StdRng;

use tidewatch_classify::vision::config::{ColourMode, ImageConfig};
use tidewatch_classify::vision::inference::Classifier;
use tidewatch_classify::vision::model::CnnShape;
use tidewatch_classify::vision::shapes::{shape_image, write_shapes};
use tidewatch_classify::vision::training::{TrainRequest, optimizer, train, train_step};
use tidewatch_learn::fit::{Progress, Stepper, init_seeded, training_device};

const SIDE: usize = 28;
const TRAIN_BATCH: usize = 32;
const PREDICT_BATCH: usize = 64;

fn bench(c: &mut Criterion) {
    rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build_global()
        .unwrap();
    let mut rng = StdRng::seed_from_u64(7);
    let config = ImageConfig::default();

    let device = training_device();
    let shape = CnnShape {
        channels: 1,
        side: SIDE,
        classes: 10,
    };
    let mut model = Some(init_seeded(1, &device, |d| config.model.init(shape, d)));
    let mut stepper = Stepper::new(optimizer(&config.training), config.training.learning_rate);
    let images: Vec<Vec<f32>> = (0..TRAIN_BATCH)
        .map(|i| {
            (0..SIDE * SIDE)
                .map(|p| ((p * 31 + i * 7) % 97) as f32 / 48.0 - 1.0)
                .collect()
        })
        .collect();
    let refs: Vec<&[f32]> = images.iter().map(Vec::as_slice).collect();
    let labels: Vec<usize> = (0..TRAIN_BATCH).map(|i| i % 10).collect();
    let mut group = c.benchmark_group("image");
    group.sample_size(20);
    group.throughput(Throughput::Elements(TRAIN_BATCH as u64));
    group.bench_function(BenchmarkId::new("train_step", TRAIN_BATCH), |b| {
        b.iter(|| {
            let (stepped, loss, _) = train_step(
                model.take().unwrap(),
                &mut stepper,
                &refs,
                &labels,
                &config.augment,
                (1, SIDE),
                &mut rng,
                &device,
            );
            model = Some(stepped);
            loss
        })
    });

    // A model directory as `image train` writes it (one short epoch).
    let dir = tempfile::tempdir().unwrap();
    write_shapes(&dir.path().join("shapes"), 20, SIDE as u32, 3).unwrap();
    let mut train_config = config.clone();
    train_config.input.colour = ColourMode::Grey;
    train_config.training.epochs = 1;
    train(&TrainRequest {
        data: dir.path().join("shapes"),
        validation: None,
        out: dir.path().join("model"),
        config: train_config,
        strict: false,
        progress: Progress::Quiet,
    })
    .unwrap();
    let classifier = Classifier::load(&dir.path().join("model")).unwrap();
    let pictures: Vec<image::DynamicImage> = (0..PREDICT_BATCH)
        .map(|i| image::DynamicImage::ImageRgb8(shape_image(i % 3, SIDE as u32, &mut rng)))
        .collect();
    group.throughput(Throughput::Elements(PREDICT_BATCH as u64));
    group.bench_function(BenchmarkId::new("predict", PREDICT_BATCH), |b| {
        b.iter(|| classifier.probabilities(&pictures))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
