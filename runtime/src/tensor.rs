//! Element types, shapes and borrowed tensor views.
//!
//! Tensors never own memory: a [`TensorRef`] borrows either the model bytes (weights, used in
//! place and possibly unaligned) or the arena (activations, 16-byte aligned). Kernels read
//! f32 data through [`F32View`], which is a plain `&[f32]` when the bytes are aligned and a
//! little-endian byte reader otherwise, so an unaligned weight never needs a copy.

use crate::error::{Error, Result};

/// The largest tensor rank this build handles.
pub const MAX_RANK: usize = 8;

/// Element type of a tensor (the ONNX `TensorProto.DataType` subset we run).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum DType {
    /// 32-bit float.
    F32,
    /// 16-bit IEEE float.
    F16,
    /// 64-bit float (constant shape math only).
    F64,
    /// Signed 8-bit integer.
    I8,
    /// Unsigned 8-bit integer.
    U8,
    /// Signed 16-bit integer.
    I16,
    /// Signed 32-bit integer.
    I32,
    /// Signed 64-bit integer (shapes, indices).
    I64,
    /// Boolean, one byte per element.
    Bool,
}

impl DType {
    /// Maps an ONNX `DataType` code.
    pub fn from_onnx(code: i64) -> Option<DType> {
        Some(match code {
            1 => DType::F32,
            2 => DType::U8,
            3 => DType::I8,
            5 => DType::I16,
            6 => DType::I32,
            7 => DType::I64,
            9 => DType::Bool,
            10 => DType::F16,
            11 => DType::F64,
            _ => return None,
        })
    }

    /// The ONNX `DataType` code.
    pub fn onnx_code(self) -> i64 {
        match self {
            DType::F32 => 1,
            DType::U8 => 2,
            DType::I8 => 3,
            DType::I16 => 5,
            DType::I32 => 6,
            DType::I64 => 7,
            DType::Bool => 9,
            DType::F16 => 10,
            DType::F64 => 11,
        }
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            DType::I8 | DType::U8 | DType::Bool => 1,
            DType::F16 | DType::I16 => 2,
            DType::F32 | DType::I32 => 4,
            DType::I64 | DType::F64 => 8,
        }
    }

    /// Lower-case name as in numpy.
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "float32",
            DType::F16 => "float16",
            DType::F64 => "float64",
            DType::I8 => "int8",
            DType::U8 => "uint8",
            DType::I16 => "int16",
            DType::I32 => "int32",
            DType::I64 => "int64",
            DType::Bool => "bool",
        }
    }
}

/// A fixed-capacity shape (rank ≤ [`MAX_RANK`]).
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct Shape {
    dims: [usize; MAX_RANK],
    rank: u8,
}

impl Shape {
    /// The shape of a scalar.
    pub const SCALAR: Shape = Shape {
        dims: [0; MAX_RANK],
        rank: 0,
    };

    /// A shape from its dims; rank above [`MAX_RANK`] is a capacity error.
    pub fn new(dims: &[usize]) -> Result<Shape> {
        if dims.len() > MAX_RANK {
            return Err(Error::Capacity {
                what: "tensor rank",
                limit: MAX_RANK,
            });
        }
        let mut s = Shape {
            dims: [0; MAX_RANK],
            rank: dims.len() as u8,
        };
        s.dims[..dims.len()].copy_from_slice(dims);
        Ok(s)
    }

    /// A shape from an iterator of dims (fallible, so not `FromIterator`).
    #[allow(clippy::should_implement_trait)]
    pub fn from_iter(dims: impl IntoIterator<Item = usize>) -> Result<Shape> {
        let mut s = Shape::SCALAR;
        for d in dims {
            s.push(d)?;
        }
        Ok(s)
    }

    /// Appends a trailing dim.
    pub fn push(&mut self, d: usize) -> Result<()> {
        if self.rank as usize == MAX_RANK {
            return Err(Error::Capacity {
                what: "tensor rank",
                limit: MAX_RANK,
            });
        }
        self.dims[self.rank as usize] = d;
        self.rank += 1;
        Ok(())
    }

    /// The dims.
    pub fn dims(&self) -> &[usize] {
        &self.dims[..self.rank as usize]
    }

    /// The dims, mutably.
    pub fn dims_mut(&mut self) -> &mut [usize] {
        &mut self.dims[..self.rank as usize]
    }

    /// Number of dims.
    pub fn rank(&self) -> usize {
        self.rank as usize
    }

    /// Number of elements (1 for a scalar). Saturates instead of overflowing; shapes that
    /// reach the planner are checked with [`Shape::checked_volume`].
    pub fn volume(&self) -> usize {
        self.dims()
            .iter()
            .fold(1usize, |acc, &d| acc.saturating_mul(d))
    }

    /// Number of elements, or `None` when it overflows `usize`.
    pub fn checked_volume(&self) -> Option<usize> {
        self.dims()
            .iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(d))
    }

    /// Dim `i`, counting from the end when negative as ONNX axes do.
    pub fn dim(&self, i: usize) -> usize {
        self.dims[i]
    }

    /// Resolves an ONNX axis (negative counts from the end) against this rank.
    pub fn axis(&self, axis: i64) -> Option<usize> {
        resolve_axis(axis, self.rank())
    }

    /// Row-major strides in elements.
    pub fn strides(&self) -> [usize; MAX_RANK] {
        let mut st = [0; MAX_RANK];
        let mut acc = 1;
        for i in (0..self.rank()).rev() {
            st[i] = acc;
            acc *= self.dims[i];
        }
        st
    }
}

/// Resolves an ONNX axis (negative counts from the end) against `rank`.
pub fn resolve_axis(axis: i64, rank: usize) -> Option<usize> {
    let a = if axis < 0 { axis + rank as i64 } else { axis };
    (0..rank as i64).contains(&a).then_some(a as usize)
}

impl core::fmt::Debug for Shape {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_list().entries(self.dims()).finish()
    }
}

impl core::fmt::Display for Shape {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        for (i, d) in self.dims().iter().enumerate() {
            if i > 0 {
                f.write_str("x")?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for Shape {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "{=[?]}", self.dims())
    }
}

/// A read-only tensor: dtype, shape and little-endian element bytes.
#[derive(Clone, Copy, Debug)]
pub struct TensorRef<'t> {
    /// Element type.
    pub dtype: DType,
    /// Shape.
    pub shape: Shape,
    /// `shape.volume() * dtype.size()` little-endian bytes.
    pub bytes: &'t [u8],
}

/// A writable tensor in the arena (always aligned).
#[derive(Debug)]
pub struct TensorMut<'t> {
    /// Element type.
    pub dtype: DType,
    /// Shape.
    pub shape: Shape,
    /// `shape.volume() * dtype.size()` bytes.
    pub bytes: &'t mut [u8],
}

/// f32 data that is either aligned (zero-cost slice) or read byte-wise in place.
#[derive(Clone, Copy, Debug)]
pub enum F32View<'t> {
    /// Aligned data.
    Slice(&'t [f32]),
    /// Unaligned little-endian bytes (weights inside a protobuf).
    Bytes(LeF32<'t>),
}

/// Unaligned little-endian f32 values.
#[derive(Clone, Copy, Debug)]
pub struct LeF32<'t>(pub &'t [u8]);

/// Random access to f32 elements, implemented by both halves of [`F32View`] so kernels can
/// be generic and monomorphised for each.
pub trait F32Source: Copy {
    /// Element count.
    fn len(&self) -> usize;
    /// Whether there are no elements.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Element `i`.
    fn at(&self, i: usize) -> f32;
    /// Elements `start .. start + len` as a slice when the data is aligned, so kernels can
    /// run a bounds-check-free loop the compiler vectorises (`None` for unaligned bytes).
    #[inline(always)]
    fn run(&self, start: usize, len: usize) -> Option<&[f32]> {
        let _ = (start, len);
        None
    }
}

impl F32Source for &[f32] {
    #[inline(always)]
    fn len(&self) -> usize {
        <[f32]>::len(self)
    }
    #[inline(always)]
    fn at(&self, i: usize) -> f32 {
        self[i]
    }
    #[inline(always)]
    fn run(&self, start: usize, len: usize) -> Option<&[f32]> {
        self.get(start..start + len)
    }
}

impl F32Source for LeF32<'_> {
    #[inline(always)]
    fn len(&self) -> usize {
        self.0.len() / 4
    }
    #[inline(always)]
    fn at(&self, i: usize) -> f32 {
        let b = &self.0[4 * i..4 * i + 4];
        f32::from_le_bytes([b[0], b[1], b[2], b[3]])
    }
}

/// Unaligned little-endian float16 values read as f32: weights of an fp16 model, widened
/// as the kernel reads them (see [`crate::widen`]).
#[derive(Clone, Copy, Debug)]
pub struct LeF16<'t>(pub &'t [u8]);

impl F32Source for LeF16<'_> {
    #[inline(always)]
    fn len(&self) -> usize {
        self.0.len() / 2
    }
    #[inline(always)]
    fn at(&self, i: usize) -> f32 {
        crate::widen::widen_one(&self.0[2 * i..2 * i + 2])
    }
}

/// Symmetric int8 weights read as f32 through their `DequantizeLinear` scales, in place:
/// element `i` is `q[i] · scale[(i / inner) % channels]`, computed as
/// [`crate::ops::quant::dequantize`] does with zero point 0, so a kernel reading this view
/// sees bit for bit the f32 tensor the DequantizeLinear would have written into the arena
/// (the compressor's int8 MatMul/Gemm weights, see `plan/qdq/matmul.rs`).
#[derive(Clone, Copy, Debug)]
pub struct ScaledI8<'t> {
    /// The int8 values.
    pub q: &'t [u8],
    /// Little-endian f32 scales (any alignment): one, or one per index of the quantized
    /// axis.
    pub scales: &'t [u8],
    /// Number of scales.
    pub channels: usize,
    /// Elements between two consecutive indices of the quantized axis.
    pub inner: usize,
}

impl F32Source for ScaledI8<'_> {
    #[inline(always)]
    fn len(&self) -> usize {
        self.q.len()
    }
    #[inline(always)]
    fn at(&self, i: usize) -> f32 {
        let c = (i / self.inner) % self.channels;
        let b = &self.scales[4 * c..4 * c + 4];
        let scale = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        crate::ops::quant::dequantize(i64::from(self.q[i] as i8), scale, 0)
    }
}

/// A weight operand: f32 as [`F32View`], or the float16 constants of an fp16 model, read
/// in place. Only inputs whose prepare accepts float16 constants (see
/// [`crate::ops::Prep::weight_input`]) are read through this view.
#[derive(Clone, Copy, Debug)]
pub enum WeightView<'t> {
    /// f32 data.
    F32(F32View<'t>),
    /// float16 data.
    Half(LeF16<'t>),
}

/// [`with_f32!`] for a [`WeightView`]: the body is monomorphised for each of its three
/// representations.
#[macro_export]
macro_rules! with_weights {
    ($view:expr, |$x:ident| $body:expr) => {
        match $view {
            $crate::tensor::WeightView::F32($crate::tensor::F32View::Slice($x)) => $body,
            $crate::tensor::WeightView::F32($crate::tensor::F32View::Bytes($x)) => $body,
            $crate::tensor::WeightView::Half($x) => $body,
        }
    };
}

/// Runs `$body` with `$x` bound to the f32 data of `$view` as a concrete [`F32Source`],
/// once per representation (the body is type-checked and monomorphised twice).
#[macro_export]
macro_rules! with_f32 {
    ($view:expr, |$x:ident| $body:expr) => {
        match $view {
            $crate::tensor::F32View::Slice($x) => $body,
            $crate::tensor::F32View::Bytes($x) => $body,
        }
    };
}

impl<'t> TensorRef<'t> {
    /// The data as f32 (the caller checked `dtype == F32` at prepare time).
    pub fn f32(&self) -> F32View<'t> {
        match bytemuck::try_cast_slice::<u8, f32>(self.bytes) {
            Ok(s) => F32View::Slice(s),
            Err(_) => F32View::Bytes(LeF32(self.bytes)),
        }
    }

    /// The data as a weight operand: float16 read in place, anything else as f32 (the
    /// caller's prepare accepted only those two).
    pub fn weights(&self) -> WeightView<'t> {
        match self.dtype {
            DType::F16 => WeightView::Half(LeF16(self.bytes)),
            _ => WeightView::F32(self.f32()),
        }
    }

    /// Element `i` of an integer tensor widened to i64 (for shape-like inputs).
    pub fn i64_at(&self, i: usize) -> i64 {
        let n = self.dtype.size();
        let b = &self.bytes[i * n..i * n + n];
        match self.dtype {
            DType::I64 => i64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]),
            DType::I32 => i64::from(i32::from_le_bytes([b[0], b[1], b[2], b[3]])),
            DType::I16 => i64::from(i16::from_le_bytes([b[0], b[1]])),
            DType::I8 => i64::from(b[0] as i8),
            DType::U8 | DType::Bool => i64::from(b[0]),
            DType::F32 => f32::from_le_bytes([b[0], b[1], b[2], b[3]]) as i64,
            DType::F16 => half::f16::from_le_bytes([b[0], b[1]]).to_f32() as i64,
            DType::F64 => {
                f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as i64
            }
        }
    }

    /// All elements widened to i64.
    pub fn i64s(&self) -> impl Iterator<Item = i64> + '_ {
        (0..self.shape.volume()).map(move |i| self.i64_at(i))
    }
}

impl TensorMut<'_> {
    /// The data as aligned f32 (arena tensors are always aligned).
    pub fn f32_mut(&mut self) -> &mut [f32] {
        bytemuck::cast_slice_mut(self.bytes)
    }

    /// A read-only view.
    pub fn as_ref(&self) -> TensorRef<'_> {
        TensorRef {
            dtype: self.dtype,
            shape: self.shape,
            bytes: self.bytes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unaligned_bytes_read_like_aligned() {
        let vals = [1.5f32, -2.0, 3.25];
        let mut buf = [0u8; 13];
        for (i, v) in vals.iter().enumerate() {
            buf[1 + 4 * i..5 + 4 * i].copy_from_slice(&v.to_le_bytes());
        }
        let t = TensorRef {
            dtype: DType::F32,
            shape: Shape::new(&[3]).unwrap(),
            bytes: &buf[1..],
        };
        let got: [f32; 3] = with_f32!(t.f32(), |x| [x.at(0), x.at(1), x.at(2)]);
        assert_eq!(got, vals);
    }

    #[test]
    fn axes_resolve_from_the_end() {
        let s = Shape::new(&[2, 3, 4]).unwrap();
        assert_eq!(s.axis(-1), Some(2));
        assert_eq!(s.axis(3), None);
        assert_eq!(s.strides()[..3], [12, 4, 1]);
        assert!(Shape::new(&[1; 9]).is_err());
    }
}
