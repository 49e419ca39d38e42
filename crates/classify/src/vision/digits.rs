//! `image digits`: the scikit-learn digits data set (gzipped CSV rows of 64
//! pixel values 0-16 then the label) written out as an ImageFolder of 8x8
//! grey PNGs, split into `train/` and `test/` by a seeded shuffle that keeps
//! each digit's share the same in both.

use std::io::Read;
use std::path::Path;

use crate::split::stratified_holdout;

/// How many images went where.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DigitsSplit {
    pub train: usize,
    pub test: usize,
}

/// Writes `out/train/<digit>/<row>.png` and `out/test/<digit>/<row>.png`,
/// holding out `test_fraction` of each digit.
pub fn write_digits(
    csv: &Path,
    out: &Path,
    test_fraction: f64,
    seed: u64,
) -> Result<DigitsSplit, String> {
    let raw = std::fs::read(csv).map_err(|e| format!("{}: {e}", csv.display()))?;
    let mut text = String::new();
    if raw.starts_with(&[0x1f, 0x8b]) {
        flate2::read::GzDecoder::new(&raw[..])
            .read_to_string(&mut text)
            .map_err(|e| format!("{}: {e}", csv.display()))?;
    } else {
        text = String::from_utf8(raw).map_err(|e| format!("{}: {e}", csv.display()))?;
    }
    let mut rows: Vec<(usize, Vec<u8>)> = Vec::new();
    let mut labels: Vec<usize> = Vec::new();
    for (row, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let bad = |message: &str| format!("{} line {}: {message}", csv.display(), row + 1);
        let values: Vec<u32> = line
            .split(',')
            .map(|v| v.trim().parse::<f64>().map(|v| v as u32))
            .collect::<Result<_, _>>()
            .map_err(|_| bad("not a number"))?;
        if values.len() != 65 {
            return Err(bad(&format!(
                "{} values, expected 64 pixels and a label",
                values.len()
            )));
        }
        let label = values[64] as usize;
        if label > 9 || values[..64].iter().any(|&v| v > 16) {
            return Err(bad("pixel outside 0-16 or label outside 0-9"));
        }
        let pixels = values[..64].iter().map(|&v| (v * 255 / 16) as u8).collect();
        rows.push((row, pixels));
        labels.push(label);
    }
    let (_, held) = stratified_holdout(&labels, test_fraction, seed);
    let mut is_test = vec![false; rows.len()];
    for i in held {
        is_test[i] = true;
    }
    let mut split = DigitsSplit { train: 0, test: 0 };
    for (((row, pixels), digit), test) in rows.into_iter().zip(labels).zip(is_test) {
        let part = if test { "test" } else { "train" };
        let dir = out.join(part).join(digit.to_string());
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let path = dir.join(format!("{row:04}.png"));
        image::GrayImage::from_raw(8, 8, pixels)
            .expect("64 pixels")
            .save(&path)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        if test {
            split.test += 1;
        } else {
            split.train += 1;
        }
    }
    Ok(split)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_become_pngs_in_a_stratified_split() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("digits.csv");
        let mut text = String::new();
        for row in 0..20 {
            let label = row % 2;
            let pixels: Vec<String> = (0..64).map(|p| ((p + row) % 17).to_string()).collect();
            text += &format!("{},{label}\n", pixels.join(","));
        }
        std::fs::write(&csv, text).unwrap();
        let split = write_digits(&csv, &dir.path().join("out"), 0.2, 1).unwrap();
        assert_eq!(split, DigitsSplit { train: 16, test: 4 });
        let test_ones = std::fs::read_dir(dir.path().join("out/test/1"))
            .unwrap()
            .count();
        assert_eq!(test_ones, 2);
        let first = std::fs::read_dir(dir.path().join("out/train/0"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .min()
            .unwrap();
        let row: usize = first
            .file_stem()
            .unwrap()
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        let image = image::open(&first).unwrap().to_luma8();
        assert_eq!(image.dimensions(), (8, 8));
        // Row r's pixel p held (p + r) % 17: 16 lands on p = (16 - r) mod 17.
        assert_eq!(
            image.as_raw()[(33 - row % 17) % 17],
            255,
            "16 maps to white"
        );

        std::fs::write(&csv, "1,2,3\n").unwrap();
        let error = write_digits(&csv, &dir.path().join("bad"), 0.2, 1).unwrap_err();
        assert!(error.contains("line 1"), "{error}");
    }
}
