//! MatMul and Gemm with int8 weights, as the compressor writes a Linear layer: B an int8
//! constant behind `DequantizeLinear` (one scale per output column, or per tensor). Our
//! runtime reads the int8 in place (the DequantizeLinear step vanishes, see
//! `plan/qdq/matmul.rs`) and dequantizes while packing: its output must equal, bit for bit,
//! our own run of the same model with the dequantized weights stored as f32, agree with
//! tract, and plan no more arena than that float model. Patterns it does not read in place
//! (a non-zero zero point, a weight with two readers) keep their DequantizeLinear step.

use crate::common::*;
use edgetrim_compress::build::tensor;
use edgetrim_runtime::tract::OwnedTensor;
use edgetrim_runtime::{Model, Session, Target};

/// How the weight is quantized.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Weights {
    /// int8, one scale per output column (per row of a transposed Gemm B): read in place.
    PerColumn,
    /// int8, one scale for the whole tensor: read in place.
    PerTensor,
    /// int8 per column with a zero point of 1: left to DequantizeLinear.
    ZeroPoint,
}

/// The op under test.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Layer {
    /// `MatMul(x [batch, rows, k], W [k, n])`: a Linear layer on a sequence.
    MatMul,
    /// `Gemm(x [rows, k], W, c)`, W stored `[n, k]` with transB = 1 (PyTorch's Linear
    /// export) or `[k, n]`.
    Gemm { trans_b: bool },
}

#[derive(Clone, Copy, Debug)]
struct Case {
    layer: Layer,
    batch: usize,
    rows: usize,
    k: usize,
    n: usize,
    weights: Weights,
    /// Whether the model stores the dequantized weight as an f32 initializer instead (the
    /// reference).
    float: bool,
    seed: u64,
}

impl Case {
    fn x_shape(&self) -> Vec<usize> {
        match self.layer {
            Layer::MatMul => vec![self.batch, self.rows, self.k],
            Layer::Gemm { .. } => vec![self.rows, self.k],
        }
    }

    /// The stored weight's dims and the quantized axis (the output features).
    fn w_dims(&self) -> ([usize; 2], usize) {
        match self.layer {
            Layer::Gemm { trans_b: true } => ([self.n, self.k], 0),
            _ => ([self.k, self.n], 1),
        }
    }

    fn inputs(&self) -> Vec<OwnedTensor> {
        vec![rand_f32(&self.x_shape(), self.seed * 10 + 1)]
    }

    /// The weight: int8 values spanning [-127, 127] (and -128 once), scales around
    /// 0.5 / 127; returns the tensor the op reads.
    fn weight(&self, m: &mut ModelBuilder) -> String {
        let (dims, axis) = self.w_dims();
        let count = dims[0] * dims[1];
        let channels = dims[axis];
        let inner = if axis == 0 { dims[1] } else { 1 };
        let mut q: Vec<u8> = rand_vec(count, self.seed * 10 + 2)
            .iter()
            .map(|v| (v * 127.0).round() as i8 as u8)
            .collect();
        q[0] = -128i8 as u8;
        let scales: Vec<f32> = rand_vec(channels, self.seed * 10 + 3)
            .iter()
            .map(|v| (0.5 + 0.25 * v) / 127.0)
            .collect();
        let (scales, channels) = match self.weights {
            Weights::PerTensor => (vec![scales[0]], 1),
            _ => (scales, channels),
        };
        if self.float {
            let w: Vec<f32> = (0..count)
                .map(|i| f32::from(q[i] as i8) * scales[(i / inner) % channels])
                .collect();
            m.init_f32("w", &dims, &w);
            return "w".into();
        }
        let per_axis = self.weights != Weights::PerTensor;
        let pdims: &[usize] = if per_axis { &[channels] } else { &[] };
        let zero = u8::from(self.weights == Weights::ZeroPoint);
        m.init(tensor("w_q", dt::INT8, &dims, q));
        m.init_f32("w_s", pdims, &scales);
        m.init(tensor("w_z", dt::INT8, pdims, vec![zero; scales.len()]));
        let attrs = if per_axis {
            vec![("axis", Attr::Int(axis as i64))]
        } else {
            vec![]
        };
        m.node("DequantizeLinear", &["w_q", "w_s", "w_z"], &["w_f"], attrs);
        "w_f".into()
    }

    fn model(&self) -> ModelBuilder {
        let mut m = ModelBuilder::new(17);
        m.input("x", dt::FLOAT, &self.x_shape());
        let w = self.weight(&mut m);
        match self.layer {
            Layer::MatMul => {
                m.node("MatMul", &["x", &w], &["y"], vec![]);
            }
            Layer::Gemm { trans_b } => {
                let c = rand_vec(self.n, self.seed * 10 + 4);
                m.init_f32("c", &[self.n], &c);
                let attrs = vec![("transB", Attr::Int(i64::from(trans_b)))];
                m.node("Gemm", &["x", &w, "c"], &["y"], attrs);
            }
        }
        m.output("y", dt::FLOAT);
        m
    }

    fn op_name(&self) -> &'static str {
        match self.layer {
            Layer::MatMul => "MatMul",
            Layer::Gemm { .. } => "Gemm",
        }
    }
}

fn cases() -> Vec<Case> {
    let base = Case {
        layer: Layer::MatMul,
        batch: 2,
        rows: 5,
        k: 7,
        n: 9,
        weights: Weights::PerColumn,
        float: false,
        seed: 1,
    };
    let layers = [
        Layer::MatMul,
        Layer::Gemm { trans_b: true },
        Layer::Gemm { trans_b: false },
    ];
    let sizes = [
        (1, 1, 1, 1),
        (2, 5, 7, 9),
        (1, 8, 160, 192), // an RNN-T encoder's input projection on a chunk
        (1, 1, 192, 128), // its predictor's output projection, one token
        (3, 13, 33, 29),
    ];
    let mut out = vec![];
    for (i, &layer) in layers.iter().enumerate() {
        for (j, &(batch, rows, k, n)) in sizes.iter().enumerate() {
            out.push(Case {
                layer,
                batch,
                rows,
                k,
                n,
                seed: (10 * i + j) as u64 + 1,
                ..base
            });
        }
    }
    out
}

/// Our output and step names on `target`.
fn run(c: &Case, target: Target) -> (Vec<OwnedTensor>, Vec<String>) {
    run_nano_on(&c.model().build(), &c.inputs(), target)
}

#[test]
fn int8_weights_are_read_in_place_bit_for_bit() {
    for c in cases() {
        for weights in [Weights::PerColumn, Weights::PerTensor] {
            let c = Case { weights, ..c };
            let float = Case { float: true, ..c };
            for target in [Target::native(), Target::CortexM] {
                let (nano, ops) = run(&c, target);
                assert_eq!(ops, [format!("Q{}", c.op_name())], "{c:?} on {target:?}");
                let (want, _) = run(&float, target);
                assert_eq!(nano[0].bytes, want[0].bytes, "{c:?} on {target:?}");
            }
            let reference = run_tract(&c.model().build(), &c.inputs());
            assert_close(
                &format!("{c:?}"),
                &run(&c, Target::native()).0,
                &reference,
                TOL,
            );
        }
    }
}

#[test]
fn other_int8_weights_keep_their_dequantize_step_and_match_tract() {
    let c = Case {
        weights: Weights::ZeroPoint,
        ..cases()[7]
    };
    let (nano, ops) = run(&c, Target::native());
    assert_eq!(ops, ["DequantizeLinear", "Gemm"]);
    assert_close(
        "zero point",
        &nano,
        &run_tract(&c.model().build(), &c.inputs()),
        TOL,
    );

    // A weight that a second node reads stays dequantized for both.
    let mut m = ModelBuilder::new(17);
    let c = Case {
        weights: Weights::PerColumn,
        ..cases()[2]
    };
    m.input("x", dt::FLOAT, &c.x_shape());
    let w = c.weight(&mut m);
    m.node("MatMul", &["x", &w], &["y"], vec![]);
    m.node("MatMul", &["x", &w], &["z"], vec![]);
    m.output("y", dt::FLOAT);
    m.output("z", dt::FLOAT);
    let bytes = m.build();
    let (nano, ops) = run_nano_on(&bytes, &c.inputs(), Target::native());
    assert_eq!(ops, ["DequantizeLinear", "MatMul", "MatMul"]);
    assert_close("shared", &nano, &run_tract(&bytes, &c.inputs()), TOL);
}

/// The int8 MatMul plans the float model's activation bytes and constants: no f32 copy of
/// the weight, which the DequantizeLinear step (a zero point keeps it) would write.
#[test]
fn int8_weights_take_no_arena() {
    let report = |c: &Case| {
        let model_bytes = c.model().build();
        let model = Model::parse(&model_bytes).unwrap();
        let shape = c.x_shape();
        Session::arena_report_for(&model, &[&shape], Target::CortexM).unwrap()
    };
    let base = cases()[2];
    let float = report(&Case {
        float: true,
        ..base
    });
    let int8 = report(&base);
    let fallback = report(&Case {
        weights: Weights::ZeroPoint,
        ..base
    });
    assert_eq!(int8.planned, float.planned, "{int8:?} vs {float:?}");
    assert_eq!(int8.constants, float.constants);
    let w_f32 = 4 * 160 * 192;
    assert!(
        fallback.planned + fallback.constants >= float.planned + float.constants + w_f32,
        "{fallback:?} vs {float:?}"
    );
}
