//! The image header as a Rust value: built from a planned session, written to and read
//! from the 384 bytes [`super`] lays out.

use super::{
    get_u32, image_crc, ImageError, ARENA_FIELDS, HEADER_LEN, MAGIC, MAX_INPUTS, MAX_OUTPUTS,
    MAX_RANK, NAME_LEN, OFF_ARENA, OFF_CRC, OFF_HEADER_LEN, OFF_INPUTS, OFF_NAME, OFF_OUTPUTS,
    OFF_PAYLOAD_LEN, OFF_SLOTS, OFF_TARGET, OFF_VERSION, RESERVED, SLOTS, SLOT_LEN, VERSION,
};
use crate::error::{Error, Name, Result};
use crate::plan::PlanTables;
use crate::session::{ArenaReport, Session, TensorSpec};
use crate::target::Target;
use crate::tensor::{DType, Shape};

/// Element type and shape of a graph input or output, as the header records them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageTensor {
    /// Element type.
    pub dtype: DType,
    /// Shape the model was planned with.
    pub shape: Shape,
}

impl ImageTensor {
    /// An unused slot.
    pub(super) const NONE: ImageTensor = ImageTensor {
        dtype: DType::F32,
        shape: Shape::SCALAR,
    };

    pub(super) fn of(spec: &TensorSpec<'_>) -> ImageTensor {
        ImageTensor {
            dtype: spec.dtype,
            shape: spec.shape,
        }
    }
}

/// What an image's header says about its model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub(super) target: Target,
    pub(super) arena: ArenaReport,
    pub(super) name: [u8; NAME_LEN],
    /// Inputs in `0..MAX_INPUTS`, outputs after.
    pub(super) io: [ImageTensor; SLOTS],
    pub(super) n_inputs: u8,
    pub(super) n_outputs: u8,
}

impl Header {
    /// Describes the model `session` runs, as planned (its target, arena and input shapes),
    /// under `name` (at most [`NAME_LEN`] bytes, no NUL).
    pub fn from_session(name: &str, session: &Session<'_>) -> Result<Header> {
        if name.len() > NAME_LEN {
            return Err(Error::Capacity {
                what: "image model name bytes",
                limit: NAME_LEN,
            });
        }
        if name.contains('\0') {
            return Err(Error::Invalid {
                what: "model name contains a NUL byte",
                name: Name::new(name),
            });
        }
        let mut header = Header {
            target: session.target(),
            arena: session.report(),
            name: [0; NAME_LEN],
            io: [ImageTensor::NONE; SLOTS],
            n_inputs: 0,
            n_outputs: 0,
        };
        header.name[..name.len()].copy_from_slice(name.as_bytes());
        let (inputs, outputs) = header.io.split_at_mut(MAX_INPUTS);
        header.n_inputs = fill_slots(inputs, session.inputs(), "image graph inputs")?;
        header.n_outputs = fill_slots(outputs, session.outputs(), "image graph outputs")?;
        Ok(header)
    }

    /// The machine the plan was made for: [`super::Image::session`] plans with its kernels.
    pub fn target(&self) -> Target {
        self.target
    }

    /// The arena the model needs on the machine this code runs on, planned with
    /// [`Header::target`]'s kernels (`total` is what [`super::Image::session`] needs).
    pub fn arena(&self) -> ArenaReport {
        self.arena
    }

    /// The model name.
    pub fn name(&self) -> &str {
        let end = self.name.iter().position(|&b| b == 0).unwrap_or(NAME_LEN);
        // Checked to be UTF-8 when parsed or built.
        core::str::from_utf8(&self.name[..end]).unwrap_or("")
    }

    /// Graph inputs, in order.
    pub fn inputs(&self) -> &[ImageTensor] {
        &self.io[..usize::from(self.n_inputs)]
    }

    /// Graph outputs, in order.
    pub fn outputs(&self) -> &[ImageTensor] {
        &self.io[MAX_INPUTS..MAX_INPUTS + usize::from(self.n_outputs)]
    }

    /// Whether slot `k` holds an input or output.
    fn slot_used(&self, k: usize) -> bool {
        if k < MAX_INPUTS {
            k < usize::from(self.n_inputs)
        } else {
            k - MAX_INPUTS < usize::from(self.n_outputs)
        }
    }

    /// Writes the image of this header and `payload` into `out`, which must have exactly
    /// `HEADER_LEN + payload.len()` bytes.
    pub fn write_image(&self, payload: &[u8], out: &mut [u8]) -> Result<()> {
        let expected = HEADER_LEN.saturating_add(payload.len());
        if out.len() != expected {
            return Err(ImageError::LengthMismatch {
                expected,
                got: out.len(),
            }
            .into());
        }
        let mut header = self.encode(payload.len())?;
        let crc = image_crc(&header, payload);
        header[OFF_CRC..OFF_CRC + 4].copy_from_slice(&crc.to_le_bytes());
        let (head, tail) = out.split_at_mut(HEADER_LEN);
        head.copy_from_slice(&header);
        tail.copy_from_slice(payload);
        Ok(())
    }

    /// The header bytes, CRC field zero.
    fn encode(&self, payload_len: usize) -> Result<[u8; HEADER_LEN]> {
        let mut h = [0u8; HEADER_LEN];
        h[..4].copy_from_slice(&MAGIC);
        h[OFF_VERSION..OFF_VERSION + 2].copy_from_slice(&VERSION.to_le_bytes());
        h[OFF_HEADER_LEN..OFF_HEADER_LEN + 2].copy_from_slice(&(HEADER_LEN as u16).to_le_bytes());
        put_u32(&mut h, OFF_PAYLOAD_LEN, payload_len, "image payload bytes")?;
        h[OFF_TARGET] = match self.target {
            Target::Host => 0,
            Target::CortexM => 1,
        };
        h[OFF_INPUTS] = self.n_inputs;
        h[OFF_OUTPUTS] = self.n_outputs;
        for (k, value) in arena_fields(&self.arena).into_iter().enumerate() {
            put_u32(&mut h, OFF_ARENA + 4 * k, value, "image arena figure")?;
        }
        h[OFF_NAME..OFF_NAME + NAME_LEN].copy_from_slice(&self.name);
        for (k, t) in self.io.iter().enumerate() {
            if !self.slot_used(k) {
                continue;
            }
            let off = OFF_SLOTS + k * SLOT_LEN;
            if t.shape.rank() > MAX_RANK {
                return Err(Error::Capacity {
                    what: "image tensor rank",
                    limit: MAX_RANK,
                });
            }
            // ONNX data type codes of the types we run are all below 16.
            h[off] = t.dtype.onnx_code() as u8;
            h[off + 1] = t.shape.rank() as u8;
            for (d, &dim) in t.shape.dims().iter().enumerate() {
                put_u32(&mut h, off + 4 + 4 * d, dim, "image tensor dim")?;
            }
        }
        Ok(h)
    }

    /// Reads a header whose magic, version, lengths and CRC were checked.
    pub(super) fn decode(h: &[u8; HEADER_LEN]) -> core::result::Result<Header, ImageError> {
        let bad = |what| ImageError::BadField { what };
        let target = match h[OFF_TARGET] {
            0 => Target::Host,
            1 => Target::CortexM,
            _ => return Err(bad("unknown target")),
        };
        let (n_inputs, n_outputs) = (h[OFF_INPUTS], h[OFF_OUTPUTS]);
        if usize::from(n_inputs) > MAX_INPUTS || usize::from(n_outputs) > MAX_OUTPUTS {
            return Err(bad("more than 4 inputs or outputs"));
        }
        if RESERVED
            .iter()
            .any(|&(a, b)| h[a..b].iter().any(|&x| x != 0))
        {
            return Err(bad("reserved bytes are not zero"));
        }
        let arena = decode_arena(h, n_inputs, n_outputs)
            .ok_or(bad("arena plan overflows this machine's usize"))?;
        if arena.lower_bound > arena.planned {
            return Err(bad("arena lower bound above the planned bytes"));
        }
        if arena.tables.steps > arena.tables.work_steps {
            return Err(bad("more steps than working steps"));
        }
        if arena.tables.tensors > arena.tables.work_tensors {
            return Err(bad("more tensors than working tensors"));
        }
        let mut name = [0u8; NAME_LEN];
        name.copy_from_slice(&h[OFF_NAME..OFF_NAME + NAME_LEN]);
        let end = name.iter().position(|&b| b == 0).unwrap_or(NAME_LEN);
        if name[end..].iter().any(|&b| b != 0) {
            return Err(bad("model name has bytes after its end"));
        }
        if core::str::from_utf8(&name[..end]).is_err() {
            return Err(bad("model name is not UTF-8"));
        }
        let mut header = Header {
            target,
            arena,
            name,
            io: [ImageTensor::NONE; SLOTS],
            n_inputs,
            n_outputs,
        };
        for k in 0..SLOTS {
            let slot = &h[OFF_SLOTS + k * SLOT_LEN..OFF_SLOTS + (k + 1) * SLOT_LEN];
            if !header.slot_used(k) {
                if slot.iter().any(|&b| b != 0) {
                    return Err(bad("unused tensor slot is not zero"));
                }
                continue;
            }
            let dtype = DType::from_onnx(i64::from(slot[0])).ok_or(bad("tensor element type"))?;
            let rank = usize::from(slot[1]);
            if rank > MAX_RANK || slot[2..4] != [0, 0] {
                return Err(bad("tensor rank"));
            }
            let mut dims = [0usize; MAX_RANK];
            for (d, dim) in dims.iter_mut().enumerate() {
                *dim = get_u32(slot, 4 + 4 * d) as usize;
            }
            if dims[rank..].iter().any(|&d| d != 0) {
                return Err(bad("tensor dims past its rank are not zero"));
            }
            let shape = Shape::new(&dims[..rank]).map_err(|_| bad("tensor rank"))?;
            header.io[k] = ImageTensor { dtype, shape };
        }
        Ok(header)
    }
}

/// Records `specs` in `slots`; returns their count.
fn fill_slots<'s>(
    slots: &mut [ImageTensor],
    specs: impl Iterator<Item = TensorSpec<'s>>,
    what: &'static str,
) -> Result<u8> {
    let (mut n, limit) = (0, slots.len());
    for spec in specs {
        let slot = slots.get_mut(n).ok_or(Error::Capacity { what, limit })?;
        *slot = ImageTensor::of(&spec);
        n += 1;
    }
    // n <= slots.len() <= 4
    Ok(n as u8)
}

/// The ten arena figures in header order (the input and output tables' counts are the
/// header's input and output counts).
fn arena_fields(a: &ArenaReport) -> [usize; ARENA_FIELDS] {
    let t = &a.tables;
    [
        a.planned,
        a.lower_bound,
        a.constants,
        t.tensors,
        t.bufs,
        t.steps,
        t.nodes,
        t.io,
        t.work_tensors,
        t.work_steps,
    ]
}

/// The arena report for this machine, or `None` when it overflows `usize`.
fn decode_arena(h: &[u8; HEADER_LEN], n_inputs: u8, n_outputs: u8) -> Option<ArenaReport> {
    let v: [usize; ARENA_FIELDS] = core::array::from_fn(|k| get_u32(h, OFF_ARENA + 4 * k) as usize);
    let tables = PlanTables {
        tensors: v[3],
        bufs: v[4],
        steps: v[5],
        nodes: v[6],
        io: v[7],
        inputs: n_inputs.into(),
        outputs: n_outputs.into(),
        work_tensors: v[8],
        work_steps: v[9],
    };
    let persistent = tables.checked_bytes()?.checked_add(v[2])?;
    let head = tables.checked_head_bytes_with(v[0], &PlanTables::ENTRY_BYTES)?;
    Some(ArenaReport {
        total: head.checked_add(persistent)?,
        planned: v[0],
        lower_bound: v[1],
        persistent,
        constants: v[2],
        tables,
    })
}

fn put_u32(h: &mut [u8; HEADER_LEN], off: usize, value: usize, what: &'static str) -> Result<()> {
    let v = u32::try_from(value).map_err(|_| Error::Capacity {
        what,
        limit: u32::MAX as usize,
    })?;
    h[off..off + 4].copy_from_slice(&v.to_le_bytes());
    Ok(())
}
