//! The compressor's integration tests in one binary (one link of tract instead of six):
//! each module checks one pass family on real and generated models.

mod common;
mod int8;
mod int8_lstm;
mod passes;
mod prune;
mod real_models;
mod slice;
