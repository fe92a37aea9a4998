//! Zero-copy views of `ModelProto`, `GraphProto`, `NodeProto`, `AttributeProto`,
//! `TensorProto` and `ValueInfoProto`.
//!
//! [`Model::parse`] checks the framing of every message the runtime will later walk, so the
//! accessors here can iterate without error paths. Field numbers are those of `onnx.proto3`.

use super::wire::{
    self, check_packed_varints, fields, offset_in, repeated_f32s, repeated_varints, Value,
};
use crate::error::{Error, Name, Result};
use crate::tensor::{DType, Shape};

// Message kinds for the framing check.
const MODEL: u32 = 0;
const GRAPH: u32 = 1;
const NODE: u32 = 2;
const ATTRIBUTE: u32 = 3;
const TENSOR: u32 = 4;
const VALUE_INFO: u32 = 5;
const TYPE: u32 = 6;
const TENSOR_TYPE: u32 = 7;
const SHAPE: u32 = 8;
const DIM: u32 = 9;
const OPSET: u32 = 10;
const STRING_ENTRY: u32 = 11;

/// Which fields of which message are sub-messages we read.
fn nested(kind: u32, field: u32) -> Option<u32> {
    Some(match (kind, field) {
        (MODEL, 7) => GRAPH,
        (MODEL, 8) => OPSET,
        (MODEL, 14) => STRING_ENTRY,
        (GRAPH, 1) => NODE,
        (GRAPH, 5) => TENSOR,
        (GRAPH, 11..=13) => VALUE_INFO,
        (NODE, 5) => ATTRIBUTE,
        (ATTRIBUTE, 5 | 10) => TENSOR,
        (VALUE_INFO, 2) => TYPE,
        (TYPE, 1) => TENSOR_TYPE,
        (TENSOR_TYPE, 2) => SHAPE,
        (SHAPE, 1) => DIM,
        _ => return None,
    })
}

/// A parsed (validated, not decoded) ONNX model.
#[derive(Clone, Copy, Debug)]
pub struct Model<'a> {
    bytes: &'a [u8],
    graph: &'a [u8],
    opset: i64,
}

impl<'a> Model<'a> {
    /// Validates `bytes` as an ONNX `ModelProto` and keeps a view of it.
    ///
    /// Checks the protobuf framing of the model, graph, nodes, attributes, initializers and
    /// value infos, the UTF-8 of names, and the type and size of every initializer.
    pub fn parse(bytes: &'a [u8]) -> Result<Model<'a>> {
        wire::check(bytes, 0, &nested, MODEL)?;
        let mut graph = None;
        let mut opset = None;
        for (f, v) in fields(bytes) {
            match (f, v) {
                (7, Value::Bytes(g)) => graph = Some(g),
                (8, Value::Bytes(o)) => {
                    let mut domain = "";
                    let mut version = 0;
                    for (f, v) in fields(o) {
                        match f {
                            1 => domain = v.as_str().unwrap_or("?"),
                            2 => version = v.as_i64().unwrap_or(0),
                            _ => {}
                        }
                    }
                    if domain.is_empty() || domain == "ai.onnx" {
                        opset = Some(version);
                    }
                }
                _ => {}
            }
        }
        let graph = graph.ok_or(Error::Invalid {
            what: "no graph in ModelProto",
            name: Name::new(""),
        })?;
        let model = Model {
            bytes,
            graph,
            opset: opset.unwrap_or(1),
        };
        model.validate_contents()?;
        Ok(model)
    }

    fn validate_contents(&self) -> Result<()> {
        let base = |sub: &[u8]| offset_in(self.bytes, sub);
        for node in self.nodes() {
            for (f, v) in fields(node.msg) {
                if let (1 | 2 | 3 | 4 | 7, Value::Bytes(b)) = (f, v) {
                    if core::str::from_utf8(b).is_err() {
                        return Err(Error::Malformed {
                            what: "node string is not UTF-8",
                            offset: base(b),
                        });
                    }
                }
            }
            for attr in node.attributes() {
                if let Some(b) = field_bytes(attr.msg, 8) {
                    check_packed_varints(b, base(b))?;
                }
                if let Some(t) = attr.tensor() {
                    t.validate(self.bytes)?;
                }
            }
        }
        for t in self.initializers() {
            t.validate(self.bytes)?;
        }
        for vi in self.graph_fields(11).chain(self.graph_fields(12)) {
            if let Some(b) = field_bytes(vi, 1) {
                if core::str::from_utf8(b).is_err() {
                    return Err(Error::Malformed {
                        what: "value name is not UTF-8",
                        offset: base(b),
                    });
                }
            }
        }
        Ok(())
    }

    /// The model's `metadata_props`, `(key, value)` in file order; entries that are not
    /// UTF-8 are skipped. Exporters put what a model needs around it here (class names, box
    /// encoding, input size), so a device can read it from the same bytes it runs.
    pub fn metadata(&self) -> impl Iterator<Item = (&'a str, &'a str)> + Clone + 'a {
        fields(self.bytes)
            .filter(|(f, _)| *f == 14)
            .filter_map(|(_, v)| v.as_bytes())
            .filter_map(|entry| {
                // proto3 omits empty strings, so a missing field is "".
                let text =
                    |field| core::str::from_utf8(field_bytes(entry, field).unwrap_or(&[])).ok();
                Some((text(1)?, text(2)?))
            })
    }

    /// The value of metadata key `key` (the first, if repeated).
    pub fn metadata_value(&self, key: &str) -> Option<&'a str> {
        self.metadata().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// The whole model as given.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The default-domain opset version (1 when none is declared).
    pub fn opset(&self) -> i64 {
        self.opset
    }

    fn graph_fields(&self, field: u32) -> impl Iterator<Item = &'a [u8]> + Clone + 'a {
        fields(self.graph)
            .filter(move |(f, _)| *f == field)
            .filter_map(|(_, v)| v.as_bytes())
    }

    /// Nodes in file order.
    pub fn nodes(&self) -> impl Iterator<Item = Node<'a>> + Clone + 'a {
        self.graph_fields(1)
            .enumerate()
            .map(|(index, msg)| Node { msg, index })
    }

    /// Number of nodes.
    pub fn node_count(&self) -> usize {
        self.graph_fields(1).count()
    }

    /// Initializers (weights and constants) in file order.
    pub fn initializers(&self) -> impl Iterator<Item = TensorProto<'a>> + Clone + 'a {
        self.graph_fields(5).map(|msg| TensorProto { msg })
    }

    /// Declared graph inputs, including those that an initializer shadows (IR < 4 style).
    pub fn declared_inputs(&self) -> impl Iterator<Item = ValueInfo<'a>> + Clone + 'a {
        self.graph_fields(11).map(|msg| ValueInfo { msg })
    }

    /// Graph inputs the caller must feed: declared inputs that no initializer defines.
    pub fn inputs(&self) -> impl Iterator<Item = ValueInfo<'a>> + Clone + 'a {
        let inits = self.initializers();
        self.declared_inputs()
            .filter(move |vi| !inits.clone().any(|t| t.name() == vi.name()))
    }

    /// Graph outputs.
    pub fn outputs(&self) -> impl Iterator<Item = ValueInfo<'a>> + Clone + 'a {
        self.graph_fields(12).map(|msg| ValueInfo { msg })
    }

    /// Value infos recorded for intermediate tensors (shape hints; not trusted).
    pub fn value_infos(&self) -> impl Iterator<Item = ValueInfo<'a>> + Clone + 'a {
        self.graph_fields(13).map(|msg| ValueInfo { msg })
    }

    /// Nodes whose op this runtime cannot run, in graph order.
    pub fn unsupported_ops(&self) -> impl Iterator<Item = Node<'a>> + 'a {
        self.nodes()
            .filter(|n| !crate::ops::is_supported(n.domain(), n.op_type()))
    }

    /// Errors with [`Error::UnsupportedOps`] when any node is unsupported.
    pub fn check_supported(&self) -> Result<()> {
        let mut bad = self.unsupported_ops();
        match bad.next() {
            None => Ok(()),
            Some(first) => Err(Error::UnsupportedOps {
                node: Name::new(first.display_name()),
                op: Name::new(first.op_type()),
                count: 1 + bad.count(),
            }),
        }
    }
}

/// First length-delimited value of `field`.
fn field_bytes(msg: &[u8], field: u32) -> Option<&[u8]> {
    fields(msg)
        .find(|(f, _)| *f == field)
        .and_then(|(_, v)| v.as_bytes())
}

fn field_str(msg: &[u8], field: u32) -> &str {
    field_bytes(msg, field)
        .and_then(|b| core::str::from_utf8(b).ok())
        .unwrap_or("")
}

fn field_int(msg: &[u8], field: u32) -> Option<i64> {
    fields(msg)
        .filter(|(f, _)| *f == field)
        .filter_map(|(_, v)| v.as_i64())
        .last()
}

/// A `NodeProto`.
#[derive(Clone, Copy, Debug)]
pub struct Node<'a> {
    msg: &'a [u8],
    index: usize,
}

impl<'a> Node<'a> {
    /// Position in the graph's node list.
    pub fn index(&self) -> usize {
        self.index
    }

    /// The node's name (may be empty).
    pub fn name(&self) -> &'a str {
        field_str(self.msg, 3)
    }

    /// The name, or the first output's name when the node is unnamed.
    pub fn display_name(&self) -> &'a str {
        let n = self.name();
        if n.is_empty() {
            self.outputs().next().unwrap_or("?")
        } else {
            n
        }
    }

    /// The op type (`Conv`, `Relu`, ...).
    pub fn op_type(&self) -> &'a str {
        field_str(self.msg, 4)
    }

    /// The op domain ("" is the default ONNX domain).
    pub fn domain(&self) -> &'a str {
        field_str(self.msg, 7)
    }

    /// Input tensor names; "" marks an omitted optional input.
    pub fn inputs(&self) -> impl Iterator<Item = &'a str> + Clone + 'a {
        fields(self.msg)
            .filter(|(f, _)| *f == 1)
            .map(|(_, v)| v.as_str().unwrap_or(""))
    }

    /// Output tensor names.
    pub fn outputs(&self) -> impl Iterator<Item = &'a str> + Clone + 'a {
        fields(self.msg)
            .filter(|(f, _)| *f == 2)
            .map(|(_, v)| v.as_str().unwrap_or(""))
    }

    /// All attributes.
    pub fn attributes(&self) -> impl Iterator<Item = Attribute<'a>> + Clone + 'a {
        fields(self.msg)
            .filter(|(f, _)| *f == 5)
            .filter_map(|(_, v)| v.as_bytes())
            .map(|msg| Attribute { msg })
    }

    /// The attribute called `name`.
    pub fn attr(&self, name: &str) -> Option<Attribute<'a>> {
        self.attributes().find(|a| a.name() == name)
    }
}

/// An `AttributeProto`.
#[derive(Clone, Copy, Debug)]
pub struct Attribute<'a> {
    msg: &'a [u8],
}

/// `AttributeProto.AttributeType` values we read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttrKind {
    /// FLOAT
    Float,
    /// INT
    Int,
    /// STRING
    String,
    /// TENSOR
    Tensor,
    /// FLOATS
    Floats,
    /// INTS
    Ints,
    /// STRINGS (e.g. the recurrent ops' `activations`)
    Strings,
    /// Anything else (graphs, sparse tensors, tensor lists...).
    Other,
}

impl<'a> Attribute<'a> {
    /// Attribute name.
    pub fn name(&self) -> &'a str {
        field_str(self.msg, 1)
    }

    /// Declared type (inferred from the present field for old exporters that omit it).
    pub fn kind(&self) -> AttrKind {
        match field_int(self.msg, 20) {
            Some(1) => AttrKind::Float,
            Some(2) => AttrKind::Int,
            Some(3) => AttrKind::String,
            Some(4) => AttrKind::Tensor,
            Some(6) => AttrKind::Floats,
            Some(7) => AttrKind::Ints,
            Some(8) => AttrKind::Strings,
            Some(_) => AttrKind::Other,
            None => match fields(self.msg)
                .map(|(f, _)| f)
                .find(|f| matches!(f, 2..=9))
            {
                Some(2) => AttrKind::Float,
                Some(3) => AttrKind::Int,
                Some(4) => AttrKind::String,
                Some(5) => AttrKind::Tensor,
                Some(7) => AttrKind::Floats,
                Some(8) => AttrKind::Ints,
                Some(9) => AttrKind::Strings,
                _ => AttrKind::Other,
            },
        }
    }

    /// The `f` field.
    pub fn float(&self) -> Option<f32> {
        fields(self.msg)
            .find(|(f, _)| *f == 2)
            .and_then(|(_, v)| v.as_f32())
    }

    /// The `i` field.
    pub fn int(&self) -> Option<i64> {
        field_int(self.msg, 3)
    }

    /// The `s` field.
    pub fn string(&self) -> Option<&'a [u8]> {
        field_bytes(self.msg, 4)
    }

    /// The `t` field.
    pub fn tensor(&self) -> Option<TensorProto<'a>> {
        field_bytes(self.msg, 5).map(|msg| TensorProto { msg })
    }

    /// The `floats` field.
    pub fn floats(&self) -> impl Iterator<Item = f32> + Clone + 'a {
        repeated_f32s(self.msg, 7)
    }

    /// The `ints` field.
    pub fn ints(&self) -> impl Iterator<Item = i64> + Clone + 'a {
        repeated_varints(self.msg, 8)
    }

    /// The `strings` field.
    pub fn strings(&self) -> impl Iterator<Item = &'a [u8]> + Clone + 'a {
        fields(self.msg)
            .filter(|(f, _)| *f == 9)
            .filter_map(|(_, v)| v.as_bytes())
    }
}

/// Where a `TensorProto` keeps its elements.
#[derive(Clone, Copy, Debug)]
pub enum TensorData<'a> {
    /// Little-endian element bytes, usable in place (`raw_data`, packed `float_data`,
    /// packed `double_data`).
    Raw(&'a [u8]),
    /// Elements encoded as varints or unpacked repeated fields: decoded into the arena at
    /// plan time (exporters use this only for small constants).
    Decode,
}

/// A `TensorProto` (initializer or `Constant` value).
#[derive(Clone, Copy, Debug)]
pub struct TensorProto<'a> {
    msg: &'a [u8],
}

impl<'a> TensorProto<'a> {
    /// Tensor name.
    pub fn name(&self) -> &'a str {
        field_str(self.msg, 8)
    }

    /// Raw ONNX data type code.
    pub fn data_type_code(&self) -> i64 {
        field_int(self.msg, 2).unwrap_or(0)
    }

    /// Element type, if we support it.
    pub fn dtype(&self) -> Option<DType> {
        DType::from_onnx(self.data_type_code())
    }

    /// Dims as stored (may be negative or huge in a corrupt file; see [`TensorProto::shape`]).
    pub fn dims(&self) -> impl Iterator<Item = i64> + Clone + 'a {
        repeated_varints(self.msg, 1)
    }

    /// The shape, refusing negative dims and element counts that overflow.
    pub fn shape(&self) -> Result<Shape> {
        let mut s = Shape::SCALAR;
        let mut volume: usize = 1;
        for d in self.dims() {
            let d = usize::try_from(d).map_err(|_| Error::Invalid {
                what: "negative tensor dim",
                name: Name::new(self.name()),
            })?;
            volume = volume.checked_mul(d).ok_or(Error::Invalid {
                what: "tensor too large",
                name: Name::new(self.name()),
            })?;
            s.push(d)?;
        }
        Ok(s)
    }

    /// Whether the data lives outside the file (not supported on a byte slice).
    pub fn is_external(&self) -> bool {
        field_int(self.msg, 14) == Some(1)
    }

    /// Where the elements are.
    pub fn data(&self) -> TensorData<'a> {
        if let Some(raw) = field_bytes(self.msg, 9) {
            return TensorData::Raw(raw);
        }
        let field = match self.dtype() {
            Some(DType::F32) => 4,
            Some(DType::F64) => 10,
            _ => return TensorData::Decode,
        };
        // A single packed field is contiguous little-endian data; anything else is decoded.
        let mut it = fields(self.msg).filter(|(f, _)| *f == field);
        match (it.next(), it.next()) {
            (Some((_, Value::Bytes(b))), None) => TensorData::Raw(b),
            (None, None) => TensorData::Raw(&[]),
            _ => TensorData::Decode,
        }
    }

    /// Writes the elements as little-endian bytes into `out` (length `volume * size`),
    /// decoding the typed fields. Used for [`TensorData::Decode`] tensors.
    pub fn decode_into(&self, out: &mut [u8]) {
        let Some(dtype) = self.dtype() else { return };
        let n = dtype.size();
        let mut chunks = out.chunks_exact_mut(n);
        let mut put = |bytes: &[u8]| {
            if let Some(c) = chunks.next() {
                c.copy_from_slice(&bytes[..n]);
            }
        };
        match dtype {
            DType::F32 => repeated_f32s(self.msg, 4).for_each(|v| put(&v.to_le_bytes())),
            DType::F64 => fields(self.msg)
                .filter(|(f, _)| *f == 10)
                .for_each(|(_, v)| match v {
                    Value::Fixed64(x) => put(&x.to_le_bytes()),
                    Value::Bytes(b) => b.chunks_exact(8).for_each(&mut put),
                    _ => {}
                }),
            DType::I64 => repeated_varints(self.msg, 7).for_each(|v| put(&v.to_le_bytes())),
            // int32_data holds int32, int16, int8, uint8, bool and float16 bits.
            _ => repeated_varints(self.msg, 5).for_each(|v| put(&(v as i32).to_le_bytes())),
        }
    }

    /// Checks dtype, shape and data length (called by [`Model::parse`]).
    fn validate(&self, model: &[u8]) -> Result<()> {
        let name = Name::new(self.name());
        if core::str::from_utf8(field_bytes(self.msg, 8).unwrap_or(&[])).is_err() {
            return Err(Error::Malformed {
                what: "tensor name is not UTF-8",
                offset: offset_in(model, self.msg),
            });
        }
        if let Some(b) = field_bytes(self.msg, 1) {
            check_packed_varints(b, offset_in(model, b))?;
        }
        if self.is_external() {
            return Err(Error::Invalid {
                what: "external tensor data is not supported",
                name,
            });
        }
        let dtype = self.dtype().ok_or(Error::Invalid {
            what: "unsupported tensor data type",
            name,
        })?;
        let volume = self.shape()?.volume();
        let expected = volume.checked_mul(dtype.size()).ok_or(Error::Invalid {
            what: "tensor too large",
            name,
        })?;
        let got = match self.data() {
            TensorData::Raw(b) => b.len(),
            TensorData::Decode => {
                for field in [5, 7] {
                    for (_, v) in fields(self.msg).filter(|(f, _)| *f == field) {
                        if let Value::Bytes(b) = v {
                            check_packed_varints(b, offset_in(model, b))?;
                        }
                    }
                }
                let count = match dtype {
                    DType::F32 => repeated_f32s(self.msg, 4).count(),
                    DType::F64 => fields(self.msg)
                        .filter(|(f, _)| *f == 10)
                        .map(|(_, v)| match v {
                            Value::Bytes(b) => b.len() / 8,
                            _ => 1,
                        })
                        .sum(),
                    DType::I64 => repeated_varints(self.msg, 7).count(),
                    _ => repeated_varints(self.msg, 5).count(),
                };
                count * dtype.size()
            }
        };
        if got != expected {
            return Err(Error::Invalid {
                what: "tensor data length does not match its shape",
                name,
            });
        }
        Ok(())
    }
}

/// A `ValueInfoProto`: a named, typed graph input/output.
#[derive(Clone, Copy, Debug)]
pub struct ValueInfo<'a> {
    msg: &'a [u8],
}

/// One declared dimension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dim<'a> {
    /// A fixed size.
    Fixed(usize),
    /// A symbolic or unknown size (`dim_param`).
    Symbolic(&'a str),
}

impl<'a> ValueInfo<'a> {
    /// Value name.
    pub fn name(&self) -> &'a str {
        field_str(self.msg, 1)
    }

    fn tensor_type(&self) -> Option<&'a [u8]> {
        field_bytes(self.msg, 2).and_then(|t| field_bytes(t, 1))
    }

    /// Declared element type.
    pub fn dtype(&self) -> Option<DType> {
        self.tensor_type()
            .and_then(|t| field_int(t, 1))
            .and_then(DType::from_onnx)
    }

    /// Declared dims; `None` when no shape is declared at all.
    pub fn dims(&self) -> Option<impl Iterator<Item = Dim<'a>> + Clone + 'a> {
        let shape = field_bytes(self.tensor_type()?, 2)?;
        Some(
            fields(shape)
                .filter(|(f, _)| *f == 1)
                .filter_map(|(_, v)| v.as_bytes())
                .map(|dim| match field_int(dim, 1) {
                    Some(v) if v >= 0 => Dim::Fixed(v as usize),
                    _ => Dim::Symbolic(field_str(dim, 2)),
                }),
        )
    }
}
