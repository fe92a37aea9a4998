//! Links with cortex-m-rt's `link.x` (which INCLUDEs `memory.x`) and sizes the arenas at
//! compile time: each binary's model is planned here, on the host, with the same runtime
//! the firmware runs, and its `ARENA_BYTES` = `Session::arena_report(..).total` goes to
//! `$OUT_DIR/arena.rs` (tiny_cnn) or `$OUT_DIR/yolo_arena.rs` (the YOLO detector).
//!
//! The host plans with 64-bit plan tables; the figure the firmware uses re-sizes them for
//! the target with `ArenaReport::for_this_target` (a `const fn`), so it is exact there
//! (the firmware prints both and the check fails if they differ).

use edgetrim_runtime::{Model, Session, Target};
use std::{env, fs, path::Path, path::PathBuf};

/// Each binary's model and the file its `ARENA_BYTES` goes to.
const MODELS: [(&str, &str); 2] = [
    ("tiny_cnn.onnx", "arena.rs"),
    ("yolo9tr-n-int8-128.onnx", "yolo_arena.rs"),
];

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    fs::write(out.join("memory.x"), include_bytes!("memory.x")).expect("write memory.x");
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed=memory.x");
    for (model, file) in MODELS {
        println!("cargo:rerun-if-changed={model}");
        fs::write(out.join(file), arena_rs(model)).unwrap_or_else(|e| panic!("{file}: {e}"));
    }
}

/// The `ARENA_BYTES` constant of `path`, planned for Target::CortexM.
fn arena_rs(path: &str) -> String {
    let bytes = fs::read(Path::new(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
    let model = Model::parse(&bytes).unwrap_or_else(|e| panic!("{path}: {e}"));
    let report = Session::arena_report_for(&model, &[], Target::CortexM)
        .unwrap_or_else(|e| panic!("{path}: {e}"));
    let t = report.tables;
    format!(
        "/// Arena bytes {path} needs: planned on the host by build.rs; the plan tables are\n\
         /// re-sized for this target's type layouts by a `const fn` evaluated here.\n\
         const ARENA_BYTES: usize = edgetrim_runtime::ArenaReport {{\n\
         total: {total}, planned: {planned}, lower_bound: {lower}, persistent: {persistent},\n\
         constants: {constants},\n\
         tables: edgetrim_runtime::PlanTables {{ tensors: {}, bufs: {}, steps: {}, nodes: {}, io: {}, inputs: {}, outputs: {} }},\n\
         }}.for_this_target();\n",
        t.tensors,
        t.bufs,
        t.steps,
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
