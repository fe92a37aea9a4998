//! The official ONNX backend node tests on our runtime.
//!
//! The cases under `tests/data/onnx-node/` are vendored by `scripts/gen_onnx_node_tests.py`
//! from the onnx package's own generators (Apache-2.0): each is a model plus
//! `test_data_set_0/{input,output}_<k>.pb` TensorProtos, with shapes, axes and weights
//! already turned into initializers. `WHITELIST.txt` names the cases that must pass;
//! failing ones are kept there, commented, with the reason. Every case runs even after a
//! failure so one report lists them all.
//!
//! To debug cases: `ONNX_NODE_CASES=test_a,test_b RUST_BACKTRACE=1 cargo test --workspace
//! --test it onnx_node` runs only those (whitelisted or not) and prints where they panic.

use crate::common::*;
use edgetrim_runtime::tract::OwnedTensor;
use edgetrim_runtime::{DType, Shape};
use prost::Message;
use std::path::{Path, PathBuf};
use tract_onnx::pb::TensorProto;

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/onnx-node")
}

/// Active (uncommented) case names of WHITELIST.txt.
fn whitelist() -> Vec<String> {
    let text = std::fs::read_to_string(data_dir().join("WHITELIST.txt")).expect("WHITELIST.txt");
    text.lines()
        .filter_map(|l| l.split('#').next()?.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

/// Reads a serialized TensorProto; the script writes every element in `raw_data`.
fn load_tensor(path: &Path) -> OwnedTensor {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let t = TensorProto::decode(bytes.as_slice()).expect("TensorProto");
    let dtype = DType::from_onnx(t.data_type.into()).expect("supported element type");
    let dims: Vec<usize> = t.dims.iter().map(|&d| d as usize).collect();
    let shape = Shape::new(&dims).expect("rank");
    assert_eq!(
        t.raw_data.len(),
        shape.volume() * dtype.size(),
        "{}: data is not in raw_data",
        path.display()
    );
    OwnedTensor {
        dtype,
        shape,
        bytes: t.raw_data,
    }
}

/// `dir/<prefix>_0.pb, _1.pb, ...` until one is missing.
fn load_numbered(dir: &Path, prefix: &str) -> Vec<OwnedTensor> {
    (0..)
        .map(|k| dir.join(format!("{prefix}_{k}.pb")))
        .take_while(|p| p.exists())
        .map(|p| load_tensor(&p))
        .collect()
}

/// Sets f32 elements that are the same infinity in both to 0: `assert_close` compares
/// differences (NaN for inf - inf) scaled by the largest magnitude (inf would accept
/// anything), while reductions over empty sets rightly give +-inf.
fn zero_matching_infinities(got: &mut [OwnedTensor], expected: &mut [OwnedTensor]) {
    for (a, b) in got.iter_mut().zip(expected) {
        if a.dtype != DType::F32 || b.dtype != DType::F32 || a.bytes.len() != b.bytes.len() {
            continue;
        }
        for (x, y) in a.bytes.chunks_exact_mut(4).zip(b.bytes.chunks_exact_mut(4)) {
            let v = f32::from_le_bytes([x[0], x[1], x[2], x[3]]);
            if v.is_infinite() && x == y {
                x.fill(0);
                y.fill(0);
            }
        }
    }
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "panicked".into())
}

/// Runs one case; the error says why it failed.
fn run_case(name: &str) -> Result<(), String> {
    let dir = data_dir().join(name);
    let model = std::fs::read(dir.join("model.onnx"))
        .map_err(|e| format!("not vendored ({e}): run scripts/gen_onnx_node_tests.py"))?;
    let data = dir.join("test_data_set_0");
    let inputs = load_numbered(&data, "input");
    let expected = load_numbered(&data, "output");
    std::panic::catch_unwind(|| {
        let mut got = run_nano(&model, &inputs);
        let mut expected = expected;
        zero_matching_infinities(&mut got, &mut expected);
        assert_close(name, &got, &expected, TOL);
    })
    .map_err(panic_message)
}

#[test]
fn whitelisted_onnx_node_tests_pass() {
    let cases = whitelist();
    assert!(!cases.is_empty(), "WHITELIST.txt lists no case");
    for entry in std::fs::read_dir(data_dir()).expect("data dir") {
        let name = entry.expect("dir entry").file_name();
        let name = name.to_str().expect("UTF-8 name");
        assert!(
            name == "WHITELIST.txt" || name == "README.md" || cases.iter().any(|c| c == name),
            "{name} is vendored but not whitelisted: rerun scripts/gen_onnx_node_tests.py"
        );
    }
    let selected = std::env::var("ONNX_NODE_CASES").ok();
    let cases: Vec<String> = match &selected {
        Some(list) => list.split(',').map(str::to_owned).collect(),
        None => cases,
    };
    // Failures are collected, not printed as they happen (unless debugging a selection).
    let hook = std::panic::take_hook();
    if selected.is_none() {
        std::panic::set_hook(Box::new(|_| {}));
    }
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|c| run_case(c).err().map(|e| format!("{c}: {e}")))
        .collect();
    std::panic::set_hook(hook);
    println!(
        "{} of {} ONNX node tests pass",
        cases.len() - failures.len(),
        cases.len()
    );
    assert!(
        failures.is_empty(),
        "{} ONNX node tests fail:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
