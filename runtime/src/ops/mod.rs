//! Op families: prepare (plan time) and eval (run time) for every supported ONNX op.
//!
//! As in TFLM, each op is split in two:
//! - **prepare** reads attributes (with the spec's defaults), checks input arity, dtypes and
//!   shapes, infers output shapes, asks for kernel scratch, counts MACs, and returns an
//!   [`Op`] holding everything eval needs. All validation — and so every error a bad model
//!   can cause — happens here, naming the node.
//! - **eval** only computes. It takes [`Io`] (borrowed input views, output views and scratch
//!   in the arena) and cannot fail.
//!
//! The importer is a table ([`REGISTRY`]) of op names and short prepare functions, like
//! tract's `register_all_ops`. Composite ops are lowered to primitive kernels in prepare.
//! One file per op family; an op family's kernels (portable reference and fast paths) live
//! beside it.

use crate::error::{Error, Name, Result};
use crate::onnx::{AttrKind, Attribute, Node};
use crate::target::Target;
use crate::tensor::{DType, Shape, TensorMut, TensorRef};

pub mod binary;
pub mod cast;
pub mod concat;
pub mod conv;
pub mod gather;
pub mod gemm;
pub mod generate;
mod identity;
pub mod kernels;
pub mod lookup;
pub mod matmul;
pub mod norm;
pub mod pad;
pub mod pool;
pub mod qadd;
pub mod qgemm;
pub mod quant;
pub mod reduce;
pub mod resize;
pub mod rnn;
pub mod select;
pub mod shape;
pub mod slice;
pub mod softmax;
pub mod strided;
pub mod transpose;
pub mod unary;

/// Most inputs one node may have (Concat fan-in).
pub const MAX_INPUTS: usize = 32;
/// Most outputs one node may have (Split fan-out).
pub const MAX_OUTPUTS: usize = 16;

/// A prepared op: the kernel to run and its resolved parameters.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub enum Op {
    /// Output 0 is input 0 reinterpreted (Identity, Reshape, Flatten, Squeeze, ...):
    /// no kernel runs, the output aliases the input's bytes.
    View,
    /// The outputs were computed at plan time ([`Prep::const_output`]).
    Const,
    /// Add, Sub, Mul, Div, Pow with broadcasting.
    Binary(binary::Binary),
    /// Transpose, Slice, Expand, Tile: output-contiguous copy of an affine input view.
    Strided(strided::Strided),
    /// Concat along one axis.
    Concat(concat::Concat),
    /// Split along one axis.
    Split(concat::AxisCopy),
    /// Gather along one axis.
    Gather(gather::Gather),
    /// Element type conversion.
    Cast(cast::Cast),
    /// ConstantOfShape: one value repeated.
    Fill(generate::Fill),
    /// Equal, Where.
    Select(select::Select),
    /// Element-wise activations and math functions.
    Unary(unary::Unary),
    /// MaxPool, AveragePool.
    Pool(pool::Pool),
    /// GlobalMaxPool, GlobalAveragePool.
    GlobalPool(pool::GlobalPool),
    /// Softmax, LogSoftmax.
    Softmax(softmax::Softmax),
    /// ReduceSum, ReduceMean, ReduceMax, ReduceMin.
    Reduce(reduce::Reduce),
    /// BatchNormalization, InstanceNormalization, LayerNormalization.
    Norm(norm::Norm),
    /// Resize (nearest, bilinear).
    Resize(resize::Resize),
    /// Pad (constant, reflect, edge).
    Pad(pad::Pad),
    /// Conv on the packed GEMM (implicit im2col) or the depthwise kernel.
    Conv(conv::Conv),
    /// A QDQ Conv run on int8 (fused by the planner from `DequantizeLinear → Conv`).
    QConv(conv::QConv),
    /// ConvTranspose: GEMM then col2im.
    ConvTranspose(conv::ConvTranspose),
    /// MatMul with batch broadcasting.
    MatMul(matmul::MatMul),
    /// Gemm (transA/transB, alpha, beta, C).
    Gemm(matmul::Gemm),
    /// LSTM over a whole sequence.
    Lstm(rnn::Lstm),
    /// QuantizeLinear, DequantizeLinear (float reference of QDQ models).
    Quant(quant::Quant),
    /// An int8 Add (fused by the planner from `DequantizeLinear → Add → QuantizeLinear`).
    QAdd(qadd::QAdd),
}

/// What is known about a tensor at plan time.
#[derive(Clone, Copy, Debug)]
pub struct Fact<'a> {
    /// Element type.
    pub dtype: DType,
    /// Shape.
    pub shape: Shape,
    /// The data, when it is a constant (initializer, folded).
    pub value: Option<&'a [u8]>,
}

impl<'a> Fact<'a> {
    /// The constant value as a tensor view.
    pub fn tensor(&self) -> Option<TensorRef<'a>> {
        self.value.map(|bytes| TensorRef {
            dtype: self.dtype,
            shape: self.shape,
            bytes,
        })
    }
}

/// Plan-time context handed to an op's prepare function.
pub struct Prep<'p, 'a> {
    pub(crate) node: Node<'a>,
    pub(crate) inputs: &'p [Option<Fact<'a>>],
    pub(crate) outputs: heapless::Vec<Fact<'a>, MAX_OUTPUTS>,
    pub(crate) n_outputs: usize,
    pub(crate) scratch: usize,
    pub(crate) macs: u64,
    pub(crate) bump: &'p mut crate::arena::Bump<'a>,
    pub(crate) opset: i64,
    pub(crate) target: Target,
}

impl<'p, 'a> Prep<'p, 'a> {
    /// The node being prepared.
    pub fn node(&self) -> Node<'a> {
        self.node
    }

    /// The machine this plan is for (kernel choice and scratch sizes follow it).
    pub fn target(&self) -> Target {
        self.target
    }

    /// The model's default-domain opset version.
    pub fn opset(&self) -> i64 {
        self.opset
    }

    /// A [`Error::BadNode`] naming this node.
    pub fn err(&self, reason: &'static str) -> Error {
        Error::BadNode {
            node: Name::new(self.node.display_name()),
            op: Name::new(self.node.op_type()),
            reason,
        }
    }

    /// A [`Error::BadAttribute`] naming this node and `attr`.
    pub fn attr_err(&self, attr: &str, reason: &'static str) -> Error {
        Error::BadAttribute {
            node: Name::new(self.node.display_name()),
            attr: Name::new(attr),
            reason,
        }
    }

    /// Number of input slots (omitted optional inputs included).
    pub fn n_inputs(&self) -> usize {
        self.inputs.len()
    }

    /// Number of outputs the node declares.
    pub fn n_outputs(&self) -> usize {
        self.n_outputs
    }

    /// Input `i`, which must be present.
    pub fn input(&self, i: usize) -> Result<Fact<'a>> {
        self.opt_input(i)
            .ok_or_else(|| self.err("a required input is missing"))
    }

    /// Input `i` if present.
    pub fn opt_input(&self, i: usize) -> Option<Fact<'a>> {
        self.inputs.get(i).copied().flatten()
    }

    /// Input `i`, which must be a constant known at plan time (shapes, axes, ...).
    pub fn const_input(&self, i: usize) -> Result<TensorRef<'a>> {
        self.input(i)?
            .tensor()
            .ok_or_else(|| self.err("this input must be a constant (initializer or foldable)"))
    }

    /// Input `i`, which must be present with dtype `dtype`.
    pub fn input_of(&self, i: usize, dtype: DType) -> Result<Fact<'a>> {
        let f = self.input(i)?;
        if f.dtype != dtype {
            return Err(self.err(match dtype {
                DType::F32 => "expects float32 input",
                DType::I64 => "expects int64 input",
                _ => "unsupported input data type",
            }));
        }
        Ok(f)
    }

    /// Input `i`, a weight: float32, or a float16 constant that the kernel widens as it
    /// reads it (an fp16 model's weights, see `plan::half`; read it with
    /// [`TensorRef::weights`]).
    pub fn weight_input(&self, i: usize) -> Result<Fact<'a>> {
        let f = self.input(i)?;
        match (f.dtype, f.value) {
            (DType::F32, _) | (DType::F16, Some(_)) => Ok(f),
            _ => Err(self.err("expects float32 input")),
        }
    }

    /// Checks the input count is within `min..=max`.
    pub fn arity(&self, min: usize, max: usize) -> Result<()> {
        let present = (0..self.inputs.len())
            .rev()
            .find(|&i| self.inputs[i].is_some())
            .map_or(0, |i| i + 1);
        if present < min || present > max {
            return Err(self.err("wrong number of inputs"));
        }
        Ok(())
    }

    /// Attribute `name`, if present.
    pub fn attr(&self, name: &str) -> Option<Attribute<'a>> {
        self.node.attr(name)
    }

    /// Integer attribute with a default.
    pub fn attr_int(&self, name: &str, default: i64) -> Result<i64> {
        match self.attr(name) {
            None => Ok(default),
            // Protobuf encoders may omit a zero field: absent means 0.
            Some(a) if a.kind() == AttrKind::Int => Ok(a.int().unwrap_or(0)),
            Some(_) => Err(self.attr_err(name, "expected an integer")),
        }
    }

    /// Float attribute with a default.
    pub fn attr_float(&self, name: &str, default: f32) -> Result<f32> {
        match self.attr(name) {
            None => Ok(default),
            // Protobuf encoders may omit a zero field: absent means 0.
            Some(a) if a.kind() == AttrKind::Float => Ok(a.float().unwrap_or(0.0)),
            Some(_) => Err(self.attr_err(name, "expected a float")),
        }
    }

    /// String attribute with a default.
    pub fn attr_str(&self, name: &str, default: &'a str) -> Result<&'a str> {
        match self.attr(name) {
            None => Ok(default),
            Some(a) if a.kind() == AttrKind::String => a
                .string()
                .and_then(|b| core::str::from_utf8(b).ok())
                .ok_or_else(|| self.attr_err(name, "not UTF-8")),
            Some(_) => Err(self.attr_err(name, "expected a string")),
        }
    }

    /// Integer-list attribute copied into a fixed array (`None` when absent).
    pub fn attr_ints<const N: usize>(&self, name: &str) -> Result<Option<heapless::Vec<i64, N>>> {
        match self.attr(name) {
            None => Ok(None),
            Some(a) if a.kind() == AttrKind::Ints => {
                let mut v = heapless::Vec::new();
                for x in a.ints() {
                    v.push(x)
                        .map_err(|_| self.attr_err(name, "too many values"))?;
                }
                Ok(Some(v))
            }
            Some(_) => Err(self.attr_err(name, "expected a list of integers")),
        }
    }

    /// Declares output `i`.
    pub fn output(&mut self, i: usize, dtype: DType, shape: Shape) -> Result<()> {
        self.set_output(
            i,
            Fact {
                dtype,
                shape,
                value: None,
            },
        )
    }

    fn set_output(&mut self, i: usize, fact: Fact<'a>) -> Result<()> {
        if i >= self.n_outputs {
            return Err(self.err("too few outputs declared"));
        }
        let fits = fact
            .shape
            .checked_volume()
            .and_then(|v| v.checked_mul(fact.dtype.size()));
        if fits.is_none_or(|bytes| bytes > isize::MAX as usize) {
            return Err(self.err("output tensor is too large to address"));
        }
        while self.outputs.len() <= i {
            self.outputs
                .push(Fact {
                    dtype: DType::F32,
                    shape: Shape::SCALAR,
                    value: None,
                })
                .map_err(|_| Error::Capacity {
                    what: "node outputs",
                    limit: MAX_OUTPUTS,
                })?;
        }
        self.outputs[i] = fact;
        Ok(())
    }

    /// Declares output `i` as a constant computed now by `fill`, which gets the zeroed
    /// little-endian bytes (`shape.volume() * dtype.size()` long). The op then returns
    /// [`Op::Const`].
    pub fn const_output(
        &mut self,
        i: usize,
        dtype: DType,
        shape: Shape,
        fill: impl FnOnce(&mut [u8]),
    ) -> Result<()> {
        let bytes: &'a mut [u8] = self.bump.bytes(shape.volume() * dtype.size())?;
        bytes.fill(0);
        fill(bytes);
        let value: &'a [u8] = bytes;
        self.set_output(
            i,
            Fact {
                dtype,
                shape,
                value: Some(value),
            },
        )
    }

    /// Declares output `i` as a constant aliasing existing plan-time bytes.
    pub fn const_output_from(
        &mut self,
        i: usize,
        dtype: DType,
        shape: Shape,
        bytes: &'a [u8],
    ) -> Result<()> {
        self.set_output(
            i,
            Fact {
                dtype,
                shape,
                value: Some(bytes),
            },
        )
    }

    /// Asks for `bytes` of kernel scratch in the arena, alive during this node only.
    pub fn scratch(&mut self, bytes: usize) {
        self.scratch = self.scratch.max(bytes);
    }

    /// Records the multiply-accumulates one run of this node performs.
    pub fn macs(&mut self, macs: u64) {
        self.macs = macs;
    }
}

/// Borrowed tensors of one node at run time.
pub struct Io<'t> {
    /// Inputs by slot; `None` for omitted optional inputs.
    pub inputs: heapless::Vec<Option<TensorRef<'t>>, MAX_INPUTS>,
    /// Outputs in order.
    pub outputs: heapless::Vec<TensorMut<'t>, MAX_OUTPUTS>,
    /// Scratch asked for in prepare (empty if none).
    pub scratch: &'t mut [u8],
}

impl<'t> Io<'t> {
    /// Input `i` (prepare checked it is present).
    pub fn input(&self, i: usize) -> TensorRef<'t> {
        self.inputs[i].unwrap_or(TensorRef {
            dtype: DType::F32,
            shape: Shape::SCALAR,
            bytes: &[],
        })
    }
}

type PrepareFn = for<'p, 'a> fn(&mut Prep<'p, 'a>) -> Result<Op>;

/// One table of the supported ONNX ops: each op's name, its prepare function, and the
/// kernel families (see [`kernels`]) its step may end up running — its own, and those the
/// planner may rewrite it into (an activation fused into a Conv, a QDQ pattern quantized
/// into a QConv, an fp16 weight's Cast read in place by its consumer); `[]` for ops that
/// never run a kernel ([`Op::View`], [`Op::Const`]). It generates [`REGISTRY`], the name
/// list and the set-restricted lookup, so they cannot disagree.
macro_rules! registry {
    ($($name:literal => $prepare:path, [$($family:ident),*];)*) => {
        /// The ONNX ops this runtime runs, with their prepare functions.
        pub static REGISTRY: &[(&str, PrepareFn)] = &[$(($name, $prepare),)*];

        /// The op names of [`REGISTRY`] without its functions: [`is_supported`] links none.
        static OP_TYPES: &[&str] = &[$($name,)*];

        /// The kernel families each op of [`OP_TYPES`] may run (0: none, it is a view or a
        /// constant); a table, not a `match`, to keep it small in flash.
        static FAMILIES: &[u32] = &[$(0 $(| kernels::bit(stringify!($family)))*,)*];

        /// The prepare function of `op_type` if a plan restricted to the kernel families
        /// in `SET` may need it ([`kernels::prepares`]); the others are compiled out.
        pub(crate) fn lookup_in<const SET: u32>(op_type: &str) -> Option<PrepareFn> {
            $(
                if kernels::prepares(SET, const { 0 $(| kernels::bit(stringify!($family)))* })
                    && op_type == $name
                {
                    return Some($prepare);
                }
            )*
            None
        }
    };
}

registry! {
    "Identity" => identity::view, [];
    "Dropout" => identity::dropout, [];
    "Constant" => identity::constant, [];
    "Add" => binary::add, [Binary, QAdd];
    "Sub" => binary::sub, [Binary];
    "Mul" => binary::mul, [Binary, Conv, QConv];
    "Div" => binary::div, [Binary];
    "Pow" => binary::pow, [Binary];
    "Reshape" => shape::reshape, [];
    "Flatten" => shape::flatten, [];
    "Squeeze" => shape::squeeze, [];
    "Unsqueeze" => shape::unsqueeze, [];
    "Shape" => shape::shape, [];
    "Size" => shape::size, [];
    "Concat" => concat::concat, [Concat];
    "Split" => concat::split, [Split];
    "Slice" => slice::slice, [Strided];
    "Transpose" => transpose::transpose, [Strided];
    "Gather" => gather::gather, [Gather];
    "Cast" => cast::cast, [Cast, Conv, ConvTranspose, MatMul, Gemm];
    "ConstantOfShape" => generate::constant_of_shape, [Fill];
    "Range" => generate::range, [];
    "Expand" => generate::expand, [Strided];
    "Tile" => generate::tile, [Strided];
    "Equal" => select::equal, [Select];
    "Where" => select::where_, [Select];
    "Relu" => unary::relu, [Unary, Conv, QConv];
    "LeakyRelu" => unary::leaky_relu, [Unary];
    "Sigmoid" => unary::sigmoid_op, [Unary, Conv, QConv];
    "Tanh" => unary::tanh, [Unary];
    "HardSigmoid" => unary::hard_sigmoid, [Unary];
    "HardSwish" => unary::hard_swish, [Unary];
    "Clip" => unary::clip, [Unary, Conv, QConv];
    "Sqrt" => unary::sqrt, [Unary];
    "Exp" => unary::exp, [Unary];
    "Log" => unary::log, [Unary];
    "Neg" => unary::neg, [Unary];
    "Abs" => unary::abs, [Unary];
    "Erf" => unary::erf, [Unary];
    "Elu" => unary::elu, [Unary];
    "Softplus" => unary::softplus, [Unary];
    "Gelu" => unary::gelu, [Unary];
    "MaxPool" => pool::max_pool, [Pool];
    "AveragePool" => pool::average_pool, [Pool];
    "GlobalMaxPool" => pool::global_max_pool, [GlobalPool];
    "GlobalAveragePool" => pool::global_average_pool, [GlobalPool];
    "Softmax" => softmax::softmax, [Softmax];
    "LogSoftmax" => softmax::log_softmax, [Softmax];
    "ReduceSum" => reduce::reduce_sum, [Reduce];
    "ReduceMean" => reduce::reduce_mean, [Reduce];
    "ReduceMax" => reduce::reduce_max, [Reduce];
    "ReduceMin" => reduce::reduce_min, [Reduce];
    "BatchNormalization" => norm::batch_norm, [Norm];
    "InstanceNormalization" => norm::instance_norm, [Norm];
    "LayerNormalization" => norm::layer_norm, [Norm];
    "Resize" => resize::resize, [Resize];
    "Pad" => pad::pad, [Pad];
    "Conv" => conv::conv, [Conv, QConv];
    "ConvTranspose" => conv::conv_transpose, [ConvTranspose];
    "MatMul" => matmul::matmul, [MatMul];
    "Gemm" => matmul::gemm, [Gemm];
    "LSTM" => rnn::lstm, [Lstm];
    "QuantizeLinear" => quant::quantize_linear, [Quant, QConv];
    "DequantizeLinear" => quant::dequantize_linear, [Quant, QConv, Lstm];
}

/// The prepare function for an op of the default domain.
pub fn lookup(domain: &str, op_type: &str) -> Option<PrepareFn> {
    if !(domain.is_empty() || domain == "ai.onnx") {
        return None;
    }
    REGISTRY
        .iter()
        .find(|(name, _)| *name == op_type)
        .map(|(_, f)| *f)
}

/// The kernel families `op_type`'s step may run (0: none, it is a view or a constant);
/// `None` for an op outside the registry.
pub(crate) fn families(op_type: &str) -> Option<u32> {
    let i = OP_TYPES.iter().position(|&name| name == op_type)?;
    FAMILIES.get(i).copied()
}

/// Whether `op_type` in `domain` can run.
pub fn is_supported(domain: &str, op_type: &str) -> bool {
    (domain.is_empty() || domain == "ai.onnx") && OP_TYPES.contains(&op_type)
}

/// Runs one prepared op (any family; [`kernels::eval_in`] for a restricted set).
pub fn eval(op: &Op, io: &mut Io<'_>) {
    kernels::eval_in::<{ kernels::ALL }>(op, io)
}
