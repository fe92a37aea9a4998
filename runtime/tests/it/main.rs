#![cfg(feature = "tract")]
//! The runtime's integration tests in one binary: each module is one op family or
//! concern checked against tract (or the ONNX backend cases, or corrupt inputs). One
//! binary links tract once; thirty of them took minutes to link and filled a CI disk.
//! `no_alloc` stays apart because it installs a counting global allocator.

#[path = "../common/mod.rs"]
mod common;
mod diff_binary;
mod diff_cast;
mod diff_concat;
mod diff_conv;
mod diff_fp16;
mod diff_gather;
mod diff_generate;
mod diff_lstm;
mod diff_matmul;
mod diff_norm;
mod diff_pad;
mod diff_pool;
mod diff_qconv;
mod diff_qlstm;
mod diff_qmatmul;
mod diff_quant;
mod diff_reduce;
mod diff_resize;
mod diff_select;
mod diff_shape;
mod diff_slice;
mod diff_softmax;
mod diff_transpose;
mod diff_unary;
mod image;
mod model_metadata;
mod mutation;
mod onnx_node;
mod rnnt_toy;
