//! Links with cortex-m-rt's `link.x` (which INCLUDEs `memory.x`) and sizes the arenas at
//! compile time: each binary's model is planned here, on the host, with the same runtime
//! the firmware runs, and its `ARENA_BYTES` = `Session::arena_report(..).total` goes to
//! `$OUT_DIR/arena.rs` (tiny_cnn) or `$OUT_DIR/yolo_arena.rs` (the YOLO detector, int8, or
//! its float32 original with feature `f32-model`). The
//! speech recogniser's three graphs share one arena (`edgetrim_models::asr::nano`): its
//! pieces go to `$OUT_DIR/rnnt_arena.rs` as `ARENA_SIZES` and their sum `ARENA_BYTES`.
//!
//! The host plans with 64-bit plan tables; the figure the firmware uses re-sizes them for
//! the target with `ArenaReport::for_this_target` (a `const fn`), so it is exact there
//! (the firmware prints both and the check fails if they differ).

use edgetrim_models::asr::Models;
use edgetrim_runtime::{ArenaReport, Model, Session, Target};
use std::{env, fs, path::Path, path::PathBuf};

/// Each binary's model and the file its `ARENA_BYTES` goes to; the detector's is the float
/// original with feature `f32-model` (`yolo_model()`).
const MODELS: [(&str, &str); 2] = [
    ("tiny_cnn.onnx", "arena.rs"),
    ("yolo9tr-n-int8-128.onnx", "yolo_arena.rs"),
];

/// The float32 YOLO9tr-n the `f32-model` build runs instead of the int8 one.
const YOLO_F32: &str = "yolo9tr-n-f32-128.onnx";

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    fs::write(out.join("memory.x"), include_bytes!("memory.x")).expect("write memory.x");
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed=memory.x");
    // defmt's linker script keeps its format-string table (.defmt) in the ELF for the decoder.
    if env::var_os("CARGO_FEATURE_DEFMT").is_some() {
        println!("cargo:rustc-link-arg-bins=-Tdefmt.x");
    }
    let f32_model = env::var_os("CARGO_FEATURE_F32_MODEL").is_some();
    for (mut model, file) in MODELS {
        if f32_model && file == "yolo_arena.rs" {
            model = YOLO_F32;
        }
        println!("cargo:rerun-if-changed={model}");
        fs::write(out.join(file), arena_rs(model)).unwrap_or_else(|e| panic!("{file}: {e}"));
    }
    for file in RNNT_GRAPHS {
        println!("cargo:rerun-if-changed={RNNT_DIR}/{file}");
    }
    fs::write(out.join("rnnt_arena.rs"), rnnt_arena_rs()).expect("write rnnt_arena.rs");
}

/// The speech recogniser's model folder (written by scripts/gen-rnnt-firmware-assets.sh).
const RNNT_DIR: &str = "rnnt-d2w05-int8";
/// Its graphs, in `Models` order.
const RNNT_GRAPHS: [&str; 3] = ["encoder.onnx", "predictor.onnx", "joiner.onnx"];

/// `ARENA_SIZES` and `ARENA_BYTES` of the recogniser: each graph planned for
/// Target::CortexM, plus the recogniser's scratch, laid out as `nano::recogniser` does.
fn rnnt_arena_rs() -> String {
    let bytes = RNNT_GRAPHS.map(|file| {
        let path = format!("{RNNT_DIR}/{file}");
        fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    });
    let parse = |k: usize| {
        Model::parse(&bytes[k]).unwrap_or_else(|e| panic!("{RNNT_DIR}/{}: {e}", RNNT_GRAPHS[k]))
    };
    let models = Models {
        encoder: parse(0),
        predictor: parse(1),
        joiner: parse(2),
    };
    let scratch = edgetrim_models::asr::Spec::new(&models)
        .unwrap_or_else(|e| panic!("{RNNT_DIR}: {e}"))
        .scratch_bytes();
    let [encoder, predictor, joiner] = [models.encoder, models.predictor, models.joiner]
        .map(|model| report_expr(&cortex_m_report(&model, RNNT_DIR)));
    format!(
        "/// Bytes of each piece of the recogniser's arena ({RNNT_DIR}/): planned on the host\n\
         /// by build.rs, the plan tables re-sized for this target by a `const fn`.\n\
         const ARENA_SIZES: edgetrim_models::asr::nano::ArenaSizes =\n\
         edgetrim_models::asr::nano::ArenaSizes {{\n\
         encoder: {encoder}.for_this_target(),\n\
         predictor: {predictor}.for_this_target(),\n\
         joiner: {joiner}.for_this_target(),\n\
         scratch: {scratch},\n\
         }};\n\
         /// The recogniser's arena: its pieces, each 16-byte aligned (`ArenaSizes::total`).\n\
         const ARENA_BYTES: usize = edgetrim_runtime::arena::align_up(ARENA_SIZES.encoder)\n\
         + edgetrim_runtime::arena::align_up(ARENA_SIZES.predictor)\n\
         + edgetrim_runtime::arena::align_up(ARENA_SIZES.joiner)\n\
         + ARENA_SIZES.scratch;\n"
    )
}

/// The arena report of `model` planned for Target::CortexM (`what` names it in a panic).
fn cortex_m_report(model: &Model<'_>, what: &str) -> ArenaReport {
    Session::arena_report_for(model, &[], Target::CortexM).unwrap_or_else(|e| panic!("{what}: {e}"))
}

/// The `ARENA_BYTES` and `KERNEL_SET` constants of `path`, planned for Target::CortexM.
fn arena_rs(path: &str) -> String {
    let bytes = fs::read(Path::new(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
    let model = Model::parse(&bytes).unwrap_or_else(|e| panic!("{path}: {e}"));
    let arena = cortex_m_report(&model, path);
    let report = report_expr(&arena);
    let mut scratch = vec![0u8; arena.total + edgetrim_runtime::arena::ALIGN];
    let set = Session::with_target(&model, &[], &mut scratch, Target::CortexM)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .kernel_set();
    let names: Vec<_> = edgetrim_runtime::ops::kernels::names(set).collect();
    format!(
        "/// Arena bytes {path} needs: planned on the host by build.rs; the plan tables are\n\
         /// re-sized for this target's type layouts by a `const fn` evaluated here.\n\
         const ARENA_BYTES: usize = {report}.for_this_target();\n\
         /// The kernel families {path} runs ({names}): only these are linked\n\
         /// (`Session::with_kernels`).\n\
         const KERNEL_SET: u32 = {set:#010x};\n",
        names = names.join(", ")
    )
}

/// `report` as a Rust expression of type `edgetrim_runtime::ArenaReport`.
fn report_expr(report: &ArenaReport) -> String {
    let t = report.tables;
    format!(
        "edgetrim_runtime::ArenaReport {{\n\
         total: {total}, planned: {planned}, lower_bound: {lower}, persistent: {persistent},\n\
         constants: {constants},\n\
         tables: edgetrim_runtime::PlanTables {{ tensors: {}, bufs: {}, steps: {}, work_steps: {}, work_tensors: {}, nodes: {}, io: {}, inputs: {}, outputs: {} }},\n\
         }}",
        t.tensors,
        t.bufs,
        t.steps,
        t.work_steps,
        t.work_tensors,
        t.nodes,
        t.io,
        t.inputs,
        t.outputs,
        total = report.total,
        planned = report.planned,
        lower = report.lower_bound,
        persistent = report.persistent,
        constants = report.constants,
    )
}
