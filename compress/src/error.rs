//! The one error type of the compressor.
//!
//! Every variant names what it is about — the node (and its op) a pass refused, the tensor
//! whose data is malformed — so that a failing `edgetrim compress` prints one line that
//! points into the model, as tract's "Building node {name} ({op_type})" does.

use std::fmt;

/// Why a model could not be compressed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The bytes are not an ONNX `ModelProto`.
    Decode(String),
    /// The model uses something no pass can carry through (e.g. model-local functions).
    Unsupported(String),
    /// A pass refused a node.
    Node {
        /// The node's name (or its first output's when unnamed).
        node: String,
        /// Its op type.
        op: String,
        /// What is wrong.
        reason: String,
    },
    /// An initializer's data does not match its type and shape.
    Tensor {
        /// The tensor name.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// The encoded model could not be laid out.
    Layout(String),
    /// A `metadata_props` entry is malformed (e.g. the slicing rules name an unknown dim).
    Metadata {
        /// The metadata key.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// A slice the model cannot give (depth beyond its layers, width outside (0, 1]).
    Slice(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Decode(e) => write!(f, "not an ONNX model: {e}"),
            Error::Unsupported(what) => write!(f, "{what}"),
            Error::Node { node, op, reason } => write!(f, "node {node} ({op}): {reason}"),
            Error::Tensor { name, reason } => write!(f, "tensor {name}: {reason}"),
            Error::Layout(what) => write!(f, "layout: {what}"),
            Error::Metadata { key, reason } => write!(f, "metadata {key}: {reason}"),
            Error::Slice(what) => write!(f, "slice: {what}"),
        }
    }
}

impl std::error::Error for Error {}

/// `Result` with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
