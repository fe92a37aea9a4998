//! Add/Sub/Mul/Div/Pow against tract, with broadcasting and constant operands.

use crate::common::*;

#[test]
fn arithmetic_broadcasts_like_numpy() {
    let cases: &[(&[usize], &[usize])] = &[
        (&[2, 3, 4], &[2, 3, 4]),
        (&[1, 8, 5, 5], &[1, 8, 1, 1]),
        (&[2, 3, 4], &[4]),
        (&[3, 1], &[1, 5]),
        (&[1, 4, 1, 6], &[3, 1, 5, 1]),
        (&[7], &[]),
    ];
    for op in ["Add", "Sub", "Mul", "Div"] {
        for (k, (a, b)) in cases.iter().enumerate() {
            let m = one_node(op, &[a, b], &[], &[], 1, vec![], 13);
            check(
                &format!("{op} case {k}"),
                &m,
                &[rand_f32(a, k as u64), rand_f32(b, 99 + k as u64)],
                TOL,
            );
        }
    }
}

#[test]
fn constant_operand_read_in_place_even_unaligned() {
    // The initializer's raw_data lands at an arbitrary offset in the protobuf.
    for pad in 0..4usize {
        let w = rand_f32(&[1, 3 + pad, 1, 1], 7);
        let m = one_node(
            "Mul",
            &[&[1, 3 + pad, 4, 4]],
            &[("w", w)],
            &["w"],
            1,
            vec![],
            13,
        );
        check(
            "Mul by constant",
            &m,
            &[rand_f32(&[1, 3 + pad, 4, 4], 3)],
            TOL,
        );
    }
}

#[test]
fn pow_matches_for_common_exponents() {
    for e in [2.0f32, 0.5, 3.0, 1.0] {
        let m = one_node(
            "Pow",
            &[&[2, 5]],
            &[("e", f32_tensor(&[], &[e]))],
            &["e"],
            1,
            vec![],
            13,
        );
        let x = f32_tensor(&[2, 5], &[0.5, 1.0, 2.0, 3.0, 0.1, 0.2, 0.3, 4.0, 5.0, 1.5]);
        check(&format!("Pow {e}"), &m, &[x], TOL);
    }
}
