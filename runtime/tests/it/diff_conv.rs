//! Conv and ConvTranspose against tract: every attribute, the pointwise / im2col /
//! depthwise paths, weights as (possibly unaligned) initializers and as graph inputs, and
//! random geometries.

use crate::common::*;
use proptest::prelude::*;

fn ints(v: &[i64]) -> Attr {
    Attr::Ints(v.to_vec())
}

/// Runs `op` on X `x` with weight `w` (an initializer, or a graph input when
/// `weight_input`) and an optional bias, on both backends.
fn run_case(
    what: &str,
    op: &str,
    x: &[usize],
    w: &[usize],
    bias: Option<usize>,
    attrs: Vec<(&str, Attr)>,
    weight_input: bool,
) {
    let wt = rand_f32(w, 11);
    let mut inits = vec![];
    let mut extra = vec![];
    let mut shapes: Vec<&[usize]> = vec![x];
    let mut inputs = vec![rand_f32(x, 3)];
    if weight_input {
        shapes.push(w);
        inputs.push(wt);
    } else {
        inits.push(("w", wt));
        extra.push("w");
    }
    if let Some(c) = bias {
        inits.push(("b", rand_f32(&[c], 5)));
        extra.push("b");
    }
    let m = one_node(op, &shapes, &inits, &extra, 1, attrs, 13);
    check(what, &m, &inputs, TOL);
}

fn conv(what: &str, x: &[usize], w: &[usize], bias: bool, attrs: Vec<(&str, Attr)>) {
    run_case(what, "Conv", x, w, bias.then_some(w[0]), attrs, false);
}

#[test]
fn conv_strides_dilations_pads_kernels_bias() {
    for k in [1usize, 3, 5] {
        for s in [1i64, 2] {
            for d in [1i64, 2] {
                for (pi, pads) in [[0i64, 0, 0, 0], [1, 1, 1, 1], [0, 2, 1, 0]]
                    .iter()
                    .enumerate()
                {
                    for bias in [false, true] {
                        let attrs = vec![
                            ("strides", ints(&[s, s])),
                            ("dilations", ints(&[d, d])),
                            ("pads", ints(pads)),
                        ];
                        let what = format!("k{k} s{s} d{d} pads{pi} bias{bias}");
                        conv(&what, &[1, 3, 12, 11], &[5, 3, k, k], bias, attrs);
                    }
                }
            }
        }
    }
}

#[test]
fn conv_auto_pad_modes() {
    for mode in ["NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"] {
        for k in [2usize, 3, 4] {
            for s in [1i64, 2] {
                let attrs = vec![
                    ("auto_pad", Attr::Str(mode.into())),
                    ("strides", ints(&[s, s])),
                ];
                conv(
                    &format!("{mode} k{k} s{s}"),
                    &[1, 2, 9, 10],
                    &[3, 2, k, k],
                    true,
                    attrs,
                );
            }
        }
    }
}

#[test]
fn conv_groups_and_depthwise() {
    // group 2
    conv(
        "group 2",
        &[1, 4, 7, 8],
        &[6, 2, 3, 3],
        true,
        vec![("group", Attr::Int(2)), ("pads", ints(&[1, 1, 1, 1]))],
    );
    // depthwise, multiplier 1 and 2, strides and dilations
    for (s, d, pads) in [
        (1i64, 1i64, [1i64, 1, 1, 1]),
        (2, 1, [1, 0, 0, 1]),
        (1, 2, [2, 2, 2, 2]),
        (2, 2, [0, 0, 0, 0]),
    ] {
        for mult in [1usize, 2] {
            let attrs = vec![
                ("group", Attr::Int(6)),
                ("strides", ints(&[s, s])),
                ("dilations", ints(&[d, d])),
                ("pads", ints(&pads)),
            ];
            let what = format!("depthwise x{mult} s{s} d{d}");
            conv(
                &what,
                &[2, 6, 11, 9],
                &[6 * mult, 1, 3, 3],
                mult == 1,
                attrs,
            );
        }
    }
    conv(
        "depthwise 5x5 SAME",
        &[1, 8, 10, 10],
        &[8, 1, 5, 5],
        true,
        vec![
            ("group", Attr::Int(8)),
            ("auto_pad", Attr::Str("SAME_UPPER".into())),
        ],
    );
}

#[test]
fn conv_1d_nonsquare_pointwise_and_batches() {
    conv(
        "1-D",
        &[2, 4, 13],
        &[6, 4, 3],
        true,
        vec![("pads", ints(&[1, 2]))],
    );
    conv(
        "1-D strided dilated",
        &[1, 4, 17],
        &[5, 4, 5],
        false,
        vec![("strides", ints(&[2])), ("dilations", ints(&[2]))],
    );
    conv(
        "1-D depthwise",
        &[1, 4, 13],
        &[4, 1, 3],
        true,
        vec![
            ("group", Attr::Int(4)),
            ("auto_pad", Attr::Str("SAME_LOWER".into())),
        ],
    );
    conv(
        "3x1",
        &[1, 3, 8, 6],
        &[4, 3, 3, 1],
        true,
        vec![("pads", ints(&[1, 0, 1, 0]))],
    );
    conv(
        "1x5 strided",
        &[1, 3, 6, 15],
        &[4, 3, 1, 5],
        false,
        vec![("strides", ints(&[1, 2]))],
    );
    conv("pointwise", &[2, 8, 7, 9], &[10, 8, 1, 1], true, vec![]);
    conv(
        "1x1 stride 2",
        &[1, 8, 7, 9],
        &[10, 8, 1, 1],
        true,
        vec![("strides", ints(&[2, 2]))],
    );
    conv(
        "kernel_shape given",
        &[1, 3, 8, 8],
        &[4, 3, 3, 3],
        true,
        vec![("kernel_shape", ints(&[3, 3]))],
    );
    // K = 40·9 > one K block, M and N not multiples of any tile.
    conv(
        "deep",
        &[1, 40, 13, 11],
        &[19, 40, 3, 3],
        true,
        vec![("pads", ints(&[1, 1, 1, 1]))],
    );
}

#[test]
fn conv_weight_as_graph_input() {
    let attrs = vec![("pads", ints(&[1, 1, 1, 1]))];
    run_case(
        "weight input",
        "Conv",
        &[1, 4, 9, 9],
        &[6, 4, 3, 3],
        Some(6),
        attrs,
        true,
    );
    let dw = vec![("group", Attr::Int(4)), ("pads", ints(&[1, 1, 1, 1]))];
    run_case(
        "depthwise weight input",
        "Conv",
        &[1, 4, 9, 9],
        &[4, 1, 3, 3],
        None,
        dw,
        true,
    );
}

#[test]
fn conv_rejects_bad_models() {
    let bad = |w: &[usize], attrs: Vec<(&str, Attr)>| {
        let m = one_node(
            "Conv",
            &[&[1, 4, 8, 8]],
            &[("w", rand_f32(w, 1))],
            &["w"],
            1,
            attrs,
            13,
        );
        let bytes = m.build();
        let model = edgetrim_runtime::Model::parse(&bytes).unwrap();
        assert!(edgetrim_runtime::Session::arena_report(&model, &[&[1, 4, 8, 8]]).is_err());
    };
    bad(&[4, 3, 3, 3], vec![]);
    bad(&[4, 2, 3, 3], vec![("group", Attr::Int(3))]);
    bad(&[4, 4, 3, 3], vec![("kernel_shape", ints(&[5, 5]))]);
    bad(&[4, 4, 3, 3], vec![("strides", ints(&[0, 1]))]);
    bad(&[4, 4, 9, 9], vec![]);
}

fn conv_t(what: &str, x: &[usize], w: &[usize], bias: bool, attrs: Vec<(&str, Attr)>) {
    let group = attrs
        .iter()
        .find(|a| a.0 == "group")
        .map_or(1, |a| match a.1 {
            Attr::Int(g) => g as usize,
            _ => 1,
        });
    run_case(
        what,
        "ConvTranspose",
        x,
        w,
        bias.then_some(w[1] * group),
        attrs,
        false,
    );
}

#[test]
fn conv_transpose_attributes() {
    for s in [1i64, 2] {
        for d in [1i64, 2] {
            for pads in [[0i64, 0, 0, 0], [1, 0, 1, 2]] {
                let attrs = vec![
                    ("strides", ints(&[s, s])),
                    ("dilations", ints(&[d, d])),
                    ("pads", ints(&pads)),
                ];
                conv_t(
                    &format!("s{s} d{d} {pads:?}"),
                    &[1, 3, 5, 6],
                    &[3, 4, 3, 3],
                    true,
                    attrs,
                );
            }
        }
    }
    conv_t(
        "output_padding",
        &[1, 3, 5, 5],
        &[3, 2, 3, 3],
        false,
        vec![
            ("strides", ints(&[2, 2])),
            ("output_padding", ints(&[1, 0])),
        ],
    );
    conv_t(
        "group 2",
        &[2, 4, 4, 5],
        &[4, 3, 2, 2],
        true,
        vec![("group", Attr::Int(2)), ("strides", ints(&[2, 2]))],
    );
    conv_t(
        "output_shape",
        &[1, 2, 4, 4],
        &[2, 3, 3, 3],
        true,
        vec![("strides", ints(&[2, 2])), ("output_shape", ints(&[9, 9]))],
    );
    conv_t(
        "1-D",
        &[1, 3, 7],
        &[3, 2, 4],
        true,
        vec![("strides", ints(&[3])), ("pads", ints(&[1, 1]))],
    );
    conv_t(
        "big pixels",
        &[1, 2, 40, 40],
        &[2, 3, 2, 2],
        false,
        vec![("strides", ints(&[2, 2]))],
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(40))]
    #[test]
    fn conv_random_geometries(
        c in 1usize..6, m in 1usize..7, h in 3usize..12, w in 3usize..12,
        k in 1usize..4, s in 1i64..3, d in 1i64..3, pad in 0i64..2, depthwise: bool, bias: bool,
    ) {
        let extent = (k - 1) * d as usize + 1;
        prop_assume!(h + 2 * pad as usize >= extent && w + 2 * pad as usize >= extent);
        let (group, wc, m) = if depthwise { (c, 1, c * (1 + m % 2)) } else { (1, c, m) };
        let attrs = vec![
            ("group", Attr::Int(group as i64)),
            ("strides", ints(&[s, s])),
            ("dilations", ints(&[d, d])),
            ("pads", ints(&[pad, pad, pad, pad])),
        ];
        conv("random", &[1, c, h, w], &[m, wc, k, k], bias, attrs);
    }
}

/// What follows the Conv in a [`conv_then`] graph.
#[derive(Clone, Copy, PartialEq)]
enum Tail {
    /// `y = Mul(c, Sigmoid(c))` (or `Mul(Sigmoid(c), c)` when `swapped`).
    Silu { swapped: bool },
    /// `y = Relu(c)`.
    Relu,
    /// `y = Clip(c, -0.25, 0.5)`.
    Clip,
    /// SiLU plus `z = Add(y, c)`: the conv output has a third reader.
    SiluThirdReader,
    /// SiLU with the Sigmoid's output also a graph output.
    SiluSigmoidOutput,
    /// SiLU with the Conv's output also a graph output.
    SiluConvOutput,
    /// `y = HardSigmoid(c)` (alpha 0.25, beta 0.4).
    HardSigmoid,
    /// `y = HardSwish(c)`.
    HardSwish,
    /// `y = Div(Mul(c, Clip(Add(c, 3), 0, 6)), 6)` as PaddlePaddle exports hard-swish
    /// (`Mul(Clip(..), c)` when `swapped`).
    HardSwishDecomposed { swapped: bool },
    /// The decomposed hard-swish with the Clip's output also a graph output.
    HardSwishClipOutput,
}

/// `c = Conv(x, w, b)` (3×3 kernels padded by 1) followed by `tail`; graph outputs: `y`
/// first, then whatever the tail exposes.
fn conv_then(x: &[usize], w: &[usize], group: usize, stride: i64, tail: Tail) -> ModelBuilder {
    let mut m = ModelBuilder::new(13);
    m.input("x", dt::FLOAT, x);
    m.init_f32("w", w, &rand_vec(w.iter().product(), 11));
    m.init_f32("b", &[w[0]], &rand_vec(w[0], 5));
    let pad = (w[2] / 2) as i64;
    let attrs = vec![
        ("group", Attr::Int(group as i64)),
        ("strides", ints(&[stride, stride])),
        ("pads", ints(&[pad, pad, pad, pad])),
    ];
    m.node("Conv", &["x", "w", "b"], &["c"], attrs);
    let silu = |m: &mut ModelBuilder, swapped: bool| {
        m.node("Sigmoid", &["c"], &["s"], vec![]);
        let ins: &[&str] = if swapped { &["s", "c"] } else { &["c", "s"] };
        m.node("Mul", ins, &["y"], vec![]);
    };
    let hard_swish = |m: &mut ModelBuilder, swapped: bool| {
        m.init_f32("three", &[], &[3.0]);
        m.init_f32("zero", &[], &[0.0]);
        m.init_f32("six", &[], &[6.0]);
        m.node("Add", &["c", "three"], &["a"], vec![]);
        m.node("Clip", &["a", "zero", "six"], &["k"], vec![]);
        let ins: &[&str] = if swapped { &["k", "c"] } else { &["c", "k"] };
        m.node("Mul", ins, &["p"], vec![]);
        m.node("Div", &["p", "six"], &["y"], vec![]);
    };
    match tail {
        Tail::Silu { swapped } => silu(&mut m, swapped),
        Tail::Relu => {
            m.node("Relu", &["c"], &["y"], vec![]);
        }
        Tail::Clip => {
            m.init_f32("lo", &[], &[-0.25]);
            m.init_f32("hi", &[], &[0.5]);
            m.node("Clip", &["c", "lo", "hi"], &["y"], vec![]);
        }
        Tail::SiluThirdReader => {
            silu(&mut m, false);
            m.node("Add", &["y", "c"], &["z"], vec![]);
        }
        Tail::SiluSigmoidOutput | Tail::SiluConvOutput => silu(&mut m, false),
        Tail::HardSigmoid => {
            let attrs = vec![("alpha", Attr::Float(0.25)), ("beta", Attr::Float(0.4))];
            m.node("HardSigmoid", &["c"], &["y"], attrs);
        }
        Tail::HardSwish => {
            m.node("HardSwish", &["c"], &["y"], vec![]);
        }
        Tail::HardSwishDecomposed { swapped } => hard_swish(&mut m, swapped),
        Tail::HardSwishClipOutput => hard_swish(&mut m, false),
    }
    m.output(
        if tail == Tail::SiluThirdReader {
            "z"
        } else {
            "y"
        },
        dt::FLOAT,
    );
    match tail {
        Tail::SiluSigmoidOutput => m.output("s", dt::FLOAT),
        Tail::SiluConvOutput => m.output("c", dt::FLOAT),
        Tail::HardSwishClipOutput => m.output("k", dt::FLOAT),
        _ => &mut m,
    };
    m
}

/// The op names of the steps a plan runs.
fn step_ops(m: &ModelBuilder, x: &[usize]) -> Vec<String> {
    let bytes = m.build();
    let model = edgetrim_runtime::Model::parse(&bytes).unwrap();
    let mut arena = vec![0u8; 1 << 22];
    let s = edgetrim_runtime::Session::new(&model, &[x], &mut arena).unwrap();
    (0..s.step_count())
        .map(|k| s.step_info(k).op.to_string())
        .collect()
}

/// Geometries for the fused paths: im2col, pointwise, strided, depthwise (multiplier 1
/// and 2), grouped, several K blocks (K = 576 > kc = 256, so the activation must wait for
/// the last one) and several N blocks (H·W = 2304 > nc = 2048).
/// (name, X shape, W shape, group, stride)
type Geometry = (&'static str, &'static [usize], &'static [usize], usize, i64);

const FUSED_GEOMETRIES: &[Geometry] = &[
    ("3x3", &[1, 8, 9, 11], &[16, 8, 3, 3], 1, 1),
    ("pointwise", &[1, 8, 9, 11], &[13, 8, 1, 1], 1, 1),
    ("strided", &[1, 5, 12, 10], &[7, 5, 3, 3], 1, 2),
    ("depthwise", &[1, 8, 9, 11], &[8, 1, 3, 3], 8, 1),
    ("depthwise x2 strided", &[1, 4, 9, 11], &[8, 1, 3, 3], 4, 2),
    ("grouped", &[1, 8, 9, 11], &[12, 4, 3, 3], 2, 1),
    ("k blocks", &[1, 64, 10, 10], &[24, 64, 3, 3], 1, 1),
    ("n blocks", &[1, 3, 48, 48], &[8, 3, 3, 3], 1, 1),
];

#[test]
fn conv_silu_fuses_on_every_path() {
    for &(what, x, w, group, stride) in FUSED_GEOMETRIES {
        for swapped in [false, true] {
            let m = conv_then(x, w, group, stride, Tail::Silu { swapped });
            assert_eq!(step_ops(&m, x), ["Conv+SiLU"], "{what}");
            check(what, &m, &[rand_f32(x, 3)], TOL);
        }
    }
}

#[test]
fn conv_relu_and_clip_fuse() {
    for &(what, x, w, group, stride) in FUSED_GEOMETRIES {
        for (tail, name) in [(Tail::Relu, "Conv+Relu"), (Tail::Clip, "Conv+Clip")] {
            let m = conv_then(x, w, group, stride, tail);
            assert_eq!(step_ops(&m, x), [name], "{what}");
            check(what, &m, &[rand_f32(x, 3)], TOL);
        }
    }
}

#[test]
fn conv_hard_sigmoid_and_hard_swish_fuse() {
    for &(what, x, w, group, stride) in FUSED_GEOMETRIES {
        for (tail, name) in [
            (Tail::HardSigmoid, "Conv+HardSigmoid"),
            (Tail::HardSwish, "Conv+HardSwish"),
            (
                Tail::HardSwishDecomposed { swapped: false },
                "Conv+HardSwish",
            ),
            (
                Tail::HardSwishDecomposed { swapped: true },
                "Conv+HardSwish",
            ),
        ] {
            let m = conv_then(x, w, group, stride, tail);
            assert_eq!(step_ops(&m, x), [name], "{what}");
            check(what, &m, &[rand_f32(x, 3)], TOL);
        }
    }
}

#[test]
fn observable_intermediates_block_fusion() {
    let (x, w): (&[usize], &[usize]) = (&[1, 8, 9, 11], &[16, 8, 3, 3]);
    for (tail, ops) in [
        (
            Tail::SiluThirdReader,
            &["Conv", "Sigmoid", "Mul", "Add"][..],
        ),
        (Tail::SiluSigmoidOutput, &["Conv", "Sigmoid", "Mul"][..]),
        (Tail::SiluConvOutput, &["Conv", "Sigmoid", "Mul"][..]),
        (
            Tail::HardSwishClipOutput,
            &["Conv", "Add", "Clip", "Mul", "Div"][..],
        ),
    ] {
        let m = conv_then(x, w, 1, 1, tail);
        assert_eq!(step_ops(&m, x), ops);
        check("unfused", &m, &[rand_f32(x, 3)], TOL);
    }
}

#[test]
fn fusion_changes_no_bit() {
    for &(what, x, w, group, stride) in FUSED_GEOMETRIES {
        let input = [rand_f32(x, 3)];
        let fused = run_nano(
            &conv_then(x, w, group, stride, Tail::Silu { swapped: false }).build(),
            &input,
        );
        let unfused = run_nano(
            &conv_then(x, w, group, stride, Tail::SiluSigmoidOutput).build(),
            &input,
        );
        assert_eq!(fused[0].bytes, unfused[0].bytes, "{what}");
        let hard_swish = Tail::HardSwishDecomposed { swapped: false };
        let fused = run_nano(&conv_then(x, w, group, stride, hard_swish).build(), &input);
        let unfused = run_nano(
            &conv_then(x, w, group, stride, Tail::HardSwishClipOutput).build(),
            &input,
        );
        assert_eq!(fused[0].bytes, unfused[0].bytes, "hard-swish {what}");
    }
}
