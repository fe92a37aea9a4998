//! The firmware check's model, generated in code so that it is reproducible: a small CNN
//! with fixed pseudo-random weights (seeded [`Lcg`]), committed as
//! `examples/firmware/tiny_cnn.onnx`; `tests/it/tiny_cnn.rs` checks the committed file is
//! exactly what this produces.

use super::reference::Lcg;
use edgetrim_compress::build::{dt, Attr, ModelBuilder};

/// Path of the committed model.
pub const PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/examples/firmware/tiny_cnn.onnx"
);

/// Input shape (one 28x28 grey image).
pub const INPUT: [usize; 4] = [1, 1, 28, 28];

/// Seed of the weights.
const WEIGHT_SEED: u32 = 0x00C0_FFEE;

/// `n` weights uniform in ±sqrt(3 / fan_in) (unit-variance activations, like He/LeCun init).
fn weights(lcg: &mut Lcg, n: usize, fan_in: usize) -> Vec<f32> {
    let scale = (3.0 / fan_in as f32).sqrt();
    (0..n).map(|_| lcg.next_f32() * scale).collect()
}

/// The encoded model: 1x1x28x28 -> Conv 3x3 (8 ch, pad 1) -> Relu -> MaxPool 2 ->
/// Conv 3x3 stride 2 pad 1 (16 ch) -> SiLU (x * Sigmoid(x)) -> GlobalAveragePool ->
/// Flatten -> Gemm (10) -> Softmax.
pub fn build() -> Vec<u8> {
    let mut lcg = Lcg::new(WEIGHT_SEED);
    let mut b = ModelBuilder::new(13);
    b.input("x", dt::FLOAT, &INPUT)
        .output("y", dt::FLOAT)
        .init_f32("w1", &[8, 1, 3, 3], &weights(&mut lcg, 8 * 9, 9))
        .init_f32("b1", &[8], &weights(&mut lcg, 8, 9))
        .init_f32("w2", &[16, 8, 3, 3], &weights(&mut lcg, 16 * 8 * 9, 8 * 9))
        .init_f32("b2", &[16], &weights(&mut lcg, 16, 8 * 9))
        .init_f32("w3", &[10, 16], &weights(&mut lcg, 10 * 16, 16))
        .init_f32("b3", &[10], &weights(&mut lcg, 10, 16))
        .node(
            "Conv",
            &["x", "w1", "b1"],
            &["c1"],
            vec![
                ("kernel_shape", Attr::Ints(vec![3, 3])),
                ("pads", Attr::Ints(vec![1, 1, 1, 1])),
            ],
        )
        .node("Relu", &["c1"], &["r1"], vec![])
        .node(
            "MaxPool",
            &["r1"],
            &["p1"],
            vec![
                ("kernel_shape", Attr::Ints(vec![2, 2])),
                ("strides", Attr::Ints(vec![2, 2])),
            ],
        )
        .node(
            "Conv",
            &["p1", "w2", "b2"],
            &["c2"],
            vec![
                ("kernel_shape", Attr::Ints(vec![3, 3])),
                ("strides", Attr::Ints(vec![2, 2])),
                ("pads", Attr::Ints(vec![1, 1, 1, 1])),
            ],
        )
        .node("Sigmoid", &["c2"], &["s2"], vec![])
        .node("Mul", &["c2", "s2"], &["a2"], vec![])
        .node("GlobalAveragePool", &["a2"], &["g"], vec![])
        .node("Flatten", &["g"], &["f"], vec![])
        .node(
            "Gemm",
            &["f", "w3", "b3"],
            &["logits"],
            vec![("transB", Attr::Int(1))],
        )
        .node(
            "Softmax",
            &["logits"],
            &["y"],
            vec![("axis", Attr::Int(-1))],
        );
    b.build()
}
