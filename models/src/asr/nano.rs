//! The recogniser on `edgetrim-runtime`: three sessions and the recogniser's scratch carved
//! out of one caller-provided arena, so a device sizes one buffer and nothing else.
//!
//! Layout of the arena (each piece starts 16-byte aligned):
//!
//! ```text
//! | encoder session | predictor session | joiner session | chunk + LSTM states |
//! ```
//!
//! Each session needs exactly its `ArenaReport::total` (weights stay in the model bytes;
//! the arena holds plan tables, activations and kernel scratch); the scratch is
//! [`Spec::scratch_bytes`]. [`ArenaSizes::of`] gives the figures on a host; on a device,
//! [`recogniser`] finds them by planning each graph once in the free part of the arena
//! before planning it for real in its own piece, so nothing but the arena is needed.

use super::spec::{Models, Spec};
use super::{Graph, Recogniser, Role};
use crate::Error;
use edgetrim_runtime::arena::{align_up, ALIGN};
use edgetrim_runtime::{Model, Session, Target, TensorRef};

/// One graph planned on the runtime.
pub struct NanoGraph<'a> {
    session: Session<'a>,
}

impl<'a> NanoGraph<'a> {
    /// The planned session (MACs, arena report, steps).
    pub fn session(&self) -> &Session<'a> {
        &self.session
    }
}

impl Graph for NanoGraph<'_> {
    type Error = Error;

    fn set_input(&mut self, i: usize, bytes: &[u8]) -> Result<(), Error> {
        self.session
            .set_input_bytes(i, bytes)
            .map_err(Error::Runtime)
    }

    fn run(&mut self) -> Result<(), Error> {
        self.session.run().map_err(Error::Runtime)
    }

    fn output(&self, i: usize) -> TensorRef<'_> {
        self.session.output(i)
    }
}

/// A recogniser whose graphs run on the runtime.
pub type NanoRecogniser<'a, const T: usize> = Recogniser<'a, NanoGraph<'a>, T>;

/// Bytes of each piece of the recogniser's arena.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArenaSizes {
    /// The encoder session (`ArenaReport::total`).
    pub encoder: usize,
    /// The predictor session.
    pub predictor: usize,
    /// The joiner session.
    pub joiner: usize,
    /// The chunk being stacked and the carried LSTM states ([`Spec::scratch_bytes`]).
    pub scratch: usize,
}

impl ArenaSizes {
    /// Bytes of a 16-byte-aligned arena (`edgetrim_runtime::Arena`) that holds everything;
    /// a slice at any address needs up to `ALIGN - 1` more.
    pub fn total(&self) -> usize {
        align_up(self.encoder) + align_up(self.predictor) + align_up(self.joiner) + self.scratch
    }

    /// The exact figures on this machine, planned in growable scratch memory.
    #[cfg(feature = "alloc")]
    pub fn of(models: &Models<'_>) -> Result<ArenaSizes, Error> {
        let spec = Spec::new(models)?;
        let report = |model: &Model<'_>, graph: Role| {
            Session::arena_report(model, &[])
                .map(|r| r.total)
                .map_err(|e| planning_error(graph, e))
        };
        Ok(ArenaSizes {
            encoder: report(&models.encoder, Role::Encoder)?,
            predictor: report(&models.predictor, Role::Predictor)?,
            joiner: report(&models.joiner, Role::Joiner)?,
            scratch: spec.scratch_bytes(),
        })
    }
}

/// Plans `model` at the start of `*free` in exactly the bytes it needs, and moves `*free`
/// past them. Returns the session and those bytes.
fn carve<'a>(
    model: &Model<'a>,
    graph: Role,
    free: &mut &'a mut [u8],
    target: Target,
) -> Result<(NanoGraph<'a>, usize), Error> {
    let runtime = |e| planning_error(graph, e);
    // Sizing pass: plan in all the free memory, keep only the figure.
    let need = Session::with_target(model, &[], free, target)
        .map_err(runtime)?
        .report()
        .total;
    // The free memory starts aligned and held `need` bytes, so it holds `align_up(need)`.
    let take = align_up(need).min(free.len());
    let (mine, rest) = core::mem::take(free).split_at_mut(take);
    *free = rest;
    let session = Session::with_target(model, &[], mine, target).map_err(runtime)?;
    Ok((NanoGraph { session }, need))
}

/// A planning failure, naming the graph when it is the arena's size.
fn planning_error(graph: Role, error: edgetrim_runtime::Error) -> Error {
    match error {
        edgetrim_runtime::Error::ArenaTooSmall { needed, got, .. } => {
            Error::Arena { graph, needed, got }
        }
        e => Error::Runtime(e),
    }
}

/// Plans the three graphs of `models` and the recogniser's scratch in `arena` and starts
/// an utterance. Also returns what each piece took (see [`ArenaSizes::of`] to size the
/// arena beforehand).
pub fn recogniser<'a, const T: usize>(
    models: &Models<'a>,
    arena: &'a mut [u8],
) -> Result<(NanoRecogniser<'a, T>, ArenaSizes), Error> {
    recogniser_for(models, arena, Target::native())
}

/// [`recogniser`] with the kernels and blocks of `target`: a host that plans for
/// `Target::CortexM` runs a microcontroller's float sums in the same order, so its encoder
/// outputs are bit-identical to the device's (the firmware check compares them).
pub fn recogniser_for<'a, const T: usize>(
    models: &Models<'a>,
    arena: &'a mut [u8],
    target: Target,
) -> Result<(NanoRecogniser<'a, T>, ArenaSizes), Error> {
    let spec = Spec::new(models)?;
    let given = arena.len();
    let skip = arena.as_ptr().align_offset(ALIGN).min(given);
    let mut free = &mut arena[skip..];
    let (encoder, e) = carve(&models.encoder, Role::Encoder, &mut free, target)?;
    let (predictor, p) = carve(&models.predictor, Role::Predictor, &mut free, target)?;
    let (joiner, j) = carve(&models.joiner, Role::Joiner, &mut free, target)?;
    let sizes = ArenaSizes {
        encoder: e,
        predictor: p,
        joiner: j,
        scratch: spec.scratch_bytes(),
    };
    if free.len() < sizes.scratch {
        return Err(Error::Length {
            what: "recogniser arena bytes",
            expected: sizes.total() + skip,
            actual: given,
        });
    }
    let rec = Recogniser::new(spec, encoder, predictor, joiner, free)?;
    Ok((rec, sizes))
}
