//! What the model's graph inputs get: shapes (`--input-shape`), data (`--input` files) or
//! generated data, all checked against the model before anything runs.
//!
//! Every check here names the graph input concerned and shows both shapes, because "shape
//! mismatch" alone sends the user to a debugger. The runtime re-checks when it plans; this
//! layer exists to say *which file* and *which flag* are wrong.

use crate::npy::{self, Array};
use anyhow::{bail, Context, Result};
use edgetrim_runtime::onnx::{Dim, ValueInfo};
use edgetrim_runtime::{DType, Model};
use std::path::PathBuf;
use std::str::FromStr;

/// `NAME=1x3x224x224` from `--input-shape`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShapeOverride {
    /// Graph input name.
    pub name: String,
    /// Its dims.
    pub dims: Vec<usize>,
}

impl FromStr for ShapeOverride {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (name, dims) = s
            .rsplit_once('=')
            .ok_or_else(|| format!("expected NAME=DIMS (e.g. images=1x3x224x224), got {s:?}"))?;
        let dims = if dims.is_empty() {
            Vec::new() // a scalar
        } else {
            dims.split(['x', 'X', ','])
                .map(|d| d.trim().parse::<usize>())
                .collect::<Result<_, _>>()
                .map_err(|_| format!("dims must be numbers separated by 'x', got {dims:?}"))?
        };
        Ok(ShapeOverride {
            name: name.to_string(),
            dims,
        })
    }
}

/// Renders dims as `1x3x224x224` (`scalar` for rank 0).
pub fn dims_text(dims: &[usize]) -> String {
    if dims.is_empty() {
        return "scalar".into();
    }
    dims.iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join("x")
}

/// The declared shape as text (`Nx3x224x224`, `?` for an unnamed free dim), or `None`.
pub fn declared_text(vi: &ValueInfo<'_>) -> Option<String> {
    let dims: Vec<String> = vi
        .dims()?
        .map(|d| match d {
            Dim::Fixed(n) => n.to_string(),
            Dim::Symbolic("") => "?".into(),
            Dim::Symbolic(s) => s.to_string(),
        })
        .collect();
    Some(if dims.is_empty() {
        "scalar".into()
    } else {
        dims.join("x")
    })
}

/// Checks `dims` against the declared shape of `vi` (symbolic dims match anything).
fn check_declared(vi: &ValueInfo<'_>, dims: &[usize], what: &str) -> Result<()> {
    let Some(declared) = vi.dims() else {
        return Ok(());
    };
    let matches = declared.clone().count() == dims.len()
        && declared
            .zip(dims)
            .all(|(d, &g)| !matches!(d, Dim::Fixed(f) if f != g));
    if !matches {
        bail!(
            "input {}: {what} has shape {}, but the model declares {}",
            vi.name(),
            dims_text(dims),
            declared_text(vi).unwrap_or_default()
        );
    }
    Ok(())
}

fn input_names(model: &Model<'_>) -> String {
    model
        .inputs()
        .map(|vi| vi.name().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Checks that every override names a graph input.
fn check_override_names(model: &Model<'_>, overrides: &[ShapeOverride]) -> Result<()> {
    for o in overrides {
        if !model.inputs().any(|vi| vi.name() == o.name) {
            bail!(
                "--input-shape {}: the model has no input of that name (inputs: {})",
                o.name,
                input_names(model)
            );
        }
    }
    Ok(())
}

/// One shape per graph input, in graph-input order: the `--input-shape` override, or the
/// declared shape when it is fully fixed.
pub fn resolve_shapes(model: &Model<'_>, overrides: &[ShapeOverride]) -> Result<Vec<Vec<usize>>> {
    check_override_names(model, overrides)?;
    model
        .inputs()
        .map(|vi| {
            if let Some(o) = overrides.iter().rev().find(|o| o.name == vi.name()) {
                check_declared(&vi, &o.dims, "--input-shape")?;
                return Ok(o.dims.clone());
            }
            let hint = || format!("pass --input-shape {}=DIMS", vi.name());
            let dims = vi.dims().with_context(|| {
                format!("input {} has no declared shape; {}", vi.name(), hint())
            })?;
            dims.map(|d| match d {
                Dim::Fixed(n) => Ok(n),
                Dim::Symbolic(_) => bail!(
                    "input {} has a free dim ({}); {}",
                    vi.name(),
                    declared_text(&vi).unwrap_or_default(),
                    hint()
                ),
            })
            .collect()
        })
        .collect()
}

/// Reads `--input` arguments (`PATH.npy` in graph-input order, or `NAME=PATH.npy`) and
/// checks each file's dtype and shape against the model and any `--input-shape`.
pub fn load(model: &Model<'_>, args: &[String], overrides: &[ShapeOverride]) -> Result<Vec<Array>> {
    check_override_names(model, overrides)?;
    let graph_inputs: Vec<ValueInfo<'_>> = model.inputs().collect();
    let named: Vec<Option<(&str, &str)>> = args
        .iter()
        .map(|a| {
            a.split_once('=')
                .filter(|(name, _)| graph_inputs.iter().any(|vi| vi.name() == *name))
        })
        .collect();
    let all_named = named.iter().all(Option::is_some);
    if !all_named && named.iter().any(Option::is_some) {
        bail!("give --input either as PATH.npy for every input (in graph-input order) or as NAME=PATH.npy for every input, not both");
    }
    if args.len() != graph_inputs.len() {
        bail!(
            "the model has {} input(s) ({}), got {} --input",
            graph_inputs.len(),
            input_names(model),
            args.len()
        );
    }
    graph_inputs
        .iter()
        .enumerate()
        .map(|(k, vi)| {
            let path = if all_named {
                let (_, path) = named
                    .iter()
                    .flatten()
                    .find(|(name, _)| *name == vi.name())
                    .with_context(|| format!("no --input {}=PATH.npy given", vi.name()))?;
                PathBuf::from(path)
            } else {
                PathBuf::from(&args[k])
            };
            let array = npy::read(&path)?;
            let what = path.display().to_string();
            if let Some(dtype) = vi.dtype() {
                if dtype != array.dtype {
                    bail!(
                        "input {}: {what} holds {}, but the model takes {}",
                        vi.name(),
                        array.dtype.name(),
                        dtype.name()
                    );
                }
            }
            check_declared(vi, &array.shape, &what)?;
            if let Some(o) = overrides.iter().rev().find(|o| o.name == vi.name()) {
                if o.dims != array.shape {
                    bail!(
                        "input {}: {what} has shape {}, but --input-shape says {}",
                        vi.name(),
                        dims_text(&array.shape),
                        dims_text(&o.dims)
                    );
                }
            }
            Ok(array)
        })
        .collect()
}

/// Deterministic inputs for benchmarks: uniform [-1, 1) floats from `seed`; integer and
/// bool inputs are zeros (always valid as indices and masks).
pub fn generate(model: &Model<'_>, shapes: &[Vec<usize>], seed: u64) -> Result<Vec<Array>> {
    let mut state = seed ^ 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    };
    model
        .inputs()
        .zip(shapes)
        .map(|(vi, shape)| {
            let dtype = vi.dtype().with_context(|| {
                format!("input {}: missing or unsupported element type", vi.name())
            })?;
            let n: usize = shape.iter().product();
            let bytes = match dtype {
                DType::F32 => (0..n).flat_map(|_| next().to_le_bytes()).collect(),
                DType::F64 => (0..n)
                    .flat_map(|_| f64::from(next()).to_le_bytes())
                    .collect(),
                _ => vec![0u8; n * dtype.size()],
            };
            Ok(Array {
                dtype,
                shape: shape.clone(),
                bytes,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_shape_overrides() {
        let o: ShapeOverride = "images=1x3x224x224".parse().unwrap();
        assert_eq!((o.name.as_str(), o.dims), ("images", vec![1, 3, 224, 224]));
        let o: ShapeOverride = "a=b=2,3".parse().unwrap();
        assert_eq!((o.name.as_str(), o.dims), ("a=b", vec![2, 3]));
        let o: ShapeOverride = "s=".parse().unwrap();
        assert!(o.dims.is_empty());
        assert!("images".parse::<ShapeOverride>().is_err());
        assert!("x=1xfoo".parse::<ShapeOverride>().is_err());
    }

    #[test]
    fn dims_render_like_the_flag() {
        assert_eq!(dims_text(&[1, 3, 8]), "1x3x8");
        assert_eq!(dims_text(&[]), "scalar");
    }
}
