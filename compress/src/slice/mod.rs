//! Cutting a subnet out of a supernet: "train once, deploy many".
//!
//! A supernet trained for depth and width slicing (TODM) holds every subnet as the first
//! layers and the first units of every width dimension. The exporter writes into each graph
//! the rules that say which tensors, graph inputs/outputs and attributes carry those
//! dimensions and which nodes make up each droppable layer ([`rules`], format in
//! `models/train/rnnt/EXPORT.md`), so this module needs no knowledge of the architecture:
//! it cuts any graph that carries such rules. A model made of several graphs (the RNN-T's
//! encoder, predictor and joiner) is cut consistently by giving every graph the same
//! [`Slice`] ([`slice_all`]).
//!
//! The result keeps every name, the order of nodes, initializers, inputs, outputs and
//! metadata, and carries the rules rewritten for its own sizes, so a slice can be sliced
//! again: cutting `width=0.5` twice equals cutting `width=0.25` once when the sizes divide.
//! It equals what the exporter writes for the same subnet directly (tested against the
//! Python export of a tiny supernet, `compress/tests/it/slice.rs`).

mod cut;
pub mod rules;

pub use cut::Cut;
pub use rules::{Rules, RULES_KEY};

use crate::error::{Error, Result};
use std::fmt;
use std::str::FromStr;
use tract_onnx::pb::ModelProto;

/// The metadata key holding a model's layer count: set to the slice's depth.
pub const LAYERS_KEY: &str = "edgetrim.asr.layers";

/// Metadata keys holding a width dimension's size: scaled by [`width_units`] like the dims.
pub const WIDTH_KEYS: [&str; 2] = ["edgetrim.asr.hidden", "edgetrim.asr.pred_hidden"];

/// Units of a dimension of `size` kept at `width`: `floor(width * size + 0.5)` clamped to
/// `1..=size` (0.5 rounds up: 0.5 x 7 keeps 4), the rounding the Python recipe trains and
/// exports with (`width_units` in `models/train/rnnt/model.py`).
pub fn width_units(width: f64, size: usize) -> usize {
    ((width * size as f64 + 0.5).floor() as usize)
        .min(size)
        .max(1)
}

/// A subnet: the first `depth` layers (all when `None`) and the share `width` of every
/// width dimension.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Slice {
    /// Layers kept.
    pub depth: Option<usize>,
    /// Share of each width dimension kept, in (0, 1].
    pub width: f64,
}

impl FromStr for Slice {
    type Err = Error;

    /// `depth=D,width=W`; either may be left out (all layers, full width).
    fn from_str(text: &str) -> Result<Slice> {
        let bad = |reason: String| Error::Slice(format!("{text:?}: {reason}"));
        let (mut depth, mut width) = (None, None);
        for part in text.split(',').map(str::trim) {
            let (key, value) = part
                .split_once('=')
                .ok_or_else(|| bad(format!("{part:?} is not KEY=VALUE (depth=D,width=W)")))?;
            let seen = match key.trim() {
                "depth" => depth
                    .replace(
                        value
                            .trim()
                            .parse::<usize>()
                            .map_err(|e| bad(format!("depth {value:?}: {e}")))?,
                    )
                    .is_some(),
                "width" => width
                    .replace(
                        value
                            .trim()
                            .parse::<f64>()
                            .map_err(|e| bad(format!("width {value:?}: {e}")))?,
                    )
                    .is_some(),
                other => return Err(bad(format!("unknown key {other:?} (depth=D,width=W)"))),
            };
            if seen {
                return Err(bad(format!("{key} is given twice")));
            }
        }
        let slice = Slice {
            depth,
            width: width.unwrap_or(1.0),
        };
        slice.check_range()?;
        Ok(slice)
    }
}

impl fmt::Display for Slice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(d) = self.depth {
            write!(f, "depth={d},")?;
        }
        write!(f, "width={}", self.width)
    }
}

impl Slice {
    /// Depth at least 1, width in (0, 1].
    fn check_range(&self) -> Result<()> {
        if self.depth == Some(0) {
            return Err(Error::Slice("depth=0: keep at least one layer".into()));
        }
        if !(self.width > 0.0 && self.width <= 1.0) {
            return Err(Error::Slice(format!("width={} outside (0, 1]", self.width)));
        }
        Ok(())
    }

    /// Checks that every graph whose `rules` have layers can give this depth (and that
    /// some graph has layers when a depth is asked for).
    pub fn check(&self, rules: &[&Rules]) -> Result<()> {
        self.check_range()?;
        let Some(depth) = self.depth else {
            return Ok(());
        };
        let mut layered = rules.iter().filter_map(|r| r.depth.as_ref()).peekable();
        if layered.peek().is_none() {
            return Err(Error::Slice(format!(
                "depth={depth}: no graph has depth rules"
            )));
        }
        for d in layered {
            if depth > d.layers.len() {
                return Err(Error::Slice(format!(
                    "depth={depth} outside 1..={}",
                    d.layers.len()
                )));
            }
        }
        Ok(())
    }
}

/// The most layers every graph with depth rules can keep (`None`: no graph has layers).
pub fn max_depth(rules: &[&Rules]) -> Option<usize> {
    rules
        .iter()
        .filter_map(|r| r.depth.as_ref().map(|d| d.layers.len()))
        .min()
}

/// The rules of `model`, which must have them.
pub fn rules_of(model: &ModelProto) -> Result<Rules> {
    Rules::of(model)?.ok_or_else(|| Error::Metadata {
        key: RULES_KEY.into(),
        reason: "missing: the model was not exported with slicing rules (or was quantized)".into(),
    })
}

/// Cuts `slice` out of one graph and rewrites its metadata (the rules for the new sizes,
/// [`LAYERS_KEY`] and [`WIDTH_KEYS`] where present); returns what changed. The model is
/// unchanged on error. Check the slice against every graph of the model first
/// ([`Slice::check`]), or use [`slice_all`].
pub fn slice_model(model: &mut ModelProto, slice: &Slice) -> Result<Cut> {
    slice.check_range()?;
    let rules = rules_of(model)?;
    let mut g = model
        .graph
        .clone()
        .ok_or_else(|| Error::Decode("the model has no graph".into()))?;
    let (cut, new_rules) = cut::apply(&mut g, &rules, slice.depth, slice.width)?;
    let mut meta = model.metadata_props.clone();
    for p in &mut meta {
        if p.key == RULES_KEY {
            p.value = new_rules.to_json();
        } else if p.key == LAYERS_KEY {
            if let Some(d) = slice.depth {
                p.value = d.to_string();
            }
        } else if WIDTH_KEYS.contains(&p.key.as_str()) {
            let size: usize = p.value.parse().map_err(|_| Error::Metadata {
                key: p.key.clone(),
                reason: format!("{:?} is not a size", p.value),
            })?;
            p.value = width_units(slice.width, size.max(1)).to_string();
        }
    }
    model.graph = Some(g);
    model.metadata_props = meta;
    Ok(cut)
}

/// Cuts the same `slice` out of every graph of a model (all carry rules); all or nothing.
pub fn slice_all(models: &mut [ModelProto], slice: &Slice) -> Result<Vec<Cut>> {
    let rules = models.iter().map(rules_of).collect::<Result<Vec<_>>>()?;
    slice.check(&rules.iter().collect::<Vec<_>>())?;
    let mut cut = models.to_vec();
    let summaries = cut
        .iter_mut()
        .map(|m| slice_model(m, slice))
        .collect::<Result<Vec<_>>>()?;
    models.clone_from_slice(&cut);
    Ok(summaries)
}

impl fmt::Display for Cut {
    /// `layers 3 -> 2, enc 8 -> 4 (3 nodes removed, 9 tensors sliced)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some((from, to)) = self.layers {
            parts.push(format!("layers {from} -> {to}"));
        }
        parts.extend(
            self.dims
                .iter()
                .map(|(d, (from, to))| format!("{d} {from} -> {to}")),
        );
        if parts.is_empty() {
            parts.push("nothing to slice".into());
        }
        write!(
            f,
            "{} ({} nodes removed, {} tensors sliced)",
            parts.join(", "),
            self.nodes_removed,
            self.tensors_sliced
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn width_units_round_half_up_and_stay_in_range() {
        let got: Vec<usize> = [0.5, 0.625, 0.75, 1.0]
            .iter()
            .map(|&w| width_units(w, 192))
            .collect();
        assert_eq!(got, [96, 120, 144, 192]);
        assert_eq!(width_units(0.5, 7), 4);
        assert_eq!(width_units(0.01, 8), 1);
        assert_eq!(width_units(1.0, 1), 1);
    }

    #[test]
    fn slices_parse_and_print() {
        let s: Slice = "depth=3, width=0.5".parse().unwrap();
        assert_eq!(
            s,
            Slice {
                depth: Some(3),
                width: 0.5
            }
        );
        assert_eq!(s.to_string(), "depth=3,width=0.5");
        assert_eq!("width=0.25".parse::<Slice>().unwrap().depth, None);
        assert_eq!("depth=2".parse::<Slice>().unwrap().width, 1.0);
        for (bad, want) in [
            ("depth=0", "keep at least one layer"),
            ("width=0", "outside (0, 1]"),
            ("width=1.5", "outside (0, 1]"),
            ("width=nan", "outside (0, 1]"),
            ("depth=-1", "depth \"-1\""),
            ("depth=2,depth=3", "depth is given twice"),
            ("layers=2", "unknown key \"layers\""),
            ("auto", "is not KEY=VALUE"),
        ] {
            let err = bad.parse::<Slice>().unwrap_err().to_string();
            assert!(
                err.starts_with("slice: ") && err.contains(want),
                "{bad}: {err}"
            );
        }
    }
}
