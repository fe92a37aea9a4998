//! The fp16 pass: float32 weights stored as IEEE float16, halving the weight bytes.
//!
//! Each float32 initializer with at least [`MIN_ELEMENTS`] elements is rounded to float16
//! (round-to-nearest-even, the `half` crate) under a new name, and a `Cast(to=FLOAT)` node
//! recreates the original name in float32. Nothing downstream changes, and the file stays
//! plain ONNX that tract and onnxruntime run (both fold the Cast once at load).
//!
//! edgetrim's runtime recognises these Casts when their readers are weight inputs (Conv,
//! ConvTranspose, MatMul, Gemm) and skips them: those kernels read the float16 bytes in
//! place and widen them as they pack, so flash halves and the arena stays the float32
//! model's. Casts with other readers run as steps and widen into the arena.
//!
//! Skipped (left float32): small tensors (bias-sized: the Cast would cost more than it
//! saves), initializers that are also graph inputs (they can be overridden at run time),
//! external data, and tensors with values beyond float16's range (they would become inf).

use crate::build::dt;
use crate::error::Result;
use crate::graph;
use half::f16;
use tract_onnx::pb::{attribute_proto::AttributeType, AttributeProto, ModelProto, NodeProto};

/// Smaller float32 tensors stay float32.
pub const MIN_ELEMENTS: usize = 16;

/// Runs the fp16 pass; returns a one-line summary.
pub fn run(model: &mut ModelProto) -> Result<String> {
    let g = model.graph.get_or_insert_with(Default::default);
    let mut taken = graph::names(g);
    let graph_inputs: std::collections::HashSet<String> =
        g.input.iter().map(|v| v.name.clone()).collect();
    let mut casts = Vec::new();
    let (mut converted, mut saved) = (0usize, 0usize);
    for t in &mut g.initializer {
        if t.data_type != dt::FLOAT
            || graph::is_external(t)
            || graph_inputs.contains(&t.name)
            || graph::elem_count(t).is_none_or(|n| n < MIN_ELEMENTS)
        {
            continue;
        }
        let values = graph::f32s(t)?;
        if values
            .iter()
            .any(|v| v.is_finite() && v.abs() > f16::MAX.to_f32())
        {
            continue;
        }
        let original = std::mem::take(&mut t.name);
        let half_name = graph::fresh_name(&mut taken, &format!("{original}_f16"));
        let node_name = graph::fresh_name(&mut taken, &format!("{original}_to_f32"));
        let raw: Vec<u8> = values
            .iter()
            .flat_map(|&v| f16::from_f32(v).to_le_bytes())
            .collect();
        saved += values.len() * 2;
        *t = tract_onnx::pb::TensorProto {
            name: half_name.clone(),
            data_type: dt::FLOAT16,
            dims: std::mem::take(&mut t.dims),
            raw_data: raw,
            doc_string: std::mem::take(&mut t.doc_string),
            ..Default::default()
        };
        casts.push(NodeProto {
            name: node_name,
            op_type: "Cast".into(),
            input: vec![half_name],
            output: vec![original],
            attribute: vec![AttributeProto {
                name: "to".into(),
                i: i64::from(dt::FLOAT),
                r#type: AttributeType::Int as i32,
                ..Default::default()
            }],
            ..Default::default()
        });
        converted += 1;
    }
    // The Casts come first, so every reader still follows its producer.
    casts.append(&mut g.node);
    g.node = casts;
    Ok(format!(
        "{converted} tensors to float16 ({saved} bytes saved)"
    ))
}
