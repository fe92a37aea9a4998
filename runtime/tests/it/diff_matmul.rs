//! MatMul (batched, broadcast, 1-D promotion, constant operands) and Gemm (transA, transB,
//! alpha, beta, C broadcasts) against tract.

use crate::common::*;
use proptest::prelude::*;

fn matmul(what: &str, a: &[usize], b: &[usize], b_const: bool) {
    let inputs_b = rand_f32(b, 2);
    let m = if b_const {
        one_node("MatMul", &[a], &[("b", inputs_b)], &["b"], 1, vec![], 13)
    } else {
        one_node("MatMul", &[a, b], &[], &[], 1, vec![], 13)
    };
    let mut inputs = vec![rand_f32(a, 1)];
    if !b_const {
        inputs.push(rand_f32(b, 2));
    }
    check(what, &m, &inputs, TOL);
}

#[test]
fn matmul_batches_broadcast_and_promotes() {
    let cases: &[(&[usize], &[usize])] = &[
        (&[3, 4], &[4, 5]),
        (&[1, 1], &[1, 1]),
        (&[2, 4, 7, 16], &[2, 4, 16, 7]), // attention scores
        (&[2, 4, 7, 7], &[2, 4, 7, 16]),  // attention values
        (&[3, 5, 8], &[8, 9]),            // Linear: batch folded into M
        (&[5, 8], &[3, 8, 9]),            // A broadcast over B's batch
        (&[2, 1, 5, 8], &[1, 3, 8, 4]),   // both broadcast
        (&[8], &[8, 5]),
        (&[2, 3, 8], &[8]),
        (&[13, 300], &[300, 21]), // K over one block, tails everywhere
    ];
    for (k, (a, b)) in cases.iter().enumerate() {
        matmul(&format!("case {k} {a:?}x{b:?}"), a, b, false);
        matmul(&format!("case {k} {a:?}x{b:?} const B"), a, b, true);
    }
}

#[test]
fn matmul_of_two_vectors_is_their_dot_product() {
    // tract rejects 1-D x 1-D, so this one is checked by hand.
    let (a, b) = (rand_f32(&[8], 1), rand_f32(&[8], 2));
    let m = one_node("MatMul", &[&[8], &[8]], &[], &[], 1, vec![], 13);
    let out = run_nano(&m.build(), &[a.clone(), b.clone()]);
    assert_eq!(out[0].shape.dims(), &[] as &[usize]);
    let dot: f32 = a
        .to_f32_vec()
        .iter()
        .zip(b.to_f32_vec())
        .map(|(x, y)| x * y)
        .sum();
    assert!((out[0].to_f32_vec()[0] - dot).abs() < 1e-5);
}

fn gemm(what: &str, a: &[usize], b: &[usize], c: Option<&[usize]>, attrs: Vec<(&str, Attr)>) {
    let mut inits = vec![("b", rand_f32(b, 7))];
    let mut extra = vec!["b"];
    if let Some(c) = c {
        inits.push(("c", rand_f32(c, 9)));
        extra.push("c");
    }
    let m = one_node("Gemm", &[a], &inits, &extra, 1, attrs, 13);
    check(what, &m, &[rand_f32(a, 1)], TOL);
}

#[test]
fn gemm_transposes_scales_and_broadcasts_c() {
    for ta in [0i64, 1] {
        for tb in [0i64, 1] {
            let a: &[usize] = if ta == 1 { &[6, 5] } else { &[5, 6] };
            let b: &[usize] = if tb == 1 { &[7, 6] } else { &[6, 7] };
            for c in [
                None,
                Some(&[5usize, 7][..]),
                Some(&[7][..]),
                Some(&[5, 1][..]),
                Some(&[][..]),
            ] {
                for (alpha, beta) in [(1.0f32, 1.0f32), (0.5, 2.0), (1.5, 0.0)] {
                    let attrs = vec![
                        ("transA", Attr::Int(ta)),
                        ("transB", Attr::Int(tb)),
                        ("alpha", Attr::Float(alpha)),
                        ("beta", Attr::Float(beta)),
                    ];
                    gemm(
                        &format!("tA{ta} tB{tb} C{c:?} a{alpha} b{beta}"),
                        a,
                        b,
                        c,
                        attrs,
                    );
                }
            }
        }
    }
    // A classifier head: [1, 512] x [1000, 512]^T + [1000].
    gemm(
        "classifier",
        &[1, 512],
        &[100, 512],
        Some(&[100]),
        vec![("transB", Attr::Int(1))],
    );
}

#[test]
fn gemm_rejects_mismatched_shapes() {
    let m = one_node(
        "Gemm",
        &[&[3, 4]],
        &[("b", rand_f32(&[5, 6], 1))],
        &["b"],
        1,
        vec![],
        13,
    );
    let bytes = m.build();
    let model = edgetrim_runtime::Model::parse(&bytes).unwrap();
    assert!(edgetrim_runtime::Session::arena_report(&model, &[&[3, 4]]).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(40))]
    #[test]
    fn matmul_random_shapes(batch in 1usize..4, m in 1usize..20, k in 1usize..40, n in 1usize..30, b_const: bool) {
        matmul("random", &[batch, m, k], &[batch, k, n], b_const);
    }
}
