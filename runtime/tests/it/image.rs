//! Flashable model images on a real model (the firmware check's tiny CNN, 6 KiB): every
//! changed byte and every truncation is refused with a typed error, never a panic, and a
//! valid image runs with exactly the outputs of the plain ONNX file.

use crate::common::*;
use edgetrim_runtime::image::{Header, ImageError, HEADER_LEN};
use edgetrim_runtime::{Arena, Error, Image, Model, Session, Target};

const ONNX: &[u8] = include_bytes!("../../../examples/firmware/tiny_cnn.onnx");
const INPUT: [usize; 4] = [1, 1, 28, 28];

/// Plans `onnx` for `target` and packs it as `name`.
fn pack(onnx: &[u8], name: &str, target: Target) -> Result<Vec<u8>, Error> {
    let model = Model::parse(onnx)?;
    let report = Session::arena_report_for(&model, &[], target)?;
    let mut arena = vec![0u8; report.total + 16];
    let session = Session::with_target(&model, &[], &mut arena, target)?;
    let header = Header::from_session(name, &session)?;
    let mut image = vec![0u8; HEADER_LEN + onnx.len()];
    header.write_image(onnx, &mut image)?;
    Ok(image)
}

fn image_err(bytes: &[u8]) -> ImageError {
    match Image::parse(bytes) {
        Err(Error::Image(e)) => e,
        other => panic!("expected an image error, got {other:?}"),
    }
}

#[test]
fn every_changed_byte_is_refused() {
    let image = pack(ONNX, "tiny_cnn", Target::CortexM).unwrap();
    assert!(Image::parse(&image).is_ok());
    let mut bytes = image.clone();
    for pos in 0..image.len() {
        for mask in [0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0xFF] {
            bytes[pos] ^= mask;
            let e = image_err(&bytes);
            let expected = match pos {
                0..4 => matches!(e, ImageError::BadMagic { .. }),
                4..6 => matches!(e, ImageError::UnsupportedVersion { .. }),
                6..8 => matches!(e, ImageError::BadHeaderLength { .. }),
                // a longer payload length runs past the bytes; a shorter one leaves
                // trailing bytes, and the CRC over the shorter image differs first
                8..12 => matches!(
                    e,
                    ImageError::Truncated { .. } | ImageError::CrcMismatch { .. }
                ),
                _ => matches!(e, ImageError::CrcMismatch { .. }),
            };
            assert!(expected, "byte {pos} ^ {mask:#04x}: {e:?}");
            bytes[pos] ^= mask;
        }
    }
}

#[test]
fn every_truncation_is_refused() {
    let image = pack(ONNX, "tiny_cnn", Target::CortexM).unwrap();
    for len in 0..image.len() {
        let needed = if len < 16 { 16 } else { image.len() };
        assert_eq!(
            image_err(&image[..len]),
            ImageError::Truncated { needed, got: len },
            "cut at {len}"
        );
    }
}

#[test]
fn an_image_runs_like_its_onnx_file() {
    let packed = pack(ONNX, "tiny_cnn", Target::CortexM).unwrap();
    // In a 16-byte-aligned buffer, as in flash or the `rs` format's static.
    let mut flash = Box::new(Arena::<{ 16 * 1024 }>::new());
    flash.0[..packed.len()].copy_from_slice(&packed);
    let image = Image::parse(&flash.0[..packed.len()]).unwrap();
    assert_eq!(image.payload(), ONNX);
    assert_eq!(image.payload().as_ptr() as usize % 16, 0);

    let header = *image.header();
    assert_eq!(header.name(), "tiny_cnn");
    assert_eq!(header.target(), Target::CortexM);
    assert_eq!(header.inputs().len(), 1);
    assert_eq!(header.inputs()[0].shape.dims(), &INPUT);
    assert_eq!(header.outputs()[0].shape.dims(), &[1, 10]);
    let model = Model::parse(ONNX).unwrap();
    let planned = Session::arena_report_for(&model, &[&INPUT], Target::CortexM).unwrap();
    assert_eq!(header.arena(), planned);

    let input = rand_f32(&INPUT, 7);
    let mut arena = vec![0u8; header.arena().total + 16];
    let mut from_image = image.session(&mut arena).unwrap();
    from_image.set_input_bytes(0, &input.bytes).unwrap();
    from_image.run().unwrap();

    let mut arena = vec![0u8; planned.total + 16];
    let mut plain = Session::with_target(&model, &[], &mut arena, Target::CortexM).unwrap();
    plain.set_input_bytes(0, &input.bytes).unwrap();
    plain.run().unwrap();
    let out = from_image.output(0);
    assert_eq!(out.bytes, plain.output(0).bytes);
    assert_eq!(out.bytes.len(), 40);
    assert_ne!(out.bytes, &[0; 40]);
}

#[test]
fn a_header_that_disagrees_with_its_model_is_refused_at_planning() {
    // Same input as the CNN, but the output is 1x1x28x28 where the CNN's is 1x10.
    let mut m = ModelBuilder::new(13);
    m.input("x", dt::FLOAT, &INPUT)
        .node("Relu", &["x"], &["y"], vec![])
        .output("y", dt::FLOAT);
    let other = pack(&m.build(), "relu", Target::CortexM).unwrap();
    let header = *Image::parse(&other).unwrap().header();
    let mut lying = vec![0u8; HEADER_LEN + ONNX.len()];
    header.write_image(ONNX, &mut lying).unwrap();

    let image = Image::parse(&lying).unwrap(); // the CRC is right: the packer lied
    let mut arena = vec![0u8; 64 * 1024];
    assert_eq!(
        image.session(&mut arena).err(),
        Some(Error::Image(ImageError::IoMismatch {
            what: "output",
            index: 0
        }))
    );
}

#[test]
fn names_that_do_not_fit_the_header_are_refused() {
    assert_eq!(
        pack(ONNX, &"n".repeat(33), Target::Host).err(),
        Some(Error::Capacity {
            what: "image model name bytes",
            limit: 32
        })
    );
    assert!(matches!(
        pack(ONNX, "a\0b", Target::Host),
        Err(Error::Invalid { .. })
    ));
    let exact = pack(ONNX, &"n".repeat(32), Target::Host).unwrap();
    assert_eq!(Image::parse(&exact).unwrap().header().name().len(), 32);
}
