//! `edgetrim pack`: a model as a flashable image, ready for a flash partition, a flash
//! tool or a firmware's source tree.
//!
//! The image ([`edgetrim_runtime::image`]) is the ONNX file behind a header that the
//! runtime checks before using any of it: magic, version, lengths, a CRC-32 of every byte,
//! the arena the model needs and its inputs' and outputs' types and shapes. Packing refuses
//! what the device could not run (unsupported ops, all listed; a model that does not plan),
//! since finding out after flashing costs a board round trip. The model is planned here
//! for `--target`'s kernels, which fixes the arena figure; every image is checked with
//! `verify`'s check before it is written, atomically.

use crate::cmd::inspect::{plan_session, refuse_unsupported};
use crate::cmd::verify::{self, Summary};
use crate::cmd::{parse_model, read_model, write_atomic};
use crate::ihex;
use crate::inputs::ShapeOverride;
use anyhow::{bail, Context, Result};
use edgetrim_runtime::image::{Header, HEADER_LEN, NAME_LEN, PAYLOAD_ALIGN};
use edgetrim_runtime::Target;
use serde::Serialize;
use std::fmt::Write as _;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The device a model is packed for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum PackTarget {
    /// Cortex-M4(F) microcontrollers: the portable kernels and small GEMM blocks.
    #[value(name = "cortex-m4")]
    CortexM4,
    /// A host or Linux board: the fastest kernels of the CPU that runs it.
    Host,
}

impl PackTarget {
    /// The runtime's target: which kernels and block sizes plans use.
    pub fn runtime(self) -> Target {
        match self {
            PackTarget::CortexM4 => Target::CortexM,
            PackTarget::Host => Target::Host,
        }
    }
}

/// How the image is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// The raw image, for a flash partition (probe-rs download --binary-format bin).
    Bin,
    /// Intel HEX at --base-address, for flash tools.
    Hex,
    /// A Rust module: `pub static MODEL` (16-byte aligned), `ARENA_BYTES`, shapes.
    Rs,
}

impl Format {
    fn name(self) -> &'static str {
        match self {
            Format::Bin => "raw image",
            Format::Hex => "Intel HEX",
            Format::Rs => "Rust module",
        }
    }

    /// The format an output path implies: `.hex`/`.ihex` and `.rs`, else raw.
    fn of_path(path: &Path) -> Format {
        match path.extension().and_then(|e| e.to_str()) {
            Some("hex" | "ihex") => Format::Hex,
            Some("rs") => Format::Rs,
            _ => Format::Bin,
        }
    }
}

/// `edgetrim pack` options.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Examples:
  edgetrim pack model.onnx --target cortex-m4 -o model.bin
  edgetrim pack model.onnx --target cortex-m4 -o model.hex --base-address 0x08040000
  edgetrim pack model.onnx --target cortex-m4 --format rs --name detector -o src/model.rs
  edgetrim compress yolo.onnx -o yolo-int8.onnx --quantize int8 --calib images:data/val \\
    && edgetrim pack yolo-int8.onnx -o yolo.bin && edgetrim verify yolo.bin

The image is a 384-byte header (magic \"ETIM\", format version, lengths, CRC-32 of every
byte, arena plan, input/output types and shapes, name) followed by the ONNX file, starting
16-byte aligned. Run `edgetrim compress` first: its layout pass aligns every weight within
the file, so weights are read in place from flash.

--format defaults to OUT's extension: .hex/.ihex gives Intel HEX, .rs a Rust module,
anything else the raw image. --base-address (hex only) is where the image goes in flash:
default 0, i.e. offsets within the image; give your board's model partition, e.g.
0x08040000 on an STM32 (not 0x08000000, where the firmware's vector table is).

In firmware, with --format rs:
  mod model { include!(\"model.rs\"); }
  let image = edgetrim_runtime::Image::parse(&model::MODEL.0)?;   // header + CRC checked
  let mut arena = edgetrim_runtime::Arena::<{ model::ARENA_BYTES }>::new();
  let mut session = image.session(&mut arena.0)?;")]
pub struct Args {
    /// The ONNX model.
    pub model: PathBuf,
    /// The device: fixes the kernels the arena is planned for.
    #[arg(long, value_enum, default_value_t = PackTarget::CortexM4)]
    pub target: PackTarget,
    /// bin, hex or rs (default: from OUT's extension, else bin).
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Model name stored in the header (at most 32 bytes; default: the file name).
    #[arg(long)]
    pub name: Option<String>,
    /// Where to write the image.
    #[arg(long, short, value_name = "OUT")]
    pub output: PathBuf,
    /// Flash address of the image in Intel HEX, a multiple of 16 (default 0).
    #[arg(long, value_name = "ADDR", value_parser = parse_address)]
    pub base_address: Option<u32>,
    /// Fix the shape of a graph input: NAME=1x3x224x224 (needed for free dims like batch N).
    #[arg(long = "input-shape", value_name = "NAME=DIMS")]
    pub input_shapes: Vec<ShapeOverride>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// A flash address: `0x0804_0000` or decimal, 16-byte aligned so the payload is too.
fn parse_address(s: &str) -> Result<u32, String> {
    let digits = s.replace('_', "");
    let value = match digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        Some(hex) => u32::from_str_radix(hex, 16),
        None => digits.parse(),
    }
    .map_err(|_| format!("expected a 32-bit address like 0x08040000, got {s:?}"))?;
    if !(value as usize).is_multiple_of(PAYLOAD_ALIGN) {
        return Err(format!(
            "{value:#010x} is not a multiple of {PAYLOAD_ALIGN}: the model's weights would lose their alignment"
        ));
    }
    Ok(value)
}

/// The default name: the file stem, cut to the header's field at a character boundary.
fn default_name(path: &Path) -> String {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().replace('\0', ""))
        .unwrap_or_default();
    let mut end = stem.len().min(NAME_LEN);
    while !stem.is_char_boundary(end) {
        end -= 1;
    }
    stem[..end].to_string()
}

/// What `pack --json` prints.
#[derive(Serialize)]
struct Report {
    output: String,
    format: Format,
    /// Flash address of the image (Intel HEX only).
    base_address: Option<u32>,
    file_bytes: usize,
    #[serde(flatten)]
    image: Summary,
}

/// Runs `edgetrim pack`.
pub fn run(args: Args, out: &mut dyn Write) -> Result<()> {
    let format = args.format.unwrap_or_else(|| Format::of_path(&args.output));
    if args.base_address.is_some() && format != Format::Hex {
        bail!(
            "--base-address applies to --format hex only (this writes a {})",
            format.name()
        );
    }
    let bytes = read_model(&args.model)?;
    let model = parse_model(&args.model, &bytes)?;
    refuse_unsupported(&model).with_context(|| format!("cannot pack {}", args.model.display()))?;
    let mut arena = Vec::new();
    let session = plan_session(
        &model,
        &args.input_shapes,
        args.target.runtime(),
        &mut arena,
    )
    .with_context(|| format!("cannot plan {}", args.model.display()))?;
    let name = args
        .name
        .clone()
        .unwrap_or_else(|| default_name(&args.model));
    let header = Header::from_session(&name, &session).with_context(|| {
        format!(
            "cannot describe {} in an image header",
            args.model.display()
        )
    })?;
    let mut image = vec![0u8; HEADER_LEN + bytes.len()];
    header.write_image(&bytes, &mut image)?;
    let summary = verify::check(&image).context("the packed image does not verify")?;
    let file = match format {
        Format::Bin => image,
        Format::Hex => ihex::encode(&image, args.base_address.unwrap_or(0))?.into_bytes(),
        Format::Rs => rust_module(&image, &header).into_bytes(),
    };
    write_atomic(&args.output, &file)?;
    let report = Report {
        output: args.output.display().to_string(),
        format,
        base_address: (format == Format::Hex).then(|| args.base_address.unwrap_or(0)),
        file_bytes: file.len(),
        image: summary,
    };
    if args.json {
        return crate::cmd::print_json(out, &report);
    }
    let at = match report.base_address {
        Some(a) => format!(" at {a:#010x}"),
        None => String::new(),
    };
    writeln!(
        out,
        "wrote    {} ({}{at}, {} B)",
        report.output,
        format.name(),
        report.file_bytes
    )?;
    report.image.print(out)
}

/// `[1, 1, 28, 28]`-style list of dims.
fn dims_list(dims: &[usize]) -> String {
    let parts: Vec<String> = dims.iter().map(usize::to_string).collect();
    format!("[{}]", parts.join(", "))
}

/// The image as a Rust module for `include!`: the bytes in a 16-byte-aligned static, the
/// exact arena size for the machine that compiles it, and the graph's types and shapes.
fn rust_module(image: &[u8], header: &Header) -> String {
    let mut s = String::new();
    let target = verify::target_name(header.target());
    let n = image.len();
    let _ = writeln!(
        s,
        "// Model image {:?}, written by `edgetrim pack --format rs` (image format {}, planned for\n\
         // {target}). Do not edit: pack the model again instead. Use it with\n\
         // `edgetrim_runtime::Image::parse(&MODEL.0)`, which checks the header and the CRC-32\n\
         // before anything runs, then `image.session(&mut arena)`.\n",
        header.name(),
        edgetrim_runtime::image::VERSION,
    );
    let _ = writeln!(
        s,
        "/// Aligns the image to 16 bytes, so that its ONNX payload (at offset {HEADER_LEN}) and the\n\
         /// weights `edgetrim compress` aligned within it are read in place.\n\
         #[repr(C, align(16))]\n\
         pub struct Aligned<T>(pub T);\n\n\
         /// The model image: {HEADER_LEN}-byte header, then the ONNX file ({} bytes).\n\
         pub static MODEL: Aligned<[u8; {n}]> = Aligned(*b\"\\",
        n - HEADER_LEN
    );
    for chunk in image.chunks(32) {
        for b in chunk {
            let _ = write!(s, "\\x{b:02x}");
        }
        s.push_str("\\\n");
    }
    s.push_str("\");\n\n");
    let a = header.arena();
    let t = a.tables;
    let _ = writeln!(
        s,
        "/// The model name in the header.\n\
         pub const MODEL_NAME: &str = {:?};\n\n\
         /// Arena bytes the model needs on the machine compiling this: the plan made for {target}\n\
         /// by `edgetrim pack` (total and persistent as on the packing host), its plan tables\n\
         /// re-sized for this machine's type layouts.\n\
         pub const ARENA_BYTES: usize = edgetrim_runtime::ArenaReport {{\n    \
         total: {}, planned: {}, lower_bound: {}, persistent: {}, constants: {},\n    \
         tables: edgetrim_runtime::PlanTables {{ tensors: {}, bufs: {}, steps: {}, work_steps: {}, work_tensors: {}, nodes: {}, io: {}, inputs: {}, outputs: {} }},\n\
         }}\n.for_this_target();\n",
        header.name(),
        a.total,
        a.planned,
        a.lower_bound,
        a.persistent,
        a.constants,
        t.tensors,
        t.bufs,
        t.steps,
        t.work_steps,
        t.work_tensors,
        t.nodes,
        t.io,
        t.inputs,
        t.outputs,
    );
    for (side, list) in [("INPUT", header.inputs()), ("OUTPUT", header.outputs())] {
        let k = list.len();
        let shapes: Vec<String> = list
            .iter()
            .map(|x| format!("&{}", dims_list(x.shape.dims())))
            .collect();
        let dtypes: Vec<String> = list
            .iter()
            .map(|x| format!("edgetrim_runtime::DType::{:?}", x.dtype))
            .collect();
        let lower = side.to_lowercase();
        let _ = writeln!(
            s,
            "/// Shapes of the graph {lower}s, in order.\n\
             pub const {side}_SHAPES: [&[usize]; {k}] = [{}];\n\n\
             /// Element types of the graph {lower}s, in order.\n\
             pub const {side}_DTYPES: [edgetrim_runtime::DType; {k}] = [{}];\n",
            shapes.join(", "),
            dtypes.join(", "),
        );
    }
    s.truncate(s.trim_end().len());
    s.push('\n');
    s
}
