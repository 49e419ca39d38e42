//! Images in: the ImageFolder convention (one sub-folder per class, PNG or
//! JPEG of any size, colour or grey) and MNIST-style IDX files; decoding,
//! resizing to the model's input, per-channel normalisation, and batches.
//!
//! Pixels are kept as `[channels, side, side]` f32 in [0, 1] until a model's
//! [`Normalisation`] is applied.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use burn::tensor::{Device, Tensor, TensorData};
use image::imageops::FilterType;
use image::{DynamicImage, GenericImageView};
use serde::{Deserialize, Serialize};

/// File extensions read as images.
const IMAGE_EXTENSIONS: [&str; 3] = ["png", "jpg", "jpeg"];

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{path}: {message}")]
    Io { path: PathBuf, message: String },
    #[error("{0}: no class folders (expected one sub-folder of images per class)")]
    NoClasses(PathBuf),
    #[error("{0}: only one class ({1}); a classifier needs at least two")]
    OneClass(PathBuf, String),
    #[error("{0}: class folder holds no PNG or JPEG image")]
    EmptyClass(PathBuf),
    #[error("{path}: cannot read image: {message} (use without --strict to skip such files)")]
    Corrupt { path: String, message: String },
    #[error("{path}: not an IDX file: {message}")]
    Idx { path: PathBuf, message: String },
    #[error("{path}: class {class:?} is not one the model knows ({known})")]
    UnknownClass {
        path: PathBuf,
        class: String,
        known: String,
    },
    #[error("{0}: every image was unreadable")]
    NothingReadable(PathBuf),
    #[error("{root}: every image of class {class:?} was unreadable")]
    ClassUnreadable { root: PathBuf, class: String },
}

fn io_error(path: &Path, error: impl std::fmt::Display) -> DataError {
    DataError::Io {
        path: path.to_owned(),
        message: error.to_string(),
    }
}

/// Where one image comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum ImageRef {
    File(PathBuf),
    /// The `index`th image of an IDX file.
    Idx {
        file: PathBuf,
        index: usize,
    },
}

impl ImageRef {
    /// How the image is named in predictions and warnings.
    pub fn name(&self) -> String {
        match self {
            ImageRef::File(path) => path.display().to_string(),
            ImageRef::Idx { file, index } => format!("{}#{index}", file.display()),
        }
    }
}

/// A set of images, each with its class index when labelled.
#[derive(Debug, Clone)]
pub struct ImageSet {
    pub root: PathBuf,
    pub classes: Vec<String>,
    pub items: Vec<(ImageRef, Option<usize>)>,
    /// Decoded IDX pixels (grey, row-major, one byte per pixel), by index.
    idx: Option<IdxImages>,
}

#[derive(Debug, Clone)]
struct IdxImages {
    rows: usize,
    cols: usize,
    pixels: Vec<u8>,
}

impl ImageSet {
    /// A labelled set: an ImageFolder directory, or an IDX images file
    /// whose labels file sits beside it (`*-images-idx3-ubyte[.gz]` and
    /// `*-labels-idx1-ubyte[.gz]`).
    pub fn labelled(path: &Path) -> Result<ImageSet, DataError> {
        if !path.exists() {
            return Err(io_error(path, "no such file or folder"));
        }
        if path.is_dir() {
            folder(path)
        } else {
            let labels = idx_labels_path(path)?;
            idx_set(path, Some(&labels))
        }
    }

    /// An unlabelled set for prediction: one image file, a folder searched
    /// recursively, or an IDX images file.
    pub fn unlabelled(path: &Path) -> Result<ImageSet, DataError> {
        if !path.exists() {
            return Err(io_error(path, "no such file or folder"));
        }
        if path.is_dir() {
            let mut files = Vec::new();
            image_files(path, true, &mut files)?;
            return Ok(ImageSet {
                root: path.to_owned(),
                classes: Vec::new(),
                items: files
                    .into_iter()
                    .map(|f| (ImageRef::File(f), None))
                    .collect(),
                idx: None,
            });
        }
        if is_idx(path) {
            return idx_set(path, None);
        }
        Ok(ImageSet {
            root: path.to_owned(),
            classes: Vec::new(),
            items: vec![(ImageRef::File(path.to_owned()), None)],
            idx: None,
        })
    }

    /// Maps this set's labels onto `classes` (a model's), refusing a class
    /// the model does not know.
    pub fn relabel(&mut self, classes: &[String]) -> Result<(), DataError> {
        let mapping: Vec<usize> = self
            .classes
            .iter()
            .map(|c| {
                classes
                    .iter()
                    .position(|k| k == c)
                    .ok_or_else(|| DataError::UnknownClass {
                        path: self.root.clone(),
                        class: c.clone(),
                        known: classes.join(", "),
                    })
            })
            .collect::<Result<_, _>>()?;
        for (_, label) in &mut self.items {
            *label = label.map(|l| mapping[l]);
        }
        self.classes = classes.to_vec();
        Ok(())
    }

    /// Decodes item `i`; an unreadable image is an error when `strict`,
    /// else `None` after a warning naming it.
    pub fn decode_or_skip(
        &self,
        i: usize,
        strict: bool,
    ) -> Result<Option<DynamicImage>, DataError> {
        match self.decode(i) {
            Ok(image) => Ok(Some(image)),
            Err(message) if strict => Err(DataError::Corrupt {
                path: self.items[i].0.name(),
                message,
            }),
            Err(message) => {
                tracing::warn!(file = %self.items[i].0.name(), %message, "unreadable image skipped");
                Ok(None)
            }
        }
    }

    /// Decodes item `i` at its own size.
    pub fn decode(&self, i: usize) -> Result<DynamicImage, String> {
        match (&self.items[i].0, &self.idx) {
            (ImageRef::File(path), _) => decode_file(path),
            (ImageRef::Idx { index, .. }, Some(idx)) => {
                let size = idx.rows * idx.cols;
                let pixels = idx.pixels[index * size..(index + 1) * size].to_vec();
                image::GrayImage::from_raw(idx.cols as u32, idx.rows as u32, pixels)
                    .map(DynamicImage::ImageLuma8)
                    .ok_or_else(|| "IDX image out of range".to_owned())
            }
            (ImageRef::Idx { .. }, None) => Err("IDX pixels not loaded".into()),
        }
    }
}

/// Widest and tallest image decoded: a file can claim any size in a few
/// hundred bytes, and decoding allocates what it claims.
pub const MAX_IMAGE_SIDE_PX: u32 = 8192;
/// Most memory one image may decode to (a 4096 x 4096 RGBA image is 64 MiB).
pub const MAX_DECODED_BYTES: u64 = 128 << 20;

fn decode_file(path: &Path) -> Result<DynamicImage, String> {
    let mut reader = image::ImageReader::open(path)
        .map_err(|e| e.to_string())?
        .with_guessed_format()
        .map_err(|e| e.to_string())?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_IMAGE_SIDE_PX);
    limits.max_image_height = Some(MAX_IMAGE_SIDE_PX);
    limits.max_alloc = Some(MAX_DECODED_BYTES);
    reader.limits(limits);
    reader.decode().map_err(|e| match e {
        image::ImageError::Limits(_) => {
            let claimed = image::image_dimensions(path)
                .map_or_else(|_| "its size".to_owned(), |(w, h)| format!("{w} x {h} px"));
            format!(
                "{claimed} is beyond the limits of {MAX_IMAGE_SIDE_PX} px a side and {} MiB \
                 decoded",
                MAX_DECODED_BYTES >> 20
            )
        }
        e => e.to_string(),
    })
}

fn folder(root: &Path) -> Result<ImageSet, DataError> {
    let mut class_dirs: Vec<PathBuf> = std::fs::read_dir(root)
        .map_err(|e| io_error(root, e))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    class_dirs.sort();
    match class_dirs.len() {
        0 => return Err(DataError::NoClasses(root.to_owned())),
        1 => {
            return Err(DataError::OneClass(
                root.to_owned(),
                class_name(&class_dirs[0]),
            ));
        }
        _ => {}
    }
    let mut items = Vec::new();
    for (label, dir) in class_dirs.iter().enumerate() {
        let mut files = Vec::new();
        image_files(dir, true, &mut files)?;
        if files.is_empty() {
            return Err(DataError::EmptyClass(dir.clone()));
        }
        items.extend(files.into_iter().map(|f| (ImageRef::File(f), Some(label))));
    }
    Ok(ImageSet {
        root: root.to_owned(),
        classes: class_dirs.iter().map(|d| class_name(d)).collect(),
        items,
        idx: None,
    })
}

fn class_name(dir: &Path) -> String {
    dir.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Image files below `dir`, sorted.
fn image_files(dir: &Path, recursive: bool, out: &mut Vec<PathBuf>) -> Result<(), DataError> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| io_error(dir, e))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            if recursive {
                image_files(&path, recursive, out)?;
            }
        } else if path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
        {
            out.push(path);
        }
    }
    Ok(())
}

/// The whole file, gunzipped when it starts with the gzip magic.
fn read_maybe_gz(path: &Path) -> Result<Vec<u8>, DataError> {
    let mut raw = Vec::new();
    BufReader::new(File::open(path).map_err(|e| io_error(path, e))?)
        .read_to_end(&mut raw)
        .map_err(|e| io_error(path, e))?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(|e| io_error(path, e))?;
        return Ok(out);
    }
    Ok(raw)
}

fn is_idx(path: &Path) -> bool {
    path.file_name()
        .is_some_and(|n| n.to_string_lossy().contains("-idx3-"))
}

fn idx_labels_path(images: &Path) -> Result<PathBuf, DataError> {
    let name = images
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if !name.contains("images-idx3") {
        return Err(DataError::Idx {
            path: images.to_owned(),
            message: "expected a folder of class folders or an `*-images-idx3-ubyte` file".into(),
        });
    }
    Ok(images.with_file_name(name.replace("images-idx3", "labels-idx1")))
}

/// Parses an IDX header: the element type must be unsigned bytes.
fn idx_body(path: &Path, bytes: &[u8], dims: usize) -> Result<(Vec<usize>, usize), DataError> {
    let bad = |message: String| DataError::Idx {
        path: path.to_owned(),
        message,
    };
    if bytes.len() < 4 + 4 * dims || bytes[0] != 0 || bytes[1] != 0 {
        return Err(bad("bad magic number".into()));
    }
    if bytes[2] != 0x08 {
        return Err(bad(format!(
            "element type 0x{:02x}; only unsigned bytes (0x08) are read",
            bytes[2]
        )));
    }
    if usize::from(bytes[3]) != dims {
        return Err(bad(format!("{} dimensions, expected {dims}", bytes[3])));
    }
    let shape: Vec<usize> = (0..dims)
        .map(|d| {
            u32::from_be_bytes(bytes[4 + 4 * d..8 + 4 * d].try_into().expect("4 bytes")) as usize
        })
        .collect();
    let start = 4 + 4 * dims;
    let expected: usize = shape.iter().product();
    if bytes.len() - start != expected {
        return Err(bad(format!(
            "header says {expected} bytes of data, file has {}",
            bytes.len() - start
        )));
    }
    Ok((shape, start))
}

fn idx_set(images: &Path, labels: Option<&Path>) -> Result<ImageSet, DataError> {
    let bytes = read_maybe_gz(images)?;
    let (shape, start) = idx_body(images, &bytes, 3)?;
    let (count, rows, cols) = (shape[0], shape[1], shape[2]);
    let mut items: Vec<(ImageRef, Option<usize>)> = (0..count)
        .map(|index| {
            (
                ImageRef::Idx {
                    file: images.to_owned(),
                    index,
                },
                None,
            )
        })
        .collect();
    let mut classes = Vec::new();
    if let Some(labels) = labels {
        let label_bytes = read_maybe_gz(labels)?;
        let (label_shape, label_start) = idx_body(labels, &label_bytes, 1)?;
        if label_shape[0] != count {
            return Err(DataError::Idx {
                path: labels.to_owned(),
                message: format!("{} labels for {count} images", label_shape[0]),
            });
        }
        let values = &label_bytes[label_start..];
        let mut distinct: Vec<u8> = values.to_vec();
        distinct.sort_unstable();
        distinct.dedup();
        if distinct.len() < 2 {
            return Err(DataError::OneClass(
                labels.to_owned(),
                distinct.first().map(u8::to_string).unwrap_or_default(),
            ));
        }
        classes = distinct.iter().map(u8::to_string).collect();
        for (item, value) in items.iter_mut().zip(values) {
            item.1 = distinct.binary_search(value).ok();
        }
    }
    Ok(ImageSet {
        root: images.to_owned(),
        classes,
        items,
        idx: Some(IdxImages {
            rows,
            cols,
            pixels: bytes[start..].to_vec(),
        }),
    })
}

/// Resizes to `side` x `side` and lays the pixels out as
/// `[channels, side, side]` in [0, 1] (`channels` 1: luma; 3: RGB).
pub fn to_pixels(image: &DynamicImage, side: u32, channels: usize) -> Vec<f32> {
    let resized = if image.dimensions() == (side, side) {
        image.clone()
    } else {
        image.resize_exact(side, side, FilterType::Triangle)
    };
    let plane = (side * side) as usize;
    let mut pixels = vec![0.0; channels * plane];
    if channels == 1 {
        for (p, value) in resized.to_luma8().as_raw().iter().enumerate() {
            pixels[p] = f32::from(*value) / 255.0;
        }
    } else {
        for (p, rgb) in resized.to_rgb8().as_raw().chunks_exact(3).enumerate() {
            for c in 0..3 {
                pixels[c * plane + p] = f32::from(rgb[c]) / 255.0;
            }
        }
    }
    pixels
}

/// Whether an image carries colour (grey images decode to luma).
pub fn has_colour(image: &DynamicImage) -> bool {
    image.color().has_color()
}

/// Per-channel mean and standard deviation of the training images, saved
/// with the model and applied to every image it sees.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Normalisation {
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
}

impl Normalisation {
    /// The first inconsistency of a normalisation read from a manifest for
    /// `channels` channels.
    pub fn check(&self, channels: usize) -> Result<(), String> {
        for (name, values) in [("mean", &self.mean), ("std", &self.std)] {
            if values.len() != channels {
                return Err(format!(
                    "normalisation.{name} has {} values; the model has {channels} channel(s)",
                    values.len()
                ));
            }
        }
        if let Some(m) = self.mean.iter().find(|m| !m.is_finite()) {
            return Err(format!("normalisation.mean must be finite, got {m}"));
        }
        match self.std.iter().find(|s| !(s.is_finite() && **s > 0.0)) {
            Some(s) => Err(format!("normalisation.std must be in (0, inf), got {s}")),
            None => Ok(()),
        }
    }

    pub fn fit(images: &[Vec<f32>], channels: usize) -> Normalisation {
        let mut sum = vec![0.0f64; channels];
        let mut sum_sq = vec![0.0f64; channels];
        let mut count = 0usize;
        for image in images {
            let plane = image.len() / channels;
            for (c, values) in image.chunks_exact(plane).enumerate() {
                for &v in values {
                    sum[c] += f64::from(v);
                    sum_sq[c] += f64::from(v) * f64::from(v);
                }
            }
            count += plane;
        }
        let n = count.max(1) as f64;
        let mean: Vec<f32> = sum.iter().map(|s| (s / n) as f32).collect();
        let std = sum_sq
            .iter()
            .zip(&sum)
            .map(|(sq, s)| ((sq / n - (s / n).powi(2)).max(0.0).sqrt() as f32).max(1e-3))
            .collect();
        Normalisation { mean, std }
    }

    pub fn apply(&self, pixels: &mut [f32]) {
        let plane = pixels.len() / self.mean.len();
        for (c, values) in pixels.chunks_exact_mut(plane).enumerate() {
            for v in values {
                *v = (*v - self.mean[c]) / self.std[c];
            }
        }
    }
}

/// Images `[batch, channels, side, side]` from per-image pixel buffers.
pub fn image_batch(images: &[&[f32]], channels: usize, side: usize, device: &Device) -> Tensor<4> {
    let mut flat = Vec::with_capacity(images.len() * channels * side * side);
    for image in images {
        flat.extend_from_slice(image);
    }
    Tensor::from_data(
        TensorData::new(flat, [images.len(), channels, side, side]),
        device,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_idx(path: &Path, magic_type: u8, shape: &[u32], data: &[u8]) {
        let mut bytes = vec![0, 0, magic_type, shape.len() as u8];
        for d in shape {
            bytes.extend_from_slice(&d.to_be_bytes());
        }
        bytes.extend_from_slice(data);
        std::fs::write(path, bytes).unwrap();
    }

    #[test]
    fn idx_files_read_with_their_labels() {
        let dir = tempfile::tempdir().unwrap();
        let images = dir.path().join("t10k-images-idx3-ubyte");
        let pixels: Vec<u8> = (0..3 * 2 * 2).map(|v| v as u8 * 20).collect();
        write_idx(&images, 0x08, &[3, 2, 2], &pixels);
        write_idx(
            &dir.path().join("t10k-labels-idx1-ubyte"),
            0x08,
            &[3],
            &[7, 3, 7],
        );
        let set = ImageSet::labelled(&images).unwrap();
        assert_eq!(set.classes, vec!["3", "7"]);
        let labels: Vec<_> = set.items.iter().map(|i| i.1).collect();
        assert_eq!(labels, vec![Some(1), Some(0), Some(1)]);
        let second = set.decode(1).unwrap();
        assert_eq!(second.to_luma8().as_raw(), &[80, 100, 120, 140]);
        assert_eq!(set.items[2].0.name(), format!("{}#2", images.display()));

        write_idx(&images, 0x0D, &[3, 2, 2], &[0; 48]);
        let error = ImageSet::labelled(&images).unwrap_err().to_string();
        assert!(error.contains("only unsigned bytes"), "{error}");
    }

    #[test]
    fn normalisation_centres_each_channel() {
        let images = vec![vec![0.0, 1.0, 0.5, 0.5], vec![1.0, 0.0, 0.5, 0.5]];
        let norm = Normalisation::fit(&images, 2);
        assert_eq!(norm.mean, vec![0.5, 0.5]);
        let mut pixels = images[0].clone();
        norm.apply(&mut pixels);
        assert_eq!(&pixels[..2], &[-1.0, 1.0]);
    }

    #[test]
    fn rgb_is_split_into_planes() {
        let image =
            DynamicImage::ImageRgb8(image::RgbImage::from_raw(1, 1, vec![255, 0, 51]).unwrap());
        assert!(has_colour(&image));
        assert_eq!(to_pixels(&image, 1, 3), vec![1.0, 0.0, 0.2]);
        assert_eq!(to_pixels(&image, 2, 1).len(), 4);
    }
}
