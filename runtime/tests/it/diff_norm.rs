//! BatchNormalization, InstanceNormalization and LayerNormalization against tract.

use crate::common::*;

fn positive(n: usize, seed: u64) -> edgetrim_runtime::tract::OwnedTensor {
    let v: Vec<f32> = rand_vec(n, seed).iter().map(|x| x + 1.5).collect();
    f32_tensor(&[n], &v)
}

#[test]
fn batch_norm_matches_tract() {
    for (shape, eps) in [
        (&[2usize, 4, 5, 6][..], None),
        (&[3, 4][..], Some(1e-3)),
        (&[1, 4, 7][..], None),
    ] {
        let c = shape[1];
        let inits = [
            ("scale", rand_f32(&[c], 1)),
            ("b", rand_f32(&[c], 2)),
            ("mean", rand_f32(&[c], 3)),
            ("var", positive(c, 4)),
        ];
        let attrs = eps
            .map(|e| vec![("epsilon", Attr::Float(e))])
            .unwrap_or_default();
        for opset in [9, 15] {
            let m = one_node(
                "BatchNormalization",
                &[shape],
                &inits,
                &["scale", "b", "mean", "var"],
                1,
                attrs.clone(),
                opset,
            );
            check(
                &format!("BatchNorm {shape:?} opset {opset}"),
                &m,
                &[rand_f32(shape, 5)],
                TOL,
            );
        }
    }
}

#[test]
fn instance_norm_matches_tract() {
    for shape in [&[2usize, 3, 4, 5][..], &[1, 2, 9][..]] {
        let c = shape[1];
        let inits = [("scale", rand_f32(&[c], 1)), ("b", rand_f32(&[c], 2))];
        let m = one_node(
            "InstanceNormalization",
            &[shape],
            &inits,
            &["scale", "b"],
            1,
            vec![("epsilon", Attr::Float(1e-4))],
            13,
        );
        // A large common offset: two-pass variance keeps this accurate.
        let x: Vec<f32> = rand_f32(shape, 3)
            .to_f32_vec()
            .iter()
            .map(|v| v + 10.0)
            .collect();
        check(
            &format!("InstanceNorm {shape:?}"),
            &m,
            &[f32_tensor(shape, &x)],
            TOL,
        );
    }
}

#[test]
fn layer_norm_matches_tract() {
    let shape: &[usize] = &[2, 3, 8];
    for (axis, with_bias) in [(-1i64, true), (-1, false), (1, true)] {
        let len: usize = shape[axis.rem_euclid(3) as usize..].iter().product();
        let norm_shape = &shape[axis.rem_euclid(3) as usize..];
        let mut inits = vec![("scale", rand_f32(norm_shape, 1))];
        let mut extra = vec!["scale"];
        if with_bias {
            inits.push(("b", rand_f32(norm_shape, 2)));
            extra.push("b");
        }
        let m = one_node(
            "LayerNormalization",
            &[shape],
            &inits,
            &extra,
            1,
            vec![("axis", Attr::Int(axis))],
            17,
        );
        check(
            &format!("LayerNorm axis {axis} bias {with_bias} ({len})"),
            &m,
            &[rand_f32(shape, 3)],
            TOL,
        );
    }
}

#[test]
fn batch_norm_training_mode_is_refused() {
    let c = 2;
    let inits = [
        ("scale", rand_f32(&[c], 1)),
        ("b", rand_f32(&[c], 2)),
        ("mean", rand_f32(&[c], 3)),
        ("var", positive(c, 4)),
    ];
    let m = one_node(
        "BatchNormalization",
        &[&[1, 2, 3]],
        &inits,
        &["scale", "b", "mean", "var"],
        1,
        vec![("training_mode", Attr::Int(1))],
        15,
    );
    let bytes = m.build();
    let model = edgetrim_runtime::Model::parse(&bytes).unwrap();
    let err = edgetrim_runtime::Session::arena_report(&model, &[&[1, 2, 3]]).unwrap_err();
    assert!(format!("{err}").contains("training_mode"), "{err}");
}
