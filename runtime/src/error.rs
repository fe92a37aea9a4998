//! The runtime's one error type.
//!
//! Every failure a caller can provoke with bad input — corrupt bytes, an op we do not run, a
//! bad attribute, a wrong input shape, an arena that is too small — is a variant here, never a
//! panic. Errors are `Copy` and carry no lifetime: the names they mention are copied into a
//! small fixed buffer ([`Name`]) so an error can outlive the model bytes and travel through
//! `?` into `anyhow` on a host.

use core::fmt;

/// A node, tensor, attribute or op name copied out of the model (truncated past 47 bytes).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Name {
    bytes: [u8; 47],
    len: u8,
}

impl Name {
    /// Copies `s`, keeping at most 47 bytes (cut at a character boundary).
    pub fn new(s: &str) -> Self {
        let mut end = s.len().min(47);
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        let mut bytes = [0u8; 47];
        bytes[..end].copy_from_slice(&s.as_bytes()[..end]);
        Name {
            bytes,
            len: end as u8,
        }
    }

    /// The (possibly truncated) name.
    pub fn as_str(&self) -> &str {
        // The bytes were copied from a `&str` and cut at a char boundary.
        core::str::from_utf8(&self.bytes[..self.len as usize]).unwrap_or("?")
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything that can go wrong between model bytes and outputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The bytes are not a well-formed protobuf `ModelProto` (truncated, bad varint, ...).
    Malformed {
        /// What was being read.
        what: &'static str,
        /// Byte offset in the model where reading failed.
        offset: usize,
    },
    /// The protobuf is well formed but is not a model we can plan (no graph, bad type, ...).
    Invalid {
        /// What is wrong.
        what: &'static str,
        /// The tensor or node concerned, if any.
        name: Name,
    },
    /// One or more nodes use ops this runtime does not implement.
    /// `Model::unsupported_ops` lists all of them.
    UnsupportedOps {
        /// The first such node.
        node: Name,
        /// Its op type.
        op: Name,
        /// How many nodes in the graph are unsupported.
        count: usize,
    },
    /// A node's attribute is missing, of the wrong type, or out of range.
    BadAttribute {
        /// The node.
        node: Name,
        /// The attribute.
        attr: Name,
        /// Why it is refused.
        reason: &'static str,
    },
    /// A node cannot run with the inputs it is given (arity, dtype, shape, non-constant shape input).
    BadNode {
        /// The node.
        node: Name,
        /// Its op type.
        op: Name,
        /// Why it is refused.
        reason: &'static str,
    },
    /// A node reads a tensor that no graph input, initializer or earlier node defines
    /// (or the graph has a cycle).
    UnknownTensor {
        /// The node.
        node: Name,
        /// The missing tensor.
        tensor: Name,
    },
    /// A graph input was given a shape or data that does not match the model.
    BadInput {
        /// The graph input.
        input: Name,
        /// Why it is refused.
        reason: &'static str,
    },
    /// The caller-provided arena is smaller than the plan needs.
    ArenaTooSmall {
        /// Bytes needed (a lower bound when `exact` is false: planning stopped early).
        needed: usize,
        /// Bytes given.
        got: usize,
        /// Whether `needed` is the exact requirement.
        exact: bool,
    },
    /// A fixed capacity of this build was exceeded (tensor rank, node fan-in, ...).
    Capacity {
        /// Which limit.
        what: &'static str,
        /// Its value.
        limit: usize,
    },
    /// A model image (header + ONNX payload, see [`crate::image`]) is corrupt, truncated
    /// or not an image at all; nothing of it was used.
    Image(crate::image::ImageError),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Malformed { what, offset } => {
                write!(f, "malformed model: {what} at byte {offset}")
            }
            Error::Invalid { what, name } => write!(f, "invalid model: {what} ({name})"),
            Error::UnsupportedOps { node, op, count } => write!(
                f,
                "{count} unsupported node(s), the first is {node} ({op}); `edgetrim inspect` lists them all"
            ),
            Error::BadAttribute { node, attr, reason } => {
                write!(f, "node {node}: attribute {attr}: {reason}")
            }
            Error::BadNode { node, op, reason } => write!(f, "node {node} ({op}): {reason}"),
            Error::UnknownTensor { node, tensor } => write!(
                f,
                "node {node} reads tensor {tensor}, which nothing defines before it"
            ),
            Error::BadInput { input, reason } => write!(f, "input {input}: {reason}"),
            Error::ArenaTooSmall { needed, got, exact } => write!(
                f,
                "arena too small: {} {needed} bytes, got {got}",
                if *exact { "needs" } else { "needs at least" }
            ),
            Error::Capacity { what, limit } => write!(f, "{what} exceeds this build's limit of {limit}"),
            Error::Image(e) => write!(f, "bad model image: {e}"),
        }
    }
}

impl From<crate::image::ImageError> for Error {
    fn from(e: crate::image::ImageError) -> Self {
        Error::Image(e)
    }
}

#[cfg(feature = "std")]
impl std::error::Error for Error {}

#[cfg(feature = "defmt")]
impl defmt::Format for Error {
    fn format(&self, f: defmt::Formatter<'_>) {
        match self {
            Error::Malformed { what, offset } => {
                defmt::write!(f, "malformed model: {=str} at byte {=usize}", what, offset)
            }
            Error::Invalid { what, name } => {
                defmt::write!(f, "invalid model: {=str} ({=str})", what, name.as_str())
            }
            Error::UnsupportedOps { node, op, count } => defmt::write!(
                f,
                "{=usize} unsupported node(s), first {=str} ({=str})",
                count,
                node.as_str(),
                op.as_str()
            ),
            Error::BadAttribute { node, attr, reason } => defmt::write!(
                f,
                "node {=str}: attribute {=str}: {=str}",
                node.as_str(),
                attr.as_str(),
                reason
            ),
            Error::BadNode { node, op, reason } => defmt::write!(
                f,
                "node {=str} ({=str}): {=str}",
                node.as_str(),
                op.as_str(),
                reason
            ),
            Error::UnknownTensor { node, tensor } => defmt::write!(
                f,
                "node {=str} reads undefined tensor {=str}",
                node.as_str(),
                tensor.as_str()
            ),
            Error::BadInput { input, reason } => {
                defmt::write!(f, "input {=str}: {=str}", input.as_str(), reason)
            }
            Error::ArenaTooSmall { needed, got, .. } => defmt::write!(
                f,
                "arena too small: needs {=usize} bytes, got {=usize}",
                needed,
                got
            ),
            Error::Capacity { what, limit } => {
                defmt::write!(f, "{=str} exceeds limit {=usize}", what, limit)
            }
            Error::Image(e) => defmt::write!(f, "bad model image: {}", e),
        }
    }
}

/// Shorthand used throughout the crate.
pub type Result<T> = core::result::Result<T, Error>;
