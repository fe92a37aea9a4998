//! A planned model bound to its arena: write inputs, run, read outputs.

use crate::error::{Error, Name, Result};
use crate::onnx::Model;
use crate::ops::kernels::Kernels;
use crate::ops::Op;
use crate::plan::{self, memory::Buf, PlanTables, Step, Storage, TensorInfo, NONE};
use crate::target::Target;
use crate::tensor::{DType, Shape, TensorMut, TensorRef};

/// How the arena is used by a plan. `total` is what [`Session::new`] needs from a
/// 16-byte-aligned arena (see [`crate::Arena`]): the persistent tail, and a head that holds
/// the working step and tensor tables while planning, then the tensors the session reads
/// followed by the planned region (`persistent + tables.head_bytes(planned)`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ArenaReport {
    /// Bytes the arena must have: `persistent + tables.head_bytes(planned)`.
    pub total: usize,
    /// Bytes of the planned region (activations and scratch, reused over time).
    pub planned: usize,
    /// Liveness lower bound for the planned region: no plan can use less.
    pub lower_bound: usize,
    /// Bytes of the persistent tail: `tables.bytes() + constants`.
    pub persistent: usize,
    /// Bytes of constants decoded or folded at plan time (same on every machine).
    pub constants: usize,
    /// Plan table entry counts (same on every machine).
    pub tables: PlanTables,
}

impl ArenaReport {
    /// The arena size on the machine this is compiled for, from a report computed on
    /// another one (e.g. a 64-bit host planning for a 32-bit Cortex-M): the plan tables are
    /// re-sized with this machine's type layouts. The planned region must have been planned
    /// for the same kernels (see `Session::arena_report`).
    pub const fn for_this_target(&self) -> usize {
        match self.total_with(&PlanTables::ENTRY_BYTES) {
            Some(total) => total,
            None => usize::MAX,
        }
    }

    /// The arena size on a machine whose plan-table entries take `entry` bytes (its
    /// [`PlanTables::ENTRY_BYTES`]): how a host sizes a Cortex-M arena without compiling
    /// for it. `None` when that overflows.
    pub const fn total_with(&self, entry: &[usize; 7]) -> Option<usize> {
        let (Some(tables), Some(head)) = (
            self.tables.checked_bytes_with(entry),
            self.tables.checked_head_bytes_with(self.planned, entry),
        ) else {
            return None;
        };
        match head.checked_add(self.constants) {
            Some(data) => data.checked_add(tables),
            None => None,
        }
    }
}

/// Name, type and shape of a graph input or output.
#[derive(Clone, Copy, Debug)]
pub struct TensorSpec<'a> {
    /// Tensor name in the model.
    pub name: &'a str,
    /// Element type.
    pub dtype: DType,
    /// Shape (fixed at plan time).
    pub shape: Shape,
}

/// What one step of the run computes (for profiles and reports).
#[derive(Clone, Copy, Debug)]
pub struct StepInfo<'a> {
    /// The node's name (or first output's, when unnamed).
    pub node: &'a str,
    /// Its op type; a fused step names both ops ("Conv+SiLU"), an int8 one says so
    /// ("QConv", "QLSTM": an LSTM reading int8 weights).
    pub op: &'a str,
    /// Multiply-accumulates per run.
    pub macs: u64,
}

/// A model planned for fixed input shapes, living in one caller-provided arena.
///
/// ```no_run
/// use edgetrim_runtime::{Arena, Model, Session};
/// static MODEL: &[u8] = &[]; // include_bytes!("model.onnx")
/// let mut arena = Arena::<65536>::new();
/// let model = Model::parse(MODEL)?;
/// let mut session = Session::new(&model, &[], &mut arena.0)?;
/// session.set_input_f32(0, &[0.0; 16])?;
/// session.run()?;
/// let scores = session.output(0);
/// # Ok::<(), edgetrim_runtime::Error>(())
/// ```
pub struct Session<'a> {
    pub(crate) model: Model<'a>,
    pub(crate) tensors: &'a [TensorInfo<'a>],
    pub(crate) bufs: &'a [Buf],
    pub(crate) steps: &'a [Step],
    pub(crate) io: &'a [u32],
    pub(crate) inputs: &'a [u32],
    pub(crate) outputs: &'a [u32],
    pub(crate) region: &'a mut [u8],
    pub(crate) report: ArenaReport,
    pub(crate) target: Target,
    pub(crate) kernels: Kernels,
    pub(crate) kernel_set: u32,
}

impl<'a> Session<'a> {
    /// Plans `model` with one shape per graph input (or `&[]` to use the declared shapes)
    /// inside `arena`, for the machine this code runs on. Nothing is allocated: plan tables
    /// and activations all live in `arena`.
    pub fn new(
        model: &Model<'a>,
        input_shapes: &[&[usize]],
        arena: &'a mut [u8],
    ) -> Result<Session<'a>> {
        plan::build(model, input_shapes, arena, Target::native(), Kernels::ALL)
    }

    /// Like [`Session::new`], linking and running only the kernel families in `kernels`
    /// (a firmware's `Kernels::only::<KERNEL_SET>()`, with the [`Session::kernel_set`] its
    /// build script computed); a model needing another one is refused, naming the node.
    pub fn with_kernels(
        model: &Model<'a>,
        input_shapes: &[&[usize]],
        arena: &'a mut [u8],
        kernels: Kernels,
    ) -> Result<Session<'a>> {
        plan::build(model, input_shapes, arena, Target::native(), kernels)
    }

    /// Like [`Session::new`], with the kernels and block sizes of `target` (any target's
    /// plan runs anywhere; this is mostly for sizing arenas for another machine).
    pub fn with_target(
        model: &Model<'a>,
        input_shapes: &[&[usize]],
        arena: &'a mut [u8],
        target: Target,
    ) -> Result<Session<'a>> {
        plan::build(model, input_shapes, arena, target, Kernels::ALL)
    }

    /// Plans in a scratch arena grown as needed, and reports the exact arena size on this
    /// machine.
    #[cfg(feature = "alloc")]
    pub fn arena_report(model: &Model<'_>, input_shapes: &[&[usize]]) -> Result<ArenaReport> {
        Self::arena_report_for(model, input_shapes, Target::native())
    }

    /// The arena report of a plan for `target`. Computed here, its `total` counts this
    /// machine's plan-table layout; on the target, [`ArenaReport::for_this_target`] gives
    /// the exact figure (a firmware's build script uses this with [`Target::CortexM`]).
    #[cfg(feature = "alloc")]
    pub fn arena_report_for(
        model: &Model<'_>,
        input_shapes: &[&[usize]],
        target: Target,
    ) -> Result<ArenaReport> {
        extern crate alloc;
        let mut size = 64 * 1024;
        loop {
            let mut scratch = alloc::vec![0u8; size + crate::arena::ALIGN];
            match plan::build(model, input_shapes, &mut scratch, target, Kernels::ALL) {
                Ok(s) => return Ok(s.report),
                Err(Error::ArenaTooSmall {
                    needed,
                    exact: true,
                    ..
                }) => size = needed,
                Err(Error::ArenaTooSmall { .. }) => size *= 2,
                Err(e) => return Err(e),
            }
        }
    }

    /// How the arena is used.
    pub fn report(&self) -> ArenaReport {
        self.report
    }

    /// The machine this plan was made for (its kernels and block sizes).
    pub fn target(&self) -> Target {
        self.target
    }

    /// The model this session runs.
    pub fn model(&self) -> &Model<'a> {
        &self.model
    }

    fn spec(&self, t: u32) -> TensorSpec<'a> {
        let t = &self.tensors[t as usize];
        TensorSpec {
            name: t.name,
            dtype: t.dtype,
            shape: t.shape,
        }
    }

    /// Graph inputs, in order.
    pub fn inputs(&self) -> impl Iterator<Item = TensorSpec<'a>> + '_ {
        self.inputs.iter().map(|&t| self.spec(t))
    }

    /// Graph outputs, in order.
    pub fn outputs(&self) -> impl Iterator<Item = TensorSpec<'a>> + '_ {
        self.outputs.iter().map(|&t| self.spec(t))
    }

    fn input_id(&self, i: usize) -> Result<u32> {
        self.inputs.get(i).copied().ok_or(Error::BadInput {
            input: Name::new("?"),
            reason: "no graph input with this index",
        })
    }

    /// The arena slot of input `i`, to fill in place (e.g. straight from a camera frame).
    pub fn input_mut(&mut self, i: usize) -> Result<TensorMut<'_>> {
        let id = self.input_id(i)?;
        let t = &self.tensors[id as usize];
        let Storage::Buf(b) = t.storage else {
            return Err(Error::BadInput {
                input: Name::new(t.name),
                reason: "input is not an arena tensor",
            });
        };
        let offset = self.bufs[b as usize].offset;
        Ok(TensorMut {
            dtype: t.dtype,
            shape: t.shape,
            bytes: &mut self.region[offset..offset + t.nbytes()],
        })
    }

    /// Copies `data` into f32 input `i`; the length must match the planned shape.
    pub fn set_input_f32(&mut self, i: usize, data: &[f32]) -> Result<()> {
        let id = self.input_id(i)?;
        let name = Name::new(self.tensors[id as usize].name);
        let mut slot = self.input_mut(i)?;
        if slot.dtype != DType::F32 {
            return Err(Error::BadInput {
                input: name,
                reason: "input is not float32",
            });
        }
        if slot.shape.volume() != data.len() {
            return Err(Error::BadInput {
                input: name,
                reason: "element count does not match the planned shape",
            });
        }
        slot.f32_mut().copy_from_slice(data);
        Ok(())
    }

    /// Copies raw little-endian bytes into input `i` (any dtype); the length must match.
    pub fn set_input_bytes(&mut self, i: usize, data: &[u8]) -> Result<()> {
        let id = self.input_id(i)?;
        let name = Name::new(self.tensors[id as usize].name);
        let slot = self.input_mut(i)?;
        if slot.bytes.len() != data.len() {
            return Err(Error::BadInput {
                input: name,
                reason: "byte count does not match the planned shape and type",
            });
        }
        slot.bytes.copy_from_slice(data);
        Ok(())
    }

    /// Output `i` after [`Session::run`] (panics on an index past `outputs().count()`).
    pub fn output(&self, i: usize) -> TensorRef<'_> {
        let t = &self.tensors[self.outputs[i] as usize];
        let bytes: &[u8] = match t.storage {
            Storage::Const(b) => b,
            Storage::Buf(b) => {
                let offset = self.bufs[b as usize].offset;
                &self.region[offset..offset + t.nbytes()]
            }
            Storage::Undefined => &[],
        };
        TensorRef {
            dtype: t.dtype,
            shape: t.shape,
            bytes,
        }
    }

    /// Number of kernel steps one run executes.
    pub fn step_count(&self) -> usize {
        self.steps.len()
    }

    /// Which node step `k` runs.
    pub fn step_info(&self, k: usize) -> StepInfo<'a> {
        let s = &self.steps[k];
        let node = self.model.nodes().nth(s.node as usize);
        StepInfo {
            node: node.map_or("?", |n| n.display_name()),
            op: match s.op {
                Op::Conv(c) => c.activation().map(|a| a.conv_op_name()),
                Op::QConv(c) => Some(c.op_name()),
                Op::Concat(c) => Some(c.op_name()),
                Op::Lstm(l) if l.int8_weights() => Some("QLSTM"),
                Op::MatMul(m) if m.int8_weights() => Some("QMatMul"),
                Op::Gemm(g) if g.int8_weights() => Some("QGemm"),
                Op::QAdd(_) => Some("QAdd"),
                _ => None,
            }
            .unwrap_or_else(|| node.map_or("?", |n| n.op_type())),
            macs: s.macs,
        }
    }

    /// The kernel families this plan runs, at plan time (folds) and in each run: the
    /// smallest set to plan it with (see [`crate::ops::kernels`]).
    pub fn kernel_set(&self) -> u32 {
        self.kernel_set
    }

    /// Multiply-accumulates of one run.
    pub fn total_macs(&self) -> u64 {
        self.steps.iter().map(|s| s.macs).sum()
    }

    /// Runs the model once.
    pub fn run(&mut self) -> Result<()> {
        self.run_with(|_| {})
    }

    /// Runs the model once, calling `after_step(k)` when step `k` finishes (per-node
    /// profiling with a [`crate::fps::Clock`]).
    pub fn run_with(&mut self, mut after_step: impl FnMut(usize)) -> Result<()> {
        for (k, step) in self.steps.iter().enumerate() {
            let mut io = plan::bind(self.region, self.tensors, self.bufs, self.io, step);
            self.kernels.eval(&step.op, &mut io);
            after_step(k);
        }
        let _ = NONE;
        Ok(())
    }
}
