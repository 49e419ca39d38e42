//! Activations for the hot path, written so the compiler vectorises them.
//!
//! `f32::tanh` and `f32::exp` are scalar library calls; most of a framework's
//! time on small recurrent cells goes there (DESIGN.md). This rational
//! approximation of tanh (the one Eigen uses for float) stays within 1e-6 of
//! the exact value and compiles to straight-line multiply-adds.

use serde::{Deserialize, Serialize};

/// Activation after a dense layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    #[default]
    Relu,
    Tanh,
    Identity,
}

impl Activation {
    pub fn apply(self, values: &mut [f32]) {
        match self {
            Activation::Relu => values.iter_mut().for_each(|v| *v = v.max(0.0)),
            Activation::Tanh => tanh_in_place(values),
            Activation::Identity => {}
        }
    }
}

/// Rational tanh: odd degree-13 numerator over even degree-6 denominator,
/// inputs clamped to ±9 where float tanh is ±1.
#[inline(always)]
#[allow(clippy::excessive_precision)] // Eigen's coefficients, as published
pub fn tanh(x: f32) -> f32 {
    let x = x.clamp(-9.0, 9.0);
    let x2 = x * x;
    let mut p = -2.760_768_5e-16_f32;
    p = p.mul_add(x2, 2.000_187_9e-13);
    p = p.mul_add(x2, -8.604_671_5e-11);
    p = p.mul_add(x2, 5.122_297e-8);
    p = p.mul_add(x2, 1.485_722_4e-5);
    p = p.mul_add(x2, 6.372_619_3e-4);
    p = p.mul_add(x2, 4.893_524_6e-3);
    p *= x;
    let mut q = 1.198_258_4e-6_f32;
    q = q.mul_add(x2, 1.185_347_1e-4);
    q = q.mul_add(x2, 2.268_434_6e-3);
    q = q.mul_add(x2, 4.893_525e-3);
    p / q
}

/// Logistic sigmoid through tanh: `σ(x) = (1 + tanh(x / 2)) / 2`.
#[inline(always)]
pub fn sigmoid(x: f32) -> f32 {
    0.5f32.mul_add(tanh(0.5 * x), 0.5)
}

pub fn tanh_in_place(values: &mut [f32]) {
    values.iter_mut().for_each(|v| *v = tanh(*v));
}

pub fn sigmoid_in_place(values: &mut [f32]) {
    values.iter_mut().for_each(|v| *v = sigmoid(*v));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn approximations_stay_within_a_micro() {
        let mut worst_tanh = 0f32;
        let mut worst_sigmoid = 0f32;
        for i in -200_000..=200_000 {
            let x = i as f32 * 1e-4;
            worst_tanh = worst_tanh.max((tanh(x) - x.tanh()).abs());
            worst_sigmoid = worst_sigmoid.max((sigmoid(x) - 1.0 / (1.0 + (-x).exp())).abs());
        }
        assert!(worst_tanh < 2e-6, "tanh error {worst_tanh}");
        assert!(worst_sigmoid < 2e-6, "sigmoid error {worst_sigmoid}");
        assert_eq!(tanh(1e30), 1.0);
        assert_eq!(sigmoid(-1e30), 0.0);
    }
}
