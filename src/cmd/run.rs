//! `edgetrim run`: one inference from `.npy` files to `.npy` files, for checking a model's
//! numbers against the training framework's.
//!
//! All-or-nothing: inputs are validated, the model runs and every output's type is checked
//! before the output directory is touched, and each file is written atomically, so a
//! failure never leaves partial results next to good ones.

use crate::backend::{Backend, BackendKind};
use crate::cmd::{parse_model, read_model};
use crate::inputs::{self, ShapeOverride};
use crate::npy;
use anyhow::{bail, Context, Result};
use std::io::Write;
use std::path::PathBuf;

/// `edgetrim run` options.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Examples:
  edgetrim run model.onnx --input image.npy --output-dir out/
  edgetrim run model.onnx --input images=image.npy --input mask=mask.npy --output-dir out/
  edgetrim run model.onnx --input image.npy --output-dir ref/ --backend tract

Outputs are written as DIR/output0.npy, DIR/output1.npy, ... in graph-output order.
Compare backends with numpy: np.abs(np.load('out/output0.npy') - np.load('ref/output0.npy')).max()")]
pub struct Args {
    /// The ONNX model.
    pub model: PathBuf,
    /// An input tensor: PATH.npy (in graph-input order) or NAME=PATH.npy. Repeat per input.
    #[arg(long, short, value_name = "[NAME=]PATH", required = true)]
    pub input: Vec<String>,
    /// Where to write output0.npy, output1.npy, ... (created if missing).
    #[arg(long, short, value_name = "DIR")]
    pub output_dir: PathBuf,
    /// Which runtime executes the model.
    #[arg(long, value_enum, default_value_t = BackendKind::Nano)]
    pub backend: BackendKind,
    /// Assert an input's shape: NAME=1x3x224x224 (the files must agree).
    #[arg(long = "input-shape", value_name = "NAME=DIMS")]
    pub input_shapes: Vec<ShapeOverride>,
}

/// Runs `edgetrim run`.
pub fn run(args: Args, out: &mut dyn Write) -> Result<()> {
    let bytes = read_model(&args.model)?;
    let model = parse_model(&args.model, &bytes)?;
    let arrays = inputs::load(&model, &args.input, &args.input_shapes)?;
    let shapes: Vec<&[usize]> = arrays.iter().map(|a| a.shape.as_slice()).collect();

    let mut arena = Vec::new();
    let mut backend = match args.backend {
        BackendKind::Nano => Backend::nano(&model, &shapes, &mut arena)?,
        BackendKind::Tract => Backend::tract(&bytes, &shapes)?,
    };
    for (i, a) in arrays.iter().enumerate() {
        backend.set_input(i, &a.bytes)?;
    }
    backend.run()?;

    let names: Vec<&str> = model.outputs().map(|vi| vi.name()).collect();
    let n = backend.output_count();
    for i in 0..n {
        let dtype = backend.output(i).dtype;
        if !npy::can_write(dtype) {
            bail!(
                "output {}: {} tensors cannot be written to .npy yet; nothing was written",
                names.get(i).unwrap_or(&"?"),
                dtype.name()
            );
        }
    }
    std::fs::create_dir_all(&args.output_dir)
        .with_context(|| format!("cannot create {}", args.output_dir.display()))?;
    for i in 0..n {
        let path = npy::output_path(&args.output_dir, i);
        let t = backend.output(i);
        npy::write_atomic(&path, t)?;
        writeln!(
            out,
            "{}  {}  {} {}",
            path.display(),
            names.get(i).unwrap_or(&"?"),
            t.dtype.name(),
            inputs::dims_text(t.shape.dims())
        )?;
    }
    Ok(())
}
