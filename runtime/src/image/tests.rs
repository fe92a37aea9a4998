//! The header codec on hand-made headers: round trips, every refusal of a field no packer
//! writes (with a valid CRC, so the field check is what refuses), and a fuzz of header
//! bytes. Whole-image tests on a real model (every flipped byte, every truncation, running
//! the model) are in `tests/it/image.rs`.

use super::*;
use crate::error::Error;
use crate::plan::PlanTables;
use crate::session::ArenaReport;
use crate::target::Target;
use crate::tensor::{DType, Shape};
use proptest::prelude::*;
use std::format;
use std::string::ToString;
use std::vec;
use std::vec::Vec;

/// A header for a 28x28 image classifier, with this machine's arena totals.
fn sample() -> Header {
    let tables = PlanTables {
        tensors: 12,
        bufs: 9,
        steps: 8,
        work_steps: 9,
        work_tensors: 14,
        nodes: 9,
        io: 20,
        inputs: 1,
        outputs: 1,
    };
    let (planned, constants) = (16384, 160);
    let mut header = Header {
        target: Target::CortexM,
        arena: ArenaReport {
            // The working tables (9 steps, 14 tensors) are smaller than the 12 kept tensors
            // and the planned region that follows them in the head.
            total: (12 * PlanTables::ENTRY_BYTES[0]).next_multiple_of(16)
                + planned
                + constants
                + tables.bytes(),
            planned,
            lower_bound: 4000,
            persistent: constants + tables.bytes(),
            constants,
            tables,
        },
        name: [0; NAME_LEN],
        io: [ImageTensor::NONE; SLOTS],
        n_inputs: 1,
        n_outputs: 1,
    };
    header.name[..4].copy_from_slice(b"tiny");
    header.io[0] = ImageTensor {
        dtype: DType::F32,
        shape: Shape::new(&[1, 1, 28, 28]).unwrap(),
    };
    header.io[MAX_INPUTS] = ImageTensor {
        dtype: DType::I8,
        shape: Shape::new(&[1, 10]).unwrap(),
    };
    header
}

const PAYLOAD: &[u8] = b"not parsed by the header checks";

fn image_of(header: &Header) -> Vec<u8> {
    let mut out = vec![0u8; HEADER_LEN + PAYLOAD.len()];
    header.write_image(PAYLOAD, &mut out).unwrap();
    out
}

/// Rewrites the CRC of an edited image, so that only the field checks can refuse it.
fn reseal(image: &mut [u8]) {
    let (header, payload) = image.split_first_chunk_mut::<HEADER_LEN>().unwrap();
    let crc = image_crc(header, payload);
    header[OFF_CRC..OFF_CRC + 4].copy_from_slice(&crc.to_le_bytes());
}

fn err(bytes: &[u8]) -> ImageError {
    match Image::parse(bytes) {
        Err(Error::Image(e)) => e,
        other => panic!("expected an image error, got {other:?}"),
    }
}

#[test]
fn crc_is_the_zlib_crc32() {
    assert_eq!(CRC32.checksum(b"123456789"), 0xCBF4_3926);
}

#[test]
fn written_images_parse_back_to_the_same_header() {
    let header = sample();
    let bytes = image_of(&header);
    assert_eq!(&bytes[..4], b"ETIM");
    assert_eq!(&bytes[HEADER_LEN..], PAYLOAD);
    let image = Image::parse(&bytes).unwrap();
    assert_eq!(*image.header(), header);
    assert_eq!(image.payload(), PAYLOAD);
    assert_eq!(image.len(), bytes.len());
    assert_eq!(image.header().name(), "tiny");
    assert_eq!(image.header().inputs().len(), 1);
    assert_eq!(image.header().outputs()[0].shape.dims(), &[1, 10]);
    assert_eq!(
        image.crc(),
        u32::from_le_bytes(bytes[12..16].try_into().unwrap())
    );
}

#[test]
fn a_partition_may_hold_more_than_the_image() {
    let mut bytes = image_of(&sample());
    let len = bytes.len();
    bytes.extend_from_slice(&[0xFF; 64]); // erased flash after the image
    assert_eq!(Image::parse_prefix(&bytes).unwrap().len(), len);
    assert_eq!(
        err(&bytes),
        ImageError::LengthMismatch {
            expected: len,
            got: len + 64
        }
    );
}

#[test]
fn write_image_needs_the_exact_length() {
    let mut out = vec![0u8; HEADER_LEN + PAYLOAD.len() + 1];
    assert_eq!(
        sample().write_image(PAYLOAD, &mut out),
        Err(Error::Image(ImageError::LengthMismatch {
            expected: out.len() - 1,
            got: out.len()
        }))
    );
}

#[test]
fn fields_no_packer_writes_are_refused_despite_a_valid_crc() {
    let base = image_of(&sample());
    let slot = |k: usize| OFF_SLOTS + k * SLOT_LEN;
    let cases: [(&str, usize, u8, &str); 14] = [
        ("target", OFF_TARGET, 2, "unknown target"),
        ("inputs", OFF_INPUTS, 5, "more than 4 inputs or outputs"),
        ("outputs", OFF_OUTPUTS, 9, "more than 4 inputs or outputs"),
        ("reserved 19", 19, 1, "reserved bytes are not zero"),
        ("reserved 60", 61, 1, "reserved bytes are not zero"),
        // working steps (offset 56) below the steps (8)
        (
            "working steps",
            OFF_ARENA + 36,
            7,
            "more steps than working steps",
        ),
        // working tensors (offset 52) below the tensors (12)
        (
            "working tensors",
            OFF_ARENA + 32,
            11,
            "more tensors than working tensors",
        ),
        (
            "name padding",
            OFF_NAME + 10,
            b'x',
            "model name has bytes after its end",
        ),
        ("name UTF-8", OFF_NAME + 1, 0xFF, "model name is not UTF-8"),
        (
            "unused slot",
            slot(1) + 7,
            1,
            "unused tensor slot is not zero",
        ),
        ("dtype", slot(0), 4, "tensor element type"), // uint16: not a type we run
        ("rank", slot(0) + 1, 9, "tensor rank"),
        (
            "dim past rank",
            slot(0) + 4 + 4 * 4,
            1,
            "tensor dims past its rank are not zero",
        ),
        // lower bound (offset 24) above planned (16384)
        (
            "lower bound",
            OFF_ARENA + 4 + 2,
            1,
            "arena lower bound above the planned bytes",
        ),
    ];
    for (case, offset, value, what) in cases {
        let mut bytes = base.clone();
        bytes[offset] = value;
        reseal(&mut bytes);
        assert_eq!(err(&bytes), ImageError::BadField { what }, "{case}");
    }
}

#[test]
fn plan_table_counts_that_overflow_are_none_not_a_panic() {
    let huge = PlanTables {
        io: usize::MAX / 2,
        ..PlanTables::default()
    };
    assert_eq!(huge.checked_bytes(), None);
    assert_eq!(huge.bytes(), usize::MAX);
    assert_eq!(PlanTables::default().checked_bytes(), Some(0));
    let huge = PlanTables {
        work_steps: usize::MAX / 2,
        ..PlanTables::default()
    };
    assert_eq!(huge.checked_work_bytes_with(&PlanTables::ENTRY_BYTES), None);
    assert_eq!(huge.work_bytes(), usize::MAX);
    let report = ArenaReport {
        tables: huge,
        ..ArenaReport::default()
    };
    assert_eq!(report.total_with(&PlanTables::ENTRY_BYTES), None);
    assert_eq!(report.for_this_target(), usize::MAX);
}

/// The arena's head holds the larger of the working tables and the kept tensors with the
/// planned region, so a header whose working steps outgrow those asks for them instead.
#[test]
fn the_head_is_the_larger_of_kept_tensors_and_planned_and_working_tables() {
    let mut header = sample();
    let a = header.arena;
    assert_eq!(a.for_this_target(), a.total);
    header.arena.tables.work_steps = 1000;
    let work = header.arena.tables.work_bytes();
    assert!(work > a.planned, "{work}");
    let image = image_of(&header);
    let parsed = *Image::parse(&image).unwrap().header();
    assert_eq!(parsed.arena().total, a.persistent + work);
    assert_eq!(parsed.arena().for_this_target(), a.persistent + work);
    // Another machine's entry sizes: 100-byte steps, 40-byte tensors; the 14 tensors' new
    // numbers (56 bytes) fit over the working steps, which leaves the 9 nodes' flags.
    let mut entry = PlanTables::ENTRY_BYTES;
    entry[2] = 100;
    entry[0] = 40;
    let tail = a.tables.checked_bytes_with(&entry).unwrap();
    assert_eq!(
        parsed.arena().total_with(&entry),
        Some(tail + a.constants + 100_000 + 560 + 16)
    );
    // 1-byte steps: 9 of them (16 bytes with padding) and the flags are too few for the new
    // numbers, whose last 40 bytes extend the flags.
    entry[2] = 1;
    assert_eq!(
        a.tables.checked_work_bytes_with(&entry),
        Some(560 + 16 + 48)
    );
}

#[test]
fn errors_say_what_is_wrong() {
    let mut bytes = image_of(&sample());
    bytes[HEADER_LEN] ^= 1;
    let e = Error::from(err(&bytes)).to_string();
    assert!(
        e.starts_with("bad model image: CRC mismatch: header says 0x"),
        "{e}"
    );
    let e = Error::from(err(b"PK\x03\x04 a zip file, not an image")).to_string();
    assert!(e.contains("not an edgetrim model image"), "{e}");
    let e = err(&bytes[..100]).to_string();
    let needed = HEADER_LEN + PAYLOAD.len();
    assert_eq!(
        e,
        format!("truncated: the image has {needed} bytes, got 100")
    );
}

proptest! {
    /// Any header bytes behind a valid CRC: parsing never panics, and whatever it accepts
    /// writes back byte for byte (the decoder and the encoder mirror each other).
    #[test]
    fn edited_headers_are_refused_or_round_trip(
        edits in proptest::collection::vec((OFF_TARGET..HEADER_LEN, any::<u8>()), 1..4),
    ) {
        let mut bytes = image_of(&sample());
        for (offset, value) in edits {
            bytes[offset] = value;
        }
        reseal(&mut bytes);
        if let Ok(image) = Image::parse(&bytes) {
            let mut again = vec![0u8; bytes.len()];
            image.header().write_image(image.payload(), &mut again).unwrap();
            prop_assert_eq!(again, bytes);
        }
    }
}
