//! The int8 Conv of QDQ models: `Conv(DequantizeLinear(x_q), DequantizeLinear(W_i8), B)`
//! run on the int8 GEMM ([`crate::ops::qgemm`]) instead of on dequantized floats.
//!
//! Inputs (rewired by `plan::qdq`): 0 the int8 activation `x_q` (per-tensor scale `s_x`,
//! zero point `z_x`), 1 the int8 weights in place (per-output-channel or per-tensor scale
//! `s_w`, zero point 0), 2 a table `[mul; 1 or C_out] ++ [bias; C_out] ++ [w_sum; C_out]`
//! built at plan time, with `mul[c] = s_x · s_w[c]` (f32; one value for a per-tensor `s_w`),
//! `bias` the dequantized bias (f32) and `w_sum[c] = Σ W[c]` (i32, for the zero-point
//! correction).
//! Output: `y[c] = act(Σ (x_q − z_x) · W[c] · mul[c] + bias[c])`, f32 — the float model's
//! math with the sum exact in i32, so it differs from the fake-quant float path only by
//! that path's float rounding. When the only reader of `y` is a per-tensor int8
//! QuantizeLinear, the planner fuses it too ([`QConv::with_requant`]): the epilogue stores
//! `y` quantized, bit for bit what that step would write, and neither the f32 tensor nor
//! the pass over it exists.
//!
//! When that int8 output is itself only dequantized into an activation (SiLU, Relu, …),
//! whose output is quantized again or read as float — the graph the compressor's
//! `--act-tables` writes — the planner tabulates the whole chain on the 256 int8 values
//! and appends the table to the conv's ([`QConv::with_table`]): the epilogue then stores
//! `table[q]` and computes no activation at all (TFLite's int8 SiLU and sigmoid).
//!
//! Pointwise and im2col convs run on the int8 GEMM, depthwise ones on the direct int8
//! kernel ([`super::qdepthwise`]), which ends on the same i32 sums and shares the epilogue
//! (it subtracts `z_x` per tap, so it leaves `w_sum` unread).

use super::im2col::QIm2col;
use super::{qdepthwise, Conv, Core, Path};
use crate::ops::qgemm::{Epilogue, QGemmPlan, QKernel, QMatrix, Requant, Store, MAX_K};
use crate::ops::unary::Activation;
use crate::ops::Io;
use crate::target::Target;
use crate::tensor::DType;

/// A prepared int8 Conv.
#[derive(Clone, Copy, Debug)]
pub struct QConv {
    core: Core,
    gemm: QGemmPlan,
    /// The activation's zero point.
    zero: i8,
    /// The fused output QuantizeLinear, if any.
    requant: Option<Requant>,
    /// The type of the activation table after `requant`, if any (int8 or f32 entries).
    table: Option<DType>,
}

impl Conv {
    /// This conv on int8 operands whose activation has zero point `zero` and whose
    /// `weights` are these int8 bytes (they pick the kernel, [`QKernel::for_weights`]),
    /// when its K fits the exact i32 accumulation.
    pub fn quantized(&self, target: Target, zero: i8, weights: &[u8]) -> Option<QConv> {
        let (c, g) = (&self.core, &self.core.geo);
        let k = g.c_in * g.kh * g.kw;
        if k > MAX_K {
            return None;
        }
        Some(QConv {
            core: self.core,
            gemm: QGemmPlan::with_kernel(
                target,
                QKernel::for_weights(target, weights),
                c.c_out / c.group,
                g.oh * g.ow,
                k,
            ),
            zero,
            requant: None,
            table: None,
        })
    }
}

impl QConv {
    /// Output channels (the bias and sum entries of the table).
    pub fn channels(&self) -> usize {
        self.core.c_out
    }

    /// Weights per output channel (the dot-product length).
    pub fn depth(&self) -> usize {
        let g = &self.core.geo;
        g.c_in * g.kh * g.kw
    }

    /// Scratch bytes eval needs: the GEMM's, or the direct depthwise kernel's.
    pub fn scratch_bytes(&self) -> usize {
        match self.core.path {
            Path::Depthwise => qdepthwise::scratch_bytes(&self.core.geo),
            _ => self.gemm.scratch_bytes(self.int8_out()),
        }
    }

    /// Whether the output is int8 (requantized, and no f32 table after that).
    fn int8_out(&self) -> bool {
        self.requant.is_some() && self.table != Some(DType::F32)
    }

    /// Bytes of the activation table at the end of the conv's table input.
    pub fn table_bytes(&self) -> usize {
        self.table.map_or(0, |t| 256 * t.size())
    }

    /// The fused output quantization, if any.
    pub fn requant(&self) -> Option<Requant> {
        self.requant
    }

    /// This conv writing its output quantized by `requant` (int8) instead of as f32.
    pub fn with_requant(self, requant: Requant) -> QConv {
        QConv {
            requant: Some(requant),
            gemm: self.gemm.requantized(),
            ..self
        }
    }

    /// This conv storing `table[q]` for the int8 `q` that `requant` makes of its output:
    /// an activation table of `table` entries (int8 or f32), 256 of them appended to the
    /// conv's table input.
    pub fn with_table(self, requant: Requant, table: DType) -> QConv {
        let conv = QConv {
            table: Some(table),
            ..self
        };
        match table {
            DType::F32 => QConv {
                requant: Some(requant),
                ..conv
            },
            _ => conv.with_requant(requant),
        }
    }

    /// The step's name in profiles: "QConv", "QConv+SiLU", "QConv+SiLU+Q" (requantized),
    /// "QConv+Q+Table" (an activation table of f32 entries), "QConv+Q+Table+Q" (of int8).
    pub fn op_name(&self) -> &'static str {
        use Activation::*;
        match self.table {
            Some(DType::F32) => return "QConv+Q+Table",
            Some(_) => return "QConv+Q+Table+Q",
            None => {}
        }
        match (self.core.act, self.requant.is_some()) {
            (None, false) => "QConv",
            (None, true) => "QConv+Q",
            (Some(Silu), false) => "QConv+SiLU",
            (Some(Silu), true) => "QConv+SiLU+Q",
            (Some(Relu), false) => "QConv+Relu",
            (Some(Relu), true) => "QConv+Relu+Q",
            (Some(Clip(..)), false) => "QConv+Clip",
            (Some(Clip(..)), true) => "QConv+Clip+Q",
            (Some(HardSigmoid(..)), false) => "QConv+HardSigmoid",
            (Some(HardSigmoid(..)), true) => "QConv+HardSigmoid+Q",
            (Some(HardSwish | HardSwishDecomposed), false) => "QConv+HardSwish",
            (Some(HardSwish | HardSwishDecomposed), true) => "QConv+HardSwish+Q",
        }
    }

    /// The fused activation, if any.
    pub fn activation(&self) -> Option<Activation> {
        self.core.act
    }

    /// This conv with `act` applied to its output.
    pub fn with_activation(self, act: Activation) -> QConv {
        QConv {
            core: Core {
                act: Some(act),
                ..self.core
            },
            ..self
        }
    }
}

/// Runs a prepared int8 Conv.
pub fn eval(q: &QConv, io: &mut Io) {
    let (x, w) = (io.input(0).bytes, io.input(1).bytes);
    // The planner builds the table in the arena's tail, aligned.
    let table = io.input(2).bytes;
    let (table, activation) = table.split_at(table.len() - q.table_bytes());
    let (floats, sums) = table.split_at(table.len() - 4 * q.core.c_out);
    let floats: &[f32] = bytemuck::cast_slice(floats);
    let (mul, bias) = floats.split_at(floats.len() - q.core.c_out);
    let w_sum: &[i32] = bytemuck::cast_slice(sums);
    let out = &mut *io.outputs[0].bytes;
    let scratch = &mut *io.scratch;
    // The planner appends exactly 256 entries, in the arena's aligned tail.
    let int8_table = activation.try_into().ok();
    let f32_table = bytemuck::try_cast_slice(activation)
        .ok()
        .and_then(|t: &[f32]| t.try_into().ok());
    let store = match (q.requant, int8_table, f32_table) {
        (None, ..) => Store::F32,
        (Some(rq), Some(t), _) => Store::Int8Table(rq, t),
        (Some(rq), _, Some(t)) => Store::F32Table(rq, t),
        (Some(rq), None, None) => Store::Int8(rq),
    };
    // Bytes per output value.
    let width = store.width();
    let (c, g) = (&q.core, q.core.geo);
    let plane = g.oh * g.ow;
    let m = c.c_out / c.group;
    let k = g.c_in * g.kh * g.kw;
    for n in 0..c.batch {
        for grp in 0..c.group {
            let x_off = (n * c.group + grp) * g.c_in * g.ih * g.iw;
            let dst = &mut out[width * (n * c.c_out + grp * m) * plane..][..width * m * plane];
            let a = QMatrix {
                data: w,
                offset: grp * m * k,
                cols: k,
            };
            let epi = Epilogue {
                mul: if mul.len() == 1 {
                    mul
                } else {
                    &mul[grp * m..][..m]
                },
                bias: &bias[grp * m..][..m],
                a_sum: &w_sum[grp * m..][..m],
                zero: q.zero.into(),
                act: c.act,
                store,
            };
            match c.path {
                Path::Depthwise => {
                    let kernel = q.gemm.kernel;
                    qdepthwise::run(kernel, &g, x, x_off, w, grp * m * k, m, dst, scratch, &epi)
                }
                Path::Pointwise => {
                    let b = QMatrix {
                        data: x,
                        offset: x_off,
                        cols: plane,
                    };
                    q.gemm.run(a, b, dst, plane, scratch, &epi)
                }
                Path::Im2col => {
                    let b = QIm2col::new(x, x_off, g, q.zero);
                    q.gemm.run(a, b, dst, plane, scratch, &epi)
                }
            }
        }
    }
}
