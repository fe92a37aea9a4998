//! Flashable model images: an ONNX model behind a small header that is checked before any
//! of the model is used.
//!
//! A model in a flash partition or compiled into firmware can be corrupt (a flipped bit, a
//! download cut short, a partition holding something else). The runtime parses ONNX bytes
//! defensively, but a flipped weight byte is still a valid model with wrong answers; so an
//! image carries a CRC-32 of every byte, and [`Image::parse`] refuses a corrupt or
//! truncated image with a typed [`ImageError`] before anything runs. The header also says
//! what a firmware needs before planning: the arena the model takes, the inputs' and
//! outputs' types and shapes, and a name to log.
//!
//! Layout, format version 3 (integers little-endian, offsets from the image start):
//!
//! ```text
//! offset size  field
//!      0    4  magic "ETIM"
//!      4    2  format version (3)
//!      6    2  header length = payload offset (384; a multiple of 16)
//!      8    4  payload length: bytes of the ONNX model
//!     12    4  CRC-32, see below
//!     16    1  target the plan was made for: 0 host, 1 Cortex-M
//!     17    1  input count (at most 4)
//!     18    1  output count (at most 4)
//!     19    1  reserved, 0
//!     20   40  arena plan, u32 each: planned bytes, liveness lower bound, constant bytes,
//!              then plan-table entry counts (tensors, bufs, steps, nodes, io, working
//!              tensors, working steps: see `PlanTables`; its inputs and outputs are the
//!              input and output counts above)
//!     60    4  reserved, 0
//!     64   32  model name: UTF-8, zero-padded, no NUL inside
//!     96  288  8 tensor slots of 36 bytes, inputs 0..4 then outputs 0..4: ONNX data type
//!              code u8, rank u8 (at most 8), 2 reserved bytes, 8 dims u32; dims past the
//!              rank and unused slots are all zero
//!    384    n  payload: the ONNX model, byte for byte
//! ```
//!
//! **CRC.** CRC-32/ISO-HDLC (the zlib/PNG CRC: reflected polynomial 0x04C11DB7, initial
//! value and final XOR 0xFFFFFFFF) of all `384 + n` bytes of the image, with the four CRC
//! bytes at offset 12 read as zero. Every byte is covered: the header (reserved and unused
//! bytes included), the CRC field itself and the payload. The magic, version and lengths
//! are checked first, each with its own error; any other change of up to 32 consecutive
//! bits — so any single changed byte — is a CRC mismatch, since a 32-bit CRC detects all
//! such bursts.
//!
//! **Alignment.** The payload starts at a multiple of 16 bytes, so an image placed at a
//! 16-byte-aligned address (a flash partition, the `Aligned` static `edgetrim pack
//! --format rs` writes) gives the ONNX bytes the alignment the compress `layout` pass
//! assumes for the file start: weights are read in place as aligned `f32`. Misplaced, an
//! image still works, through the byte-wise weight reader.
//!
//! **Arena.** The header keeps the plan's target-independent figures (planned region,
//! constants, table entry counts); [`Header::arena`] turns them into this machine's exact
//! arena size, as [`crate::ArenaReport::for_this_target`] does.

use crate::error::Result;
use crate::onnx::Model;
use crate::session::{Session, TensorSpec};
use core::fmt;

mod header;
pub use header::{Header, ImageTensor};

/// The first four bytes of every image.
pub const MAGIC: [u8; 4] = *b"ETIM";
/// The format version this runtime reads and writes. Version 1 had no working-step count
/// (its arena figure predates the step table's move to the arena's head), version 2 no
/// working-tensor count (nor the tensor table's).
pub const VERSION: u16 = 3;
/// Bytes of a version-3 header; the payload starts here.
pub const HEADER_LEN: usize = 384;
/// Alignment of the payload's offset in the image.
pub const PAYLOAD_ALIGN: usize = crate::arena::ALIGN;
/// Graph inputs an image describes at most.
pub const MAX_INPUTS: usize = 4;
/// Graph outputs an image describes at most.
pub const MAX_OUTPUTS: usize = 4;
/// Largest tensor rank an image describes.
pub const MAX_RANK: usize = 8;
/// Bytes of the model name field.
pub const NAME_LEN: usize = 32;

const OFF_VERSION: usize = 4;
const OFF_HEADER_LEN: usize = 6;
const OFF_PAYLOAD_LEN: usize = 8;
const OFF_CRC: usize = 12;
const OFF_TARGET: usize = 16;
const OFF_INPUTS: usize = 17;
const OFF_OUTPUTS: usize = 18;
const OFF_ARENA: usize = 20;
const ARENA_FIELDS: usize = 10;
const OFF_NAME: usize = 64;
const OFF_SLOTS: usize = 96;
const SLOTS: usize = MAX_INPUTS + MAX_OUTPUTS;
const SLOT_LEN: usize = 4 + 4 * MAX_RANK;
/// Reserved byte ranges, which must be zero.
const RESERVED: [(usize, usize); 2] = [(19, 20), (OFF_ARENA + 4 * ARENA_FIELDS, OFF_NAME)];

const _: () = assert!(HEADER_LEN.is_multiple_of(PAYLOAD_ALIGN));
const _: () = assert!(OFF_SLOTS + SLOTS * SLOT_LEN == HEADER_LEN);
const _: () = assert!(OFF_NAME + NAME_LEN == OFF_SLOTS);
const _: () = assert!(OFF_ARENA + 4 * ARENA_FIELDS + 4 == OFF_NAME);
const _: () = assert!(MAX_RANK <= crate::tensor::MAX_RANK);

/// CRC-32/ISO-HDLC with one 256-entry table (1 KiB of flash).
static CRC32: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);

/// Why an image is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ImageError {
    /// Fewer bytes than a header, or than the header says the image has.
    Truncated {
        /// Bytes the image needs.
        needed: usize,
        /// Bytes given.
        got: usize,
    },
    /// The first four bytes are not [`MAGIC`]: not an edgetrim model image.
    BadMagic {
        /// The bytes found.
        found: [u8; 4],
    },
    /// A format version this runtime does not read.
    UnsupportedVersion {
        /// The version in the header.
        found: u16,
    },
    /// The header length field is not this version's [`HEADER_LEN`].
    BadHeaderLength {
        /// The length in the header.
        found: usize,
    },
    /// More bytes than the header says the image has ([`Image::parse_prefix`] reads an
    /// image at the start of a larger partition).
    LengthMismatch {
        /// Bytes the header says.
        expected: usize,
        /// Bytes given.
        got: usize,
    },
    /// The CRC-32 in the header is not the image's: some byte changed.
    CrcMismatch {
        /// The CRC in the header.
        stored: u32,
        /// The CRC of the bytes.
        computed: u32,
    },
    /// A header field holds a value that no packer writes.
    BadField {
        /// Which field, and what is wrong.
        what: &'static str,
    },
    /// The header's inputs or outputs disagree with the model in the payload.
    IoMismatch {
        /// `"input"` or `"output"` (type or shape differs), `"input count"` or
        /// `"output count"`.
        what: &'static str,
        /// The input or output index, or the model's count.
        index: usize,
    },
}

impl fmt::Display for ImageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImageError::Truncated { needed, got } => {
                write!(f, "truncated: the image has {needed} bytes, got {got}")
            }
            ImageError::BadMagic { found } => write!(
                f,
                "bad magic {found:02x?}, expected {MAGIC:02x?} (\"ETIM\"): not an edgetrim model image"
            ),
            ImageError::UnsupportedVersion { found } => write!(
                f,
                "format version {found} is not supported (this runtime reads version {VERSION})"
            ),
            ImageError::BadHeaderLength { found } => write!(
                f,
                "header length {found} is not version {VERSION}'s {HEADER_LEN}"
            ),
            ImageError::LengthMismatch { expected, got } => write!(
                f,
                "length mismatch: the header says {expected} bytes, got {got}"
            ),
            ImageError::CrcMismatch { stored, computed } => write!(
                f,
                "CRC mismatch: header says {stored:#010x}, the bytes give {computed:#010x} (corrupt image)"
            ),
            ImageError::BadField { what } => write!(f, "bad header field: {what}"),
            ImageError::IoMismatch { what, index } => write!(
                f,
                "{what} {index}: the header disagrees with the model in the payload"
            ),
        }
    }
}

/// Checks that a planned session's `specs` are the header's `want`.
fn check_slots<'s>(
    what: &'static str,
    count: &'static str,
    specs: impl Iterator<Item = TensorSpec<'s>>,
    want: &[ImageTensor],
) -> core::result::Result<(), ImageError> {
    let mut n = 0;
    for (k, spec) in specs.enumerate() {
        if want.get(k) != Some(&ImageTensor::of(&spec)) {
            return Err(ImageError::IoMismatch { what, index: k });
        }
        n = k + 1;
    }
    if n != want.len() {
        return Err(ImageError::IoMismatch {
            what: count,
            index: n,
        });
    }
    Ok(())
}

/// The u32 at `off` (callers pass offsets inside `bytes`).
fn get_u32(bytes: &[u8], off: usize) -> u32 {
    let mut b = [0u8; 4];
    if let Some(src) = bytes.get(off..off + 4) {
        b.copy_from_slice(src);
    }
    u32::from_le_bytes(b)
}

/// The image CRC: header (CRC field read as zero) then payload.
fn image_crc(header: &[u8; HEADER_LEN], payload: &[u8]) -> u32 {
    let mut digest = CRC32.digest();
    digest.update(&header[..OFF_CRC]);
    digest.update(&[0; 4]);
    digest.update(&header[OFF_CRC + 4..]);
    digest.update(payload);
    digest.finalize()
}

/// A checked model image: header and CRC verified, payload not yet parsed.
///
/// ```no_run
/// use edgetrim_runtime::{Arena, Image};
/// static IMAGE: &[u8] = &[]; // a flash partition, or `&MODEL.0` from `edgetrim pack --format rs`
/// let image = Image::parse(IMAGE)?; // refuses corrupt or truncated bytes
/// let mut arena = Arena::<65536>::new(); // at least image.header().arena().total
/// let mut session = image.session(&mut arena.0)?;
/// session.run()?;
/// # Ok::<(), edgetrim_runtime::Error>(())
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Image<'a> {
    header: Header,
    payload: &'a [u8],
    crc: u32,
}

impl<'a> Image<'a> {
    /// Checks `bytes` as exactly one image: magic, version, lengths, CRC, header fields.
    pub fn parse(bytes: &'a [u8]) -> Result<Image<'a>> {
        let image = Self::parse_prefix(bytes)?;
        if bytes.len() != image.len() {
            return Err(ImageError::LengthMismatch {
                expected: image.len(),
                got: bytes.len(),
            }
            .into());
        }
        Ok(image)
    }

    /// Like [`Image::parse`] for an image at the start of `bytes`, ignoring what follows
    /// (the rest of a flash partition).
    pub fn parse_prefix(bytes: &'a [u8]) -> Result<Image<'a>> {
        let got = bytes.len();
        let Some(fixed) = bytes.get(..OFF_TARGET) else {
            return Err(ImageError::Truncated {
                needed: OFF_TARGET,
                got,
            }
            .into());
        };
        let mut found = [0u8; 4];
        found.copy_from_slice(&fixed[..4]);
        if found != MAGIC {
            return Err(ImageError::BadMagic { found }.into());
        }
        let version = u16::from_le_bytes([fixed[OFF_VERSION], fixed[OFF_VERSION + 1]]);
        if version != VERSION {
            return Err(ImageError::UnsupportedVersion { found: version }.into());
        }
        let header_len = usize::from(u16::from_le_bytes([
            fixed[OFF_HEADER_LEN],
            fixed[OFF_HEADER_LEN + 1],
        ]));
        if header_len != HEADER_LEN {
            return Err(ImageError::BadHeaderLength { found: header_len }.into());
        }
        let needed = HEADER_LEN.saturating_add(get_u32(fixed, OFF_PAYLOAD_LEN) as usize);
        let Some((header, payload)) = bytes
            .get(..needed)
            .and_then(|b| b.split_first_chunk::<HEADER_LEN>())
        else {
            return Err(ImageError::Truncated { needed, got }.into());
        };
        let stored = get_u32(header, OFF_CRC);
        let computed = image_crc(header, payload);
        if stored != computed {
            return Err(ImageError::CrcMismatch { stored, computed }.into());
        }
        Ok(Image {
            header: Header::decode(header)?,
            payload,
            crc: stored,
        })
    }

    /// The header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The ONNX model bytes.
    pub fn payload(&self) -> &'a [u8] {
        self.payload
    }

    /// Bytes of the whole image (header and payload).
    #[allow(clippy::len_without_is_empty)] // an image is never empty
    pub fn len(&self) -> usize {
        HEADER_LEN + self.payload.len()
    }

    /// The image's CRC-32.
    pub fn crc(&self) -> u32 {
        self.crc
    }

    /// Parses the payload as an ONNX model.
    pub fn model(&self) -> Result<Model<'a>> {
        Model::parse(self.payload)
    }

    /// Plans the model in `arena` as the header describes it (its input shapes and
    /// target), and checks that the planned inputs and outputs are the header's.
    pub fn session(&self, arena: &'a mut [u8]) -> Result<Session<'a>> {
        let model = self.model()?;
        let mut shapes: [&[usize]; MAX_INPUTS] = [&[]; MAX_INPUTS];
        for (shape, t) in shapes.iter_mut().zip(self.header.inputs()) {
            *shape = t.shape.dims();
        }
        let inputs = &shapes[..self.header.inputs().len()];
        let session = Session::with_target(&model, inputs, arena, self.header.target())?;
        check_slots(
            "input",
            "input count",
            session.inputs(),
            self.header.inputs(),
        )?;
        check_slots(
            "output",
            "output count",
            session.outputs(),
            self.header.outputs(),
        )?;
        Ok(session)
    }
}

#[cfg(test)]
mod tests;
