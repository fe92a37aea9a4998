//! Top-1 accuracy of a classifier on a labelled folder of input tensors (`compress --eval
//! classify:DIR`).
//!
//! A classifier has no decoding step to share with a device pipeline, so the folder holds
//! the model's inputs already preprocessed: `npy/*.npy` (one input tensor each, read in
//! file-name order) and `labels.txt` (one integer class per line, in the same order) — what
//! `scripts/gen_text_direction.py` writes. The prediction is the argmax of output 0 over its
//! last axis (the first largest score, as numpy's), run on the nano runtime so the figure
//! is the one the device will see.
//!
//! The folder is read and checked before anything is compressed ([`Folder::open`]): a
//! missing or malformed `labels.txt` should cost seconds, not a compression run. What can
//! only be checked against a model (input count, dtype, shape, class count) is checked when
//! it is scored, naming the file.

use crate::backend::Backend;
use crate::cmd::parse_model;
use crate::inputs::{self, dims_text};
use crate::npy::Array;
use crate::progress::Progress;
use anyhow::{bail, Context, Result};
use edgetrim_runtime::{DType, TensorRef};
use std::path::{Path, PathBuf};

/// A checked `classify:DIR` folder.
#[derive(Debug)]
pub struct Folder {
    /// DIR, for messages.
    dir: PathBuf,
    /// `npy/*.npy` in file-name order.
    inputs: Vec<PathBuf>,
    /// The class of each input.
    labels: Vec<usize>,
}

impl Folder {
    /// Lists `dir/npy/*.npy` and parses `dir/labels.txt`, one label per file.
    pub fn open(dir: &Path) -> Result<Folder> {
        let layout = "a classify folder holds npy/*.npy and labels.txt, one class per line";
        let npy = dir.join("npy");
        let mut inputs: Vec<PathBuf> = std::fs::read_dir(&npy)
            .with_context(|| format!("cannot read {} ({layout})", npy.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "npy"))
            .collect();
        inputs.sort();
        if inputs.is_empty() {
            bail!("{} holds no .npy files ({layout})", npy.display());
        }
        let path = dir.join("labels.txt");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {} ({layout})", path.display()))?;
        let labels = text
            .lines()
            .enumerate()
            .map(|(i, line)| {
                line.trim().parse::<usize>().with_context(|| {
                    format!(
                        "{}:{}: {line:?} is not a class index (a non-negative integer)",
                        path.display(),
                        i + 1
                    )
                })
            })
            .collect::<Result<Vec<usize>>>()?;
        if labels.len() != inputs.len() {
            bail!(
                "{} has {} labels, but {} holds {} .npy files (one label per file, in \
                 file-name order)",
                path.display(),
                labels.len(),
                npy.display(),
                inputs.len()
            );
        }
        Ok(Folder {
            dir: dir.to_path_buf(),
            inputs,
            labels,
        })
    }

    /// The folder as given.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// How many of the inputs the model put in their labelled class.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Score {
    /// Inputs whose argmax is their label.
    pub correct: usize,
    /// Inputs scored.
    pub total: usize,
}

impl Score {
    /// Top-1 accuracy, in [0, 1].
    pub fn top1(&self) -> f64 {
        self.correct as f64 / self.total.max(1) as f64
    }
}

/// Scores the model `bytes` (`name` labels it in messages) on the first `limit` inputs of
/// `folder` (all without a limit), on the nano runtime, planned once for the first file's
/// shape: every file must have it.
pub fn evaluate_bytes(
    name: &Path,
    bytes: &[u8],
    folder: &Folder,
    limit: Option<usize>,
) -> Result<Score> {
    let model = parse_model(name, bytes)?;
    let n_inputs = model.inputs().count();
    if n_inputs != 1 {
        bail!(
            "{}: classify:DIR feeds one input per .npy file, but the model has {n_inputs} inputs",
            name.display()
        );
    }
    let total = folder.inputs.len().min(limit.unwrap_or(usize::MAX));
    let load = |path: &PathBuf| -> Result<Array> {
        // Checks the file's dtype and shape against the input the model declares.
        let mut arrays = inputs::load(&model, &[path.display().to_string()], &[])?;
        Ok(arrays.remove(0))
    };
    let first = load(&folder.inputs[0])?;
    let shape = first.shape.clone();
    let mut arena = Vec::new();
    let mut backend = Backend::nano(&model, &[&shape], &mut arena)
        .with_context(|| format!("{}: input shape {}", name.display(), dims_text(&shape)))?;
    let mut progress = Progress::new("inputs", total);
    let mut correct = 0;
    for (i, (path, &label)) in folder
        .inputs
        .iter()
        .zip(&folder.labels)
        .take(total)
        .enumerate()
    {
        let array = if i == 0 { first.clone() } else { load(path)? };
        if array.shape != shape {
            bail!(
                "{} has shape {}, but {} has {}: every input of a classify folder has the same shape",
                path.display(),
                dims_text(&array.shape),
                folder.inputs[0].display(),
                dims_text(&shape)
            );
        }
        backend.set_input(0, &array.bytes)?;
        backend
            .run()
            .with_context(|| format!("{}: running {}", name.display(), path.display()))?;
        let out = backend.output(0);
        let classes = out.shape.dims().last().copied().unwrap_or(1);
        if label >= classes {
            bail!(
                "{}:{}: class {label}, but the model has {classes} classes (output 0 is {})",
                folder.dir.join("labels.txt").display(),
                i + 1,
                dims_text(out.shape.dims())
            );
        }
        if argmax(&out)? == label {
            correct += 1;
        }
        progress.update(i + 1);
    }
    progress.finish();
    Ok(Score { correct, total })
}

/// The first largest score of the one row of class scores in `out` (NaN never wins), as
/// numpy's and PyTorch's `argmax`.
fn argmax(out: &TensorRef<'_>) -> Result<usize> {
    let dims = out.shape.dims();
    let rows = dims[..dims.len().saturating_sub(1)]
        .iter()
        .product::<usize>();
    if out.dtype != DType::F32 || rows != 1 {
        bail!(
            "output 0 is {} {}: classify:DIR needs one row of float32 class scores per input",
            out.dtype.name(),
            dims_text(dims)
        );
    }
    let mut best = (0, f32::NEG_INFINITY);
    for (k, b) in out.bytes.chunks_exact(4).enumerate() {
        let v = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        if v > best.1 {
            best = (k, v);
        }
    }
    Ok(best.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder(npy: usize, labels: &str) -> (tempfile::TempDir, Result<Folder>) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("npy")).unwrap();
        for i in 0..npy {
            std::fs::write(dir.path().join(format!("npy/{i:04}.npy")), b"").unwrap();
        }
        std::fs::write(dir.path().join("labels.txt"), labels).unwrap();
        let f = Folder::open(dir.path());
        (dir, f)
    }

    #[test]
    fn folders_pair_files_with_labels_or_name_the_bad_line() {
        let (_d, f) = folder(3, "1\n0\n 2 \n");
        assert_eq!(f.unwrap().labels, [1, 0, 2]);
        for (npy, labels, want) in [
            (2, "0\nup\n", "labels.txt:2: \"up\" is not a class index"),
            (2, "0\n-1\n", "labels.txt:2: \"-1\""),
            (2, "0\n", "has 1 labels, but"),
            (0, "", "holds no .npy files"),
        ] {
            let (_d, f) = folder(npy, labels);
            let err = format!("{:#}", f.unwrap_err());
            assert!(err.contains(want), "{labels:?}: {err}");
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("npy")).unwrap();
        std::fs::write(dir.path().join("npy/0000.npy"), b"").unwrap();
        let err = format!("{:#}", Folder::open(dir.path()).unwrap_err());
        assert!(err.contains("labels.txt"), "{err}");
    }

    #[test]
    fn argmax_takes_the_first_largest_of_one_row() {
        let argmax_of = |dims: &[usize], scores: &[f32]| {
            let bytes: Vec<u8> = scores.iter().flat_map(|x| x.to_le_bytes()).collect();
            let shape = edgetrim_runtime::tensor::Shape::new(dims).unwrap();
            argmax(&TensorRef {
                dtype: DType::F32,
                shape,
                bytes: &bytes,
            })
        };
        assert_eq!(argmax_of(&[1, 4], &[0.1, f32::NAN, 0.7, 0.7]).unwrap(), 2);
        let err = argmax_of(&[2, 2], &[0.1, 0.2, 0.3, 0.4]).unwrap_err();
        assert!(err.to_string().contains("float32 2x2"), "{err}");
    }
}
