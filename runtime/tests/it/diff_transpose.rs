//! Transpose against tract: default reversal, explicit perms, the attention-block layout
//! shuffles, non-f32 data, random perms up to rank 5, and bad perms.

use crate::common::*;
use edgetrim_runtime::{Error, Model, Session};
use proptest::prelude::*;

fn transpose(shape: &[usize], perm: Option<Vec<i64>>) -> ModelBuilder {
    let attrs = perm
        .map(|p| vec![("perm", Attr::Ints(p))])
        .unwrap_or_default();
    one_node("Transpose", &[shape], &[], &[], 1, attrs, 13)
}

#[test]
fn default_perm_reverses_dims() {
    for shape in [&[5][..], &[3, 4], &[2, 3, 4], &[2, 1, 3, 5]] {
        check(
            &format!("Transpose {shape:?}"),
            &transpose(shape, None),
            &[rand_f32(shape, 1)],
            0.0,
        );
    }
}

#[test]
fn attention_layout_shuffles() {
    // YOLOv10 PSA: [B, heads, d, N] -> [B, heads, N, d], and head splitting
    // [B, N, heads, d] -> [B, heads, N, d] (moves whole d-blocks).
    let cases: &[(&[usize], &[i64])] = &[
        (&[1, 2, 32, 400], &[0, 1, 3, 2]),
        (&[1, 400, 4, 16], &[0, 2, 1, 3]),
        (&[2, 3, 4, 5], &[1, 0, 2, 3]),
        (&[2, 3, 4, 5], &[0, 1, 2, 3]),
        (&[2, 3, 4, 5], &[3, 1, 2, 0]),
        // Partial tiles on both sides of the tiled 2-D transpose.
        (&[3, 37, 21], &[0, 2, 1]),
        (&[1, 19, 7, 33], &[0, 3, 1, 2]),
    ];
    for (k, (shape, perm)) in cases.iter().enumerate() {
        check(
            &format!("Transpose {shape:?} {perm:?}"),
            &transpose(shape, Some(perm.to_vec())),
            &[rand_f32(shape, k as u64)],
            0.0,
        );
    }
}

#[test]
fn moves_int64_and_constant_data() {
    let mut m = ModelBuilder::new(13);
    m.input("x", dt::INT64, &[2, 3, 4]);
    m.node(
        "Transpose",
        &["x"],
        &["y"],
        vec![("perm", Attr::Ints(vec![2, 0, 1]))],
    );
    m.output("y", dt::INT64);
    let x = i64_tensor(
        &[2, 3, 4],
        &(0..24).map(|v| v * 1_000_000_007).collect::<Vec<_>>(),
    );
    check("Transpose int64", &m, &[x], 0.0);

    // A constant input is folded at plan time (no step left).
    let mut m = ModelBuilder::new(13);
    m.input("x", dt::FLOAT, &[3, 2]);
    m.init_f32("w", &[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    m.node("Transpose", &["w"], &["wt"], vec![]);
    m.node("Add", &["x", "wt"], &["y"], vec![]);
    m.output("y", dt::FLOAT);
    check("Add(x, Transpose(w))", &m, &[rand_f32(&[3, 2], 4)], 0.0);
    assert_eq!(step_count(&m, &[&[3, 2]]), 1);
}

#[test]
fn bad_perm_is_an_error_not_a_panic() {
    for perm in [vec![0, 0, 1], vec![0, 1], vec![0, 1, 3], vec![-1, 0, 1]] {
        let bytes = transpose(&[2, 3, 4], Some(perm.clone())).build();
        let model = Model::parse(&bytes).unwrap();
        let mut arena = vec![0u8; 1 << 16];
        let err = Session::new(&model, &[&[2, 3, 4]], &mut arena).err();
        assert!(
            matches!(err, Some(Error::BadAttribute { .. })),
            "perm {perm:?}: {err:?}"
        );
    }
}

/// Number of run-time kernel steps after planning.
fn step_count(m: &ModelBuilder, shapes: &[&[usize]]) -> usize {
    let bytes = m.build();
    let model = Model::parse(&bytes).unwrap();
    let mut arena = vec![0u8; 1 << 20];
    Session::new(&model, shapes, &mut arena)
        .unwrap()
        .step_count()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn random_perms_match_tract(
        dims in proptest::collection::vec(1usize..5, 1..=5),
        keys in proptest::collection::vec(any::<u32>(), 5),
        seed in any::<u64>(),
    ) {
        let rank = dims.len();
        let mut perm: Vec<i64> = (0..rank as i64).collect();
        perm.sort_by_key(|&a| keys[a as usize]);
        check(
            &format!("Transpose {dims:?} {perm:?}"),
            &transpose(&dims, Some(perm)),
            &[rand_f32(&dims, seed)],
            0.0,
        );
    }
}
