//! The session API backed by tract-onnx (feature `tract`): the host reference that every
//! kernel is tested against, and the `--backend tract` of the CLI.
//!
//! It mirrors [`crate::Session`]: plan for fixed input shapes, set inputs as little-endian
//! bytes, run, read outputs as [`TensorRef`]s.

use crate::tensor::{DType, Shape, TensorRef};
use std::vec::Vec;
use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::{bail, format_err};

/// An owned tensor in the runtime's representation.
#[derive(Clone, Debug, PartialEq)]
pub struct OwnedTensor {
    /// Element type.
    pub dtype: DType,
    /// Shape.
    pub shape: Shape,
    /// Little-endian element bytes.
    pub bytes: Vec<u8>,
}

impl OwnedTensor {
    /// A copy of a view's data (e.g. a session output, which borrows the arena).
    pub fn copy_of(t: TensorRef<'_>) -> OwnedTensor {
        OwnedTensor {
            dtype: t.dtype,
            shape: t.shape,
            bytes: t.bytes.to_vec(),
        }
    }

    /// A view of it.
    pub fn view(&self) -> TensorRef<'_> {
        TensorRef {
            dtype: self.dtype,
            shape: self.shape,
            bytes: &self.bytes,
        }
    }

    /// Elements as f32 (any numeric dtype widened).
    pub fn to_f32_vec(&self) -> Vec<f32> {
        let v = self.view();
        match self.dtype {
            DType::F32 => self
                .bytes
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            _ => v.i64s().map(|x| x as f32).collect(),
        }
    }
}

fn datum_type(dtype: DType) -> DatumType {
    match dtype {
        DType::F32 => f32::datum_type(),
        DType::F16 => f16::datum_type(),
        DType::F64 => f64::datum_type(),
        DType::I8 => i8::datum_type(),
        DType::U8 => u8::datum_type(),
        DType::I16 => i16::datum_type(),
        DType::I32 => i32::datum_type(),
        DType::I64 => i64::datum_type(),
        DType::Bool => bool::datum_type(),
    }
}

fn dtype_of(dt: DatumType) -> TractResult<DType> {
    Ok(match dt {
        DatumType::F32 => DType::F32,
        DatumType::F16 => DType::F16,
        DatumType::F64 => DType::F64,
        DatumType::I8 => DType::I8,
        DatumType::U8 => DType::U8,
        DatumType::I16 => DType::I16,
        DatumType::I32 => DType::I32,
        DatumType::I64 => DType::I64,
        DatumType::Bool => DType::Bool,
        other => bail!("tract produced an unsupported type {other:?}"),
    })
}

/// A tract-backed session.
pub struct TractSession {
    plan: std::sync::Arc<TypedSimplePlan>,
    inputs: Vec<TValue>,
    specs: Vec<(DType, Shape)>,
    outputs: Vec<OwnedTensor>,
}

impl TractSession {
    /// Loads and optimises `model` with one shape per graph input (or `&[]` for the
    /// declared shapes).
    pub fn new(model: &[u8], input_shapes: &[&[usize]]) -> TractResult<TractSession> {
        let view = crate::Model::parse(model)?;
        let mut inference = tract_onnx::onnx().model_for_read(&mut &*model)?;
        let mut specs = Vec::new();
        for (k, vi) in view.inputs().enumerate() {
            let dtype = vi
                .dtype()
                .ok_or_else(|| format_err!("input {} has no supported type", vi.name()))?;
            let shape: Vec<usize> = match input_shapes.get(k) {
                Some(s) => s.to_vec(),
                None => vi
                    .dims()
                    .ok_or_else(|| format_err!("input {} has no declared shape", vi.name()))?
                    .map(|d| match d {
                        crate::onnx::Dim::Fixed(n) => Ok(n),
                        crate::onnx::Dim::Symbolic(_) => {
                            Err(format_err!("input {} has a symbolic dim", vi.name()))
                        }
                    })
                    .collect::<TractResult<_>>()?,
            };
            inference =
                inference.with_input_fact(k, InferenceFact::dt_shape(datum_type(dtype), &shape))?;
            specs.push((dtype, Shape::new(&shape)?));
        }
        let plan = inference.into_optimized()?.into_runnable()?;
        let inputs = specs
            .iter()
            .map(|(dt, s)| Tensor::zero_dt(datum_type(*dt), s.dims()).map(|t| t.into_tvalue()))
            .collect::<TractResult<_>>()?;
        Ok(TractSession {
            plan,
            inputs,
            specs,
            outputs: Vec::new(),
        })
    }

    /// Number of graph inputs.
    pub fn input_count(&self) -> usize {
        self.specs.len()
    }

    /// Sets input `i` from little-endian bytes.
    pub fn set_input_bytes(&mut self, i: usize, bytes: &[u8]) -> TractResult<()> {
        let (dtype, shape) = *self
            .specs
            .get(i)
            .ok_or_else(|| format_err!("no input {i}"))?;
        if bytes.len() != shape.volume() * dtype.size() {
            bail!("input {i}: byte count does not match the planned shape");
        }
        // SAFETY: `from_raw_dt` copies `bytes` into a new tensor of the given type and
        // shape; the length was checked above and every bit pattern is a valid value of
        // the numeric types used here (bool inputs are only ever 0/1 from our callers).
        let t = unsafe { Tensor::from_raw_dt(datum_type(dtype), shape.dims(), bytes)? };
        self.inputs[i] = t.into_tvalue();
        Ok(())
    }

    /// Runs the model.
    pub fn run(&mut self) -> TractResult<()> {
        let out = self.plan.run(self.inputs.iter().cloned().collect())?;
        self.outputs = out
            .iter()
            .map(|t| {
                let mut t = t.clone().into_tensor();
                // Shape-like outputs come back as tract's symbolic dims: make them int64.
                if t.datum_type() == DatumType::TDim {
                    t = t.cast_to::<i64>()?.into_owned();
                }
                let dtype = dtype_of(t.datum_type())?;
                let bytes = t.as_bytes().to_vec();
                Ok(OwnedTensor {
                    dtype,
                    shape: Shape::new(t.shape())?,
                    bytes,
                })
            })
            .collect::<TractResult<_>>()?;
        Ok(())
    }

    /// Output `i` of the last run.
    pub fn output(&self, i: usize) -> TensorRef<'_> {
        self.outputs[i].view()
    }

    /// Number of outputs of the last run.
    pub fn output_count(&self) -> usize {
        self.outputs.len()
    }
}
