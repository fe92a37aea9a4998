//! Planning: from a validated model and fixed input shapes to a runnable [`Session`].
//!
//! One pass over the graph in dependency order (file order when the file is sorted, as
//! ONNX requires; otherwise nodes wait until their inputs exist):
//! 1. every node is *prepared* (see [`crate::ops`]): attributes read, shapes inferred,
//!    errors raised naming the node;
//! 2. nodes whose inputs are all constants (shape arithmetic, `Shape`, `Gather` on shapes,
//!    ...) are evaluated right away into the arena's persistent tail and vanish from the
//!    run; view ops (Reshape, Flatten, ...) alias their input and vanish too, and so do
//!    the Casts that widen an fp16 model's weights, which its kernels read [in place](half);
//! 3. Convs on dequantized int8 operands become [int8 convs](qdq), LSTMs read dequantized
//!    int8 weights in place (`qdq::lstm`), and activations that
//!    only consume a Conv's output are [fused](fuse) into the Conv;
//! 4. every remaining output and scratch buffer gets a lifetime, and the
//!    [memory planner](memory) places them in the arena's head.
//!
//! All plan data (tensor table, steps, buffers) lives in the arena, laid out by [`Bump`], so
//! planning allocates nothing either. The step and tensor tables are filled in the arena's
//! head first, sized for every node and tensor of the graph, with the nodes' ordering flags;
//! then only the steps that survive folding and fusion are copied to the persistent tail,
//! and only the tensors the session can still reach (their io slots, the graph inputs and
//! outputs) are moved to the tensor table's start, where they stay before the planned
//! region: in a QDQ int8 model most nodes leave no step and most tensors are never read.

mod fuse;
mod half;
pub mod memory;
mod qdq;

use crate::arena::{align_up, typed, Bump};
use crate::error::{Error, Name, Result};
use crate::onnx::{Dim, Model, Node, TensorData, TensorProto};
use crate::ops::kernels::{self, Kernels};
use crate::ops::{self, Fact, Io, Op, Prep, MAX_INPUTS, MAX_OUTPUTS};
use crate::session::{ArenaReport, Session};
use crate::target::Target;
use crate::tensor::{DType, Shape, TensorMut, TensorRef};
use memory::Buf;

/// No tensor / no buffer.
pub(crate) const NONE: u32 = u32::MAX;

/// Nodes with all-constant inputs are folded at plan time when their outputs take at most
/// this many bytes (or are integers: shape arithmetic). Larger results stay run-time steps
/// so folding never trades flash for RAM.
const FOLD_LIMIT: usize = 4096;

/// Where a tensor's bytes are.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Storage<'a> {
    /// Not defined yet (during planning).
    Undefined,
    /// Constant bytes: in the model, or folded into the arena's tail.
    Const(&'a [u8]),
    /// Planned arena buffer (index into the buffer table); views share their input's.
    Buf(u32),
}

/// One named tensor of the graph.
#[derive(Clone, Copy, Debug)]
pub(crate) struct TensorInfo<'a> {
    pub name: &'a str,
    /// [`name_hash`] of `name`: planning finds a tensor by name in a table of every tensor
    /// (ONNX names nodes' inputs), and comparing hashes first skips the string compares of
    /// all but the one entry. It fills padding after `dtype`, so the table is no larger.
    pub hash: u16,
    pub dtype: DType,
    pub shape: Shape,
    pub storage: Storage<'a>,
}

impl<'a> TensorInfo<'a> {
    fn new(name: &'a str, dtype: DType, shape: Shape, storage: Storage<'a>) -> TensorInfo<'a> {
        TensorInfo {
            name,
            hash: name_hash(name),
            dtype,
            shape,
            storage,
        }
    }

    const UNDEFINED: TensorInfo<'static> = TensorInfo {
        name: "",
        hash: name_hash(""),
        dtype: DType::F32,
        shape: Shape::SCALAR,
        storage: Storage::Undefined,
    };

    pub fn nbytes(&self) -> usize {
        self.shape.volume() * self.dtype.size()
    }
}

/// One kernel invocation.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Step {
    pub op: Op,
    /// Index of the node in the model.
    pub node: u32,
    /// Input tensor indices are `io[io_start..io_start + n_in]`, outputs follow.
    pub io_start: u32,
    pub n_in: u8,
    pub n_out: u8,
    /// Scratch buffer index, or NONE.
    pub scratch: u32,
    pub macs: u64,
}

impl Step {
    const EMPTY: Step = Step {
        op: Op::Const,
        node: 0,
        io_start: 0,
        n_in: 0,
        n_out: 0,
        scratch: NONE,
        macs: 0,
    };
}

/// Entry counts of the plan tables the session keeps (the tensor table at the start of the
/// arena's head, the others in its tail), and of the working tables planning fills in the
/// head. They do not depend on the machine; their size in bytes does (pointer width), so a
/// cross-compiled firmware turns the counts its build script computed on the host into its
/// exact arena size with the `const fn`s [`PlanTables::bytes`] and
/// [`PlanTables::head_bytes`] evaluated on the target (see [`ArenaReport::for_this_target`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PlanTables {
    /// Tensor table entries the session reads, compacted to the start of the working tensor
    /// table: they stay in the head, and the planned region follows them.
    pub tensors: usize,
    /// Arena buffers (activations and scratch).
    pub bufs: usize,
    /// Kernel steps the session runs.
    pub steps: usize,
    /// Entries of the working step table, in the arena's head while planning: every node
    /// that may become a step (not `Constant`, nor an fp16 weight's `Cast`). The planned
    /// region reuses those bytes once the `steps` that run are copied to the tail.
    pub work_steps: usize,
    /// Entries of the working tensor table, in the arena's head while planning: every graph
    /// input, initializer and node output.
    pub work_tensors: usize,
    /// Nodes: planning's ordering flags in the head. The kept tensors are then renumbered
    /// (one `u32` per working tensor) over the working steps and these flags, extended if
    /// both are smaller.
    pub nodes: usize,
    /// Node input/output slots.
    pub io: usize,
    /// Graph inputs.
    pub inputs: usize,
    /// Graph outputs.
    pub outputs: usize,
}

impl PlanTables {
    /// Bytes the tail's tables (all but the tensor table) take in the arena on the machine
    /// this code is compiled for (`usize::MAX` when that overflows, which no arena can
    /// satisfy).
    pub const fn bytes(&self) -> usize {
        match self.checked_bytes() {
            Some(bytes) => bytes,
            None => usize::MAX,
        }
    }

    /// [`PlanTables::bytes`], or `None` when the counts overflow this machine's `usize`:
    /// counts read from an untrusted place (a model image's header) may be anything.
    pub const fn checked_bytes(&self) -> Option<usize> {
        self.checked_bytes_with(&Self::ENTRY_BYTES)
    }

    /// Bytes of one entry of each table, in field order, on the machine this code is
    /// compiled for. A firmware's kernel probe records its target's
    /// (`scripts/measure-kernel-code.sh`), so the host can size a Cortex-M arena with
    /// [`PlanTables::checked_bytes_with`].
    pub const ENTRY_BYTES: [usize; 7] = {
        use core::mem::size_of;
        [
            size_of::<TensorInfo<'static>>(),
            size_of::<Buf>(),
            size_of::<Step>(),
            size_of::<bool>(),
            size_of::<u32>(),
            size_of::<u32>(),
            size_of::<u32>(),
        ]
    };

    /// Bytes of the working tables in the arena's head while planning, on the machine this
    /// code is compiled for (`usize::MAX` when that overflows).
    pub const fn work_bytes(&self) -> usize {
        match self.checked_work_bytes_with(&Self::ENTRY_BYTES) {
            Some(bytes) => bytes,
            None => usize::MAX,
        }
    }

    /// [`PlanTables::work_bytes`] with `entry` bytes per table entry (another machine's
    /// [`PlanTables::ENTRY_BYTES`]), or `None` when that overflows.
    pub const fn checked_work_bytes_with(&self, entry: &[usize; 7]) -> Option<usize> {
        let (Some(flags), Some(renumber), Some(steps)) = (
            self.nodes.checked_mul(entry[3]),
            self.work_tensors.checked_mul(entry[4]),
            sum_aligned(&[(self.work_steps, entry[2])]),
        ) else {
            return None;
        };
        // The tensors are renumbered over the working steps and the flags, both done with.
        let renumber = renumber.saturating_sub(steps);
        let flags = if flags > renumber { flags } else { renumber };
        sum_aligned(&[(self.work_tensors, entry[0]), (steps, 1), (flags, 1)])
    }

    /// Bytes of the arena's head on the machine this code is compiled for, with a `planned`
    /// region: the working tables while planning, then the kept tensor table and the planned
    /// region (`usize::MAX` when that overflows).
    pub const fn head_bytes(&self, planned: usize) -> usize {
        match self.checked_head_bytes_with(planned, &Self::ENTRY_BYTES) {
            Some(bytes) => bytes,
            None => usize::MAX,
        }
    }

    /// [`PlanTables::head_bytes`] with `entry` bytes per table entry (another machine's
    /// [`PlanTables::ENTRY_BYTES`]), or `None` when that overflows.
    pub const fn checked_head_bytes_with(
        &self,
        planned: usize,
        entry: &[usize; 7],
    ) -> Option<usize> {
        let (Some(work), Some(kept)) = (
            self.checked_work_bytes_with(entry),
            sum_aligned(&[(self.tensors, entry[0]), (planned, 1)]),
        ) else {
            return None;
        };
        Some(if work > kept { work } else { kept })
    }

    /// [`PlanTables::checked_bytes`] with `entry` bytes per table entry (another machine's
    /// [`PlanTables::ENTRY_BYTES`]).
    pub const fn checked_bytes_with(&self, entry: &[usize; 7]) -> Option<usize> {
        sum_aligned(&[
            (self.bufs, entry[1]),
            (self.steps, entry[2]),
            (self.io, entry[4]),
            (self.inputs, entry[5]),
            (self.outputs, entry[6]),
        ])
    }
}

/// Bytes of tables of `(count, entry bytes)`, each rounded up to `ALIGN` as [`Bump`]
/// allocates them, or `None` when that overflows.
const fn sum_aligned(tables: &[(usize, usize)]) -> Option<usize> {
    let mut total: usize = 0;
    let mut i = 0;
    while i < tables.len() {
        let (count, size) = tables[i];
        let Some(bytes) = count.checked_mul(size) else {
            return None;
        };
        let Some(bytes) = bytes.checked_next_multiple_of(crate::arena::ALIGN) else {
            return None;
        };
        let Some(sum) = total.checked_add(bytes) else {
            return None;
        };
        total = sum;
        i += 1;
    }
    Some(total)
}

/// Loads an initializer or `Constant` value: in place when the file stores plain
/// little-endian bytes, otherwise decoded into the arena's tail.
pub(crate) fn load_tensor<'a>(
    bump: &mut Bump<'a>,
    t: TensorProto<'a>,
) -> Result<(DType, Shape, &'a [u8])> {
    let name = Name::new(t.name());
    let dtype = t.dtype().ok_or(Error::Invalid {
        what: "unsupported tensor data type",
        name,
    })?;
    let shape = t.shape()?;
    let bytes: &'a [u8] = match t.data() {
        TensorData::Raw(b) => b,
        TensorData::Decode => {
            let out: &'a mut [u8] = bump.bytes(shape.volume() * dtype.size())?;
            out.fill(0);
            t.decode_into(out);
            out
        }
    };
    Ok((dtype, shape, bytes))
}

/// A 16-bit FNV-1a of a tensor name (the 32-bit hash folded), for [`TensorInfo::hash`].
const fn name_hash(name: &str) -> u16 {
    let bytes = name.as_bytes();
    let mut h: u32 = 0x811c_9dc5;
    let mut i = 0;
    while i < bytes.len() {
        h = (h ^ bytes[i] as u32).wrapping_mul(0x0100_0193);
        i += 1;
    }
    (h ^ (h >> 16)) as u16
}

/// The tensor ids of `node`'s inputs (`NONE` for an omitted optional one), or `None` while
/// one of them is not defined yet.
fn resolve_inputs(
    p: &Planner<'_, '_>,
    node: &Node<'_>,
) -> Result<Option<heapless::Vec<u32, MAX_INPUTS>>> {
    let mut ids = heapless::Vec::new();
    for name in node.inputs() {
        let id = match name {
            "" => NONE,
            _ => match p.find(name) {
                Some(id) => id,
                None => return Ok(None),
            },
        };
        ids.push(id).map_err(|_| Error::Capacity {
            what: "node inputs",
            limit: MAX_INPUTS,
        })?;
    }
    Ok(Some(ids))
}

/// Mutable planning state.
struct Planner<'p, 'a> {
    tensors: &'p mut [TensorInfo<'a>],
    n_tensors: usize,
    bufs: &'a mut [Buf],
    n_bufs: usize,
}

impl<'a> Planner<'_, 'a> {
    fn find(&self, name: &str) -> Option<u32> {
        let hash = name_hash(name);
        self.tensors[..self.n_tensors]
            .iter()
            .rposition(|t| t.hash == hash && t.name == name)
            .map(|i| i as u32)
    }

    fn define(
        &mut self,
        name: &'a str,
        dtype: DType,
        shape: Shape,
        storage: Storage<'a>,
    ) -> Result<u32> {
        if !name.is_empty() && self.find(name).is_some() {
            return Err(Error::Invalid {
                what: "tensor defined twice",
                name: Name::new(name),
            });
        }
        self.append(TensorInfo::new(name, dtype, shape, storage))
    }

    /// Adds `t`, whose name is known to be new ([`Planner::define`] checks).
    fn append(&mut self, t: TensorInfo<'a>) -> Result<u32> {
        let i = self.n_tensors;
        let slot = self.tensors.get_mut(i).ok_or(Error::Invalid {
            what: "too many tensors",
            name: Name::new(t.name),
        })?;
        *slot = t;
        self.n_tensors += 1;
        Ok(i as u32)
    }

    fn new_buf(&mut self, bytes: usize, first: u32) -> Result<u32> {
        let i = self.n_bufs;
        let slot = self.bufs.get_mut(i).ok_or(Error::Capacity {
            what: "buffers",
            limit: i,
        })?;
        *slot = Buf::new(align_up(bytes.min(isize::MAX as usize)), first, first);
        self.n_bufs += 1;
        Ok(i as u32)
    }

    /// Marks tensor `t` as read at step time `time`.
    fn use_at(&mut self, t: u32, time: u32) {
        if let Storage::Buf(b) = self.tensors[t as usize].storage {
            let buf = &mut self.bufs[b as usize];
            buf.last = buf.last.max(time);
        }
    }
}

/// Io slots the inputs of an `op_type` step take: the node's own, or an LSTM's
/// [`ops::rnn::lstm::SLOTS`], whose last two receive int8 weight scales when planning reads
/// its weights as int8 ([`qdq`]), or a MatMul's or Gemm's own plus its int8 weight scales
/// slot, or a Conv's three (a missing bias is an empty slot) so that an int8 Conv always
/// has room for `[x_q, W_i8, table]` (a bias-free Conv with a two-input weight
/// DequantizeLinear, e.g. squeeze-excitation's, would have none).
fn input_slots(op_type: &str, inputs: usize) -> usize {
    match op_type {
        "LSTM" => inputs.max(ops::rnn::lstm::SLOTS),
        "MatMul" => inputs.max(ops::matmul::MATMUL_SCALES + 1),
        "Gemm" => inputs.max(ops::matmul::GEMM_SCALES + 1),
        "Conv" => inputs.max(3),
        _ => inputs,
    }
}

/// Plans `model` for the given input shapes inside `arena` (see [`Session::new`]); every
/// kernel it runs, at plan time or in the session, must be in `kernels`.
pub(crate) fn build<'a>(
    model: &Model<'a>,
    shapes: &[&[usize]],
    arena: &'a mut [u8],
    target: Target,
    kernels: Kernels,
) -> Result<Session<'a>> {
    model.check_supported()?;
    let n_nodes = model.node_count();
    let n_inputs = model.inputs().count();
    let n_outputs = model.outputs().count();
    // `Constant` nodes never become steps nor arena buffers (exporters emit hundreds of
    // them), so the step, buffer and io tables are sized for the other nodes only.
    let (mut n_io, mut n_node_outputs, mut n_kernel_nodes) = (0usize, 0usize, 0usize);
    for node in model.nodes().filter(|n| n.op_type() != "Constant") {
        let outs = node.outputs().count();
        n_node_outputs += outs;
        // Nor do the Casts of fp16 weights that their kernels read in place.
        if !half::vanishes(model, &node) {
            n_io += input_slots(node.op_type(), node.inputs().count()) + outs;
            n_kernel_nodes += 1;
        }
    }
    if !shapes.is_empty() && shapes.len() != n_inputs {
        return Err(Error::BadInput {
            input: Name::new(model.inputs().next().map_or("", |v| v.name())),
            reason: "give one shape per graph input, in graph-input order",
        });
    }

    // Kernel families run by folds and steps: the plan's kernel set.
    let mut used = 0u32;
    let n_constant_outputs = model.nodes().filter(|n| n.op_type() == "Constant").count();
    let tensor_cap = n_inputs + model.initializers().count() + n_node_outputs + n_constant_outputs;
    let mut tables = PlanTables {
        // The tensors and steps the session keeps, once known.
        tensors: 0,
        bufs: n_inputs + n_node_outputs + n_kernel_nodes,
        steps: 0,
        work_steps: n_kernel_nodes,
        work_tensors: tensor_cap,
        nodes: n_nodes,
        io: n_io,
        inputs: n_inputs,
        outputs: n_outputs,
    };
    let work_bytes = tables
        .checked_work_bytes_with(&PlanTables::ENTRY_BYTES)
        .ok_or(Error::Capacity {
            what: "plan size",
            limit: usize::MAX,
        })?;
    let (mut bump, head) = Bump::with_head(arena, work_bytes)?;
    // The working tables, in the head until planning and fusion fix what the session keeps,
    // laid out as `PlanTables::work_bytes` counts them. The tensor table comes first: the
    // tensors the session reads are compacted to its start and stay there.
    let tensor_bytes = tensor_cap * size_of::<TensorInfo>();
    let (tensors, work) = head.split_at_mut(align_up(tensor_bytes));
    let tensors = typed(
        &mut tensors[..tensor_bytes],
        tensor_cap,
        TensorInfo::UNDEFINED,
    );
    let (steps, flags) = work.split_at_mut(align_up(n_kernel_nodes * size_of::<Step>()));
    let steps = typed(
        &mut steps[..n_kernel_nodes * size_of::<Step>()],
        n_kernel_nodes,
        Step::EMPTY,
    );
    let done = typed(&mut flags[..n_nodes], n_nodes, false);
    // Sizes must match `PlanTables::bytes` (every allocation is `ALIGN`ed, so the order
    // does not matter).
    let bufs = bump.slice(tables.bufs, Buf::new(0, 0, 0))?;
    let io = bump.slice(tables.io, NONE)?;
    let input_ids = bump.slice(tables.inputs, NONE)?;
    let output_ids = bump.slice(tables.outputs, NONE)?;
    let mut p = Planner {
        tensors,
        n_tensors: 0,
        bufs,
        n_bufs: 0,
    };

    // Graph inputs: arena buffers alive from time 0.
    for (k, vi) in model.inputs().enumerate() {
        let name = Name::new(vi.name());
        let dtype = vi.dtype().ok_or(Error::BadInput {
            input: name,
            reason: "missing or unsupported element type",
        })?;
        let declared = vi.dims();
        let shape = match shapes.get(k) {
            Some(given) => {
                let shape = Shape::new(given)?;
                if let Some(dims) = declared.clone() {
                    let matches = dims.clone().count() == given.len()
                        && dims
                            .zip(given.iter())
                            .all(|(d, &g)| !matches!(d, Dim::Fixed(f) if f != g));
                    if !matches {
                        return Err(Error::BadInput {
                            input: name,
                            reason: "shape does not match the model's declared shape",
                        });
                    }
                }
                shape
            }
            None => {
                let dims = declared.ok_or(Error::BadInput {
                    input: name,
                    reason: "no declared shape; give one",
                })?;
                let mut shape = Shape::SCALAR;
                for d in dims {
                    match d {
                        Dim::Fixed(f) => shape.push(f)?,
                        Dim::Symbolic(_) => {
                            return Err(Error::BadInput {
                                input: name,
                                reason: "has a symbolic dim; give a fixed shape",
                            })
                        }
                    }
                }
                shape
            }
        };
        let bytes = shape
            .checked_volume()
            .and_then(|v| v.checked_mul(dtype.size()));
        let bytes = bytes.ok_or(Error::BadInput {
            input: name,
            reason: "shape is too large to address",
        })?;
        let b = p.new_buf(bytes, 0)?;
        input_ids[k] = p.define(vi.name(), dtype, shape, Storage::Buf(b))?;
    }
    for t in model.initializers() {
        let (dtype, shape, bytes) = load_tensor(&mut bump, t)?;
        // (An initializer named like a graph input is that input's default: the input wins.)
        if p.find(t.name()).is_none() {
            p.append(TensorInfo::new(
                t.name(),
                dtype,
                shape,
                Storage::Const(bytes),
            ))?;
        }
    }

    // Nodes, in dependency order.
    let mut n_steps = 0usize;
    let mut io_len = 0usize;
    let mut remaining = n_nodes;
    while remaining > 0 {
        let mut progress = false;
        for node in model.nodes() {
            if done[node.index()] {
                continue;
            }
            // A node runs once all its inputs are defined: resolved here once, then used.
            let Some(mut in_ids) = resolve_inputs(&p, &node)? else {
                continue;
            };
            done[node.index()] = true;
            remaining -= 1;
            progress = true;
            let time = n_steps as u32 + 1;
            let node_name = Name::new(node.display_name());

            let mut facts: heapless::Vec<Option<Fact<'a>>, MAX_INPUTS> = heapless::Vec::new();
            for &id in &in_ids {
                let fact = (id != NONE).then(|| {
                    let t = &p.tensors[id as usize];
                    let value = match t.storage {
                        Storage::Const(b) => Some(b),
                        _ => None,
                    };
                    Fact {
                        dtype: t.dtype,
                        shape: t.shape,
                        value,
                    }
                });
                let _ = facts.push(fact);
            }
            let n_out = node.outputs().count();
            if n_out > MAX_OUTPUTS {
                return Err(Error::Capacity {
                    what: "node outputs",
                    limit: MAX_OUTPUTS,
                });
            }
            // Supported (checked above), so missing only from a restricted kernel set.
            let prepare = kernels
                .prepare(node.domain(), node.op_type())
                .ok_or(Error::BadNode {
                    node: node_name,
                    op: Name::new(node.op_type()),
                    reason: "its kernel is not in the session's kernel set",
                })?;
            let mut prep = Prep {
                node,
                inputs: &facts,
                outputs: heapless::Vec::new(),
                n_outputs: n_out,
                scratch: 0,
                macs: 0,
                bump: &mut bump,
                opset: model.opset(),
                target,
            };
            let op = prepare(&mut prep)?;
            let (outs, scratch, macs) = (prep.outputs, prep.scratch, prep.macs);
            for (k, name) in node.outputs().enumerate() {
                if k >= outs.len() && !name.is_empty() {
                    return Err(Error::BadNode {
                        node: node_name,
                        op: Name::new(node.op_type()),
                        reason: "this optional output is not supported",
                    });
                }
            }

            let all_const = facts.iter().flatten().all(|f| f.value.is_some());
            let out_bytes: usize = outs.iter().map(|f| f.shape.volume() * f.dtype.size()).sum();
            let integer = outs
                .iter()
                .all(|f| !matches!(f.dtype, DType::F32 | DType::F16 | DType::F64));
            if half::vanishes(model, &node) {
                // Read in place by its kernels: the Cast's output is its float16 input.
                let bytes = facts[0].and_then(|f| f.value).ok_or(Error::BadNode {
                    node: node_name,
                    op: Name::new(node.op_type()),
                    reason: "float16 weight without a value",
                })?;
                let name = node.outputs().next().unwrap_or("");
                p.define(name, DType::F16, outs[0].shape, Storage::Const(bytes))?;
                continue;
            }
            match op {
                Op::Const => {
                    for (f, name) in outs.iter().zip(node.outputs()) {
                        let v = f.value.ok_or(Error::BadNode {
                            node: node_name,
                            op: Name::new(node.op_type()),
                            reason: "constant without value",
                        })?;
                        p.define(name, f.dtype, f.shape, Storage::Const(v))?;
                    }
                }
                Op::View => {
                    let f = outs[0];
                    let storage = match (f.value, in_ids[0]) {
                        (Some(v), _) => Storage::Const(v),
                        (None, id) => p.tensors[id as usize].storage,
                    };
                    p.define(
                        node.outputs().next().unwrap_or(""),
                        f.dtype,
                        f.shape,
                        storage,
                    )?;
                }
                _ if all_const
                    && scratch == 0
                    && (out_bytes <= FOLD_LIMIT || integer)
                    && !qdq::deferred(&op) =>
                {
                    // Fold: run the kernel now, into the persistent tail.
                    let mut run_io = Io {
                        inputs: heapless::Vec::new(),
                        outputs: heapless::Vec::new(),
                        scratch: &mut [],
                    };
                    for f in facts.iter() {
                        let _ = run_io.inputs.push(f.and_then(|f| f.tensor()));
                    }
                    let mut values: heapless::Vec<&'a [u8], MAX_OUTPUTS> = heapless::Vec::new();
                    for f in outs.iter() {
                        let bytes: &'a mut [u8] = bump.bytes(f.shape.volume() * f.dtype.size())?;
                        bytes.fill(0);
                        let _ = run_io.outputs.push(TensorMut {
                            dtype: f.dtype,
                            shape: f.shape,
                            bytes,
                        });
                    }
                    kernels.fold(&op, &mut run_io, &mut used)?;
                    for t in run_io.outputs {
                        let v: &'a [u8] = t.bytes;
                        let _ = values.push(v);
                    }
                    for ((f, name), v) in outs.iter().zip(node.outputs()).zip(values) {
                        p.define(name, f.dtype, f.shape, Storage::Const(v))?;
                    }
                }
                _ => {
                    let start = io_len;
                    while in_ids.len() < input_slots(node.op_type(), facts.len()) {
                        let _ = in_ids.push(NONE);
                    }
                    for (k, &id) in in_ids.iter().enumerate() {
                        io[start + k] = id;
                        if id != NONE {
                            p.use_at(id, time);
                        }
                    }
                    for (k, (f, name)) in outs.iter().zip(node.outputs()).enumerate() {
                        let b = p.new_buf(f.shape.volume() * f.dtype.size(), time)?;
                        io[start + in_ids.len() + k] =
                            p.define(name, f.dtype, f.shape, Storage::Buf(b))?;
                    }
                    io_len += in_ids.len() + outs.len();
                    let scratch_buf = if scratch > 0 {
                        p.new_buf(scratch, time)?
                    } else {
                        NONE
                    };
                    steps[n_steps] = Step {
                        op,
                        node: node.index() as u32,
                        io_start: start as u32,
                        n_in: in_ids.len() as u8,
                        n_out: outs.len() as u8,
                        scratch: scratch_buf,
                        macs,
                    };
                    n_steps += 1;
                }
            }
        }
        if !progress {
            let node = model
                .nodes()
                .find(|n| !done[n.index()])
                .ok_or(Error::Invalid {
                    what: "graph order",
                    name: Name::new(""),
                })?;
            let missing = node
                .inputs()
                .find(|n| !n.is_empty() && p.find(n).is_none())
                .unwrap_or("?");
            return Err(Error::UnknownTensor {
                node: Name::new(node.display_name()),
                tensor: Name::new(missing),
            });
        }
    }

    let end = n_steps as u32 + 1;
    for (k, vi) in model.outputs().enumerate() {
        let id = p.find(vi.name()).ok_or(Error::Invalid {
            what: "graph output is never produced",
            name: Name::new(vi.name()),
        })?;
        output_ids[k] = id;
        p.use_at(id, end);
    }
    let mut tables_view = fuse::Tables {
        steps: &mut steps[..n_steps],
        io: &mut io[..io_len],
        tensors: &mut p.tensors[..p.n_tensors],
        bufs: &mut p.bufs[..p.n_bufs],
        outputs: output_ids,
    };
    tables_view.quantize_lstms();
    tables_view.quantize_matmuls();
    tables_view.quantize(&mut bump, target, kernels, &mut used)?;
    let n_steps = tables_view.fuse();
    for step in &steps[..n_steps] {
        if !kernels.contains(&step.op) {
            let node = model.nodes().nth(step.node as usize);
            return Err(Error::BadNode {
                node: Name::new(node.map_or("?", |n| n.display_name())),
                op: Name::new(node.map_or("?", |n| n.op_type())),
                reason: "its kernel is not in the session's kernel set",
            });
        }
        used |= kernels::family(&step.op);
    }
    // A session planned on the set this plan reports must reach every node's prepare:
    // where the registry's families are coarser than this plan's rewrites, widen the set.
    for node in model.nodes() {
        let families = ops::families(node.op_type()).unwrap_or(0);
        if !kernels::prepares(used, families) {
            used |= families & kernels.set();
        }
    }

    // The steps that run move to the tail at their exact size, the tensors the session
    // reads to the tensor table's start; the rest of the head returns to the planned region.
    tables.steps = n_steps;
    let kept = bump.slice(n_steps, Step::EMPTY)?;
    kept.copy_from_slice(&steps[..n_steps]);
    let Planner {
        tensors,
        n_tensors,
        bufs,
        n_bufs,
    } = p;
    let renumber = typed(&mut work[..tensor_cap * size_of::<u32>()], tensor_cap, NONE);
    tables.tensors = keep_tensors(
        &mut tensors[..n_tensors],
        renumber,
        Reach {
            steps: kept,
            io: &mut io[..io_len],
            inputs: input_ids,
            outputs: output_ids,
        },
    );
    let (tensors, spare) = tensors.split_at_mut(tables.tensors);
    let plan = memory::plan(&mut bufs[..n_bufs]);
    let persistent = bump.used();
    let given = bump.given();
    let region = bump.into_region(spare, work);
    let report = ArenaReport {
        total: persistent.saturating_add(tables.head_bytes(plan.peak)),
        planned: plan.peak,
        lower_bound: plan.lower_bound,
        persistent,
        constants: persistent - tables.bytes(),
        tables,
    };
    if region.len() < plan.peak {
        return Err(Error::ArenaTooSmall {
            needed: report.total,
            got: given,
            exact: true,
        });
    }
    let region_len = region.len();
    let region = &mut region[region_len - plan.peak..];
    Ok(Session {
        model: *model,
        tensors,
        bufs: &bufs[..n_bufs],
        steps: kept,
        io: &io[..io_len],
        inputs: input_ids,
        outputs: output_ids,
        region,
        report,
        target,
        kernels,
        kernel_set: used,
    })
}

/// The tables that name tensors by index into the working tensor table.
struct Reach<'p> {
    steps: &'p [Step],
    io: &'p mut [u32],
    inputs: &'p mut [u32],
    outputs: &'p mut [u32],
}

/// Moves the tensors that the kept `steps` read or write, and the graph inputs and outputs,
/// to the start of the working table `work`, in order, renumbers every reference to them
/// (`renumber`: one entry per working tensor) and returns how many there are. The io slots
/// of steps that no longer run get `NONE`.
fn keep_tensors(work: &mut [TensorInfo<'_>], renumber: &mut [u32], reach: Reach<'_>) -> usize {
    const KEPT: u32 = 0;
    let Reach {
        steps,
        io,
        inputs,
        outputs,
    } = reach;
    for s in steps {
        for &t in &io[s.io_start as usize..][..s.n_in as usize + s.n_out as usize] {
            if t != NONE {
                renumber[t as usize] = KEPT;
            }
        }
    }
    for &t in inputs.iter().chain(outputs.iter()) {
        renumber[t as usize] = KEPT;
    }
    let mut n = 0;
    for r in renumber.iter_mut().filter(|r| **r == KEPT) {
        *r = n;
        n += 1;
    }
    // Entry `t` moves to `renumber[t] <= t`: in order, nothing is overwritten before read.
    for t in 0..work.len() {
        if renumber[t] != NONE {
            work[renumber[t] as usize] = work[t];
        }
    }
    for t in io
        .iter_mut()
        .chain(inputs.iter_mut())
        .chain(outputs.iter_mut())
    {
        if *t != NONE {
            *t = renumber[*t as usize];
        }
    }
    n as usize
}

/// Borrows the tensors of `step` out of `region` (outputs and scratch mutably, inputs
/// shared) without `unsafe`: the planner guarantees the mutable buffers are disjoint from
/// each other and from every input, so splitting the region at the mutable buffers leaves
/// each input inside one of the gaps.
pub(crate) fn bind<'t>(
    region: &'t mut [u8],
    tensors: &[TensorInfo<'t>],
    bufs: &[Buf],
    io: &[u32],
    step: &Step,
) -> Io<'t> {
    const SCRATCH: usize = usize::MAX;
    let ins = &io[step.io_start as usize..][..step.n_in as usize];
    let outs = &io[step.io_start as usize + step.n_in as usize..][..step.n_out as usize];
    let mut muts: heapless::Vec<(usize, usize, usize), { MAX_OUTPUTS + 1 }> = heapless::Vec::new();
    for (k, &t) in outs.iter().enumerate() {
        // Empty outputs take no bytes (and may share an offset): they keep an empty slice.
        let len = tensors[t as usize].nbytes();
        if let (Storage::Buf(b), true) = (tensors[t as usize].storage, len > 0) {
            let _ = muts.push((bufs[b as usize].offset, len, k));
        }
    }
    if step.scratch != NONE {
        let b = &bufs[step.scratch as usize];
        let _ = muts.push((b.offset, b.size, SCRATCH));
    }
    // By offset. An insertion sort: there are at most `MAX_OUTPUTS + 1` entries (mostly one
    // or two), and `sort_unstable` would link about 5 KB of Cortex-M code for them.
    for i in 1..muts.len() {
        let mut j = i;
        while j > 0 && muts[j - 1].0 > muts[j].0 {
            muts.swap(j - 1, j);
            j -= 1;
        }
    }

    let mut gaps: heapless::Vec<(usize, &'t [u8]), { MAX_OUTPUTS + 2 }> = heapless::Vec::new();
    // Empty outputs and absent scratch get zero-length slices at the region's (aligned)
    // start rather than `&mut []`, whose dangling address would fail an f32 cast.
    let (mut empties, mut rest) = region.split_at_mut(0);
    let mut empty = || {
        let (e, more) = core::mem::take(&mut empties).split_at_mut(0);
        empties = more;
        e
    };
    let mut out_slices: [&'t mut [u8]; MAX_OUTPUTS] = core::array::from_fn(|_| empty());
    let mut scratch: &'t mut [u8] = empty();
    let mut cursor = 0;
    for &(offset, len, slot) in muts.iter() {
        let (gap, tail) = core::mem::take(&mut rest).split_at_mut(offset - cursor);
        let (piece, tail) = tail.split_at_mut(len);
        let _ = gaps.push((cursor, gap));
        if slot == SCRATCH {
            scratch = piece;
        } else {
            out_slices[slot] = piece;
        }
        rest = tail;
        cursor = offset + len;
    }
    let _ = gaps.push((cursor, rest));

    let mut bound = Io {
        inputs: heapless::Vec::new(),
        outputs: heapless::Vec::new(),
        scratch,
    };
    for &t in ins {
        let view = (t != NONE).then(|| {
            let info = &tensors[t as usize];
            let bytes: &'t [u8] = match info.storage {
                Storage::Const(b) => b,
                Storage::Buf(b) => {
                    let (start, len) = (bufs[b as usize].offset, info.nbytes());
                    gaps.iter()
                        .find(|(g, bytes)| *g <= start && start + len <= *g + bytes.len())
                        .map_or(&[][..], |(g, bytes)| &bytes[start - g..start - g + len])
                }
                Storage::Undefined => &[],
            };
            TensorRef {
                dtype: info.dtype,
                shape: info.shape,
                bytes,
            }
        });
        let _ = bound.inputs.push(view);
    }
    for (k, slice) in out_slices.into_iter().take(outs.len()).enumerate() {
        let info = &tensors[outs[k] as usize];
        let _ = bound.outputs.push(TensorMut {
            dtype: info.dtype,
            shape: info.shape,
            bytes: slice,
        });
    }
    bound
}
