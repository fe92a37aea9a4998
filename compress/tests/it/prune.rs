//! Channel and weight pruning on small graphs built here: coupled tensors shrink together
//! (residual Add, Split, Concat, Slice, depthwise conv, Gemm), what the analysis does not
//! understand stays whole, the pruned model runs the same on our runtime and on tract, and
//! least-squares reconstruction recovers what a linear redundancy lost.

use crate::common::{abs_diff, compress, decode, nano, rel_diff, tract, vals};
use edgetrim_compress::build::{dt, tensor_i64, Attr, ModelBuilder};
use edgetrim_compress::passes::prune::{Channels, Options, Scope, Weights};
use edgetrim_compress::passes::{Context, Pass, Pipeline};
use edgetrim_compress::pb::ModelProto;

const X: &[&[usize]] = &[&[1, 3, 8, 8]];

fn dims(m: &ModelProto, name: &str) -> Vec<i64> {
    let g = m.graph.as_ref().unwrap();
    g.initializer
        .iter()
        .find(|t| t.name == name)
        .unwrap_or_else(|| panic!("no initializer {name}"))
        .dims
        .clone()
}

fn ints_input(m: &ModelProto, node: &str, slot: usize) -> Vec<i64> {
    let g = m.graph.as_ref().unwrap();
    let n = g.node.iter().find(|n| n.name == node).unwrap();
    let t = g
        .initializer
        .iter()
        .find(|t| t.name == n.input[slot])
        .unwrap();
    t.raw_data
        .chunks_exact(8)
        .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

fn attr_int(m: &ModelProto, node: &str, name: &str) -> i64 {
    let g = m.graph.as_ref().unwrap();
    let n = g.node.iter().find(|n| n.name == node).unwrap();
    n.attribute.iter().find(|a| a.name == name).unwrap().i
}

fn conv(m: &mut ModelBuilder, x: &str, w: &str, y: &str, pads: i64, extra: Vec<(&str, Attr)>) {
    let b = format!("{w}.b");
    let mut attrs = vec![("pads", Attr::Ints(vec![pads; 4]))];
    attrs.extend(extra);
    m.node("Conv", &[x, w, &b], &[y], attrs);
}

/// A GELAN-like block with every coupling the analysis knows:
///
/// ```text
/// x → A(3x3) → SiLU ─┬──────────── Add → r → Split[4,4] → s0 ─────────┐
///                    └→ B(1x1) → Relu ┘    │       └→ s1 ─┬──────────┤ Concat → MaxPool → Resize
///                                          │              └→ C → Relu┘   → depthwise → D → y
///                                          └→ E → Reshape → y2          Concat → Slice[2:12] →
///                                                                       GAP → Flatten → Gemm → y3
/// ```
fn block() -> ModelBuilder {
    let mut m = ModelBuilder::new(17);
    m.input("x", dt::FLOAT, &[1, 3, 8, 8]);
    for (name, shape, seed) in [
        ("A", [8, 3, 3, 3], 1),
        ("B", [8, 8, 1, 1], 2),
        ("C", [6, 4, 1, 1], 3),
        ("DW", [14, 1, 3, 3], 4),
        ("D", [5, 14, 1, 1], 5),
        ("E", [4, 8, 1, 1], 6),
    ] {
        let n: usize = shape.iter().product();
        m.init_f32(name, &shape, &vals(n, seed, 0.0));
        m.init_f32(
            &format!("{name}.b"),
            &shape[..1],
            &vals(shape[0], seed + 50, 0.0),
        );
    }
    m.init_f32("G", &[3, 10], &vals(30, 7, 0.0));
    m.init_f32("G.b", &[3], &[0.1, -0.2, 0.3]);
    m.init(tensor_i64("split", &[2], &[4, 4]));
    m.init(tensor_i64("starts", &[1], &[2]));
    m.init(tensor_i64("ends", &[1], &[12]));
    m.init(tensor_i64("axes", &[1], &[1]));
    m.init(tensor_i64("shape", &[3], &[1, 4, 64]));
    m.init_f32("scales", &[4], &[1.0, 1.0, 2.0, 2.0]);
    conv(&mut m, "x", "A", "a0", 1, vec![]);
    m.node("Sigmoid", &["a0"], &["a1"], vec![]);
    m.node("Mul", &["a0", "a1"], &["a"], vec![]);
    conv(&mut m, "a", "B", "b0", 0, vec![]);
    m.node("Relu", &["b0"], &["b"], vec![]);
    m.node("Add", &["a", "b"], &["r"], vec![]);
    m.node(
        "Split",
        &["r", "split"],
        &["s0", "s1"],
        vec![("axis", Attr::Int(1))],
    );
    conv(&mut m, "s1", "C", "c0", 0, vec![]);
    m.node("Relu", &["c0"], &["c"], vec![]);
    m.node(
        "Concat",
        &["s0", "s1", "c"],
        &["cat"],
        vec![("axis", Attr::Int(1))],
    );
    m.node(
        "MaxPool",
        &["cat"],
        &["mp"],
        vec![
            ("kernel_shape", Attr::Ints(vec![3, 3])),
            ("pads", Attr::Ints(vec![1; 4])),
        ],
    );
    m.node(
        "Resize",
        &["mp", "", "scales"],
        &["up"],
        vec![("mode", Attr::Str("nearest".into()))],
    );
    conv(&mut m, "up", "DW", "dw", 1, vec![("group", Attr::Int(14))]);
    conv(&mut m, "dw", "D", "y", 0, vec![]);
    conv(&mut m, "r", "E", "e", 0, vec![]);
    m.node("Reshape", &["e", "shape"], &["y2"], vec![]);
    m.node("Slice", &["cat", "starts", "ends", "axes"], &["sl"], vec![]);
    m.node("GlobalAveragePool", &["sl"], &["gap"], vec![]);
    m.node("Flatten", &["gap"], &["flat"], vec![]);
    m.node(
        "Gemm",
        &["flat", "G", "G.b"],
        &["y3"],
        vec![("transB", Attr::Int(1))],
    );
    m.output("y", dt::FLOAT);
    m.output("y2", dt::FLOAT);
    m.output("y3", dt::FLOAT);
    m
}

fn channels(ratio: f32, reconstruct: bool) -> Context {
    Context {
        prune: Options {
            channels: Channels {
                ratio,
                reconstruct,
                scope: Scope::Layer,
                ..Channels::default()
            },
            ..Options::default()
        },
        ..Context::default()
    }
}

const PRUNE: &[Pass] = &[Pass::Clean, Pass::PruneChannels];

fn summary(bytes: &[u8], passes: &[Pass], ctx: &Context) -> String {
    let stages = Pipeline::new(passes.to_vec())
        .run(bytes, ctx)
        .expect("pipeline");
    stages.last().unwrap().summary.clone()
}

#[test]
fn ratio_zero_is_identity() {
    let original = block().build();
    let cleaned = compress(&original, &[Pass::Clean], &Context::default());
    let pruned = compress(&original, PRUNE, &channels(0.0, true));
    assert_eq!(pruned, cleaned, "nothing changes at ratio 0");
    assert!(summary(&original, PRUNE, &channels(0.0, true)).starts_with("0 of "));
}

#[test]
fn coupled_channels_shrink_together_and_both_runtimes_agree() {
    let original = block().build();
    for reconstruct in [false, true] {
        let bytes = compress(&original, PRUNE, &channels(0.5, reconstruct));
        let m = decode(&bytes);
        // The residual couples A and B: one layer of 8 channels, half removed.
        assert_eq!(dims(&m, "A")[0], 4);
        assert_eq!(dims(&m, "B"), [4, 4, 1, 1]);
        assert_eq!(dims(&m, "B.b"), [4]);
        // E reads r (input pruned) but feeds a Reshape: its outputs stay.
        assert_eq!(dims(&m, "E"), [4, 4, 1, 1]);
        // Split sizes follow the kept channels, neither half emptied.
        let split = ints_input(&m, "Split_6", 1);
        assert_eq!(split.iter().sum::<i64>(), 4);
        assert!(split.iter().all(|&s| s >= 1), "{split:?}");
        // C: 3 of 6 outputs, inputs = the kept half s1.
        assert_eq!(dims(&m, "C"), [3, split[1], 1, 1]);
        // Concat = s0 + s1 + c; the depthwise conv and D follow it, D's outputs stay.
        let cat = 4 + 3;
        assert_eq!(dims(&m, "DW"), [cat, 1, 3, 3]);
        assert_eq!(attr_int(&m, "Conv_12", "group"), cat);
        assert_eq!(dims(&m, "D"), [5, cat, 1, 1]);
        // Slice [2, 12) of the concat: bounds rewritten, the Gemm reads what it keeps.
        let (start, end) = (ints_input(&m, "Slice_16", 1), ints_input(&m, "Slice_16", 2));
        assert!(
            start[0] <= 2 && end[0] > start[0] && end[0] <= cat,
            "{start:?} {end:?}"
        );
        assert_eq!(dims(&m, "G"), [3, end[0] - start[0]]);
        // Same graph outputs, same shapes, same results on both runtimes.
        let ours = nano(&bytes, X);
        assert_eq!(
            ours.iter().map(Vec::len).collect::<Vec<_>>(),
            [5 * 256, 256, 3]
        );
        assert!(rel_diff(&ours, &tract(&bytes, X)) < 1e-4);
    }
}

#[test]
fn what_the_analysis_does_not_understand_stays() {
    let original = block().build();
    let text = summary(&original, PRUNE, &channels(0.5, false));
    // E feeds a Reshape, D and the Gemm graph outputs.
    assert!(text.contains("4 reach Reshape Reshape_15"), "{text}");
    assert!(text.contains("graph output y"), "{text}");
    // Counting: A+B 8, C 6, D 5, E 4, Gemm 3 classes; 4 + 3 removed.
    assert!(
        text.starts_with("7 of 26 channels removed (14 prunable in 2 layers"),
        "{text}"
    );
}

#[test]
fn output_is_deterministic() {
    let original = block().build();
    let ctx = channels(0.4, true);
    assert_eq!(
        compress(&original, PRUNE, &ctx),
        compress(&original, PRUNE, &ctx)
    );
}

/// x → Conv1 (4→6, 1x1) → Conv2 (6→3, 1x1) → y, no activation, where Conv1's channels 4
/// and 5 are a tenth of channels 0 and 1 (plus a bias): the smallest by L1, so pruned first,
/// and exactly recoverable by Conv2 from channels 0 and 1.
fn redundant() -> ModelBuilder {
    let mut m = ModelBuilder::new(13);
    m.input("x", dt::FLOAT, &[1, 4, 6, 6]);
    let mut w1 = vals(24, 1, 0.0);
    for k in 0..4 {
        w1[16 + k] = 0.1 * w1[k];
        w1[20 + k] = 0.1 * w1[4 + k];
    }
    m.init_f32("w1", &[6, 4, 1, 1], &w1);
    m.init_f32("b1", &[6], &[0.1, 0.2, 0.3, 0.4, 0.5, -0.5]);
    m.init_f32("w2", &[3, 6, 1, 1], &vals(18, 2, 0.5));
    m.node("Conv", &["x", "w1", "b1"], &["h"], vec![]);
    m.node("Conv", &["h", "w2"], &["y"], vec![]);
    m.output("y", dt::FLOAT);
    m
}

#[test]
fn reconstruction_recovers_a_linear_redundancy() {
    let original = redundant().build();
    let shapes: &[&[usize]] = &[&[1, 4, 6, 6]];
    let reference = nano(&original, shapes);
    let plain = compress(&original, PRUNE, &channels(0.34, false));
    let rebuilt = compress(&original, PRUNE, &channels(0.34, true));
    assert_eq!(dims(&decode(&plain), "w1"), [4, 4, 1, 1]);
    let w2 = dims(&decode(&rebuilt), "w2");
    assert_eq!(w2, [3, 4, 1, 1]);
    let (e_plain, e_rebuilt) = (
        abs_diff(&reference, &nano(&plain, shapes)),
        abs_diff(&reference, &nano(&rebuilt, shapes)),
    );
    assert!(
        e_plain > 0.1,
        "slicing alone loses the removed channels: {e_plain}"
    );
    // Exact up to the ridge, which pulls towards the sliced weights.
    assert!(e_rebuilt < 5e-3 * e_plain, "{e_rebuilt} vs {e_plain}");
    // Conv2 had no bias: the fit added one.
    let g = decode(&rebuilt).graph.unwrap();
    assert_eq!(g.node[1].input.len(), 3);
    assert!(rel_diff(&nano(&rebuilt, shapes), &tract(&rebuilt, shapes)) < 1e-5);
}

#[test]
fn reconstruction_lowers_the_error_of_a_nonlinear_block() {
    let original = block().build();
    let reference = nano(&original, X);
    let err = |reconstruct| {
        let bytes = compress(&original, PRUNE, &channels(0.5, reconstruct));
        let ours = nano(&bytes, X);
        // y and y3 (y2 is the untouched E path).
        abs_diff(&reference[..1], &ours[..1]) + abs_diff(&reference[2..], &ours[2..])
    };
    let (plain, rebuilt) = (err(false), err(true));
    assert!(rebuilt < 0.7 * plain, "{rebuilt} vs {plain}");
}

/// Two branches of equal cost added into the output, one scaled by 1e-3.
fn two_branches() -> ModelBuilder {
    let mut m = ModelBuilder::new(13);
    m.input("x", dt::FLOAT, &[1, 3, 8, 8]);
    for (name, shape, seed) in [
        ("A", [8, 3, 3, 3], 1),
        ("A2", [4, 8, 1, 1], 2),
        ("B", [8, 3, 3, 3], 3),
        ("B2", [4, 8, 1, 1], 4),
    ] {
        let n: usize = shape.iter().product();
        m.init_f32(name, &shape, &vals(n, seed, 0.0));
        m.init_f32(
            &format!("{name}.b"),
            &shape[..1],
            &vals(shape[0], seed + 50, 0.0),
        );
    }
    m.init_f32("quiet", &[1], &[1e-3]);
    conv(&mut m, "x", "A", "a0", 1, vec![]);
    m.node("Relu", &["a0"], &["a"], vec![]);
    conv(&mut m, "a", "A2", "a2", 0, vec![]);
    conv(&mut m, "x", "B", "b0", 1, vec![]);
    m.node("Relu", &["b0"], &["b"], vec![]);
    conv(&mut m, "b", "B2", "b2", 0, vec![]);
    m.node("Mul", &["b2", "quiet"], &["b3"], vec![]);
    m.node("Add", &["a2", "b3"], &["y"], vec![]);
    m.output("y", dt::FLOAT);
    m
}

/// The scan finds the quiet branch insensitive and takes most of the savings there.
#[test]
fn sensitivity_prunes_the_quiet_branch_first() {
    let m = two_branches();
    let mut ctx = channels(0.5, false);
    ctx.prune.channels.scope = Scope::Sensitivity;
    let text = summary(&m.build(), PRUNE, &ctx);
    let p = decode(&compress(&m.build(), PRUNE, &ctx));
    let (a, b) = (dims(&p, "A")[0], dims(&p, "B")[0]);
    assert!(a > b && a + b <= 8, "A keeps {a}, B keeps {b}: {text}");
    assert!(text.contains("layer ratios"), "{text}");
}

/// `macs=F` sets the scan's budget on the pruned graph itself: it saves at least that
/// share, and a larger share removes more.
#[test]
fn sensitivity_meets_a_mac_budget() {
    let original = two_branches().build();
    let shape: &[&[usize]] = &[&[1, 3, 8, 8]];
    let base = edgetrim_compress::exec::measure(&original, shape, None)
        .unwrap()
        .macs as f64;
    let mut kept = Vec::new();
    for share in [0.2f32, 0.5] {
        let mut ctx = channels(0.5, false);
        ctx.prune.channels.scope = Scope::Sensitivity;
        ctx.prune.channels.macs = Some(share);
        let bytes = compress(&original, PRUNE, &ctx);
        let macs = edgetrim_compress::exec::measure(&bytes, shape, None)
            .unwrap()
            .macs as f64;
        assert!(
            macs <= (1.0 - f64::from(share)) * base,
            "{share}: {macs} of {base}"
        );
        let p = decode(&bytes);
        kept.push(dims(&p, "A")[0] + dims(&p, "B")[0]);
    }
    assert!(kept[0] > kept[1], "kept channels {kept:?}");
}

/// x[2,8] → Gemm(8→16, transB) → Relu → Gemm(16→4) → y: dense layers prune too.
#[test]
fn gemm_layers_prune_both_weight_layouts() {
    let mut m = ModelBuilder::new(13);
    m.input("x", dt::FLOAT, &[2, 8]);
    m.init_f32("w1", &[16, 8], &vals(128, 1, 0.0));
    m.init_f32("b1", &[16], &vals(16, 2, 0.0));
    m.init_f32("w2", &[16, 4], &vals(64, 3, 0.0));
    m.node(
        "Gemm",
        &["x", "w1", "b1"],
        &["h0"],
        vec![("transB", Attr::Int(1))],
    );
    m.node("Relu", &["h0"], &["h"], vec![]);
    m.node("Gemm", &["h", "w2"], &["y"], vec![]);
    m.output("y", dt::FLOAT);
    let shapes: &[&[usize]] = &[&[2, 8]];
    let bytes = compress(&m.build(), PRUNE, &channels(0.25, true));
    let p = decode(&bytes);
    assert_eq!(dims(&p, "w1"), [12, 8]);
    assert_eq!(dims(&p, "b1"), [12]);
    assert_eq!(dims(&p, "w2"), [12, 4]);
    assert!(rel_diff(&nano(&bytes, shapes), &tract(&bytes, shapes)) < 1e-5);
}

/// x → P(3→8) → Relu → Q(8→4, group 2) → y: Q's column c reads channel c of both input
/// groups, so P's channels c and c + 4 go together and Q keeps two equal groups.
#[test]
fn grouped_convs_keep_equal_groups() {
    let mut m = ModelBuilder::new(13);
    m.input("x", dt::FLOAT, &[1, 3, 8, 8]);
    m.init_f32("P", &[8, 3, 3, 3], &vals(216, 1, 0.0));
    m.init_f32("P.b", &[8], &vals(8, 2, 0.0));
    m.init_f32("Q", &[4, 4, 3, 3], &vals(144, 3, 0.0));
    m.init_f32("Q.b", &[4], &vals(4, 4, 0.0));
    conv(&mut m, "x", "P", "p0", 1, vec![]);
    m.node("Relu", &["p0"], &["p"], vec![]);
    conv(&mut m, "p", "Q", "y", 1, vec![("group", Attr::Int(2))]);
    m.output("y", dt::FLOAT);
    let bytes = compress(&m.build(), PRUNE, &channels(0.5, true));
    let p = decode(&bytes);
    assert_eq!(dims(&p, "P")[0], 4);
    assert_eq!(dims(&p, "Q"), [4, 2, 3, 3]);
    assert_eq!(attr_int(&p, "Conv_2", "group"), 2);
    assert!(rel_diff(&nano(&bytes, X), &tract(&bytes, X)) < 1e-5);
}

fn weights(ratio: f32, scope: Scope) -> Context {
    Context {
        prune: Options {
            weights: Weights { ratio, scope },
            ..Options::default()
        },
        ..Context::default()
    }
}

#[test]
fn weight_pruning_zeros_the_smallest_per_layer_or_globally() {
    use edgetrim_compress::passes::prune::weights::sparsity;
    let original = block().build();
    let passes = &[Pass::Clean, Pass::PruneWeights];
    let per_layer = compress(&original, passes, &weights(0.5, Scope::Layer));
    let s = sparsity(decode(&per_layer).graph.as_ref().unwrap());
    assert_eq!(s.layers.len(), 7);
    for l in &s.layers {
        assert_eq!(l.zeros, l.weights / 2, "{l:?}");
    }
    let global = compress(&original, passes, &weights(0.5, Scope::Global));
    let s = sparsity(decode(&global).graph.as_ref().unwrap());
    assert_eq!(s.zeros, s.weights / 2);
    assert!(
        s.layers.iter().any(|l| l.zeros != l.weights / 2),
        "one threshold, uneven layers"
    );
    // Shapes and graph stay; the outputs move but both runtimes agree.
    assert_eq!(
        decode(&global).graph.unwrap().node.len(),
        decode(&original).graph.unwrap().node.len()
    );
    assert!(rel_diff(&nano(&global, X), &tract(&global, X)) < 1e-4);
    let text = summary(&original, passes, &weights(0.5, Scope::Layer));
    assert!(text.contains("only shrinks compressed"), "{text}");
    assert_eq!(
        compress(&original, passes, &weights(0.0, Scope::Layer)),
        compress(&original, &[Pass::Clean], &Context::default())
    );
}

/// The bundled YOLO9tr-n: GELAN blocks (Split, Concat, residual Adds), SPPELAN max pools,
/// upsampling, a PSA attention block and a DFL head with grouped convs. Its attention and
/// head outputs stay, everything else shrinks, and tract agrees with our runtime on the
/// result.
#[test]
fn yolo9tr_n_prunes_around_attention_and_head() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/zoo/yolo9tr-n.onnx");
    let original = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let shape: &[&[usize]] = &[&[1, 3, 128, 128]];
    let ctx = Context {
        input_shapes: Some(vec![shape[0].to_vec()]),
        prune: Options {
            channels: Channels {
                ratio: 0.3,
                reconstruct: false,
                scope: Scope::Layer,
                ..Channels::default()
            },
            ..Options::default()
        },
        ..Context::default()
    };
    let stages = Pipeline::new(PRUNE.to_vec())
        .run(&original, &ctx)
        .expect("prune");
    let text = &stages[1].summary;
    assert!(text.contains("reach Reshape /psa/attn/Reshape"), "{text}");
    assert!(text.contains("reach Reshape /head/Reshape"), "{text}");
    let bytes = &stages[1].bytes;
    let before = edgetrim_compress::exec::measure(&original, shape, None).unwrap();
    let after = edgetrim_compress::exec::measure(bytes, shape, None).unwrap();
    assert!(
        before.macs as f64 > 1.5 * after.macs as f64,
        "{} -> {}",
        before.macs,
        after.macs
    );
    assert_eq!(before.outputs[0].len(), after.outputs[0].len());
    assert!(rel_diff(&nano(bytes, shape), &tract(bytes, shape)) < 1e-4);
}
