//! Softmax and LogSoftmax against tract, in both opset conventions.

use crate::common::*;

#[test]
fn softmax_matches_tract_for_every_axis_and_opset() {
    let shape: &[usize] = &[2, 3, 4, 5];
    for op in ["Softmax", "LogSoftmax"] {
        for opset in [11, 13] {
            for axis in [-4i64, -3, -1, 0, 1, 2, 3] {
                let m = one_node(
                    op,
                    &[shape],
                    &[],
                    &[],
                    1,
                    vec![("axis", Attr::Int(axis))],
                    opset,
                );
                let x: Vec<f32> = rand_f32(shape, 3)
                    .to_f32_vec()
                    .iter()
                    .map(|v| v * 8.0)
                    .collect();
                check(
                    &format!("{op} opset {opset} axis {axis}"),
                    &m,
                    &[f32_tensor(shape, &x)],
                    1e-5,
                );
            }
            let m = one_node(op, &[shape], &[], &[], 1, vec![], opset);
            check(
                &format!("{op} opset {opset} default axis"),
                &m,
                &[rand_f32(shape, 4)],
                1e-5,
            );
        }
    }
}
