//! Generated images of simple shapes (circles, squares, triangles of random
//! size, position and colour on dark noisy backgrounds) as an ImageFolder: data
//! for tests and benches that nobody has to download.

use std::path::Path;

use image::{Rgb, RgbImage};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

pub const SHAPES: [&str; 3] = ["circle", "square", "triangle"];

/// One image of `shape` (an index into [`SHAPES`]).
pub fn shape_image(shape: usize, side: u32, rng: &mut impl Rng) -> RgbImage {
    // A dark, noisy background and a shape of any colour that stands out
    // from it by brightness.
    let background = [0; 3].map(|_: u32| rng.random_range(0..90i32));
    let mut colour = background;
    while colour.iter().sum::<i32>() < background.iter().sum::<i32>() + 300 {
        colour = [0; 3].map(|_: u32| rng.random_range(0..256i32));
    }
    let s = side as f32;
    let radius = rng.random_range(s * 0.18..s * 0.32);
    let cx = rng.random_range(radius + 1.0..s - radius - 1.0);
    let cy = rng.random_range(radius + 1.0..s - radius - 1.0);
    let mut picture = RgbImage::new(side, side);
    for y in 0..side {
        for x in 0..side {
            let (dx, dy) = (x as f32 + 0.5 - cx, y as f32 + 0.5 - cy);
            let inside = match shape {
                0 => dx * dx + dy * dy <= radius * radius,
                1 => dx.abs() <= radius * 0.85 && dy.abs() <= radius * 0.85,
                // Apex up, base at +radius.
                _ => dy <= radius * 0.8 && dy >= -radius && dx.abs() <= (dy + radius) * 0.6,
            };
            let base = if inside { colour } else { background };
            let noisy = base.map(|v| (v + rng.random_range(-30..=30)).clamp(0, 255) as u8);
            picture.put_pixel(x, y, Rgb(noisy));
        }
    }
    picture
}

/// Writes `per_class` PNGs of each shape under `dir/<shape>/`.
pub fn write_shapes(dir: &Path, per_class: usize, side: u32, seed: u64) -> std::io::Result<()> {
    let mut rng = StdRng::seed_from_u64(seed);
    for (shape, name) in SHAPES.iter().enumerate() {
        let class_dir = dir.join(name);
        std::fs::create_dir_all(&class_dir)?;
        for i in 0..per_class {
            shape_image(shape, side, &mut rng)
                .save(class_dir.join(format!("{i:05}.png")))
                .map_err(std::io::Error::other)?;
        }
    }
    Ok(())
}
