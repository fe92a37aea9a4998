//! What a model costs a Cortex-M4 firmware in flash and RAM, before anything is flashed.
//!
//! Flash is the model image plus the code linked for it: the startup code, the runtime's
//! core (ONNX reader, planner, session) and the kernels of the model's kernel set only, as
//! a firmware planning with `Kernels::only::<KERNEL_SET>()` links them. The code figures
//! are measurements, not guesses: `scripts/measure-kernel-code.sh` cross-builds a probe
//! firmware per kernel family and writes `src/footprint/cortex-m4.tsv`, embedded here;
//! families share code (GEMM blocks), so the table attributes shared symbols to groups of
//! families, each counted once. RAM is the arena planned for Cortex-M (plan tables sized
//! with the target's entry sizes, recorded by the same probe), the runtime's statics and
//! [`STACK_BYTES`] (measured). `scripts/firmware-check.sh` compares all of it with real
//! firmware.

use anyhow::{bail, Context, Result};
use edgetrim_runtime::image::HEADER_LEN;
use edgetrim_runtime::ops::kernels;
use edgetrim_runtime::ArenaReport;
use serde::Serialize;

/// The measured table (regenerate: `bash scripts/measure-kernel-code.sh`).
const CORTEX_M4: &str = include_str!("footprint/cortex-m4.tsv");

/// Stack bytes the runtime needs on a Cortex-M4: its deepest path (planning, then a run
/// with the int8 GEMM's tile buffers) measured by stack painting in the tiny-CNN firmware,
/// whose own code adds almost nothing (16,028 bytes, rounded up to 16 KiB + 1 KiB).
/// `scripts/firmware-check.sh` fails when that firmware needs more, and prints the other
/// firmware's depth, whose apps add their own frames on top (letterboxing, features).
pub const STACK_BYTES: usize = 17 * 1024;

/// One row: bytes linked when any of `families` is in the kernel set.
struct Group {
    families: u32,
    flash: usize,
    ram: usize,
}

/// The parsed table of one target.
pub struct CodeTable {
    startup: usize,
    runtime: (usize, usize),
    groups: Vec<Group>,
    all: usize,
    entry: [usize; 7],
}

/// Flash bytes of a model on the device.
#[derive(Serialize)]
pub struct Flash {
    /// The model as `edgetrim pack` writes it: header + ONNX file.
    pub model: usize,
    /// The `edgetrim pack` header within `model`.
    pub header: usize,
    /// cortex-m-rt's vector table and reset code.
    pub startup: usize,
    /// The runtime's core: ONNX reader, planner, session.
    pub runtime: usize,
    /// The kernels of the model's kernel set.
    pub kernels: usize,
    /// startup + runtime + kernels.
    pub code: usize,
    /// model + code.
    pub total: usize,
    /// The code with every kernel linked (`Session::new`), for comparison.
    pub code_all_kernels: usize,
}

/// Where the arena's bytes go on the device: its head holds the planner's working tables
/// while planning (an entry for every node and tensor of the graph), then the kept tensor
/// table and the activations; its tail the plan tables a run reads and the constants
/// (int8 conv tables, folded values). `arena = max(working_tables, tensors + activations)
/// + plan_tables + constants`.
#[derive(Serialize)]
pub struct ArenaParts {
    /// The head while planning.
    pub working_tables: usize,
    /// The head afterwards: the tensor table the session keeps.
    pub tensors: usize,
    /// The head afterwards: the planned region (activations and scratch).
    pub activations: usize,
    /// The tail: steps, buffers, io slots, graph inputs and outputs.
    pub plan_tables: usize,
    /// The tail: constants decoded or folded at plan time.
    pub constants: usize,
}

/// RAM bytes of a model on the device.
#[derive(Serialize)]
pub struct Ram {
    /// The arena planned for Cortex-M, its plan tables sized for the target.
    pub arena: usize,
    /// What the arena holds.
    pub arena_parts: ArenaParts,
    /// The runtime's statics (.data + .bss).
    pub runtime_state: usize,
    /// [`STACK_BYTES`].
    pub stack: usize,
    /// arena + runtime_state + stack.
    pub total: usize,
}

/// `inspect --target`'s footprint section.
#[derive(Serialize)]
pub struct Footprint {
    pub target: &'static str,
    /// The model's kernel families (`Session::kernel_set`).
    pub kernel_set: u32,
    pub kernel_families: Vec<&'static str>,
    pub flash: Flash,
    pub ram: Ram,
}

impl CodeTable {
    /// The Cortex-M4 table embedded in this binary.
    pub fn cortex_m4() -> Result<CodeTable> {
        CodeTable::parse(CORTEX_M4).context("src/footprint/cortex-m4.tsv")
    }

    /// Parses a table; every kernel family of this runtime must have a row (a family added
    /// after the table was measured means the table is stale).
    fn parse(text: &str) -> Result<CodeTable> {
        let bit = |name: &str| {
            kernels::NAMES
                .iter()
                .position(|n| !n.is_empty() && *n == name)
        };
        let mut table = CodeTable {
            startup: 0,
            runtime: (0, 0),
            groups: Vec::new(),
            all: 0,
            entry: [0; 7],
        };
        let mut seen = 0u32;
        let plan = [
            "tensors", "bufs", "steps", "nodes", "io", "inputs", "outputs",
        ];
        let mut plan_seen = 0;
        let rows = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty());
        for (k, line) in rows.skip(1).enumerate() {
            let cols: Vec<&str> = line.split('\t').collect();
            let [part, flash, ram] = cols[..] else {
                bail!("row {}: expected part, flash, ram: {line:?}", k + 1);
            };
            let num = |s: &str| {
                s.parse::<usize>()
                    .with_context(|| format!("row {}: not a byte count: {s:?}", k + 1))
            };
            let (flash, ram) = (num(flash)?, num(ram)?);
            if let Some(field) = part.strip_prefix("plan.") {
                let Some(i) = plan.iter().position(|p| *p == field) else {
                    bail!("row {}: unknown plan table {field:?}", k + 1);
                };
                table.entry[i] = ram;
                plan_seen += 1;
                continue;
            }
            match part {
                "startup" => table.startup = flash,
                "runtime" => table.runtime = (flash, ram),
                "all" => table.all = flash,
                _ => {
                    let mut families = 0u32;
                    for name in part.split('+') {
                        let Some(b) = bit(name) else {
                            bail!(
                                "row {}: {name:?} is no kernel family of this runtime: \
                                 rerun scripts/measure-kernel-code.sh",
                                k + 1
                            );
                        };
                        families |= 1 << b;
                    }
                    if families.count_ones() == 1 {
                        seen |= families;
                    }
                    table.groups.push(Group {
                        families,
                        flash,
                        ram,
                    });
                }
            }
        }
        let missing: Vec<_> = kernels::names(!seen).collect();
        if !missing.is_empty() || plan_seen != plan.len() || table.startup == 0 {
            bail!(
                "incomplete (missing {}{}): rerun scripts/measure-kernel-code.sh",
                missing.join(", "),
                if plan_seen != plan.len() {
                    " plan.*"
                } else {
                    ""
                }
            );
        }
        Ok(table)
    }

    /// Code bytes (flash, RAM) of the kernels of `set`: every group with a family in it.
    fn kernels(&self, set: u32) -> (usize, usize) {
        self.groups
            .iter()
            .filter(|g| g.families & set != 0)
            .fold((0, 0), |(f, r), g| (f + g.flash, r + g.ram))
    }

    /// The arena of `report` (planned for `Target::CortexM`) on the target.
    pub fn arena(&self, report: &ArenaReport) -> Result<usize> {
        report
            .total_with(&self.entry)
            .context("the arena overflows 32 bits")
    }

    /// [`CodeTable::arena`]'s parts.
    fn arena_parts(&self, report: &ArenaReport) -> Result<ArenaParts> {
        let t = &report.tables;
        let overflow = || anyhow::anyhow!("the arena overflows 32 bits");
        let tensors = t.tensors.checked_mul(self.entry[0]).ok_or_else(overflow)?;
        Ok(ArenaParts {
            working_tables: t
                .checked_work_bytes_with(&self.entry)
                .ok_or_else(overflow)?,
            tensors: edgetrim_runtime::arena::align_up(tensors),
            activations: edgetrim_runtime::arena::align_up(report.planned),
            plan_tables: t.checked_bytes_with(&self.entry).ok_or_else(overflow)?,
            constants: report.constants,
        })
    }

    /// The footprint of a model of `model_bytes` (ONNX) with kernel `set` and `report`.
    pub fn footprint(
        &self,
        model_bytes: usize,
        set: u32,
        report: &ArenaReport,
    ) -> Result<Footprint> {
        let (kernels, kernels_ram) = self.kernels(set);
        let code = self.startup + self.runtime.0 + kernels;
        let model = HEADER_LEN + model_bytes;
        let arena = self.arena(report)?;
        let runtime_state = self.runtime.1 + kernels_ram;
        Ok(Footprint {
            target: "cortex-m4",
            kernel_set: set,
            kernel_families: kernels::names(set).collect(),
            flash: Flash {
                model,
                header: HEADER_LEN,
                startup: self.startup,
                runtime: self.runtime.0,
                kernels,
                code,
                total: model + code,
                code_all_kernels: self.startup + self.runtime.0 + self.all,
            },
            ram: Ram {
                arena,
                arena_parts: self.arena_parts(report)?,
                runtime_state,
                stack: STACK_BYTES,
                total: arena + runtime_state + STACK_BYTES,
            },
        })
    }
}

/// The Cortex-M4 footprint of the ONNX file `bytes` (`name` for errors), planned with the
/// `--input-shape` overrides as `inspect --target cortex-m4` plans it.
pub fn cortex_m4_of(
    name: &std::path::Path,
    bytes: &[u8],
    overrides: &[crate::inputs::ShapeOverride],
) -> Result<Footprint> {
    let model = crate::cmd::parse_model(name, bytes)?;
    let mut arena = Vec::new();
    let session = crate::cmd::inspect::plan_session(
        &model,
        overrides,
        edgetrim_runtime::Target::CortexM,
        &mut arena,
    )?;
    CodeTable::cortex_m4()?.footprint(bytes.len(), session.kernel_set(), &session.report())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_table_covers_every_family() {
        let table = CodeTable::cortex_m4().unwrap();
        assert!(table.entry.iter().all(|&e| e > 0), "{:?}", table.entry);
        let every = table.kernels(u32::MAX).0;
        assert!(table.kernels(0).0 == 0 && every > 0);
    }

    #[test]
    fn a_shared_group_counts_once() {
        let names = kernels::NAMES;
        let mut text = String::from("part\tflash\tram\nstartup\t100\t0\nruntime\t1000\t8\n");
        for n in names.iter().filter(|n| !n.is_empty()) {
            text.push_str(&format!("{n}\t10\t0\n"));
        }
        text.push_str("Conv+Gemm\t500\t0\nall\t0\t0\n");
        for p in [
            "tensors", "bufs", "steps", "nodes", "io", "inputs", "outputs",
        ] {
            text.push_str(&format!("plan.{p}\t0\t4\n"));
        }
        let table = CodeTable::parse(&text).unwrap();
        let bit = |n: &str| 1u32 << names.iter().position(|x| *x == n).unwrap();
        assert_eq!(table.kernels(bit("Conv")).0, 510);
        assert_eq!(table.kernels(bit("Conv") | bit("Gemm")).0, 520);
        assert_eq!(table.kernels(bit("Pool")).0, 10);

        let stale = text.replace("Conv+Gemm", "Conv+Warp");
        let err = CodeTable::parse(&stale).err().unwrap().to_string();
        assert!(err.contains("\"Warp\" is no kernel family"), "{err}");
        // (With its newline before: "GlobalPool" ends in the same text.)
        let incomplete = text.replace("\nPool\t10\t0\n", "\n");
        let err = CodeTable::parse(&incomplete).err().unwrap().to_string();
        assert!(err.contains("missing Pool"), "{err}");
    }
}
