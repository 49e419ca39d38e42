//! The sliding window of a key's most recent (scaled) inputs.

use crate::codec::{Decode, DecodeError, Encode};

/// Ring buffer of the last `len` input vectors of `width` floats.
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    len: usize,
    width: usize,
    values: Vec<f32>,
    /// Slot the next push overwrites.
    next: usize,
    filled: usize,
}

impl Window {
    pub fn new(len: usize, width: usize) -> Window {
        assert!(
            len > 0 && width > 0,
            "a window needs at least one slot of one float"
        );
        Window {
            len,
            width,
            values: vec![0.0; len * width],
            next: 0,
            filled: 0,
        }
    }

    /// Floats per slot: the model's inputs.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Slots: the model's window length.
    pub fn slots(&self) -> usize {
        self.len
    }

    pub fn push(&mut self, inputs: &[f32]) {
        debug_assert_eq!(inputs.len(), self.width);
        let at = self.next * self.width;
        self.values[at..at + self.width].copy_from_slice(inputs);
        self.next = (self.next + 1) % self.len;
        self.filled = (self.filled + 1).min(self.len);
    }

    pub fn is_full(&self) -> bool {
        self.filled == self.len
    }

    /// Copies the window into `out` (len * width floats), oldest input first.
    pub fn copy_in_order(&self, out: &mut [f32]) {
        let split = self.next * self.width;
        let (newer, older) = self.values.split_at(split);
        out[..older.len()].copy_from_slice(older);
        out[older.len()..].copy_from_slice(newer);
    }

    /// Heap bytes held, for the store's memory bound.
    pub fn heap_bytes(&self) -> usize {
        self.values.capacity() * std::mem::size_of::<f32>()
    }
}

impl Encode for Window {
    fn encode(&self, out: &mut Vec<u8>) {
        self.len.encode(out);
        self.width.encode(out);
        self.values.encode(out);
        self.next.encode(out);
        self.filled.encode(out);
    }
}

impl Decode for Window {
    fn decode(input: &mut &[u8]) -> Result<Self, DecodeError> {
        let window = Window {
            len: usize::decode(input)?,
            width: usize::decode(input)?,
            values: Vec::decode(input)?,
            next: usize::decode(input)?,
            filled: usize::decode(input)?,
        };
        let consistent = window.len > 0
            && window.width > 0
            && window.len.checked_mul(window.width) == Some(window.values.len())
            && window.next < window.len
            && window.filled <= window.len;
        if !consistent {
            return Err(DecodeError::invalid(
                "window",
                format!(
                    "{} slots of {} floats in {} values, next {}, filled {}",
                    window.len,
                    window.width,
                    window.values.len(),
                    window.next,
                    window.filled
                ),
            ));
        }
        Ok(window)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_last_len_inputs_oldest_first() {
        let mut window = Window::new(3, 2);
        let mut out = [0.0; 6];
        for t in 0..5 {
            assert_eq!(window.is_full(), t >= 3);
            window.push(&[t as f32, -(t as f32)]);
        }
        window.copy_in_order(&mut out);
        assert_eq!(out, [2.0, -2.0, 3.0, -3.0, 4.0, -4.0]);
    }
}
