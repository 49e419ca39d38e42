//! Training-time distortions: one random affine warp per image (shift,
//! rotation about the centre, optional flips), sampled bilinearly. Pixels
//! that come from outside the image are 0, the training mean once
//! normalised.

use rand::Rng;

use crate::vision::config::AugmentConfig;

/// A warped copy of `pixels` (`[channels, side, side]`).
pub fn augment(
    pixels: &[f32],
    channels: usize,
    side: usize,
    config: &AugmentConfig,
    rng: &mut impl Rng,
) -> Vec<f32> {
    let shift = config.shift_px as f32;
    let dx = if shift > 0.0 {
        rng.random_range(-shift..=shift)
    } else {
        0.0
    };
    let dy = if shift > 0.0 {
        rng.random_range(-shift..=shift)
    } else {
        0.0
    };
    let angle = if config.rotate_degrees > 0.0 {
        rng.random_range(-config.rotate_degrees..=config.rotate_degrees)
            .to_radians()
    } else {
        0.0
    };
    let flip_x = config.flip_horizontal && rng.random_bool(0.5);
    let flip_y = config.flip_vertical && rng.random_bool(0.5);
    warp(
        pixels,
        channels,
        side,
        Warp {
            dx,
            dy,
            angle,
            flip_x,
            flip_y,
        },
    )
}

#[derive(Debug, Clone, Copy)]
struct Warp {
    dx: f32,
    dy: f32,
    /// Radians, counter-clockwise.
    angle: f32,
    flip_x: bool,
    flip_y: bool,
}

fn warp(pixels: &[f32], channels: usize, side: usize, w: Warp) -> Vec<f32> {
    let plane = side * side;
    let centre = (side as f32 - 1.0) / 2.0;
    let (sin, cos) = w.angle.sin_cos();
    let mut out = vec![0.0; pixels.len()];
    for y in 0..side {
        for x in 0..side {
            // Where this output pixel comes from: undo the shift, then the
            // rotation, then the flips.
            let ux = x as f32 - w.dx - centre;
            let uy = y as f32 - w.dy - centre;
            let mut sx = cos * ux + sin * uy + centre;
            let mut sy = -sin * ux + cos * uy + centre;
            if w.flip_x {
                sx = side as f32 - 1.0 - sx;
            }
            if w.flip_y {
                sy = side as f32 - 1.0 - sy;
            }
            for c in 0..channels {
                out[c * plane + y * side + x] =
                    bilinear(&pixels[c * plane..(c + 1) * plane], side, sx, sy);
            }
        }
    }
    out
}

fn bilinear(plane: &[f32], side: usize, x: f32, y: f32) -> f32 {
    let (x0, y0) = (x.floor(), y.floor());
    let (fx, fy) = (x - x0, y - y0);
    let at = |xi: f32, yi: f32| -> f32 {
        if xi < 0.0 || yi < 0.0 || xi >= side as f32 || yi >= side as f32 {
            0.0
        } else {
            plane[yi as usize * side + xi as usize]
        }
    };
    let top = at(x0, y0) * (1.0 - fx) + at(x0 + 1.0, y0) * fx;
    let bottom = at(x0, y0 + 1.0) * (1.0 - fx) + at(x0 + 1.0, y0 + 1.0) * fx;
    top * (1.0 - fy) + bottom * fy
}

#[cfg(test)]
mod tests {
    use super::*;

    const NONE: Warp = Warp {
        dx: 0.0,
        dy: 0.0,
        angle: 0.0,
        flip_x: false,
        flip_y: false,
    };

    fn square(side: usize) -> Vec<f32> {
        (0..side * side).map(|i| i as f32).collect()
    }

    #[test]
    fn the_identity_warp_changes_nothing() {
        assert_eq!(warp(&square(5), 1, 5, NONE), square(5));
    }

    #[test]
    fn shifts_move_pixels_and_fill_with_zero() {
        let out = warp(&square(3), 1, 3, Warp { dx: 1.0, ..NONE });
        assert_eq!(out, vec![0.0, 0.0, 1.0, 0.0, 3.0, 4.0, 0.0, 6.0, 7.0]);
    }

    #[test]
    fn flips_and_quarter_turns_permute_pixels() {
        let flipped = warp(
            &square(3),
            1,
            3,
            Warp {
                flip_x: true,
                ..NONE
            },
        );
        assert_eq!(&flipped[..3], &[2.0, 1.0, 0.0]);
        let turned = warp(
            &square(3),
            1,
            3,
            Warp {
                angle: std::f32::consts::FRAC_PI_2,
                ..NONE
            },
        );
        let mut sorted = turned.clone();
        sorted.sort_by(f32::total_cmp);
        let rounded: Vec<f32> = sorted.iter().map(|v| v.round()).collect();
        assert_eq!(rounded, square(3), "a quarter turn keeps every pixel");
        assert_eq!(turned[4].round(), 4.0, "the centre stays");
    }
}
