#![cfg(feature = "tract")]
//! Conv and ConvTranspose against tract: every attribute, the pointwise / im2col /
//! depthwise paths, weights as (possibly unaligned) initializers and as graph inputs, and
//! random geometries.

mod common;
use common::*;
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
