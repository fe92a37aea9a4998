//! ReduceSum/Mean/Max/Min against tract: axes as attribute and as input, keepdims,
//! noop_with_empty_axes, random shapes and axis sets.

use crate::common::*;
use proptest::prelude::*;

const OPS: [&str; 4] = ["ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin"];

/// The axes travel as an attribute below `from`, as a constant input from it on.
fn reduce(op: &str, shape: &[usize], axes: Option<&[i64]>, keepdims: i64, opset: i64, seed: u64) {
    let from = if op == "ReduceSum" { 13 } else { 18 };
    let mut attrs = vec![("keepdims", Attr::Int(keepdims))];
    let m = if opset < from {
        if let Some(a) = axes {
            attrs.push(("axes", Attr::Ints(a.to_vec())));
        }
        one_node(op, &[shape], &[], &[], 1, attrs, opset)
    } else {
        let inits = axes.map(|a| ("axes", i64_tensor(&[a.len()], a)));
        let extra: &[&str] = if axes.is_some() { &["axes"] } else { &[] };
        one_node(op, &[shape], inits.as_slice(), extra, 1, attrs, opset)
    };
    let what = format!("{op} {shape:?} axes {axes:?} keepdims {keepdims} opset {opset}");
    check(&what, &m, &[rand_f32(shape, seed)], TOL);
}

#[test]
fn reductions_match_tract_in_both_axes_conventions() {
    let shape: &[usize] = &[2, 3, 4, 5];
    for op in OPS {
        for opset in [13, 18] {
            for keepdims in [0, 1] {
                for axes in [&[1i64][..], &[-1], &[2, 3], &[0, 2], &[3, 0, 1]] {
                    reduce(op, shape, Some(axes), keepdims, opset, 5);
                }
                reduce(op, shape, None, keepdims, opset, 6);
            }
        }
    }
}

#[test]
fn empty_axes_with_noop_copies_the_input() {
    for op in OPS {
        let m = one_node(
            op,
            &[&[2, 3]],
            &[("axes", i64_tensor(&[0], &[]))],
            &["axes"],
            1,
            vec![("noop_with_empty_axes", Attr::Int(1))],
            18,
        );
        let x = rand_f32(&[2, 3], 9);
        let y = run_nano(&m.build(), std::slice::from_ref(&x));
        assert_eq!(y[0].to_f32_vec(), x.to_f32_vec(), "{op}");
        check(op, &m, &[x], 0.0);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn random_axes_match_tract(
        op in 0usize..4,
        shape in proptest::collection::vec(1usize..5, 1..5),
        mask in 1u8..16,
        keepdims in 0i64..2,
    ) {
        let axes: Vec<i64> = (0..shape.len() as i64).filter(|&a| mask & (1 << a) != 0).collect();
        prop_assume!(!axes.is_empty());
        reduce(OPS[op], &shape, Some(&axes), keepdims, 18, 7);
    }
}
