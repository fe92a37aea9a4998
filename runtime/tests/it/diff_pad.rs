//! Pad against tract: constant (with a value), reflect and edge, the input form (opset
//! 11+, with and without axes) and the attribute form (opset 2); negative pads by hand.

use crate::common::*;
use proptest::prelude::*;

fn pad_input(shape: &[usize], pads: &[i64], mode: &str, value: Option<f32>, opset: i64) {
    let what = format!("Pad {shape:?} {pads:?} {mode} {value:?} opset {opset}");
    let attrs = vec![("mode", Attr::Str(mode.into()))];
    let mut inits = vec![("pads", i64_tensor(&[pads.len()], pads))];
    let mut extra = vec!["pads"];
    if let Some(v) = value {
        inits.push(("value", f32_tensor(&[], &[v])));
        extra.push("value");
    }
    let m = one_node("Pad", &[shape], &inits, &extra, 1, attrs, opset);
    check(&what, &m, &[rand_f32(shape, 13)], 0.0);
}

#[test]
fn pad_modes_match_tract() {
    for mode in ["constant", "reflect", "edge"] {
        pad_input(&[2, 3, 4, 5], &[0, 0, 1, 2, 0, 0, 2, 1], mode, None, 13);
        pad_input(&[3, 4], &[1, 3, 2, 0], mode, None, 11);
        pad_input(&[6], &[2, 3], mode, None, 18);
    }
    pad_input(&[2, 3, 4], &[1, 0, 1, 0, 2, 2], "constant", Some(-2.5), 13);
}

#[test]
fn pad_attribute_form_matches_tract() {
    for (mode, value) in [("constant", 1.5f32), ("reflect", 0.0), ("edge", 0.0)] {
        let m = one_node(
            "Pad",
            &[&[1, 2, 4, 4]],
            &[],
            &[],
            1,
            vec![
                ("mode", Attr::Str(mode.into())),
                ("pads", Attr::Ints(vec![0, 0, 2, 1, 0, 0, 1, 3])),
                ("value", Attr::Float(value)),
            ],
            2,
        );
        check(
            &format!("Pad-2 {mode}"),
            &m,
            &[rand_f32(&[1, 2, 4, 4], 3)],
            0.0,
        );
    }
}

#[test]
fn pad_with_axes_pads_only_those_dims() {
    let m = one_node(
        "Pad",
        &[&[2, 3, 4]],
        &[
            ("pads", i64_tensor(&[4], &[1, 2, 0, 1])),
            ("axes", i64_tensor(&[2], &[-1, 0])),
        ],
        &["pads", "", "axes"],
        1,
        vec![("mode", Attr::Str("edge".into()))],
        18,
    );
    check("Pad-18 axes", &m, &[rand_f32(&[2, 3, 4], 5)], 0.0);
}

#[test]
fn negative_pads_crop() {
    // Hand-computed: tract 0.23 overflows on negative pads. x = [[1, 2, 3], [4, 5, 6]],
    // pads = [0, -1, 0, 1]: drop the first column, add a zero column at the end.
    let m = one_node(
        "Pad",
        &[&[2, 3]],
        &[("pads", i64_tensor(&[4], &[0, -1, 0, 1]))],
        &["pads"],
        1,
        vec![],
        13,
    );
    let x = f32_tensor(&[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let y = run_nano(&m.build(), &[x]);
    assert_eq!(y[0].shape.dims(), &[2, 3]);
    assert_eq!(y[0].to_f32_vec(), vec![2.0, 3.0, 0.0, 5.0, 6.0, 0.0]);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn random_pads_match_tract(
        shape in proptest::collection::vec(2usize..5, 1..4),
        raw in proptest::collection::vec(0i64..3, 6),
        mode in 0usize..3,
    ) {
        let rank = shape.len();
        // Reflect pads must stay below the dim.
        let pads: Vec<i64> = (0..2 * rank)
            .map(|i| if mode == 1 { raw[i].min(shape[i % rank] as i64 - 1) } else { raw[i] })
            .collect();
        pad_input(&shape, &pads, ["constant", "reflect", "edge"][mode], None, 13);
    }
}
