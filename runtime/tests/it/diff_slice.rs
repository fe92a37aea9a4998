//! Slice against tract: constant starts/ends/axes/steps (opset 10+), negative values and
//! steps, out-of-range clamping, the opset 1 attribute form, random windows, bad models.

use crate::common::*;
use edgetrim_runtime::{Error, Model, Session};
use proptest::prelude::*;

/// Slice of a `shape` f32 input with the given parameter lists (axes/steps optional).
fn slice(
    shape: &[usize],
    starts: &[i64],
    ends: &[i64],
    axes: Option<&[i64]>,
    steps: Option<&[i64]>,
) -> ModelBuilder {
    let n = starts.len();
    let mut inits = vec![
        ("starts", i64_tensor(&[n], starts)),
        ("ends", i64_tensor(&[n], ends)),
    ];
    let mut names = vec!["starts", "ends"];
    if axes.is_some() || steps.is_some() {
        let a: Vec<i64> = axes.map_or_else(|| (0..n as i64).collect(), |a| a.to_vec());
        inits.push(("axes", i64_tensor(&[n], &a)));
        names.push("axes");
    }
    if let Some(s) = steps {
        inits.push(("steps", i64_tensor(&[n], s)));
        names.push("steps");
    }
    one_node("Slice", &[shape], &inits, &names, 1, vec![], 13)
}

#[test]
fn windows_steps_and_clamping() {
    type Case<'a> = (
        &'a [usize],
        &'a [i64],
        &'a [i64],
        Option<&'a [i64]>,
        Option<&'a [i64]>,
    );
    let cases: &[Case] = &[
        (&[6, 5], &[1, 0], &[4, 5], None, None),
        (&[6, 5], &[1], &[i64::MAX], Some(&[1]), None),
        (
            &[1, 8, 4, 4],
            &[0, 0],
            &[4, 2],
            Some(&[1, 3]),
            Some(&[1, 1]),
        ),
        // YOLO focus-style stride 2 slicing.
        (
            &[1, 3, 8, 8],
            &[1, 0],
            &[i64::MAX, i64::MAX],
            Some(&[2, 3]),
            Some(&[2, 2]),
        ),
        (&[6, 5], &[-1], &[i64::MIN], Some(&[0]), Some(&[-1])),
        (&[6, 5], &[-2, 10], &[-5, 0], Some(&[0, 1]), Some(&[-1, -2])),
        (&[6, 5], &[-100], &[100], Some(&[-1]), Some(&[3])),
        (&[6, 5], &[3], &[3], Some(&[0]), None),
        (
            &[2, 3, 4],
            &[0, 1, 2],
            &[2, 3, 4],
            Some(&[-3, -2, -1]),
            None,
        ),
    ];
    for (k, (shape, starts, ends, axes, steps)) in cases.iter().enumerate() {
        check(
            &format!("Slice case {k}"),
            &slice(shape, starts, ends, *axes, *steps),
            &[rand_f32(shape, k as u64)],
            0.0,
        );
    }
}

/// Length of a numpy slice `start:end:step` over `dim`, by walking it.
fn walked_len(start: i64, end: i64, step: i64, dim: usize) -> usize {
    let d = dim as i64;
    let norm = |v: i64| if v < 0 { v + d } else { v };
    let (lo, hi) = if step > 0 { (0, d) } else { (-1, d - 1) };
    let (mut i, end) = (norm(start).clamp(lo, hi), norm(end).clamp(lo, hi));
    let mut n = 0;
    while (step > 0 && i < end) || (step < 0 && i > end) {
        n += 1;
        i += step;
    }
    n
}

#[test]
fn empty_windows_give_empty_outputs() {
    // tract refuses start > end, so these are checked against the walked length.
    for (start, end, step) in [
        (4, 1, 1),
        (1, 4, -1),
        (-1, -3, 2),
        (10, 20, 1),
        (-10, -20, -1),
    ] {
        let m = slice(&[6, 5], &[start], &[end], Some(&[0]), Some(&[step]));
        let out = run_nano(&m.build(), &[rand_f32(&[6, 5], 1)]);
        assert_eq!(walked_len(start, end, step, 6), 0);
        assert_eq!(out[0].shape.dims(), &[0, 5], "{start}:{end}:{step}");
    }
}

#[test]
fn opset1_attribute_form() {
    let attrs = vec![
        ("starts", Attr::Ints(vec![1, -3])),
        ("ends", Attr::Ints(vec![1000, -1])),
        ("axes", Attr::Ints(vec![0, 2])),
    ];
    let m = one_node("Slice", &[&[3, 4, 5]], &[], &[], 1, attrs, 9);
    check("Slice opset 9", &m, &[rand_f32(&[3, 4, 5], 2)], 0.0);
}

#[test]
fn int64_shape_slices_fold_at_plan_time() {
    // Shape -> Slice -> Reshape: all folded, no kernel step runs.
    let mut m = ModelBuilder::new(13);
    m.input("x", dt::FLOAT, &[2, 3, 4, 5]);
    m.init_i64("s", &[1], &[1]);
    m.init_i64("e", &[1], &[3]);
    m.init_i64("minus1", &[1], &[-1]);
    m.node("Shape", &["x"], &["shape"], vec![]);
    m.node("Slice", &["shape", "s", "e"], &["mid"], vec![]);
    m.node(
        "Concat",
        &["minus1", "mid"],
        &["target"],
        vec![("axis", Attr::Int(0))],
    );
    m.node("Reshape", &["x", "target"], &["y"], vec![]);
    m.output("y", dt::FLOAT);
    check(
        "Shape/Slice/Concat/Reshape",
        &m,
        &[rand_f32(&[2, 3, 4, 5], 3)],
        0.0,
    );
    let bytes = m.build();
    let model = Model::parse(&bytes).unwrap();
    let mut arena = vec![0u8; 1 << 16];
    let session = Session::new(&model, &[&[2, 3, 4, 5]], &mut arena).unwrap();
    assert_eq!(session.step_count(), 0);
    assert_eq!(session.output(0).shape.dims(), &[10, 3, 4]);
}

#[test]
fn bad_parameters_are_errors_not_panics() {
    type Case<'a> = (&'a [i64], &'a [i64], Option<&'a [i64]>, Option<&'a [i64]>);
    let cases: &[Case] = &[
        (&[0], &[1], Some(&[2]), None),           // axis out of range
        (&[0], &[1], Some(&[0]), Some(&[0])),     // zero step
        (&[0, 0], &[1, 1], Some(&[1, -1]), None), // axis twice
        (&[0, 0], &[1], None, None),              // length mismatch
    ];
    for (starts, ends, axes, steps) in cases {
        let m = if starts.len() == ends.len() {
            slice(&[3, 4], starts, ends, *axes, *steps)
        } else {
            let inits = [
                ("starts", i64_tensor(&[2], starts)),
                ("ends", i64_tensor(&[1], ends)),
            ];
            one_node(
                "Slice",
                &[&[3, 4]],
                &inits,
                &["starts", "ends"],
                1,
                vec![],
                13,
            )
        };
        let bytes = m.build();
        let model = Model::parse(&bytes).unwrap();
        let mut arena = vec![0u8; 1 << 16];
        let err = Session::new(&model, &[&[3, 4]], &mut arena).err();
        assert!(
            matches!(err, Some(Error::BadNode { .. })),
            "{starts:?} {ends:?} {axes:?} {steps:?}: {err:?}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]
    #[test]
    fn random_windows_match_tract(
        dims in proptest::collection::vec(1usize..6, 1..=4),
        params in proptest::collection::vec((-8i64..8, -8i64..8, prop_oneof![-3i64..0, 1i64..4]), 4),
        pick in proptest::collection::vec(any::<bool>(), 4),
        seed in any::<u64>(),
    ) {
        let (mut starts, mut ends, mut axes, mut steps) = (vec![], vec![], vec![], vec![]);
        for (axis, (&(s, e, st), &on)) in params.iter().zip(&pick).take(dims.len()).enumerate() {
            if on {
                starts.push(s);
                ends.push(e);
                // Negative axis spelling half the time.
                axes.push(if s % 2 == 0 { axis as i64 } else { axis as i64 - dims.len() as i64 });
                steps.push(st);
            }
        }
        prop_assume!(!starts.is_empty());
        let m = slice(&dims, &starts, &ends, Some(&axes), Some(&steps));
        let x = rand_f32(&dims, seed);
        let mut expected = dims.clone();
        for (i, &a) in axes.iter().enumerate() {
            let a = a.rem_euclid(dims.len() as i64) as usize;
            expected[a] = walked_len(starts[i], ends[i], steps[i], dims[a]);
        }
        if expected.contains(&0) {
            let out = run_nano(&m.build(), &[x]);
            prop_assert_eq!(out[0].shape.dims(), &expected[..]);
            return Ok(());
        }
        check(
            &format!("Slice {dims:?} {starts:?} {ends:?} {axes:?} {steps:?}"),
            &m,
            &[x],
            0.0,
        );
    }
}
