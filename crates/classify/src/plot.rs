//! Pictures the jobs write as PNG without a font file: text from a
//! built-in 3x5 pixel font (digits, `-`, `.`), and scatter plots (a
//! regression's predicted against actual values, an autoencoder's 2-D
//! codes coloured by label).

use std::path::Path;

use image::{Rgb, RgbImage};

/// Font pixels are drawn as SCALE x SCALE squares.
const SCALE: u32 = 3;

/// 3x5 glyphs, one row of three bits per entry, top row first.
fn glyph(c: char) -> Option<[u8; 5]> {
    Some(match c {
        '0' => [0b111, 0b101, 0b101, 0b101, 0b111],
        '1' => [0b010, 0b110, 0b010, 0b010, 0b111],
        '2' => [0b111, 0b001, 0b111, 0b100, 0b111],
        '3' => [0b111, 0b001, 0b111, 0b001, 0b111],
        '4' => [0b101, 0b101, 0b111, 0b001, 0b001],
        '5' => [0b111, 0b100, 0b111, 0b001, 0b111],
        '6' => [0b111, 0b100, 0b111, 0b101, 0b111],
        '7' => [0b111, 0b001, 0b010, 0b010, 0b010],
        '8' => [0b111, 0b101, 0b111, 0b101, 0b111],
        '9' => [0b111, 0b101, 0b111, 0b001, 0b111],
        '-' => [0b000, 0b000, 0b111, 0b000, 0b000],
        '.' => [0b000, 0b000, 0b000, 0b000, 0b010],
        _ => return None,
    })
}

/// Width in pixels of `text` as [`draw_text`] draws it.
pub fn text_width(text: &str) -> u32 {
    let n = text.chars().filter(|&c| glyph(c).is_some()).count() as u32;
    (n * 4 * SCALE).saturating_sub(SCALE)
}

/// Draws `text` (characters outside the font are left out) centred on
/// (`cx`, `cy`).
pub fn draw_text(picture: &mut RgbImage, text: &str, cx: u32, cy: u32, ink: Rgb<u8>) {
    let left = cx.saturating_sub(text_width(text) / 2);
    let top = cy.saturating_sub(5 * SCALE / 2);
    for (k, rows) in text.chars().filter_map(glyph).enumerate() {
        let gx = left + k as u32 * 4 * SCALE;
        for (row, bits) in rows.iter().enumerate() {
            for col in 0..3 {
                if bits & (0b100 >> col) != 0 {
                    fill(
                        picture,
                        gx + col * SCALE,
                        top + row as u32 * SCALE,
                        SCALE,
                        ink,
                    );
                }
            }
        }
    }
}

/// A `side` x `side` square from (`x`, `y`), clipped to the picture.
fn fill(picture: &mut RgbImage, x: u32, y: u32, side: u32, colour: Rgb<u8>) {
    for py in y..(y + side).min(picture.height()) {
        for px in x..(x + side).min(picture.width()) {
            picture.put_pixel(px, py, colour);
        }
    }
}

/// Ten distinguishable colours (matplotlib's tab10).
const PALETTE: [[u8; 3]; 10] = [
    [31, 119, 180],
    [255, 127, 14],
    [44, 160, 44],
    [214, 39, 40],
    [148, 103, 189],
    [140, 86, 75],
    [227, 119, 194],
    [127, 127, 127],
    [188, 189, 34],
    [23, 190, 207],
];

const PLOT_PX: u32 = 600;
const MARGIN_PX: u32 = 40;
const LEGEND_PX: u32 = 90;

/// What a scatter plot shows.
#[derive(Debug, Clone, Default)]
pub struct Scatter<'a> {
    /// (x, y) of every point.
    pub points: &'a [(f64, f64)],
    /// Each point's group (its colour), with the groups' names for the
    /// legend; one colour when `None`.
    pub groups: Option<(&'a [usize], &'a [String])>,
    /// Both axes on one range with the line y = x drawn (predicted against
    /// actual).
    pub diagonal: bool,
}

/// A compact label for an axis end.
fn tick(value: f64) -> String {
    if value.abs() >= 100.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.2}")
    }
}

/// Renders the plot: points as small squares, the range of each axis
/// written at its ends, the legend on the right.
pub fn scatter_picture(scatter: &Scatter) -> RgbImage {
    let legend = if scatter.groups.is_some() {
        LEGEND_PX
    } else {
        0
    };
    let mut picture = RgbImage::from_pixel(
        PLOT_PX + 2 * MARGIN_PX + legend,
        PLOT_PX + 2 * MARGIN_PX,
        Rgb([255, 255, 255]),
    );
    let finite: Vec<(f64, f64)> = scatter
        .points
        .iter()
        .copied()
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .collect();
    let range = |values: &mut dyn Iterator<Item = f64>| {
        let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
        if lo.is_finite() && hi > lo {
            (lo, hi)
        } else if lo.is_finite() {
            (lo - 1.0, lo + 1.0)
        } else {
            (0.0, 1.0)
        }
    };
    let (x_range, y_range) = if scatter.diagonal {
        let both = range(&mut finite.iter().flat_map(|&(x, y)| [x, y]));
        (both, both)
    } else {
        (
            range(&mut finite.iter().map(|p| p.0)),
            range(&mut finite.iter().map(|p| p.1)),
        )
    };
    let to_px = |(x, y): (f64, f64)| {
        let fx = (x - x_range.0) / (x_range.1 - x_range.0);
        let fy = (y - y_range.0) / (y_range.1 - y_range.0);
        (
            MARGIN_PX + (fx * f64::from(PLOT_PX - 1)).round() as u32,
            MARGIN_PX + PLOT_PX - 1 - (fy * f64::from(PLOT_PX - 1)).round() as u32,
        )
    };
    let grey = Rgb([170, 170, 170]);
    let black = Rgb([0, 0, 0]);
    for i in 0..PLOT_PX {
        picture.put_pixel(MARGIN_PX + i, MARGIN_PX + PLOT_PX, black);
        picture.put_pixel(MARGIN_PX - 1, MARGIN_PX + i, black);
        if scatter.diagonal {
            picture.put_pixel(MARGIN_PX + i, MARGIN_PX + PLOT_PX - 1 - i, grey);
        }
    }
    for (i, &(x, y)) in scatter.points.iter().enumerate() {
        if !(x.is_finite() && y.is_finite()) {
            continue;
        }
        let colour = match scatter.groups {
            Some((groups, _)) => PALETTE[groups[i] % PALETTE.len()],
            None => PALETTE[0],
        };
        let (px, py) = to_px((x, y));
        fill(
            &mut picture,
            px.saturating_sub(1),
            py.saturating_sub(1),
            3,
            Rgb(colour),
        );
    }
    let bottom = MARGIN_PX + PLOT_PX + MARGIN_PX / 2;
    draw_text(
        &mut picture,
        &tick(x_range.0),
        MARGIN_PX + 30,
        bottom,
        black,
    );
    draw_text(
        &mut picture,
        &tick(x_range.1),
        MARGIN_PX + PLOT_PX - 30,
        bottom,
        black,
    );
    draw_text(
        &mut picture,
        &tick(y_range.1),
        MARGIN_PX + 30,
        MARGIN_PX / 2,
        black,
    );
    if let Some((_, names)) = scatter.groups {
        for (g, name) in names.iter().enumerate() {
            let y = MARGIN_PX + 10 + g as u32 * 24;
            let x = MARGIN_PX * 2 + PLOT_PX;
            fill(&mut picture, x, y, 12, Rgb(PALETTE[g % PALETTE.len()]));
            let label = if text_width(name) > 0 && name.chars().all(|c| glyph(c).is_some()) {
                name.clone()
            } else {
                g.to_string()
            };
            draw_text(
                &mut picture,
                &label,
                x + 24 + text_width(&label) / 2,
                y + 6,
                black,
            );
        }
    }
    picture
}

pub fn save_scatter(scatter: &Scatter, path: &Path) -> Result<(), String> {
    scatter_picture(scatter)
        .save(path)
        .map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_land_where_their_values_say() {
        let points = [(0.0, 0.0), (1.0, 1.0), (0.5, 0.0)];
        let groups = [0, 1, 2];
        let names = ["a".to_string(), "b".to_string(), "c".to_string()];
        let picture = scatter_picture(&Scatter {
            points: &points,
            groups: Some((&groups, &names)),
            diagonal: false,
        });
        let at = |x: u32, y: u32| *picture.get_pixel(x, y);
        assert_eq!(at(MARGIN_PX, MARGIN_PX + PLOT_PX - 1), Rgb(PALETTE[0]));
        assert_eq!(at(MARGIN_PX + PLOT_PX - 1, MARGIN_PX), Rgb(PALETTE[1]));
        let middle = MARGIN_PX + (0.5 * f64::from(PLOT_PX - 1)).round() as u32;
        assert_eq!(at(middle, MARGIN_PX + PLOT_PX - 1), Rgb(PALETTE[2]));
    }
}
