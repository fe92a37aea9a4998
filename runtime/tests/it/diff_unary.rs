//! Element-wise activations and math functions against tract.

use crate::common::*;

/// Inputs spread over [-6, 6) so the saturating regions of every activation are hit.
fn wide(shape: &[usize], seed: u64) -> edgetrim_runtime::tract::OwnedTensor {
    let v: Vec<f32> = rand_f32(shape, seed)
        .to_f32_vec()
        .iter()
        .map(|x| x * 6.0)
        .collect();
    f32_tensor(shape, &v)
}

/// Op, attributes, opset.
type Case = (&'static str, Vec<(&'static str, Attr)>, i64);

#[test]
fn activations_match_tract() {
    let cases: Vec<Case> = vec![
        ("Relu", vec![], 14),
        ("LeakyRelu", vec![], 16),
        ("LeakyRelu", vec![("alpha", Attr::Float(0.3))], 16),
        ("Sigmoid", vec![], 13),
        ("Tanh", vec![], 13),
        ("HardSigmoid", vec![], 6),
        (
            "HardSigmoid",
            vec![("alpha", Attr::Float(0.1)), ("beta", Attr::Float(0.3))],
            6,
        ),
        ("HardSwish", vec![], 14),
        ("Neg", vec![], 13),
        ("Abs", vec![], 13),
        ("Erf", vec![], 13),
        ("Exp", vec![], 13),
        ("Elu", vec![], 6),
        ("Elu", vec![("alpha", Attr::Float(0.5))], 6),
        ("Softplus", vec![], 1),
        ("Gelu", vec![], 20),
        ("Gelu", vec![("approximate", Attr::Str("tanh".into()))], 20),
        (
            "Clip",
            vec![("min", Attr::Float(-1.0)), ("max", Attr::Float(2.5))],
            6,
        ),
        ("Clip", vec![("max", Attr::Float(0.5))], 6),
        // ReLU6: an encoder may omit the zero `min` value, which must read as 0.
        (
            "Clip",
            vec![("min", Attr::Float(0.0)), ("max", Attr::Float(6.0))],
            6,
        ),
        ("Clip", vec![], 13),
    ];
    for (op, attrs, opset) in cases {
        let what = format!("{op} {attrs:?}");
        let m = one_node(op, &[&[2, 3, 5, 7]], &[], &[], 1, attrs, opset);
        check(&what, &m, &[wide(&[2, 3, 5, 7], 11)], 1e-5);
    }
}

#[test]
fn positive_domain_functions_match_tract() {
    for op in ["Sqrt", "Log"] {
        let x: Vec<f32> = rand_vec(64, 5).iter().map(|v| v * 4.0 + 4.5).collect();
        let m = one_node(op, &[&[64]], &[], &[], 1, vec![], 13);
        check(op, &m, &[f32_tensor(&[64], &x)], 1e-5);
    }
}

#[test]
fn sigmoid_is_accurate_far_into_the_tails() {
    let x: Vec<f32> = (-400..400).map(|i| i as f32 * 0.25).collect();
    let m = one_node("Sigmoid", &[&[800]], &[], &[], 1, vec![], 13);
    check("Sigmoid tails", &m, &[f32_tensor(&[800], &x)], 1e-6);
}

#[test]
fn clip_takes_constant_bounds_from_opset_11() {
    let lo = f32_tensor(&[], &[-0.25]);
    let hi = f32_tensor(&[], &[0.5]);
    let both = one_node(
        "Clip",
        &[&[4, 9]],
        &[("lo", lo.clone()), ("hi", hi.clone())],
        &["lo", "hi"],
        1,
        vec![],
        13,
    );
    check("Clip lo hi", &both, &[rand_f32(&[4, 9], 2)], 1e-6);
    let only_max = one_node(
        "Clip",
        &[&[4, 9]],
        &[("hi", hi)],
        &["", "hi"],
        1,
        vec![],
        12,
    );
    check("Clip max only", &only_max, &[rand_f32(&[4, 9], 3)], 1e-6);
    let only_min = one_node("Clip", &[&[4, 9]], &[("lo", lo)], &["lo"], 1, vec![], 11);
    check("Clip min only", &only_min, &[rand_f32(&[4, 9], 4)], 1e-6);
}

#[test]
fn clip_rejects_a_runtime_bound() {
    let m = one_node("Clip", &[&[4], &[]], &[], &[], 1, vec![], 13);
    let bytes = m.build();
    let model = edgetrim_runtime::Model::parse(&bytes).unwrap();
    let err = edgetrim_runtime::Session::arena_report(&model, &[&[4], &[]]).unwrap_err();
    assert!(format!("{err}").contains("constant"), "{err}");
}
