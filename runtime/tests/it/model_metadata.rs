//! `Model::metadata`: the exporter's `metadata_props` read from the model bytes.

use crate::common::*;
use edgetrim_runtime::Model;

fn identity_model() -> ModelBuilder {
    let mut m = ModelBuilder::new(13);
    m.input("x", dt::FLOAT, &[1, 2])
        .node("Identity", &["x"], &["y"], vec![])
        .output("y", dt::FLOAT);
    m
}

#[test]
fn metadata_is_read_in_file_order_with_empty_values() {
    let mut m = identity_model();
    m.metadata("edgetrim.yolo.reg_max", "16")
        .metadata("edgetrim.yolo.names", "D00,D10")
        .metadata("empty", "")
        .metadata("edgetrim.yolo.reg_max", "8");
    let bytes = m.build();
    let model = Model::parse(&bytes).unwrap();
    let all: Vec<_> = model.metadata().collect();
    assert_eq!(
        all,
        [
            ("edgetrim.yolo.reg_max", "16"),
            ("edgetrim.yolo.names", "D00,D10"),
            ("empty", ""),
            ("edgetrim.yolo.reg_max", "8"),
        ]
    );
    assert_eq!(model.metadata_value("edgetrim.yolo.reg_max"), Some("16"));
    assert_eq!(model.metadata_value("empty"), Some(""));
    assert_eq!(model.metadata_value("missing"), None);
}

#[test]
fn a_model_without_metadata_has_none() {
    let bytes = identity_model().build();
    assert_eq!(Model::parse(&bytes).unwrap().metadata().count(), 0);
}

#[test]
fn a_corrupt_metadata_entry_is_refused_at_parse() {
    let mut m = identity_model();
    m.metadata("key", "value");
    let mut bytes = m.build();
    assert!(Model::parse(&bytes).is_ok());
    // The entry's own framing breaks while the model's stays intact: the key's length
    // byte (3) now claims more bytes than the entry holds.
    let at = bytes.windows(3).position(|w| w == b"key").unwrap();
    assert_eq!(bytes[at - 1], 3);
    bytes[at - 1] = 100;
    assert!(Model::parse(&bytes).is_err());
}
