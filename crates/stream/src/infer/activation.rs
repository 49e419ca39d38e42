//! Activations for the hot path, written so the compiler vectorises them.
//!
//! `f32::tanh` and `f32::exp` are scalar library calls; most of a framework's
//! time on small recurrent cells goes there (DESIGN.md). This rational
//! approximation of tanh (the one Eigen uses for float) stays within 1e-6 of
//! the exact value and compiles to straight-line multiplies and adds.
//! (Not `f32::mul_add`: without FMA in the target features it becomes a
//! call to a software `fmaf`, which profiled at a fifth of the hot path.)

use serde::{Deserialize, Serialize};

use crate::codec::{Decode, DecodeError, Encode};

/// Defines a function whose body is compiled three times, for AVX-512, for
/// AVX2 with FMA and for the baseline, and runs the widest the CPU has. The
/// body must only call `#[inline(always)]` helpers so they are compiled
/// with it. (Release builds target baseline x86-64, so without this the
/// activations run four floats at a time.)
macro_rules! widest_simd {
    ($(#[$doc:meta])* fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $body:block) => {
        $(#[$doc])*
        pub fn $name($($arg: $ty),*) {
            #[inline(always)]
            fn portable($($arg: $ty),*) $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f")]
                fn avx512($($arg: $ty),*) {
                    portable($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                fn avx2($($arg: $ty),*) {
                    portable($($arg),*)
                }
                if std::arch::is_x86_feature_detected!("avx512f") {
                    // SAFETY: the CPU has the features `avx512` is compiled for.
                    return unsafe { avx512($($arg),*) };
                }
                if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
                    // SAFETY: the CPU has the features `avx2` is compiled for.
                    return unsafe { avx2($($arg),*) };
                }
            }
            portable($($arg),*)
        }
    };
}
pub(crate) use widest_simd;

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
    /// Adds `bias` to each row of `rows` (row-major, rows of `bias.len()`)
    /// and applies the activation, in one pass over memory.
    pub fn apply_with_bias(self, rows: &mut [f32], bias: &[f32]) {
        match self {
            Activation::Relu => bias_relu(rows, bias),
            Activation::Tanh => bias_tanh(rows, bias),
            Activation::Identity => bias_only(rows, bias),
        }
    }
}

widest_simd! {
    fn bias_relu(rows: &mut [f32], bias: &[f32]) {
        for row in rows.chunks_exact_mut(bias.len()) {
            row.iter_mut().zip(bias).for_each(|(v, b)| *v = (*v + b).max(0.0));
        }
    }
}

widest_simd! {
    fn bias_tanh(rows: &mut [f32], bias: &[f32]) {
        for row in rows.chunks_exact_mut(bias.len()) {
            row.iter_mut().zip(bias).for_each(|(v, b)| *v = tanh(*v + b));
        }
    }
}

widest_simd! {
    fn bias_only(rows: &mut [f32], bias: &[f32]) {
        for row in rows.chunks_exact_mut(bias.len()) {
            row.iter_mut().zip(bias).for_each(|(v, b)| *v += b);
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
    p = p * x2 + 2.000_187_9e-13;
    p = p * x2 + -8.604_671_5e-11;
    p = p * x2 + 5.122_297e-8;
    p = p * x2 + 1.485_722_4e-5;
    p = p * x2 + 6.372_619_3e-4;
    p = p * x2 + 4.893_524_6e-3;
    p *= x;
    let mut q = 1.198_258_4e-6_f32;
    q = q * x2 + 1.185_347_1e-4;
    q = q * x2 + 2.268_434_6e-3;
    q = q * x2 + 4.893_525e-3;
    p / q
}

/// Logistic sigmoid through tanh: `σ(x) = (1 + tanh(x / 2)) / 2`.
#[inline(always)]
pub fn sigmoid(x: f32) -> f32 {
    0.5 * tanh(0.5 * x) + 0.5
}

impl Encode for Activation {
    fn encode(&self, out: &mut Vec<u8>) {
        let tag: u8 = match self {
            Activation::Relu => 0,
            Activation::Tanh => 1,
            Activation::Identity => 2,
        };
        tag.encode(out);
    }
}

impl Decode for Activation {
    fn decode(input: &mut &[u8]) -> Result<Self, DecodeError> {
        match u8::decode(input)? {
            0 => Ok(Activation::Relu),
            1 => Ok(Activation::Tanh),
            2 => Ok(Activation::Identity),
            other => Err(DecodeError::invalid("activation", other.to_string())),
        }
    }
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
        // Saturated inputs land on the asymptotes.
        assert!((tanh(1e30) - 1.0).abs() < 2e-6 && (tanh(-1e30) + 1.0).abs() < 2e-6);
        assert!(sigmoid(-1e30).abs() < 2e-6);
    }
}
