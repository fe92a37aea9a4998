//! The slicing rules an exporter writes into a graph's `metadata_props` under
//! [`RULES_KEY`], as typed values (format: `models/train/rnnt/EXPORT.md`, version 1).
//!
//! The rules are data, not code: they name the tensors, nodes and graph inputs a depth or
//! width cut touches, so the slicer needs no knowledge of the architecture. Parsing is strict
//! (unknown fields and versions are refused) because a field this reader ignored would be
//! dropped when the rules are rewritten for the slice, and the slice could not be re-sliced.
//! Field order follows the exporter's, so a rewritten rule set reads like the original.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use tract_onnx::pb::ModelProto;

/// The `metadata_props` key holding the rules (JSON).
pub const RULES_KEY: &str = "edgetrim.slice";

/// The rules format this slicer reads and writes.
pub const VERSION: u64 = 1;

/// The slicing rules of one graph.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rules {
    /// Format version ([`VERSION`]).
    pub version: u64,
    /// Width dimensions and their current sizes (e.g. `enc` = 192).
    pub dims: BTreeMap<String, usize>,
    /// Tensor axes made of blocks of a dimension.
    pub tensors: Vec<TensorRule>,
    /// Integer node attributes equal to a dimension's size.
    pub attributes: Vec<AttributeRule>,
    /// The layers a depth cut may drop (`None`: the graph has no depth).
    pub depth: Option<Depth>,
}

/// One axis of an initializer or graph input/output: `blocks` consecutive blocks of `dim`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TensorRule {
    /// Initializer or graph input/output name.
    pub name: String,
    /// The sliced axis.
    pub axis: usize,
    /// The dimension (a key of [`Rules::dims`]).
    pub dim: String,
    /// How many blocks of the dimension the axis holds (4 for LSTM gate weights).
    pub blocks: usize,
}

/// An integer attribute set to the kept size of a dimension (an LSTM's `hidden_size`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttributeRule {
    /// Node name.
    pub node: String,
    /// Attribute name.
    pub name: String,
    /// The dimension (a key of [`Rules::dims`]).
    pub dim: String,
}

/// The droppable layers, in order, and where the kept ones reconnect.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Depth {
    /// The layers, first to last.
    pub layers: Vec<Layer>,
    /// The node input that reads the last kept layer's output.
    pub post: Post,
}

/// What one layer owns.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Layer {
    /// Its nodes.
    pub nodes: Vec<String>,
    /// Its initializers.
    pub initializers: Vec<String>,
    /// Its graph inputs (e.g. recurrent state in).
    pub inputs: Vec<String>,
    /// Its graph outputs (e.g. recurrent state out).
    pub outputs: Vec<String>,
    /// The tensor the next layer (or [`Depth::post`]) reads.
    pub output: String,
}

/// Input `input` of node `node`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Post {
    /// Node name.
    pub node: String,
    /// Input index.
    pub input: usize,
}

fn malformed(reason: impl Into<String>) -> Error {
    Error::Metadata {
        key: RULES_KEY.into(),
        reason: reason.into(),
    }
}

impl Rules {
    /// The rules of `model`; `None` when it has none (a graph that slicing leaves alone).
    pub fn of(model: &ModelProto) -> Result<Option<Rules>> {
        let Some(entry) = model.metadata_props.iter().find(|p| p.key == RULES_KEY) else {
            return Ok(None);
        };
        Rules::parse(&entry.value).map(Some)
    }

    /// Parses and checks the JSON text.
    pub fn parse(text: &str) -> Result<Rules> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| malformed(format!("not JSON: {e}")))?;
        match value.get("version").and_then(serde_json::Value::as_u64) {
            Some(VERSION) => {}
            Some(v) => {
                return Err(malformed(format!(
                    "version {v} (this slicer reads {VERSION})"
                )))
            }
            None => return Err(malformed("no integer \"version\"")),
        }
        let rules: Rules = serde_json::from_value(value).map_err(|e| malformed(e.to_string()))?;
        rules.check()?;
        Ok(rules)
    }

    /// The JSON text (compact; readers compare it as parsed JSON).
    pub fn to_json(&self) -> String {
        // A tree of strings, integers and vectors: serialising it cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Every dim a rule names exists and is non-zero; every block count is non-zero.
    fn check(&self) -> Result<()> {
        if let Some((dim, _)) = self.dims.iter().find(|(_, &size)| size == 0) {
            return Err(malformed(format!("dim {dim} has size 0")));
        }
        let known = |dim: &str, what: String| {
            if self.dims.contains_key(dim) {
                Ok(())
            } else {
                let dims: Vec<&str> = self.dims.keys().map(String::as_str).collect();
                Err(malformed(format!(
                    "{what} names dim {dim:?}, which is not in dims {dims:?}"
                )))
            }
        };
        for t in &self.tensors {
            known(
                &t.dim,
                format!("the entry for tensor {} axis {}", t.name, t.axis),
            )?;
            if t.blocks == 0 {
                return Err(malformed(format!(
                    "the entry for tensor {} axis {} has 0 blocks",
                    t.name, t.axis
                )));
            }
        }
        for a in &self.attributes {
            known(
                &a.dim,
                format!("the entry for attribute {} of node {}", a.name, a.node),
            )?;
        }
        if self.depth.as_ref().is_some_and(|d| d.layers.is_empty()) {
            return Err(malformed("depth has no layers"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"{"version": 1, "dims": {"enc": 4},
        "tensors": [{"name": "w", "axis": 0, "dim": "enc", "blocks": 1}],
        "attributes": [], "depth": null}"#;

    #[test]
    fn round_trips_through_json() {
        let rules = Rules::parse(MINIMAL).unwrap();
        assert_eq!(rules.dims["enc"], 4);
        assert_eq!(Rules::parse(&rules.to_json()).unwrap(), rules);
        assert!(rules
            .to_json()
            .ends_with(r#""attributes":[],"depth":null}"#));
    }

    #[test]
    fn malformed_rules_are_refused_naming_what_is_wrong() {
        let cases = [
            ("{", "not JSON"),
            (r#"{"version": 2}"#, "version 2"),
            (
                &MINIMAL.replace("\"enc\", \"blocks\"", "\"dec\", \"blocks\""),
                "dim \"dec\"",
            ),
            (
                &MINIMAL.replace("\"blocks\": 1", "\"blocks\": 0"),
                "tensor w axis 0 has 0 blocks",
            ),
            (
                &MINIMAL.replace("{\"enc\": 4}", "{\"enc\": 0}"),
                "dim enc has size 0",
            ),
            (
                &MINIMAL.replace("\"depth\"", "\"deep\""),
                "unknown field `deep`",
            ),
        ];
        for (text, want) in cases {
            let err = Rules::parse(text).unwrap_err().to_string();
            assert!(err.starts_with("metadata edgetrim.slice: "), "{err}");
            assert!(err.contains(want), "{text}: {err}");
        }
    }
}
