//! LSTM against tract: random shapes with and without B, initial states, peepholes and
//! each optional output, both layouts, forward and bidirectional, each planned for the
//! host (one GEMM over the sequence) and for a Cortex-M (blocks of four steps). tract
//! reads neither `direction = reverse` (one direction always runs forward there) nor
//! `clip`, so reverse is checked against forward on the time-flipped input and clip
//! against a textbook f64 LSTM (itself checked against tract). Then the refusals.

use crate::common::*;
use edgetrim_runtime::tract::OwnedTensor;
use edgetrim_runtime::{Error, Target};
use proptest::prelude::*;

/// One LSTM node and its data.
#[derive(Clone, Debug)]
struct Case {
    seq: usize,
    batch: usize,
    input: usize,
    hidden: usize,
    direction: &'static str,
    batch_first: bool,
    bias: bool,
    h0: bool,
    c0: bool,
    peep: bool,
    /// Which of Y, Y_h, Y_c are named.
    outputs: [bool; 3],
    clip: Option<f32>,
    seed: u64,
    /// Attributes added to (or replacing) the node's.
    attrs: Vec<(&'static str, Attr)>,
    /// Initializers (w, r, b) given these dims instead (zeros), to test refusals.
    dims: Vec<(&'static str, Vec<usize>)>,
    /// A constant int32 sequence_lens.
    lens: Option<Vec<i32>>,
}

impl Case {
    fn new(seq: usize, batch: usize, input: usize, hidden: usize) -> Case {
        Case {
            seq,
            batch,
            input,
            hidden,
            direction: "forward",
            batch_first: false,
            bias: true,
            h0: true,
            c0: true,
            peep: false,
            outputs: [true; 3],
            clip: None,
            seed: 1,
            attrs: vec![],
            dims: vec![],
            lens: None,
        }
    }

    /// Initializer `name`, unless [`Case::dims`] replaces it.
    fn init(&self, m: &mut ModelBuilder, name: &str, dims: &[usize], data: &[f32]) {
        match self.dims.iter().find(|(n, _)| *n == name) {
            Some((_, d)) => m.init_f32(name, d, &vec![0.0; d.iter().product()]),
            None => m.init_f32(name, dims, data),
        };
    }

    fn dirs(&self) -> usize {
        if self.direction == "bidirectional" {
            2
        } else {
            1
        }
    }

    fn x_shape(&self) -> Vec<usize> {
        match self.batch_first {
            true => vec![self.batch, self.seq, self.input],
            false => vec![self.seq, self.batch, self.input],
        }
    }

    fn state_shape(&self) -> Vec<usize> {
        match self.batch_first {
            true => vec![self.batch, self.dirs(), self.hidden],
            false => vec![self.dirs(), self.batch, self.hidden],
        }
    }

    /// Weights in [-0.5, 0.5): pre-activations stay where the gates are not saturated.
    fn weights(&self, dims: &[usize], seed: u64) -> Vec<f32> {
        let n = dims.iter().product();
        rand_vec(n, self.seed * 100 + seed)
            .iter()
            .map(|v| v * 0.5)
            .collect()
    }

    fn w(&self) -> Vec<f32> {
        self.weights(&[self.dirs(), 4 * self.hidden, self.input], 1)
    }
    fn r(&self) -> Vec<f32> {
        self.weights(&[self.dirs(), 4 * self.hidden, self.hidden], 2)
    }
    fn b(&self) -> Vec<f32> {
        self.weights(&[self.dirs(), 8 * self.hidden], 3)
    }
    fn p(&self) -> Vec<f32> {
        self.weights(&[self.dirs(), 3 * self.hidden], 4)
    }

    /// The graph inputs: X, then initial_h and initial_c when present (as the RNN-T
    /// exports feed the state).
    fn inputs(&self) -> Vec<OwnedTensor> {
        let mut v = vec![rand_f32(&self.x_shape(), self.seed * 100 + 5)];
        if self.h0 {
            v.push(rand_f32(&self.state_shape(), self.seed * 100 + 6));
        }
        if self.c0 {
            v.push(rand_f32(&self.state_shape(), self.seed * 100 + 7));
        }
        v
    }

    fn model(&self) -> ModelBuilder {
        let (dirs, h) = (self.dirs(), self.hidden);
        let mut m = ModelBuilder::new(14);
        m.input("x", dt::FLOAT, &self.x_shape());
        self.init(&mut m, "w", &[dirs, 4 * h, self.input], &self.w());
        self.init(&mut m, "r", &[dirs, 4 * h, h], &self.r());
        let mut ins = vec!["x", "w", "r", "", "", "", "", ""];
        if self.bias {
            self.init(&mut m, "b", &[dirs, 8 * h], &self.b());
            ins[3] = "b";
        }
        if let Some(lens) = &self.lens {
            let bytes = lens.iter().flat_map(|v| v.to_le_bytes()).collect();
            m.init(edgetrim_compress::build::tensor(
                "lens",
                dt::INT32,
                &[lens.len()],
                bytes,
            ));
            ins[4] = "lens";
        }
        if self.h0 {
            m.input("h0", dt::FLOAT, &self.state_shape());
            ins[5] = "h0";
        }
        if self.c0 {
            m.input("c0", dt::FLOAT, &self.state_shape());
            ins[6] = "c0";
        }
        if self.peep {
            self.init(&mut m, "p", &[dirs, 3 * h], &self.p());
            ins[7] = "p";
        }
        while ins.last() == Some(&"") {
            ins.pop();
        }
        let mut outs: Vec<&str> = ["y", "y_h", "y_c"]
            .iter()
            .zip(self.outputs)
            .map(|(name, on)| if on { *name } else { "" })
            .collect();
        while outs.last() == Some(&"") {
            outs.pop();
        }
        let mut attrs = vec![
            ("hidden_size", Attr::Int(h as i64)),
            ("direction", Attr::Str(self.direction.into())),
        ];
        if self.batch_first {
            attrs.push(("layout", Attr::Int(1)));
        }
        if let Some(t) = self.clip {
            attrs.push(("clip", Attr::Float(t)));
        }
        for (name, value) in &self.attrs {
            attrs.retain(|(n, _)| n != name);
            attrs.push((name, value.clone()));
        }
        m.node("LSTM", &ins, &outs, attrs);
        for o in outs.iter().filter(|o| !o.is_empty()) {
            m.output(o, dt::FLOAT);
        }
        m
    }

    /// [`Case::reference`] for the named outputs, shaped as the node declares them.
    fn reference_outputs(&self) -> Vec<OwnedTensor> {
        let y: Vec<usize> = match self.batch_first {
            true => vec![self.batch, self.seq, self.dirs(), self.hidden],
            false => vec![self.seq, self.dirs(), self.batch, self.hidden],
        };
        let shapes = [y, self.state_shape(), self.state_shape()];
        let values = self.reference();
        (0..3)
            .filter(|&k| self.outputs[k])
            .map(|k| f32_tensor(&shapes[k], &values[k]))
            .collect()
    }

    /// The ONNX formulas one element at a time in f64: Y, Y_h, Y_c (all three).
    fn reference(&self) -> [Vec<f32>; 3] {
        let (s, nb, ni, h, dirs) = (self.seq, self.batch, self.input, self.hidden, self.dirs());
        let inputs = self.inputs();
        let x = inputs[0].to_f32_vec();
        let mut k = 1;
        let mut state = |on: bool| {
            on.then(|| {
                k += 1;
                inputs[k - 1].to_f32_vec()
            })
        };
        let (h0, c0) = (state(self.h0), state(self.c0));
        let (w, r, b, p) = (self.w(), self.r(), self.b(), self.p());
        let bf = self.batch_first;
        let x_at = |t: usize, bi: usize| if bf { bi * s + t } else { t * nb + bi } * ni;
        let y_at = |t, d, bi| match bf {
            true => ((bi * s + t) * dirs + d) * h,
            false => ((t * dirs + d) * nb + bi) * h,
        };
        let st_at = |d, bi| if bf { bi * dirs + d } else { d * nb + bi } * h;
        let clip = |v: f64| self.clip.map_or(v, |c| v.clamp(-(c as f64), c as f64));
        let sig = |v: f64| 1.0 / (1.0 + (-clip(v)).exp());
        let (mut y, mut yh, mut yc) = (
            vec![0f32; s * dirs * nb * h],
            vec![0f32; dirs * nb * h],
            vec![0f32; dirs * nb * h],
        );
        for d in 0..dirs {
            let back = self.direction == "reverse" || d == 1;
            for bi in 0..nb {
                let at = st_at(d, bi);
                let mut hv: Vec<f64> = (0..h)
                    .map(|j| h0.as_ref().map_or(0.0, |v| v[at + j] as f64))
                    .collect();
                let mut cv: Vec<f64> = (0..h)
                    .map(|j| c0.as_ref().map_or(0.0, |v| v[at + j] as f64))
                    .collect();
                for i in 0..s {
                    let t = if back { s - 1 - i } else { i };
                    let gate = |g: usize, j: usize| {
                        let row = d * 4 * h + g * h + j;
                        let mut v: f64 = (0..ni)
                            .map(|q| w[row * ni + q] as f64 * x[x_at(t, bi) + q] as f64)
                            .sum();
                        v += (0..h).map(|q| r[row * h + q] as f64 * hv[q]).sum::<f64>();
                        if self.bias {
                            v += b[d * 8 * h + g * h + j] as f64
                                + b[d * 8 * h + 4 * h + g * h + j] as f64;
                        }
                        v
                    };
                    let peep = |g: usize, j: usize, c: f64| {
                        if self.peep {
                            p[d * 3 * h + g * h + j] as f64 * c
                        } else {
                            0.0
                        }
                    };
                    let mut next = vec![0f64; h];
                    for j in 0..h {
                        let ig = sig(gate(0, j) + peep(0, j, cv[j]));
                        let fg = sig(gate(2, j) + peep(2, j, cv[j]));
                        let cand = clip(gate(3, j)).tanh();
                        cv[j] = fg * cv[j] + ig * cand;
                        let og = sig(gate(1, j) + peep(1, j, cv[j]));
                        next[j] = og * cv[j].tanh();
                    }
                    hv = next;
                    for j in 0..h {
                        y[y_at(t, d, bi) + j] = hv[j] as f32;
                    }
                }
                for j in 0..h {
                    yh[st_at(d, bi) + j] = hv[j] as f32;
                    yc[st_at(d, bi) + j] = cv[j] as f32;
                }
            }
        }
        [y, yh, yc]
    }
}

/// Where tract 0.23 gets an LSTM wrong: a bidirectional batch-first one has its outputs
/// concatenated along the wrong axes, and a forward one with `[seq, batch>1, ..]` input
/// and neither initial state fails in its Scan ("Clashing resolution for expression").
fn tract_fails(c: &Case) -> bool {
    let no_state = !c.h0 && !c.c0 && c.dirs() == 1 && !c.batch_first && c.batch > 1;
    (c.dirs() == 2 && c.batch_first) || no_state
}

/// Our outputs on `target` against tract's, or against the f64 reference (itself checked
/// against tract, [`reference_matches_tract`]) where [`tract_fails`].
fn check_case(c: &Case, target: Target) {
    let bytes = c.model().build();
    let inputs = c.inputs();
    let (nano, _) = run_nano_on(&bytes, &inputs, target);
    let reference = if tract_fails(c) {
        c.reference_outputs()
    } else {
        run_tract(&bytes, &inputs)
    };
    assert_close(&format!("{c:?} on {target:?}"), &nano, &reference, TOL);
}

#[test]
fn fixed_table_matches_tract() {
    let base = Case::new(5, 2, 7, 9);
    let mut cases = vec![
        base.clone(),
        Case {
            bias: false,
            h0: false,
            c0: false,
            ..base.clone()
        },
        Case {
            h0: false,
            ..base.clone()
        },
        Case {
            c0: false,
            peep: true,
            ..base.clone()
        },
        Case {
            outputs: [true, false, false],
            ..base.clone()
        },
        Case {
            outputs: [false, true, false],
            ..base.clone()
        },
        Case {
            outputs: [false, false, true],
            ..base.clone()
        },
        Case {
            outputs: [false, true, true],
            ..base.clone()
        },
        Case {
            batch_first: true,
            ..base.clone()
        },
        Case {
            direction: "bidirectional",
            ..base.clone()
        },
        Case {
            direction: "bidirectional",
            batch_first: true,
            peep: true,
            ..base.clone()
        },
        Case::new(1, 1, 1, 1),
        Case::new(1, 1, 40, 64), // the RNN-T predictor's shape: one step, one row (GEMV path)
        Case::new(7, 3, 17, 33),
        Case::new(8, 1, 160, 48), // a streaming chunk: 8 steps, GEMM path, K over one block
    ];
    for (k, c) in cases.iter_mut().enumerate() {
        c.seed = k as u64 + 1;
        check_case(c, Target::native());
        check_case(c, Target::CortexM);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(40))]
    #[test]
    fn random_shapes_match_tract(
        seq in 1usize..8, batch in 1usize..4, input in 1usize..18, hidden in 1usize..34,
        bits in 0u32..256, seed in 1u64..1000,
    ) {
        let bit = |i: u32| bits & (1 << i) != 0;
        let mut outputs = [bit(0), bit(1), bit(2)];
        if outputs == [false; 3] {
            outputs[1] = true;
        }
        let c = Case {
            direction: if bit(3) { "bidirectional" } else { "forward" },
            batch_first: bit(4),
            bias: bit(5),
            h0: bit(6),
            c0: bit(7),
            peep: seed % 3 == 0,
            outputs,
            seed,
            ..Case::new(seq, batch, input, hidden)
        };
        check_case(&c, Target::native());
        check_case(&c, Target::CortexM);
    }
}

/// The f64 reference agrees with tract where both apply, so it can judge clip.
#[test]
fn reference_matches_tract() {
    for c in [
        Case::new(4, 2, 5, 6),
        Case {
            peep: true,
            batch_first: true,
            ..Case::new(3, 3, 4, 5)
        },
        Case {
            direction: "bidirectional",
            h0: false,
            ..Case::new(6, 1, 3, 7)
        },
    ] {
        let tract = run_tract(&c.model().build(), &c.inputs());
        assert_close(
            &format!("reference {c:?}"),
            &c.reference_outputs(),
            &tract,
            1e-5,
        );
    }
}

#[test]
fn clip_bounds_the_gate_inputs() {
    for (k, target) in [Target::native(), Target::CortexM].into_iter().enumerate() {
        let c = Case {
            clip: Some(0.3),
            peep: true,
            seed: 3 + k as u64,
            ..Case::new(6, 2, 9, 10)
        };
        let (nano, _) = run_nano_on(&c.model().build(), &c.inputs(), target);
        let unclipped = Case {
            clip: None,
            ..c.clone()
        };
        assert_ne!(
            c.reference(),
            unclipped.reference(),
            "clip must change this case"
        );
        assert_close("clip 0.3", &nano, &c.reference_outputs(), TOL);
    }
}

/// Flips the step axis of a `[seq, rest..]` (or, batch first, `[batch, seq, rest..]`)
/// tensor.
fn flip_steps(t: &OwnedTensor, batch_first: bool) -> OwnedTensor {
    let dims = t.shape.dims();
    let (outer, seq) = if batch_first {
        (dims[0], dims[1])
    } else {
        (1, dims[0])
    };
    let row = t.bytes.len() / (outer * seq);
    let mut out = t.clone();
    for o in 0..outer {
        for s in 0..seq {
            let (src, dst) = ((o * seq + s) * row, (o * seq + seq - 1 - s) * row);
            out.bytes[dst..dst + row].copy_from_slice(&t.bytes[src..src + row]);
        }
    }
    out
}

#[test]
fn reverse_is_forward_on_the_flipped_sequence() {
    let shapes = [(7, 2, false), (5, 3, true), (1, 1, false), (9, 1, false)];
    for (k, (seq, batch, batch_first)) in shapes.into_iter().enumerate() {
        let fwd = Case {
            seed: 20 + k as u64,
            batch_first,
            ..Case::new(seq, batch, 6, 11)
        };
        let rev = Case {
            direction: "reverse",
            ..fwd.clone()
        };
        let mut flipped = fwd.inputs();
        flipped[0] = flip_steps(&flipped[0], batch_first);
        for target in [Target::native(), Target::CortexM] {
            let (r, _) = run_nano_on(&rev.model().build(), &rev.inputs(), target);
            let (f, _) = run_nano_on(&fwd.model().build(), &flipped, target);
            assert_close("Y", &r[..1], &[flip_steps(&f[0], batch_first)], 1e-6);
            assert_close("Y_h, Y_c", &r[1..], &f[1..], 1e-6);
            if seq > 1 {
                let (plain, _) = run_nano_on(&fwd.model().build(), &fwd.inputs(), target);
                assert_ne!(r[1], plain[1], "reverse must not run forward");
            }
        }
    }
}

/// The planning error of the base refusal case changed by `edit`.
fn refused(edit: impl FnOnce(&mut Case)) -> Option<Error> {
    let mut c = Case::new(3, 2, 4, 5);
    edit(&mut c);
    let inputs = c.inputs();
    let shapes: Vec<&[usize]> = inputs.iter().map(|t| t.shape.dims()).collect();
    plan_err(&c.model(), &shapes)
}

fn bad_attr(err: Option<Error>, want: &str) {
    match err {
        Some(Error::BadAttribute { node, attr, .. }) => {
            assert_eq!((node.as_str(), attr.as_str()), ("LSTM_0", want))
        }
        other => panic!("{want}: expected BadAttribute on LSTM_0, got {other:?}"),
    }
}

fn bad_node(err: Option<Error>, what: &str) {
    match err {
        Some(Error::BadNode { node, op, .. }) => {
            assert_eq!((node.as_str(), op.as_str()), ("LSTM_0", "LSTM"), "{what}")
        }
        other => panic!("{what}: expected BadNode on LSTM_0, got {other:?}"),
    }
}

#[test]
fn unsupported_attributes_are_refused_naming_the_node() {
    let attr = |name: &'static str, value: Attr| refused(|c| c.attrs.push((name, value)));
    let acts = |v: &[&str]| Attr::Strings(v.iter().map(|s| s.to_string()).collect());
    // The explicit default list is read (a STRINGS attribute) and accepted.
    assert_eq!(
        attr("activations", acts(&["Sigmoid", "Tanh", "Tanh"])),
        None
    );
    for wrong in [
        &["Relu", "Tanh", "Tanh"][..],
        &["Sigmoid", "Tanh", "Relu"],
        &["Sigmoid"],
    ] {
        bad_attr(attr("activations", acts(wrong)), "activations");
    }
    bad_attr(
        attr("activations", Attr::Str("Sigmoid".into())),
        "activations",
    );
    bad_attr(attr("input_forget", Attr::Int(1)), "input_forget");
    bad_attr(attr("clip", Attr::Float(0.0)), "clip");
    bad_attr(attr("clip", Attr::Float(-1.0)), "clip");
    bad_attr(attr("hidden_size", Attr::Int(6)), "hidden_size");
    bad_attr(attr("layout", Attr::Int(2)), "layout");
    bad_attr(attr("direction", Attr::Str("sideways".into())), "direction");
    // Two directions need two directions of weights.
    bad_node(
        attr("direction", Attr::Str("bidirectional".into())),
        "bidirectional with one direction of weights",
    );
}

#[test]
fn bad_shapes_and_sequence_lens_are_refused() {
    let dims = |name: &'static str, d: &[usize]| {
        let d = d.to_vec();
        refused(move |c| c.dims.push((name, d)))
    };
    bad_node(dims("w", &[1, 20, 5]), "W input size");
    bad_node(dims("w", &[1, 16, 4]), "W gate rows");
    bad_node(dims("w", &[20, 4]), "W 2-D");
    bad_node(dims("r", &[1, 16, 5]), "R rows not 4 x hidden_size");
    bad_node(dims("b", &[1, 20]), "B too short");
    bad_node(
        refused(|c| {
            c.peep = true;
            c.dims.push(("p", vec![1, 10]));
        }),
        "P too short",
    );

    // sequence_lens all equal to seq is a no-op; shorter ones are refused.
    assert_eq!(refused(|c| c.lens = Some(vec![3, 3])), None);
    bad_node(refused(|c| c.lens = Some(vec![3, 2])), "a shorter sequence");
    bad_node(
        refused(|c| c.lens = Some(vec![3])),
        "one length for two sequences",
    );
}

/// sequence_lens equal to seq changes nothing, and tract agrees.
#[test]
fn full_sequence_lens_run() {
    let c = Case {
        lens: Some(vec![4, 4]),
        ..Case::new(4, 2, 3, 5)
    };
    check_case(&c, Target::native());
}

/// An unnamed output takes no arena bytes.
#[test]
fn unnamed_outputs_take_no_arena() {
    let total = |outputs: [bool; 3]| {
        let c = Case {
            outputs,
            ..Case::new(7, 3, 5, 33)
        };
        let bytes = c.model().build();
        let model = edgetrim_runtime::Model::parse(&bytes).unwrap();
        let inputs = c.inputs();
        let shapes: Vec<&[usize]> = inputs.iter().map(|t| t.shape.dims()).collect();
        edgetrim_runtime::Session::arena_report(&model, &shapes)
            .unwrap()
            .planned
    };
    let y_bytes = 7 * 3 * 33 * 4;
    assert!(total([false, true, true]) + y_bytes <= total([true, true, true]));
}
