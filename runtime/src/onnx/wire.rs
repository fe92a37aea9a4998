//! Protobuf wire format, read in place.
//!
//! ONNX files are protobuf `ModelProto` messages. We never decode them into owned structs:
//! a message is a byte slice, and [`Fields`] walks its `(field number, value)` pairs lazily.
//! Length-delimited values (strings, sub-messages, packed arrays, `raw_data`) come back as
//! sub-slices of the model bytes, which is what lets weights be used where they lie.
//!
//! [`check`] validates a message's framing once, so that later walks over the same bytes
//! (which treat an error as the end of the message) cannot silently stop early.

use crate::error::{Error, Result};

/// One field value as it appears on the wire.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Value<'a> {
    /// Wire type 0: int32/int64/uint64/bool/enum.
    Varint(u64),
    /// Wire type 1: fixed64/double.
    Fixed64(u64),
    /// Wire type 2: bytes, string, sub-message or packed repeated scalars.
    Bytes(&'a [u8]),
    /// Wire type 5: fixed32/float.
    Fixed32(u32),
}

impl<'a> Value<'a> {
    /// The value as a signed integer (protobuf `int64`/`int32` use two's complement varints).
    pub fn as_i64(self) -> Option<i64> {
        match self {
            Value::Varint(v) => Some(v as i64),
            _ => None,
        }
    }

    /// The value as a length-delimited byte slice.
    pub fn as_bytes(self) -> Option<&'a [u8]> {
        match self {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// The value as a UTF-8 string.
    pub fn as_str(self) -> Option<&'a str> {
        self.as_bytes().and_then(|b| core::str::from_utf8(b).ok())
    }

    /// The value as a `float` field.
    pub fn as_f32(self) -> Option<f32> {
        match self {
            Value::Fixed32(v) => Some(f32::from_bits(v)),
            _ => None,
        }
    }
}

/// Reads one varint at `*pos`, advancing it.
pub fn read_varint(buf: &[u8], pos: &mut usize) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *buf.get(*pos)?;
        *pos += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

/// Iterator over the fields of one message.
///
/// Yields `Err` once on malformed framing and then stops.
#[derive(Clone)]
pub struct Fields<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Offset of `buf` in the whole model, for error messages.
    base: usize,
    failed: bool,
}

impl<'a> Fields<'a> {
    /// Walks `msg`, whose first byte sits at `base` in the model.
    pub fn new(msg: &'a [u8], base: usize) -> Self {
        Fields {
            buf: msg,
            pos: 0,
            base,
            failed: false,
        }
    }

    fn fail(&mut self, what: &'static str) -> Option<Result<(u32, Value<'a>)>> {
        self.failed = true;
        Some(Err(Error::Malformed {
            what,
            offset: self.base + self.pos,
        }))
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<(u32, Value<'a>)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos >= self.buf.len() {
            return None;
        }
        let Some(key) = read_varint(self.buf, &mut self.pos) else {
            return self.fail("truncated field key");
        };
        let field = (key >> 3) as u32;
        if field == 0 || key >> 3 > u64::from(u32::MAX >> 3) {
            return self.fail("bad field number");
        }
        let value = match key & 7 {
            0 => match read_varint(self.buf, &mut self.pos) {
                Some(v) => Value::Varint(v),
                None => return self.fail("truncated varint"),
            },
            1 => match self.buf.get(self.pos..self.pos + 8) {
                Some(b) => {
                    self.pos += 8;
                    Value::Fixed64(u64::from_le_bytes([
                        b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7],
                    ]))
                }
                None => return self.fail("truncated fixed64"),
            },
            2 => {
                let Some(len) = read_varint(self.buf, &mut self.pos) else {
                    return self.fail("truncated length");
                };
                let end = usize::try_from(len)
                    .ok()
                    .and_then(|l| self.pos.checked_add(l));
                match end.and_then(|end| self.buf.get(self.pos..end)) {
                    Some(b) => {
                        self.pos += b.len();
                        Value::Bytes(b)
                    }
                    None => return self.fail("length runs past the end of its message"),
                }
            }
            5 => match self.buf.get(self.pos..self.pos + 4) {
                Some(b) => {
                    self.pos += 4;
                    Value::Fixed32(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                }
                None => return self.fail("truncated fixed32"),
            },
            _ => return self.fail("unsupported wire type (groups are not ONNX)"),
        };
        Some(Ok((field, value)))
    }
}

/// Offset of `sub` inside `outer` (both from the same model bytes).
pub fn offset_in(outer: &[u8], sub: &[u8]) -> usize {
    (sub.as_ptr() as usize).wrapping_sub(outer.as_ptr() as usize)
}

/// Iterates a message that [`check`] already validated: errors end the walk.
pub fn fields(msg: &[u8]) -> impl Iterator<Item = (u32, Value<'_>)> + Clone {
    Fields::new(msg, 0).map_while(|f| f.ok())
}

/// Values of repeated integer field `field` in `msg`, packed or not.
pub fn repeated_varints(msg: &[u8], field: u32) -> impl Iterator<Item = i64> + Clone + '_ {
    fields(msg)
        .filter(move |(f, _)| *f == field)
        .flat_map(|(_, v)| {
            let (single, packed) = match v {
                Value::Varint(x) => (Some(x as i64), &[][..]),
                Value::Bytes(b) => (None, b),
                _ => (None, &[][..]),
            };
            single.into_iter().chain(PackedVarints {
                buf: packed,
                pos: 0,
            })
        })
}

/// Values of repeated `float` field `field` in `msg`, packed or not.
pub fn repeated_f32s(msg: &[u8], field: u32) -> impl Iterator<Item = f32> + Clone + '_ {
    fields(msg)
        .filter(move |(f, _)| *f == field)
        .flat_map(|(_, v)| {
            let (single, packed) = match v {
                Value::Fixed32(x) => (Some(f32::from_bits(x)), &[][..]),
                Value::Bytes(b) => (None, b),
                _ => (None, &[][..]),
            };
            single.into_iter().chain(
                packed
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
            )
        })
}

/// Varints packed back to back in one length-delimited field.
#[derive(Clone)]
struct PackedVarints<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Iterator for PackedVarints<'_> {
    type Item = i64;
    fn next(&mut self) -> Option<i64> {
        if self.pos >= self.buf.len() {
            return None;
        }
        read_varint(self.buf, &mut self.pos).map(|v| v as i64)
    }
}

/// Validates the framing of `msg` (at `base` in the model) and of the sub-messages that
/// `nested(field)` says are messages, recursively to `depth` levels.
pub fn check(
    msg: &[u8],
    base: usize,
    nested: &dyn Fn(u32, u32) -> Option<u32>,
    kind: u32,
) -> Result<()> {
    for field in Fields::new(msg, base) {
        let (number, value) = field?;
        if let (Some(sub_kind), Value::Bytes(sub)) = (nested(kind, number), value) {
            check(sub, base + offset_in(msg, sub), nested, sub_kind)?;
        }
    }
    Ok(())
}

/// Checks that a packed varint field is well formed.
pub fn check_packed_varints(buf: &[u8], base: usize) -> Result<()> {
    let mut pos = 0;
    while pos < buf.len() {
        if read_varint(buf, &mut pos).is_none() {
            return Err(Error::Malformed {
                what: "truncated packed varint",
                offset: base + pos,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_each_wire_type() {
        // field 1 varint 300, field 2 bytes "hi", field 3 fixed32 1.0f, field 4 fixed64 7
        let msg = [
            0x08, 0xac, 0x02, 0x12, 0x02, b'h', b'i', 0x1d, 0, 0, 0x80, 0x3f, 0x21, 7, 0, 0, 0, 0,
            0, 0, 0,
        ];
        let got: heapless::Vec<(u32, Value), 4> =
            Fields::new(&msg, 0).map(|f| f.unwrap()).collect();
        assert_eq!(got[0], (1, Value::Varint(300)));
        assert_eq!(got[1], (2, Value::Bytes(b"hi")));
        assert_eq!(got[2].1.as_f32(), Some(1.0));
        assert_eq!(got[3], (4, Value::Fixed64(7)));
    }

    #[test]
    fn truncation_is_an_error_with_offset() {
        let msg = [0x12, 0x05, b'a'];
        let err = Fields::new(&msg, 100).next().unwrap().unwrap_err();
        assert_eq!(
            err,
            Error::Malformed {
                what: "length runs past the end of its message",
                offset: 102
            }
        );
        assert!(Fields::new(&[0x08, 0xff], 0).next().unwrap().is_err());
    }

    #[test]
    fn repeated_fields_packed_and_unpacked_agree() {
        // field 8 packed [1, 2, 300] then field 8 unpacked 5
        let msg = [0x42, 0x04, 1, 2, 0xac, 0x02, 0x40, 5];
        let v: heapless::Vec<i64, 8> = repeated_varints(&msg, 8).collect();
        assert_eq!(&v[..], &[1, 2, 300, 5]);
        // negative int64 is a 10-byte varint
        let neg = [
            0x40, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
        ];
        assert_eq!(repeated_varints(&neg, 8).next(), Some(-1));
    }
}
