//! The compression passes and the pipeline that runs them in order.
//!
//! A pass rewrites a decoded `ModelProto` in place. Passes run in one fixed order
//! (clean → prune → quantize → layout) whatever order they were asked for in, because each
//! one assumes the previous ones ran: pruning and quantizing are only worth doing on a
//! cleaned graph (BatchNorm folded into the weights it scales), quantization must calibrate
//! the pruned model, and layout must see the final initializers. After each pass the model is encoded, so the report can price and run
//! every intermediate model, not only the final one.
//!
//! Every pass is deterministic: no hash-map iteration decides an order, so the same input
//! and passes give the same bytes.

pub mod calib;
pub mod clean;
pub mod fp16;
pub mod int8;
pub mod layout;
pub mod prune;

use crate::error::{Error, Result};
use crate::graph;
use prost::Message;
use tract_onnx::pb::ModelProto;

/// One compression pass. The declaration order is the run order ([`Pipeline::new`] sorts
/// by it): structural passes (clean, prune) first, then weight storage (fp16, int8), and
/// layout last since it must see the final initializers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Pass {
    /// Constant nodes → initializers, Identity/dead-node removal, BatchNorm folding,
    /// constant folding. Numerically equivalent.
    Clean,
    /// Structured pruning: output channels of Conv/Gemm removed with everything coupled to
    /// them, then the readers' weights rebuilt by least squares ([`prune`]).
    PruneChannels,
    /// Unstructured pruning: the smallest weights set to zero ([`prune::weights`]).
    PruneWeights,
    /// float32 weights stored as float16.
    Fp16,
    /// Post-training int8 quantization to QDQ (calibrated activations, per-channel
    /// weights). One weight scheme at a time: after Fp16 there are no float32 weights
    /// left for it.
    Int8,
    /// Deterministic initializer order, 16-byte aligned weight data.
    Layout,
}

impl Pass {
    /// The pass name, as in reports.
    pub fn name(self) -> &'static str {
        match self {
            Pass::Clean => "clean",
            Pass::PruneChannels => "prune-channels",
            Pass::PruneWeights => "prune-weights",
            Pass::Fp16 => "fp16",
            Pass::Int8 => "int8",
            Pass::Layout => "layout",
        }
    }

    /// Applies the pass to `model`; returns a one-line summary of what it changed.
    pub fn apply(self, model: &mut ModelProto, ctx: &Context) -> Result<String> {
        match self {
            Pass::Clean => clean::run(model, ctx),
            Pass::PruneChannels => prune::run(model, ctx),
            Pass::PruneWeights => prune::weights::run(model, &ctx.prune.weights),
            Pass::Fp16 => fp16::run(model),
            Pass::Int8 => int8::run(model, ctx),
            Pass::Layout => layout::run(model),
        }
    }
}

/// What the passes know about how the model will be run.
#[derive(Clone, Debug, Default)]
pub struct Context {
    /// One shape per real graph input (in order), when known: enables shape folding in
    /// clean (which then pins these shapes in the model's declared inputs).
    pub input_shapes: Option<Vec<Vec<usize>>>,
    /// Calibration inputs: per sample, the raw little-endian bytes of each real graph input
    /// in order; read by int8 (activation ranges) and channel pruning (reconstruction).
    /// `None`: [`RANDOM_SAMPLES`] seeded random inputs — a placeholder that fits noise,
    /// not the model's data.
    pub calib: Option<Vec<Vec<Vec<u8>>>>,
    /// Choices of the int8 pass.
    pub int8: int8::Options,
    /// Choices of the pruning passes.
    pub prune: prune::Options,
}

/// Calibration samples drawn when none are given (seeded uniform noise in [-1, 1)).
pub const RANDOM_SAMPLES: usize = 16;

impl Context {
    /// The input shapes as slices (`&[]` when unknown: the runtime uses declared shapes).
    pub fn shape_refs(&self) -> Vec<&[usize]> {
        self.input_shapes
            .iter()
            .flatten()
            .map(Vec::as_slice)
            .collect()
    }

    /// How many calibration samples there are ([`RANDOM_SAMPLES`] without `calib`).
    pub fn calib_count(&self) -> usize {
        self.calib.as_ref().map_or(RANDOM_SAMPLES, Vec::len)
    }

    /// The raw bytes of graph input `k` (`volume` elements of `dtype`) in calibration
    /// sample `sample`: the given data, checked against the size the model expects, or
    /// seeded noise. The input callback of [`crate::exec::run_samples`].
    pub fn calib_input(
        &self,
        sample: usize,
        k: usize,
        dtype: edgetrim_runtime::DType,
        volume: usize,
    ) -> std::result::Result<Vec<u8>, String> {
        let Some(given) = &self.calib else {
            return Ok(crate::exec::random_input(
                dtype,
                volume,
                k + 64 * (sample + 1),
            ));
        };
        let data = given
            .get(sample)
            .and_then(|s| s.get(k))
            .ok_or_else(|| format!("calibration input {sample} has no data for graph input {k}"))?;
        let want = volume * dtype.size();
        if data.len() != want {
            return Err(format!(
                "calibration input {sample}: graph input {k} has {} bytes, {want} expected",
                data.len()
            ));
        }
        Ok(data.clone())
    }
}

/// The model after one pass.
#[derive(Clone, Debug)]
pub struct Stage {
    /// The pass that produced it.
    pub pass: Pass,
    /// The encoded model.
    pub bytes: Vec<u8>,
    /// Node count.
    pub nodes: usize,
    /// Parameter count (initializers and Constant values).
    pub params: u64,
    /// What the pass changed, in one line.
    pub summary: String,
}

/// An ordered, duplicate-free list of passes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pipeline {
    passes: Vec<Pass>,
}

impl Pipeline {
    /// The passes in their fixed order (duplicates dropped).
    pub fn new(mut passes: Vec<Pass>) -> Pipeline {
        passes.sort();
        passes.dedup();
        Pipeline { passes }
    }

    /// The passes, in the order they run.
    pub fn passes(&self) -> &[Pass] {
        &self.passes
    }

    /// Decodes `bytes`, runs every pass, and returns the model after each. Fails — having
    /// produced nothing — on the first pass that refuses the model.
    pub fn run(&self, bytes: &[u8], ctx: &Context) -> Result<Vec<Stage>> {
        let mut model = decode(bytes)?;
        let mut aligned = false;
        let mut stages = Vec::with_capacity(self.passes.len());
        for &pass in &self.passes {
            let summary = pass.apply(&mut model, ctx)?;
            aligned |= pass == Pass::Layout;
            let bytes = encode(&model, aligned)?;
            let g = model
                .graph
                .as_ref()
                .map(|g| (g.node.len(), graph::params(g).0));
            let (nodes, params) = g.unwrap_or_default();
            stages.push(Stage {
                pass,
                bytes,
                nodes,
                params,
                summary,
            });
        }
        Ok(stages)
    }
}

/// Decodes model bytes and checks the graph is in topological order (the passes rely on
/// it). What tract's schema copy does not know (IR 10 node metadata) is dropped;
/// `ModelProto.metadata_props` and model-local functions are kept.
pub fn decode(bytes: &[u8]) -> Result<ModelProto> {
    let model = ModelProto::decode(bytes).map_err(|e| Error::Decode(e.to_string()))?;
    let Some(g) = model.graph.as_ref() else {
        return Err(Error::Decode("the model has no graph".into()));
    };
    graph::check_order(g)?;
    Ok(model)
}

/// Encodes `model`; `aligned` places every initializer's raw data at a 16-byte offset
/// (see [`layout`]).
pub fn encode(model: &ModelProto, aligned: bool) -> Result<Vec<u8>> {
    if aligned {
        layout::encode_aligned(model)
    } else {
        Ok(model.encode_to_vec())
    }
}
