//! The confusion matrix as a PNG picture: one cell per (true, predicted)
//! pair shaded by the share of the true class it holds, with its count
//! written in. Rows and columns are labelled with the class index (the
//! printed table and the JSON name them), in [`crate::plot`]'s pixel font.

use std::path::Path;

use image::{Rgb, RgbImage};

use crate::plot::draw_text;

const CELL_PX: u32 = 44;
const MARGIN_PX: u32 = 34;

/// Renders `confusion[true][predicted]`.
pub fn confusion_picture(confusion: &[Vec<usize>]) -> RgbImage {
    let n = confusion.len() as u32;
    let side = MARGIN_PX + n * CELL_PX + 4;
    let mut picture = RgbImage::from_pixel(side, side, Rgb([255, 255, 255]));
    for (t, row) in confusion.iter().enumerate() {
        let total: usize = row.iter().sum();
        for (p, &count) in row.iter().enumerate() {
            let share = if total == 0 {
                0.0
            } else {
                count as f32 / total as f32
            };
            let x0 = MARGIN_PX + p as u32 * CELL_PX;
            let y0 = MARGIN_PX + t as u32 * CELL_PX;
            let colour = shade(share);
            for y in y0 + 1..y0 + CELL_PX {
                for x in x0 + 1..x0 + CELL_PX {
                    picture.put_pixel(x, y, colour);
                }
            }
            let ink = if share > 0.5 {
                Rgb([255, 255, 255])
            } else {
                Rgb([20, 20, 20])
            };
            draw_text(
                &mut picture,
                &count.to_string(),
                x0 + CELL_PX / 2,
                y0 + CELL_PX / 2,
                ink,
            );
        }
    }
    let black = Rgb([0, 0, 0]);
    for i in 0..n {
        let centre = MARGIN_PX + i * CELL_PX + CELL_PX / 2;
        draw_text(&mut picture, &i.to_string(), centre, MARGIN_PX / 2, black);
        draw_text(&mut picture, &i.to_string(), MARGIN_PX / 2, centre, black);
    }
    picture
}

pub fn save_confusion_picture(confusion: &[Vec<usize>], path: &Path) -> Result<(), String> {
    confusion_picture(confusion)
        .save(path)
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// White for 0 through to dark blue for 1.
fn shade(share: f32) -> Rgb<u8> {
    let mix = |from: f32, to: f32| (from + (to - from) * share).round() as u8;
    Rgb([mix(255.0, 8.0), mix(255.0, 48.0), mix(255.0, 107.0)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_are_shaded_by_their_share_of_the_row() {
        let picture = confusion_picture(&[vec![10, 0], vec![5, 5]]);
        let corner = |t: u32, p: u32| {
            *picture.get_pixel(MARGIN_PX + p * CELL_PX + 2, MARGIN_PX + t * CELL_PX + 2)
        };
        assert_eq!(corner(0, 0), shade(1.0));
        assert_eq!(corner(0, 1), shade(0.0));
        assert_eq!(corner(1, 0), shade(0.5));
        assert_eq!(picture.width(), MARGIN_PX + 2 * CELL_PX + 4);
    }
}
