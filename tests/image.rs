//! The image job end to end on generated shapes: training reaches high
//! validation accuracy, unreadable files and bad folders behave as
//! documented, the model directory round-trips, and predict / eval write
//! what they say.

use std::path::Path;

use burn::tensor::Device;
use tidewatch_classify::vision::artifact;
use tidewatch_classify::vision::config::ImageConfig;
use tidewatch_classify::vision::data::{DataError, ImageSet, image_batch, to_pixels};
use tidewatch_classify::vision::inference::{Classifier, PredictionFormat, evaluate, predict};
use tidewatch_classify::vision::shapes::write_shapes;
use tidewatch_classify::vision::training::{TrainError, TrainRequest, train};
use tidewatch_learn::fit::Progress;

fn request(data: &Path, out: &Path, epochs: usize) -> TrainRequest {
    let mut config = ImageConfig::default();
    config.training.epochs = epochs;
    TrainRequest {
        data: data.to_owned(),
        validation: None,
        out: out.to_owned(),
        config,
        strict: false,
        progress: Progress::Quiet,
    }
}

#[test]
fn shapes_are_learned_and_the_model_directory_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("shapes");
    write_shapes(&data, 150, 28, 5).unwrap();
    // One unreadable file is skipped and counted.
    std::fs::write(data.join("circle/broken.png"), b"not a png").unwrap();
    let out = dir.path().join("model");
    let manifest = train(&request(&data, &out, 12)).unwrap();
    let summary = &manifest.summary;
    assert_eq!(summary.skipped_images, 1);
    assert_eq!(summary.train_images + summary.validation_images, 450);
    assert_eq!(manifest.channels, 3, "coloured shapes are read as RGB");
    assert!(
        summary.best_validation_accuracy >= 0.95,
        "validation accuracy {} ({:?})",
        summary.best_validation_accuracy,
        summary.history
    );

    // Save what was loaded, load it again: the same probabilities, bit for bit.
    let device = Device::flex();
    let (loaded, model) = artifact::load(&out, &device).unwrap();
    let copy = dir.path().join("copy");
    artifact::save(&copy, &loaded, &model).unwrap();
    let (_, reloaded) = artifact::load(&copy, &device).unwrap();
    let set = ImageSet::labelled(&data).unwrap();
    let images: Vec<Vec<f32>> = (0..set.items.len())
        .step_by(37)
        .filter_map(|i| set.decode(i).ok())
        .map(|image| {
            let mut pixels = to_pixels(&image, 28, 3);
            loaded.normalisation.apply(&mut pixels);
            pixels
        })
        .collect();
    let refs: Vec<&[f32]> = images.iter().map(Vec::as_slice).collect();
    let probabilities = |m: &tidewatch_classify::vision::model::Cnn| {
        m.probabilities(image_batch(&refs, 3, 28, &device))
            .to_data()
            .try_to_vec::<f32>()
            .unwrap()
    };
    assert_eq!(probabilities(&model), probabilities(&reloaded));

    // Evaluation on fresh shapes, and predictions in both formats.
    let fresh = dir.path().join("fresh");
    write_shapes(&fresh, 20, 28, 77).unwrap();
    let classifier = Classifier::load(&out).unwrap();
    let evaluation = evaluate(
        &classifier,
        &mut ImageSet::labelled(&fresh).unwrap(),
        16,
        false,
    )
    .unwrap();
    assert_eq!(evaluation.items, 60);
    assert!(evaluation.accuracy >= 0.9, "{}", evaluation.table());
    let unlabelled = ImageSet::unlabelled(&fresh).unwrap();
    let mut csv = Vec::new();
    let counts = predict(
        &classifier,
        &unlabelled,
        7,
        2,
        PredictionFormat::Csv,
        false,
        &mut csv,
    )
    .unwrap();
    assert_eq!(counts.predicted, 60);
    let csv = String::from_utf8(csv).unwrap();
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("file,class,probability,top_k"));
    let first: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert!(first[0].ends_with("circle/00000.png"), "{first:?}");
    assert_eq!(first[3].split(';').count(), 2, "top-2");
    let mut jsonl = Vec::new();
    predict(
        &classifier,
        &unlabelled,
        64,
        3,
        PredictionFormat::JsonLines,
        false,
        &mut jsonl,
    )
    .unwrap();
    let row: serde_json::Value =
        serde_json::from_str(String::from_utf8(jsonl).unwrap().lines().next().unwrap()).unwrap();
    assert_eq!(row["top_k"].as_array().unwrap().len(), 3);
    assert_eq!(row["class"], row["top_k"][0]["class"]);

    // A modified weight file is refused.
    let weights = out.join("model.bpk");
    let mut bytes = std::fs::read(&weights).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&weights, bytes).unwrap();
    let error = Classifier::load(&out).err().unwrap().to_string();
    assert!(error.contains("checksum mismatch"), "{error}");
}

#[test]
fn unreadable_images_fail_a_strict_run_with_their_name() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("shapes");
    write_shapes(&data, 3, 16, 1).unwrap();
    std::fs::write(data.join("square/broken.jpg"), b"\xff\xd8 truncated").unwrap();
    let mut strict = request(&data, &dir.path().join("model"), 1);
    strict.strict = true;
    let error = train(&strict).unwrap_err().to_string();
    assert!(
        error.contains("broken.jpg") && error.contains("cannot read image"),
        "{error}"
    );
}

#[test]
fn one_class_and_empty_class_folders_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("shapes");
    write_shapes(&data, 2, 16, 1).unwrap();
    std::fs::create_dir_all(data.join("hexagon")).unwrap();
    let out = dir.path().join("model");
    match train(&request(&data, &out, 1)) {
        Err(TrainError::Data(DataError::EmptyClass(path))) => assert!(path.ends_with("hexagon")),
        other => panic!("expected an empty class error, got {other:?}"),
    }
    std::fs::remove_dir(data.join("hexagon")).unwrap();
    for shape in ["square", "triangle"] {
        std::fs::remove_dir_all(data.join(shape)).unwrap();
    }
    let error = train(&request(&data, &out, 1)).unwrap_err().to_string();
    assert!(error.contains("only one class (circle)"), "{error}");
    assert!(!out.exists(), "nothing written");
}
