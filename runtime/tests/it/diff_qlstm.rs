//! LSTMs with int8 weights, as the compressor writes them: W and R int8 constants with one
//! scale per gate row behind `DequantizeLinear(axis=1)`. Our runtime reads the int8 in place
//! (the DequantizeLinear steps vanish, see `plan/qdq/lstm.rs`) and must agree with tract,
//! which dequantizes and runs the float LSTM, on the host kernels and the Cortex-M ones.
//! The arena then holds no f32 copy of the weights: it plans the same bytes as the float
//! LSTM. Patterns it does not read in place (per-tensor scales, a non-zero zero point)
//! keep their DequantizeLinear steps and still agree with tract.

use crate::common::*;
use edgetrim_compress::build::tensor;
use edgetrim_runtime::tract::OwnedTensor;
use edgetrim_runtime::{Model, Session, Target};

/// One LSTM whose weights are (or are not) dequantized int8.
#[derive(Clone, Debug)]
struct Case {
    seq: usize,
    batch: usize,
    input: usize,
    hidden: usize,
    bidirectional: bool,
    batch_first: bool,
    bias: bool,
    /// How W and R are stored.
    weights: Weights,
    seed: u64,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Weights {
    /// Float initializers (the reference for the arena).
    Float,
    /// int8, one scale per gate row (axis 1), zero point 0: read in place.
    PerRow,
    /// int8, one scale per tensor: left to DequantizeLinear.
    PerTensor,
    /// int8 per row with a zero point of 1: left to DequantizeLinear.
    ZeroPoint,
}

impl Case {
    fn new(seq: usize, batch: usize, input: usize, hidden: usize) -> Case {
        Case {
            seq,
            batch,
            input,
            hidden,
            bidirectional: false,
            batch_first: false,
            bias: true,
            weights: Weights::PerRow,
            seed: 1,
        }
    }

    fn dirs(&self) -> usize {
        1 + usize::from(self.bidirectional)
    }

    fn state_shape(&self) -> Vec<usize> {
        let (b, d, h) = (self.batch, self.dirs(), self.hidden);
        if self.batch_first {
            vec![b, d, h]
        } else {
            vec![d, b, h]
        }
    }

    fn inputs(&self) -> Vec<OwnedTensor> {
        let x = match self.batch_first {
            true => [self.batch, self.seq, self.input],
            false => [self.seq, self.batch, self.input],
        };
        vec![
            rand_f32(&x, self.seed * 10 + 1),
            rand_f32(&self.state_shape(), self.seed * 10 + 2),
            rand_f32(&self.state_shape(), self.seed * 10 + 3),
        ]
    }

    /// Weight `name` of `k` columns: int8 values spanning [-127, 127] (and -128 once, which
    /// DequantizeLinear allows), scales around 0.5 / 127.
    fn weight(&self, m: &mut ModelBuilder, name: &str, k: usize, seed: u64) -> String {
        let rows = 4 * self.hidden;
        let dims = [self.dirs(), rows, k];
        let n = dims.iter().product();
        let values = rand_vec(n, self.seed * 10 + seed);
        let mut q: Vec<u8> = values
            .iter()
            .map(|v| (v * 127.0).round() as i8 as u8)
            .collect();
        q[0] = -128i8 as u8;
        let scales: Vec<f32> = rand_vec(rows, self.seed * 10 + seed + 5)
            .iter()
            .map(|v| (0.5 + 0.25 * v) / 127.0)
            .collect();
        if self.weights == Weights::Float {
            let w: Vec<f32> = (0..n)
                .map(|i| scales[(i / k) % rows] * f32::from(q[i] as i8))
                .collect();
            m.init_f32(name, &dims, &w);
            return name.to_string();
        }
        let (scales, zero, axis) = match self.weights {
            Weights::PerTensor => (vec![0.5 / 127.0], vec![0u8], None),
            Weights::ZeroPoint => (scales, vec![1u8; rows], Some(1)),
            _ => (scales, vec![0u8; rows], Some(1)),
        };
        let pdims: &[usize] = if axis.is_some() { &[rows] } else { &[] };
        let (nq, ns, nz, out) = (
            format!("{name}_q"),
            format!("{name}_s"),
            format!("{name}_z"),
            format!("{name}_f"),
        );
        m.init(tensor(&nq, dt::INT8, &dims, q));
        m.init_f32(&ns, pdims, &scales);
        m.init(tensor(&nz, dt::INT8, pdims, zero));
        let attrs = axis.map(|a| ("axis", Attr::Int(a))).into_iter().collect();
        m.node("DequantizeLinear", &[&nq, &ns, &nz], &[&out], attrs);
        out
    }

    fn model(&self) -> ModelBuilder {
        let (dirs, h) = (self.dirs(), self.hidden);
        let mut m = ModelBuilder::new(17);
        let x = match self.batch_first {
            true => [self.batch, self.seq, self.input],
            false => [self.seq, self.batch, self.input],
        };
        m.input("x", dt::FLOAT, &x);
        m.input("h0", dt::FLOAT, &self.state_shape());
        m.input("c0", dt::FLOAT, &self.state_shape());
        let w = self.weight(&mut m, "w", self.input, 4);
        let r = self.weight(&mut m, "r", h, 6);
        let mut b = String::new();
        if self.bias {
            let v: Vec<f32> = rand_vec(dirs * 8 * h, self.seed * 10 + 8)
                .iter()
                .map(|v| v * 0.3)
                .collect();
            m.init_f32("b", &[dirs, 8 * h], &v);
            b = "b".into();
        }
        let direction = if self.bidirectional {
            "bidirectional"
        } else {
            "forward"
        };
        let mut attrs = vec![
            ("hidden_size", Attr::Int(h as i64)),
            ("direction", Attr::Str(direction.into())),
        ];
        if self.batch_first {
            attrs.push(("layout", Attr::Int(1)));
        }
        m.node(
            "LSTM",
            &["x", &w, &r, &b, "", "h0", "c0"],
            &["y", "y_h", "y_c"],
            attrs,
        );
        for o in ["y", "y_h", "y_c"] {
            m.output(o, dt::FLOAT);
        }
        m
    }
}

/// Where tract 0.23 gets a bidirectional batch-first LSTM wrong (see diff_lstm.rs).
fn tract_fails(c: &Case) -> bool {
    c.bidirectional && c.batch_first
}

/// Ours against tract on `target`; returns our step names.
fn check_case(c: &Case, target: Target) -> Vec<String> {
    let bytes = c.model().build();
    let inputs = c.inputs();
    let (nano, ops) = run_nano_on(&bytes, &inputs, target);
    let reference = if tract_fails(c) {
        // The float model with the same (dequantized) weights, on our float path.
        let float = Case {
            weights: Weights::Float,
            ..c.clone()
        };
        run_nano_on(&float.model().build(), &inputs, target).0
    } else {
        run_tract(&bytes, &inputs)
    };
    assert_close(&format!("{c:?} on {target:?}"), &nano, &reference, TOL);
    ops
}

#[test]
fn per_row_int8_weights_are_read_in_place_and_match_tract() {
    let base = Case::new(5, 2, 7, 9);
    let cases = [
        base.clone(),
        Case {
            bias: false,
            ..base.clone()
        },
        Case {
            batch_first: true,
            ..base.clone()
        },
        Case {
            bidirectional: true,
            ..base.clone()
        },
        Case {
            bidirectional: true,
            batch_first: true,
            ..base.clone()
        },
        Case::new(1, 1, 1, 1),
        Case::new(1, 1, 40, 64), // the RNN-T predictor: one step (the recurrent product only)
        Case::new(8, 1, 160, 48), // a streaming chunk: passes of four steps plus a tail
        Case::new(7, 3, 17, 33),
    ];
    for (k, c) in cases.iter().enumerate() {
        let c = Case {
            seed: k as u64 + 1,
            ..c.clone()
        };
        for target in [Target::native(), Target::CortexM] {
            let ops = check_case(&c, target);
            assert_eq!(ops, ["QLSTM"], "{c:?} on {target:?}: one int8 LSTM step");
        }
    }
}

#[test]
fn other_int8_weights_keep_their_dequantize_steps_and_match_tract() {
    for weights in [Weights::PerTensor, Weights::ZeroPoint] {
        let c = Case {
            weights,
            // Weights over the 4 KiB that planning folds into the persistent tail.
            ..Case::new(4, 2, 40, 32)
        };
        for target in [Target::native(), Target::CortexM] {
            let ops = check_case(&c, target);
            assert_eq!(
                ops,
                ["DequantizeLinear", "DequantizeLinear", "LSTM"],
                "{weights:?}"
            );
        }
    }
}

/// The int8 LSTM plans exactly the float LSTM's activation bytes (no f32 copy of W or R),
/// where running the DequantizeLinear steps would add the f32 weights.
#[test]
fn int8_weights_take_no_arena() {
    let report = |c: &Case| {
        let bytes = c.model().build();
        let model = Model::parse(&bytes).unwrap();
        let shapes: Vec<Vec<usize>> = c.inputs().iter().map(|t| t.shape.dims().to_vec()).collect();
        let shapes: Vec<&[usize]> = shapes.iter().map(|s| s.as_slice()).collect();
        Session::arena_report_for(&model, &shapes, Target::CortexM).unwrap()
    };
    let base = Case::new(8, 1, 160, 96);
    let float = report(&Case {
        weights: Weights::Float,
        ..base.clone()
    });
    let int8 = report(&base);
    let fallback = report(&Case {
        weights: Weights::PerTensor,
        ..base.clone()
    });
    // Same planned bytes and no constant copied into the tail; only the plan tables
    // differ (the DequantizeLinear nodes still have entries).
    assert_eq!(int8.planned, float.planned, "{int8:?} vs {float:?}");
    assert_eq!(int8.constants, float.constants);
    // The dequantized path holds at least the larger weight in f32.
    let w_f32 = 4 * 4 * 96 * 160;
    assert!(
        fallback.planned >= float.planned + w_f32,
        "{fallback:?} vs {float:?}"
    );
}
