//! A compact binary encoding for state that leaves the process (a key's
//! checkpoint): little-endian numbers, collections prefixed with their
//! length as a `u32`. Decoding never trusts the bytes: a length longer
//! than what is left, a value out of its range or trailing bytes are
//! errors, never a panic or a huge allocation.

use std::collections::VecDeque;

use ndarray::{Array1, Array2};

/// A value that writes itself to a record.
pub trait Encode {
    fn encode(&self, out: &mut Vec<u8>);
}

/// A value that reads itself from the front of a record, advancing it.
pub trait Decode: Sized {
    fn decode(input: &mut &[u8]) -> Result<Self, DecodeError>;
}

/// Bytes that are not a record of what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("the record ends early (reading {0})")]
    Truncated(&'static str),
    #[error("invalid {what}: {detail}")]
    Invalid { what: &'static str, detail: String },
    #[error("{0} bytes left over after the record")]
    TrailingBytes(usize),
}

impl DecodeError {
    pub fn invalid(what: &'static str, detail: impl Into<String>) -> DecodeError {
        DecodeError::Invalid {
            what,
            detail: detail.into(),
        }
    }
}

/// Decodes a whole record: `T` and nothing after it.
pub fn decode_all<T: Decode>(mut input: &[u8]) -> Result<T, DecodeError> {
    let value = T::decode(&mut input)?;
    if input.is_empty() {
        Ok(value)
    } else {
        Err(DecodeError::TrailingBytes(input.len()))
    }
}

fn take<const N: usize>(input: &mut &[u8], what: &'static str) -> Result<[u8; N], DecodeError> {
    let (head, rest) = input
        .split_first_chunk::<N>()
        .ok_or(DecodeError::Truncated(what))?;
    *input = rest;
    Ok(*head)
}

macro_rules! number {
    ($($t:ty),*) => {$(
        impl Encode for $t {
            fn encode(&self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
        }
        impl Decode for $t {
            fn decode(input: &mut &[u8]) -> Result<Self, DecodeError> {
                Ok(<$t>::from_le_bytes(take(input, stringify!($t))?))
            }
        }
    )*};
}
number!(u8, u32, u64, i64, f32, f64);

/// Sizes and positions travel as `u64`, whatever the platform's `usize`.
impl Encode for usize {
    fn encode(&self, out: &mut Vec<u8>) {
        (*self as u64).encode(out);
    }
}

impl Decode for usize {
    fn decode(input: &mut &[u8]) -> Result<Self, DecodeError> {
        let value = u64::decode(input)?;
        usize::try_from(value).map_err(|_| DecodeError::invalid("size", value.to_string()))
    }
}

impl Encode for bool {
    fn encode(&self, out: &mut Vec<u8>) {
        u8::from(*self).encode(out);
    }
}

impl Decode for bool {
    fn decode(input: &mut &[u8]) -> Result<Self, DecodeError> {
        match u8::decode(input)? {
            0 => Ok(false),
            1 => Ok(true),
            other => Err(DecodeError::invalid("bool", other.to_string())),
        }
    }
}

impl<T: Encode> Encode for Option<T> {
    fn encode(&self, out: &mut Vec<u8>) {
        self.is_some().encode(out);
        if let Some(value) = self {
            value.encode(out);
        }
    }
}

impl<T: Decode> Decode for Option<T> {
    fn decode(input: &mut &[u8]) -> Result<Self, DecodeError> {
        Ok(if bool::decode(input)? {
            Some(T::decode(input)?)
        } else {
            None
        })
    }
}

fn encode_len(len: usize, out: &mut Vec<u8>) {
    u32::try_from(len)
        .expect("a checkpointed collection holds fewer than 2^32 items")
        .encode(out);
}

/// A collection's length, refused when even one byte per item would run
/// past the end of the record.
fn decode_len(input: &mut &[u8]) -> Result<usize, DecodeError> {
    let len = u32::decode(input)? as usize;
    if len > input.len() {
        return Err(DecodeError::Truncated("a collection"));
    }
    Ok(len)
}

impl<T: Encode> Encode for [T] {
    fn encode(&self, out: &mut Vec<u8>) {
        encode_len(self.len(), out);
        for item in self {
            item.encode(out);
        }
    }
}

impl<T: Encode> Encode for Vec<T> {
    fn encode(&self, out: &mut Vec<u8>) {
        self.as_slice().encode(out);
    }
}

impl<T: Decode> Decode for Vec<T> {
    fn decode(input: &mut &[u8]) -> Result<Self, DecodeError> {
        let len = decode_len(input)?;
        (0..len).map(|_| T::decode(input)).collect()
    }
}

impl<T: Encode> Encode for VecDeque<T> {
    fn encode(&self, out: &mut Vec<u8>) {
        encode_len(self.len(), out);
        for item in self {
            item.encode(out);
        }
    }
}

impl<T: Decode> Decode for VecDeque<T> {
    fn decode(input: &mut &[u8]) -> Result<Self, DecodeError> {
        Vec::decode(input).map(VecDeque::from)
    }
}

impl Encode for str {
    fn encode(&self, out: &mut Vec<u8>) {
        encode_len(self.len(), out);
        out.extend_from_slice(self.as_bytes());
    }
}

impl Encode for String {
    fn encode(&self, out: &mut Vec<u8>) {
        self.as_str().encode(out);
    }
}

impl Decode for String {
    fn decode(input: &mut &[u8]) -> Result<Self, DecodeError> {
        let len = decode_len(input)?;
        let (bytes, rest) = input.split_at(len);
        *input = rest;
        String::from_utf8(bytes.to_vec()).map_err(|e| DecodeError::invalid("string", e.to_string()))
    }
}

/// A vector of weights: finite floats only.
impl Encode for Array1<f32> {
    fn encode(&self, out: &mut Vec<u8>) {
        encode_len(self.len(), out);
        for value in self {
            value.encode(out);
        }
    }
}

impl Decode for Array1<f32> {
    fn decode(input: &mut &[u8]) -> Result<Self, DecodeError> {
        let values: Vec<f32> = Vec::decode(input)?;
        check_finite("weights", &values)?;
        Ok(Array1::from(values))
    }
}

/// A matrix of weights, row-major: rows, columns, then the values.
impl Encode for Array2<f32> {
    fn encode(&self, out: &mut Vec<u8>) {
        self.nrows().encode(out);
        self.ncols().encode(out);
        encode_len(self.len(), out);
        for value in self {
            value.encode(out);
        }
    }
}

impl Decode for Array2<f32> {
    fn decode(input: &mut &[u8]) -> Result<Self, DecodeError> {
        let rows = usize::decode(input)?;
        let cols = usize::decode(input)?;
        let values: Vec<f32> = Vec::decode(input)?;
        check_finite("weights", &values)?;
        Array2::from_shape_vec((rows, cols), values)
            .map_err(|e| DecodeError::invalid("matrix", format!("{rows} x {cols}: {e}")))
    }
}

/// Refuses a record whose `what` holds a value that is not finite: such a
/// value would poison every score it entered.
pub fn check_finite<T: Copy + Into<f64>>(
    what: &'static str,
    values: &[T],
) -> Result<(), DecodeError> {
    match values
        .iter()
        .map(|&v| v.into())
        .find(|v: &f64| !v.is_finite())
    {
        Some(v) => Err(DecodeError::invalid(what, format!("{v} is not finite"))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip<T: Encode + Decode + PartialEq + std::fmt::Debug>(value: T) {
        let mut bytes = Vec::new();
        value.encode(&mut bytes);
        assert_eq!(decode_all::<T>(&bytes).unwrap(), value);
        // Every shorter prefix is refused, never read as something else.
        for end in 0..bytes.len() {
            assert!(
                decode_all::<T>(&bytes[..end]).is_err(),
                "prefix of {end} bytes"
            );
        }
    }

    #[test]
    fn values_read_back_as_written() {
        round_trip(7u8);
        round_trip(u64::MAX - 3);
        round_trip(-5i64);
        round_trip(1.5e-7f32);
        round_trip(f64::NEG_INFINITY);
        round_trip(Some(3u32));
        round_trip(None::<u32>);
        round_trip(vec![1.0f32, -2.0, 3.5]);
        round_trip(VecDeque::from(vec![Some(1u64), None]));
        round_trip(String::from("device-7 ✓"));
        round_trip(vec![String::new(), String::from("a")]);
    }

    #[test]
    fn malformed_bytes_are_errors() {
        // A length of 2^32 - 1 items with nothing behind it.
        assert_eq!(
            decode_all::<Vec<u64>>(&[0xff, 0xff, 0xff, 0xff]),
            Err(DecodeError::Truncated("a collection"))
        );
        assert!(matches!(
            decode_all::<bool>(&[2]),
            Err(DecodeError::Invalid { what: "bool", .. })
        ));
        assert_eq!(
            decode_all::<u8>(&[1, 2]),
            Err(DecodeError::TrailingBytes(1))
        );
        assert!(decode_all::<String>(&[2, 0, 0, 0, 0xff, 0xfe]).is_err());
    }
}
