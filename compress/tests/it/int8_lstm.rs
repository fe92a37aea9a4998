//! The int8 pass on LSTMs: W and R become int8 with one scale per gate row behind
//! `DequantizeLinear(axis=1)`, the output stays within quantization tolerance on our
//! runtime and on tract, our runtime reads the int8 in place (no DequantizeLinear step, no
//! f32 weights in its arena), `--keep-float` leaves the LSTM float, and an opset-12 model is
//! raised to 13 for the per-row scales.

use crate::common::{compress, count, decode, nano, tract};
use edgetrim_compress::build::{dt, Attr, ModelBuilder};
use edgetrim_compress::exec;
use edgetrim_compress::passes::{int8, Context, Pass};

const CLEAN_INT8: &[Pass] = &[Pass::Clean, Pass::Int8, Pass::Layout];

/// `x [6, 1, 40] → LSTM(hidden 48, B, initial states) → y, y_h, y_c`, the node named
/// `enc/lstm`; weights in [-0.3, 0.3).
fn lstm_model(opset: i64, bidirectional: bool) -> Vec<u8> {
    let (dirs, h, k) = (1 + usize::from(bidirectional), 48, 40);
    let vals = |n: usize, seed: u32| {
        crate::common::vals(n, seed, 0.0)
            .iter()
            .map(|v| v * 0.3)
            .collect::<Vec<_>>()
    };
    let mut m = ModelBuilder::new(opset);
    m.input("x", dt::FLOAT, &[6, 1, k]);
    m.input("h0", dt::FLOAT, &[dirs, 1, h]);
    m.input("c0", dt::FLOAT, &[dirs, 1, h]);
    m.init_f32("w", &[dirs, 4 * h, k], &vals(dirs * 4 * h * k, 1));
    m.init_f32("r", &[dirs, 4 * h, h], &vals(dirs * 4 * h * h, 2));
    m.init_f32("b", &[dirs, 8 * h], &vals(dirs * 8 * h, 3));
    let direction = if bidirectional {
        "bidirectional"
    } else {
        "forward"
    };
    m.node(
        "LSTM",
        &["x", "w", "r", "b", "", "h0", "c0"],
        &["y", "y_h", "y_c"],
        vec![
            ("hidden_size", Attr::Int(h as i64)),
            ("direction", Attr::Str(direction.into())),
        ],
    );
    for o in ["y", "y_h", "y_c"] {
        m.output(o, dt::FLOAT);
    }
    let mut proto = m.proto();
    proto.graph.as_mut().unwrap().node[0].name = "enc/lstm".into();
    edgetrim_compress::passes::encode(&proto, false).unwrap()
}

/// Cosine similarity of all outputs together.
fn cosine(a: &[Vec<f64>], b: &[Vec<f64>]) -> f64 {
    let (a, b): (Vec<f64>, Vec<f64>) = (a.concat(), b.concat());
    let dot: f64 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
    let norm = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
    dot / (norm(&a) * norm(&b))
}

#[test]
fn lstm_weights_become_int8_per_gate_row_and_are_read_in_place() {
    for bidirectional in [false, true] {
        let dirs = 1 + usize::from(bidirectional);
        let original = lstm_model(17, bidirectional);
        let shapes: &[&[usize]] = &[&[6, 1, 40], &[dirs, 1, 48], &[dirs, 1, 48]];
        let q = compress(&original, CLEAN_INT8, &Context::default());
        let g = decode(&q).graph.unwrap();
        assert_eq!(count(&q, "DequantizeLinear"), 2, "W and R only");
        assert_eq!(count(&q, "QuantizeLinear"), 0, "activations stay float");
        for dq in g.node.iter().filter(|n| n.op_type == "DequantizeLinear") {
            assert_eq!(dq.attribute[0].name, "axis");
            assert_eq!(dq.attribute[0].i, 1, "one scale per gate row");
            let init = |name: &str| g.initializer.iter().find(|t| t.name == name).unwrap();
            let (w, s) = (init(&dq.input[0]), init(&dq.input[1]));
            assert_eq!(w.data_type, dt::INT8);
            assert_eq!(w.dims[..2], [dirs as i64, 4 * 48]);
            assert_eq!(s.dims, [4 * 48]);
        }
        assert!(
            g.initializer
                .iter()
                .all(|t| t.data_type != dt::FLOAT || t.dims.len() < 3),
            "no float W or R is left"
        );
        let (reference, ours) = (nano(&original, shapes), nano(&q, shapes));
        let c = cosine(&reference, &ours);
        assert!(c > 0.9999, "int8 vs float cosine {c}");
        assert!(
            c < 1.0 - 1e-12,
            "the weights must actually be quantized ({c})"
        );
        let theirs = tract(&q, shapes);
        assert!(
            cosine(&ours, &theirs) > 0.999_999,
            "tract and our runtime run the same int8 LSTM"
        );
        // In place: the int8 model's arena is the float one's plus the DequantizeLinear
        // nodes' plan-table entries (well under 4 KiB), where dequantized weights would add
        // at least the f32 W (4·dirs·192·40 bytes, 30 KiB per direction).
        let arena = |b: &[u8]| exec::measure(b, shapes, None).unwrap().arena;
        let (af, aq) = (arena(&original), arena(&q));
        assert!(aq < af + 4096, "arena {aq} vs float {af}");
    }
}

#[test]
fn keep_float_leaves_the_lstm_float_and_opset_12_is_raised() {
    let keep = Context {
        int8: int8::Options {
            keep_float: vec!["enc/*".into()],
            ..Default::default()
        },
        ..Default::default()
    };
    let q = compress(&lstm_model(17, false), CLEAN_INT8, &keep);
    assert_eq!(count(&q, "DequantizeLinear"), 0);
    // Opset 12 is raised to 13 for the per-gate-row scales (LSTM reads the same there).
    let q = compress(&lstm_model(12, false), CLEAN_INT8, &Context::default());
    assert_eq!(count(&q, "DequantizeLinear"), 2, "W and R");
}
