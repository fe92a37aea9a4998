//! Kernel sets: which op families' eval code a session can call — and so which kernels a
//! firmware links.
//!
//! [`super::eval`] dispatches over every [`Op`], so a binary that calls it links every
//! kernel of the runtime (about 330 KiB of Cortex-M code with the runtime's core, as
//! `edgetrim inspect --target cortex-m4` reports), whatever its model runs. Like
//! TFLM's op resolver, a [`Kernels`] value names the families a model needs; unlike it, the
//! list is derived, not written: a firmware's build script plans its model on the host and
//! writes [`crate::Session::kernel_set`] into a `const`, and the firmware plans with
//! [`Kernels::only`] of that constant. The dispatch [`eval_in`] is generic over the set, so
//! the arms of families outside it are removed at compile time with their kernels. The
//! registry's prepare functions follow the set the same way ([`Kernels::only`]'s lookup
//! keeps an op only when a family its step may run is in the set, see [`prepares`]), and a
//! plan widens the set it reports so that a plan on exactly that set reaches every node's
//! prepare.
//!
//! A set is checked, never trusted: planning fails with a typed error naming the node (or
//! the kernel, for a plan-time fold) when the plan needs a family outside the set, so eval
//! never meets an op it cannot run.

use super::{
    binary, cast, concat, conv, gather, generate, lookup_in, matmul, norm, pad, pool, qadd, quant,
    reduce, resize, rnn, select, softmax, strided, unary, Io, Op, PrepareFn,
};
use crate::error::{Error, Name, Result};

/// One table lists each family once: its bit, the [`Op`] variant, and its eval call on
/// `$io` (the macro's first token, for hygiene). It
/// generates the family lookup, the names and the set-restricted dispatch, so they cannot
/// disagree.
macro_rules! families {
    ($io:ident; $($bit:literal $variant:ident($x:ident) => $eval:expr;)*) => {
        /// The family bit of `op` (0 for `View` and `Const`, which run no kernel).
        pub const fn family(op: &Op) -> u32 {
            match op {
                Op::View | Op::Const => 0,
                $(Op::$variant(..) => 1 << $bit,)*
            }
        }

        /// Family names by bit.
        pub const NAMES: [&str; 32] = {
            let mut names = [""; 32];
            $(names[$bit] = stringify!($variant);)*
            names
        };

        /// Runs `op` if its family is in `SET` (planning made sure it is); families outside
        /// `SET` are compiled out.
        pub fn eval_in<const SET: u32>(op: &Op, $io: &mut Io<'_>) {
            match op {
                $(Op::$variant($x) if SET & (1 << $bit) != 0 => $eval,)*
                _ => {}
            }
        }
    };
}

families! {
    io;
    0 Binary(b) => binary::eval(b, io);
    1 Strided(s) => strided::eval(s, io);
    2 Concat(c) => concat::eval_concat(c, io);
    3 Split(c) => concat::eval_split(c, io);
    4 Gather(g) => gather::eval(g, io);
    5 Cast(c) => cast::eval(c, io);
    6 Fill(f) => generate::eval_fill(f, io);
    7 Select(s) => select::eval(s, io);
    8 Unary(u) => unary::eval(u, io);
    9 Pool(g) => pool::eval(g, io);
    10 GlobalPool(g) => pool::eval_global(g, io);
    11 Softmax(g) => softmax::eval(g, io);
    12 Reduce(g) => reduce::eval(g, io);
    13 Norm(g) => norm::eval(g, io);
    14 Resize(g) => resize::eval(g, io);
    15 Pad(g) => pad::eval(g, io);
    16 Conv(c) => conv::eval(c, io);
    17 QConv(c) => conv::eval_quantized(c, io);
    18 ConvTranspose(c) => conv::eval_transpose(c, io);
    19 MatMul(m) => matmul::eval_matmul(m, io);
    20 Gemm(g) => matmul::eval_gemm(g, io);
    21 Lstm(l) => rnn::eval_lstm(l, io);
    22 Quant(q) => quant::eval(q, io);
    23 QAdd(q) => qadd::eval(q, io);
}

/// Every family.
pub const ALL: u32 = u32::MAX;

/// The bit of the family named `name` (used in `const` context: an unknown name does not
/// compile).
pub const fn bit(name: &str) -> u32 {
    let mut b = 0;
    while b < 32 {
        if str_eq(NAMES[b], name) {
            return 1 << b;
        }
        b += 1;
    }
    panic!("no kernel family of that name")
}

/// `a == b` in a `const fn`.
const fn str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// Whether a plan restricted to `set` may prepare an op whose step runs one of `families`
/// (the op's entry in the registry, see [`super::REGISTRY`]): always for an op that runs no
/// kernel (`families` 0), else when one of them is in the set. The prepare functions of the
/// other ops are compiled out of [`Kernels::only`]'s lookup, like their kernels.
pub const fn prepares(set: u32, families: u32) -> bool {
    families == 0 || set & families != 0
}

/// The kernel families a session may run, with the dispatch compiled for exactly them.
#[derive(Clone, Copy)]
pub struct Kernels {
    set: u32,
    eval: fn(&Op, &mut Io<'_>),
    prepare: fn(&str) -> Option<PrepareFn>,
}

impl core::fmt::Debug for Kernels {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_list().entries(names(self.set)).finish()
    }
}

impl Kernels {
    /// Every kernel of the runtime ([`crate::Session::new`]'s set).
    pub const ALL: Kernels = Kernels::only::<ALL>();

    /// Only the families whose bits are in `SET` (a [`crate::Session::kernel_set`]).
    pub const fn only<const SET: u32>() -> Kernels {
        Kernels {
            set: SET,
            eval: eval_in::<SET>,
            prepare: lookup_in::<SET>,
        }
    }

    /// The family bits.
    pub const fn set(&self) -> u32 {
        self.set
    }

    /// Whether `op`'s family is in the set.
    pub const fn contains(&self, op: &Op) -> bool {
        self.set & family(op) == family(op)
    }

    /// The prepare function of an op of the default domain, if a plan on this set may
    /// need it ([`prepares`]); `None` for other ops, and for ones outside the registry.
    pub(crate) fn prepare(&self, domain: &str, op_type: &str) -> Option<PrepareFn> {
        if !(domain.is_empty() || domain == "ai.onnx") {
            return None;
        }
        (self.prepare)(op_type)
    }

    /// Runs `op`, which must be in the set (checked at plan time).
    pub(crate) fn eval(&self, op: &Op, io: &mut Io<'_>) {
        (self.eval)(op, io)
    }

    /// Runs `op` at plan time (a fold), recording its family in `used`; an error naming
    /// the kernel when it is outside the set.
    pub(crate) fn fold(&self, op: &Op, io: &mut Io<'_>, used: &mut u32) -> Result<()> {
        if !self.contains(op) {
            return Err(Error::Invalid {
                what: "planning needs a kernel outside the session's kernel set",
                name: Name::new(NAMES[family(op).trailing_zeros() as usize & 31]),
            });
        }
        *used |= family(op);
        self.eval(op, io);
        Ok(())
    }
}

/// The names of the families in `set`.
pub fn names(set: u32) -> impl Iterator<Item = &'static str> {
    (0..32)
        .filter(move |b| set & (1 << b) != 0)
        .map(|b| NAMES[b])
        .filter(|n| !n.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Arena, Model, Session};
    use edgetrim_compress::build::{dt, ModelBuilder};
    use std::vec::Vec;

    const BINARY: u32 = 1;
    const UNARY: u32 = 1 << 8;
    const CONV: u32 = 1 << 16;

    #[test]
    fn bits_are_found_by_name() {
        assert_eq!(bit("Binary"), BINARY);
        assert_eq!(bit("Unary"), UNARY);
        assert_eq!(bit("Conv"), CONV);
        assert!(prepares(0, 0), "views and constants are always prepared");
        assert!(prepares(CONV, UNARY | CONV));
        assert!(!prepares(BINARY, UNARY | CONV));
    }

    #[test]
    fn every_registered_op_has_its_families_and_set_lookups_follow_them() {
        for &(name, _) in crate::ops::REGISTRY {
            let families = crate::ops::families(name).unwrap();
            assert!(
                families & !((1 << 24) - 1) == 0,
                "{name}: unknown family bits"
            );
            let all = Kernels::ALL.prepare("", name).is_some();
            let none = Kernels::only::<0>().prepare("ai.onnx", name).is_some();
            assert!(all, "{name}");
            assert_eq!(none, families == 0, "{name}");
        }
        assert!(crate::ops::families("NoSuchOp").is_none());
        assert!(Kernels::ALL.prepare("com.microsoft", "Relu").is_none());
    }

    /// The firmware's tiny CNN: its Relus are fused into its Convs, so Unary is not in its
    /// set, yet a plan on exactly that set reaches the Relus' prepare.
    #[test]
    fn a_fused_op_is_prepared_without_its_own_kernel() {
        let bytes = include_bytes!("../../../examples/firmware/tiny_cnn.onnx");
        let model = Model::parse(bytes).unwrap();
        assert!(model.nodes().any(|n| n.op_type() == "Relu"));
        let total = Session::arena_report(&model, &[]).unwrap().total;
        let mut arena = std::vec![0u8; total + crate::arena::ALIGN];
        let set = Session::new(&model, &[], &mut arena).unwrap().kernel_set();
        const TINY: u32 = 0x0011_0e00;
        assert_eq!(
            names(set).collect::<Vec<_>>(),
            names(TINY).collect::<Vec<_>>()
        );
        let session = Session::with_kernels(&model, &[], &mut arena, Kernels::only::<TINY>());
        assert_eq!(session.unwrap().kernel_set(), TINY);
    }

    #[test]
    fn names_follow_the_bits() {
        assert_eq!(
            names(BINARY | 1 << 2).collect::<Vec<_>>(),
            ["Binary", "Concat"]
        );
        assert_eq!(
            names(1 << 17 | 1 << 31).count(),
            1,
            "unused bits have no name"
        );
        assert_eq!(names(ALL).count(), 24);
        assert_eq!(family(&Op::View), 0);
        assert!(Kernels::only::<0>().contains(&Op::Const));
    }

    /// y = relu(x) + x: one Unary and one Binary step.
    fn relu_add() -> Vec<u8> {
        let mut m = ModelBuilder::new(17);
        m.input("x", dt::FLOAT, &[4]);
        m.node("Relu", &["x"], &["r"], std::vec![]);
        m.node("Add", &["r", "x"], &["y"], std::vec![]);
        m.output("y", dt::FLOAT);
        m.build()
    }

    #[test]
    fn the_plan_reports_its_set_and_runs_on_exactly_it() {
        let bytes = relu_add();
        let model = Model::parse(&bytes).unwrap();
        let mut arena = Arena::<4096>::new();
        let set = Session::new(&model, &[], &mut arena.0)
            .unwrap()
            .kernel_set();
        assert_eq!(set, BINARY | UNARY);
        let kernels = Kernels::only::<{ BINARY | UNARY }>();
        let mut session = Session::with_kernels(&model, &[], &mut arena.0, kernels).unwrap();
        session.set_input_f32(0, &[-1.0, 2.0, -3.0, 4.0]).unwrap();
        session.run().unwrap();
        let y: Vec<f32> = session
            .output(0)
            .bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        assert_eq!(y, [-1.0, 4.0, -3.0, 8.0]);
    }

    #[test]
    fn a_step_outside_the_set_is_refused_naming_the_node() {
        let bytes = relu_add();
        let model = Model::parse(&bytes).unwrap();
        let mut arena = Arena::<4096>::new();
        let err = Session::with_kernels(&model, &[], &mut arena.0, Kernels::only::<BINARY>())
            .err()
            .unwrap();
        assert!(
            matches!(err, Error::BadNode { op, .. } if op.as_str() == "Relu"),
            "{err}"
        );
    }

    #[test]
    fn a_fold_outside_the_set_is_refused_naming_the_kernel() {
        // c = a * b is folded at plan time; y = x * c stays a step. With only Conv in the
        // set, Mul's prepare is reachable (a Mul may be fused into a Conv, as SiLU) but the
        // fold's kernel is not.
        let mut m = ModelBuilder::new(17);
        m.input("x", dt::FLOAT, &[2]);
        m.init_f32("a", &[2], &[1.0, 2.0]);
        m.init_f32("b", &[2], &[3.0, 4.0]);
        m.node("Mul", &["a", "b"], &["c"], std::vec![]);
        m.node("Mul", &["x", "c"], &["y"], std::vec![]);
        m.output("y", dt::FLOAT);
        let bytes = m.build();
        let model = Model::parse(&bytes).unwrap();
        let mut arena = Arena::<4096>::new();
        let err = Session::with_kernels(&model, &[], &mut arena.0, Kernels::only::<CONV>())
            .err()
            .unwrap();
        assert!(
            matches!(err, Error::Invalid { name, .. } if name.as_str() == "Binary"),
            "{err}"
        );
        let session =
            Session::with_kernels(&model, &[], &mut arena.0, Kernels::only::<BINARY>()).unwrap();
        assert_eq!(session.kernel_set(), BINARY);
    }
}
