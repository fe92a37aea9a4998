//! The layout pass: weight bytes placed where a runtime reading the file in place wants
//! them.
//!
//! edgetrim's runtime uses weights straight from the model bytes (flash on a
//! microcontroller). A float32 weight whose `raw_data` starts at a 16-byte offset can be
//! read as a plain `&[f32]` (and by SIMD loads) once the file itself is 16-byte aligned in
//! memory; an unaligned one goes through a byte-wise reader. So this pass
//!
//! 1. orders initializers by first use in node order (weights then stream through flash in
//!    execution order; unused ones last, by name) — deterministic whatever the exporter did;
//! 2. moves typed data fields (`float_data`, ...) into `raw_data`;
//! 3. encodes the model so that every `raw_data` payload starts at a multiple of
//!    [`ALIGN`] bytes from the start of the file ([`encode_aligned`]).
//!
//! Alignment is bought with padding, written as a `doc_string` field (all spaces) placed
//! just before the `raw_data` field inside each initializer. Protobuf parsers accept fields
//! in any order and every ONNX reader ignores an initializer's doc string, so the file stays
//! valid ONNX for netron, tract and onnxruntime. A real doc string is kept: it is written
//! after the data, and the last occurrence of a field wins.

use crate::error::{Error, Result};
use crate::graph;
use edgetrim_runtime::onnx::wire::{self, Value};
use prost::encoding::{encode_key, encode_varint, encoded_len_varint, WireType};
use prost::Message;
use std::collections::HashMap;
use tract_onnx::pb::{GraphProto, ModelProto, TensorProto};

/// Alignment of every `raw_data` payload in the file: the runtime arena's alignment.
pub const ALIGN: usize = edgetrim_runtime::arena::ALIGN;

// Field numbers of onnx.proto.
const MODEL_GRAPH: u32 = 7;
const GRAPH_INITIALIZER: u32 = 5;
const TENSOR_NAME: u32 = 8;
const TENSOR_RAW_DATA: u32 = 9;
const TENSOR_DOC_STRING: u32 = 12;

/// Whether an initializer's doc string is padding from an earlier layout.
fn is_padding(doc: &str) -> bool {
    !doc.is_empty() && doc.bytes().all(|b| b == b' ')
}

/// Runs the layout pass (ordering and raw data; alignment happens in [`encode_aligned`]).
pub fn run(model: &mut ModelProto) -> Result<String> {
    let g = model.graph.get_or_insert_with(Default::default);
    for t in &mut g.initializer {
        if is_padding(&t.doc_string) {
            t.doc_string.clear();
        }
        graph::to_raw(t)?;
    }
    let mut first_use: HashMap<&str, usize> = HashMap::new();
    for name in g.node.iter().flat_map(|n| &n.input) {
        let next = first_use.len();
        first_use.entry(name.as_str()).or_insert(next);
    }
    let mut order: Vec<(usize, &str, usize)> = g
        .initializer
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let rank = first_use
                .get(t.name.as_str())
                .copied()
                .unwrap_or(usize::MAX);
            (rank, t.name.as_str(), i)
        })
        .collect();
    order.sort_unstable();
    let order: Vec<usize> = order.into_iter().map(|(_, _, i)| i).collect();
    let mut slots: Vec<Option<TensorProto>> = g.initializer.drain(..).map(Some).collect();
    g.initializer = order.iter().filter_map(|&i| slots[i].take()).collect();
    Ok(format!(
        "{} initializers ordered by first use, data {ALIGN}-byte aligned",
        g.initializer.len()
    ))
}

/// One initializer split around its `raw_data`, so padding can go in between.
struct Split {
    /// Fields 1–8 (dims, type, name, ...), encoded.
    head: Vec<u8>,
    /// Fields after `raw_data` (a real doc string, external data, ...), encoded.
    tail: Vec<u8>,
}

fn split(t: &TensorProto) -> Split {
    let TensorProto {
        dims,
        data_type,
        segment,
        float_data,
        int32_data,
        string_data,
        int64_data,
        name,
        doc_string,
        raw_data: _,
        double_data,
        uint64_data,
        external_data,
        data_location,
    } = t;
    let head = TensorProto {
        dims: dims.clone(),
        data_type: *data_type,
        segment: segment.clone(),
        float_data: float_data.clone(),
        int32_data: int32_data.clone(),
        string_data: string_data.clone(),
        int64_data: int64_data.clone(),
        name: name.clone(),
        ..Default::default()
    };
    let doc_string = if is_padding(doc_string) {
        String::new()
    } else {
        doc_string.clone()
    };
    let tail = TensorProto {
        doc_string,
        double_data: double_data.clone(),
        uint64_data: uint64_data.clone(),
        external_data: external_data.clone(),
        data_location: *data_location,
        ..Default::default()
    };
    Split {
        head: head.encode_to_vec(),
        tail: tail.encode_to_vec(),
    }
}

/// Bytes of a length-delimited field (key, length, payload) with a `len`-byte payload.
fn field_len(field: u32, len: usize) -> usize {
    prost::encoding::key_len(field) + encoded_len_varint(len as u64) + len
}

/// Padding field sizes to try: none, or a doc string of 1..=127 spaces (3..=129 bytes).
fn pad_sizes() -> impl Iterator<Item = usize> {
    std::iter::once(0).chain(3..=129)
}

/// Body length of a tensor with `pad` bytes of padding.
fn body_len(s: &Split, raw: usize, pad: usize) -> usize {
    let raw_field = if raw == 0 {
        0
    } else {
        field_len(TENSOR_RAW_DATA, raw)
    };
    s.head.len() + pad + raw_field + s.tail.len()
}

/// Picks each tensor's padding so its raw data starts aligned when its entry starts at
/// `pos`; returns the paddings and the end position.
fn place(splits: &[Split], tensors: &[TensorProto], mut pos: usize) -> Result<(Vec<usize>, usize)> {
    let key = prost::encoding::key_len(GRAPH_INITIALIZER);
    let mut pads = Vec::with_capacity(splits.len());
    for (s, t) in splits.iter().zip(tensors) {
        let raw = t.raw_data.len();
        let pad = if raw == 0 {
            0
        } else {
            let raw_key =
                prost::encoding::key_len(TENSOR_RAW_DATA) + encoded_len_varint(raw as u64);
            pad_sizes()
                .find(|&pad| {
                    let body = body_len(s, raw, pad);
                    let start = pos + key + encoded_len_varint(body as u64);
                    (start + s.head.len() + pad + raw_key).is_multiple_of(ALIGN)
                })
                .ok_or_else(|| Error::Layout(format!("no padding aligns {}", t.name)))?
        };
        pos += field_len(GRAPH_INITIALIZER, body_len(s, raw, pad));
        pads.push(pad);
    }
    Ok((pads, pos))
}

fn put_bytes_field(out: &mut Vec<u8>, field: u32, payload: &[u8]) {
    encode_key(field, WireType::LengthDelimited, out);
    encode_varint(payload.len() as u64, out);
    out.extend_from_slice(payload);
}

/// Encodes `model` with every initializer's `raw_data` at a multiple of [`ALIGN`] bytes
/// from the start of the output, and checks that it is.
pub fn encode_aligned(model: &ModelProto) -> Result<Vec<u8>> {
    let ModelProto {
        ir_version,
        opset_import,
        producer_name,
        producer_version,
        domain,
        model_version,
        doc_string,
        graph,
        metadata_props,
        training_info,
        functions,
    } = model;
    let empty = GraphProto::default();
    let g = graph.as_ref().unwrap_or(&empty);
    // Fields are written in field-number order, as prost would: 1–6, the graph (7), 8+.
    let head = ModelProto {
        ir_version: *ir_version,
        producer_name: producer_name.clone(),
        producer_version: producer_version.clone(),
        domain: domain.clone(),
        model_version: *model_version,
        doc_string: doc_string.clone(),
        ..Default::default()
    }
    .encode_to_vec();
    let tail = ModelProto {
        opset_import: opset_import.clone(),
        metadata_props: metadata_props.clone(),
        training_info: training_info.clone(),
        functions: functions.clone(),
        ..Default::default()
    }
    .encode_to_vec();
    let GraphProto {
        node,
        name,
        initializer,
        sparse_initializer,
        doc_string: graph_doc,
        input,
        output,
        value_info,
        quantization_annotation,
    } = g;
    let graph_head = GraphProto {
        node: node.clone(),
        name: name.clone(),
        ..Default::default()
    }
    .encode_to_vec();
    let graph_tail = GraphProto {
        sparse_initializer: sparse_initializer.clone(),
        doc_string: graph_doc.clone(),
        input: input.clone(),
        output: output.clone(),
        value_info: value_info.clone(),
        quantization_annotation: quantization_annotation.clone(),
        ..Default::default()
    }
    .encode_to_vec();
    let splits: Vec<Split> = initializer.iter().map(split).collect();

    // The graph's length prefix moves everything after it, and depends on the padding:
    // iterate until its width is stable (twice at most in practice).
    let graph_key = prost::encoding::key_len(MODEL_GRAPH);
    let mut width = 1;
    let (pads, graph_len) = loop {
        let start = head.len() + graph_key + width;
        let (pads, end) = place(&splits, initializer, start + graph_head.len())?;
        let graph_len = end - start + graph_tail.len();
        let needed = encoded_len_varint(graph_len as u64);
        if needed == width {
            break (pads, graph_len);
        }
        if width > 10 {
            return Err(Error::Layout("graph length does not settle".into()));
        }
        width = needed;
    };

    let mut out = Vec::with_capacity(head.len() + graph_key + width + graph_len + tail.len());
    out.extend_from_slice(&head);
    encode_key(MODEL_GRAPH, WireType::LengthDelimited, &mut out);
    encode_varint(graph_len as u64, &mut out);
    out.extend_from_slice(&graph_head);
    for ((s, t), &pad) in splits.iter().zip(initializer).zip(&pads) {
        let raw = t.raw_data.len();
        encode_key(GRAPH_INITIALIZER, WireType::LengthDelimited, &mut out);
        encode_varint(body_len(s, raw, pad) as u64, &mut out);
        out.extend_from_slice(&s.head);
        if pad > 0 {
            put_bytes_field(&mut out, TENSOR_DOC_STRING, " ".repeat(pad - 2).as_bytes());
        }
        if raw > 0 {
            put_bytes_field(&mut out, TENSOR_RAW_DATA, &t.raw_data);
        }
        out.extend_from_slice(&s.tail);
    }
    out.extend_from_slice(&graph_tail);
    out.extend_from_slice(&tail);

    if let Some((name, offset)) = raw_data_offsets(&out)
        .into_iter()
        .find(|(_, o)| !o.is_multiple_of(ALIGN))
    {
        return Err(Error::Layout(format!(
            "raw data of {name} landed at offset {offset}, not a multiple of {ALIGN}"
        )));
    }
    Ok(out)
}

/// Name and file offset of every initializer's non-empty `raw_data` payload in encoded
/// model `bytes` (what [`encode_aligned`] guarantees to be multiples of [`ALIGN`]).
pub fn raw_data_offsets(bytes: &[u8]) -> Vec<(String, usize)> {
    let mut found = Vec::new();
    let graphs = wire::fields(bytes).filter(|(f, _)| *f == MODEL_GRAPH);
    for (_, graph) in graphs {
        let Value::Bytes(graph) = graph else { continue };
        for (_, tensor) in wire::fields(graph).filter(|(f, _)| *f == GRAPH_INITIALIZER) {
            let Value::Bytes(tensor) = tensor else {
                continue;
            };
            let field = |n: u32| {
                wire::fields(tensor)
                    .filter(move |(f, _)| *f == n)
                    .filter_map(|(_, v)| v.as_bytes())
                    .last()
            };
            let name = field(TENSOR_NAME).and_then(|b| std::str::from_utf8(b).ok());
            if let Some(raw) = field(TENSOR_RAW_DATA).filter(|r| !r.is_empty()) {
                found.push((name.unwrap_or("?").to_string(), wire::offset_in(bytes, raw)));
            }
        }
    }
    found
}
