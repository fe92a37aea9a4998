//! End-to-end tests of the `edgetrim` CLI and the pipeline, one module per command or
//! flow, linked as one binary (one link of tract instead of fifteen).

mod asr;
mod cli;
mod common;
mod compress;
mod compress_classify;
mod compress_grid;
mod compress_slice;
mod datagen;
mod datagen_speech;
mod demo;
mod eval_detect;
mod fps;
mod pack;
mod real_cnn;
mod tiny_cnn;
