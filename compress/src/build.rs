//! Writing ONNX models from Rust.
//!
//! A small builder over `tract_onnx::pb` for graphs assembled in code: the op test suites
//! build one tiny graph per case with it, and compression passes use it to emit new nodes
//! and initializers. Tensors are stored as `raw_data` (little-endian), as exporters do.

use prost::Message;
use tract_onnx::pb::{
    self, attribute_proto::AttributeType, tensor_shape_proto::dimension,
    tensor_shape_proto::Dimension, type_proto, AttributeProto, GraphProto, ModelProto, NodeProto,
    OperatorSetIdProto, TensorProto, TensorShapeProto, TypeProto, ValueInfoProto,
};

/// ONNX `DataType` codes.
pub mod dt {
    /// float32
    pub const FLOAT: i32 = 1;
    /// uint8
    pub const UINT8: i32 = 2;
    /// int8
    pub const INT8: i32 = 3;
    /// int32
    pub const INT32: i32 = 6;
    /// int64
    pub const INT64: i32 = 7;
    /// bool
    pub const BOOL: i32 = 9;
    /// float16
    pub const FLOAT16: i32 = 10;
}

/// An attribute value.
// A builder value, built once per attribute: boxing the tensor would only add noise.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
pub enum Attr {
    /// INT
    Int(i64),
    /// FLOAT
    Float(f32),
    /// STRING
    Str(String),
    /// INTS
    Ints(Vec<i64>),
    /// FLOATS
    Floats(Vec<f32>),
    /// STRINGS
    Strings(Vec<String>),
    /// TENSOR
    Tensor(TensorProto),
}

fn attribute(name: &str, value: Attr) -> AttributeProto {
    let mut a = AttributeProto {
        name: name.to_string(),
        ..Default::default()
    };
    let kind = match value {
        Attr::Int(i) => {
            a.i = i;
            AttributeType::Int
        }
        Attr::Float(f) => {
            a.f = f;
            AttributeType::Float
        }
        Attr::Str(s) => {
            a.s = s.into_bytes();
            AttributeType::String
        }
        Attr::Ints(v) => {
            a.ints = v;
            AttributeType::Ints
        }
        Attr::Floats(v) => {
            a.floats = v;
            AttributeType::Floats
        }
        Attr::Strings(v) => {
            a.strings = v.into_iter().map(String::into_bytes).collect();
            AttributeType::Strings
        }
        Attr::Tensor(t) => {
            a.t = Some(t);
            AttributeType::Tensor
        }
    };
    a.r#type = kind as i32;
    a
}

/// A tensor proto with little-endian `raw_data`.
pub fn tensor(name: &str, data_type: i32, dims: &[usize], raw: Vec<u8>) -> TensorProto {
    TensorProto {
        name: name.to_string(),
        data_type,
        dims: dims.iter().map(|&d| d as i64).collect(),
        raw_data: raw,
        ..Default::default()
    }
}

/// A float32 tensor proto.
pub fn tensor_f32(name: &str, dims: &[usize], data: &[f32]) -> TensorProto {
    tensor(
        name,
        dt::FLOAT,
        dims,
        data.iter().flat_map(|v| v.to_le_bytes()).collect(),
    )
}

/// An int64 tensor proto.
pub fn tensor_i64(name: &str, dims: &[usize], data: &[i64]) -> TensorProto {
    tensor(
        name,
        dt::INT64,
        dims,
        data.iter().flat_map(|v| v.to_le_bytes()).collect(),
    )
}

/// A value info: `dims = None` leaves the shape for inference; `elem_type` 0 leaves the
/// type too.
pub fn value_info(name: &str, elem_type: i32, dims: Option<&[usize]>) -> ValueInfoProto {
    let shape = dims.map(|dims| TensorShapeProto {
        dim: dims
            .iter()
            .map(|&d| Dimension {
                value: Some(dimension::Value::DimValue(d as i64)),
                ..Default::default()
            })
            .collect(),
    });
    ValueInfoProto {
        name: name.to_string(),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type,
                shape,
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Builds one ONNX model.
#[derive(Clone, Debug)]
pub struct ModelBuilder {
    graph: GraphProto,
    opset: i64,
    metadata: Vec<(String, String)>,
}

impl ModelBuilder {
    /// An empty graph for default-domain opset `opset`.
    pub fn new(opset: i64) -> Self {
        ModelBuilder {
            graph: GraphProto {
                name: "edgetrim".into(),
                ..Default::default()
            },
            opset,
            metadata: Vec::new(),
        }
    }

    /// Adds a `metadata_props` entry.
    pub fn metadata(&mut self, key: &str, value: &str) -> &mut Self {
        self.metadata.push((key.into(), value.into()));
        self
    }

    /// Declares a graph input with fixed dims.
    pub fn input(&mut self, name: &str, elem_type: i32, dims: &[usize]) -> &mut Self {
        self.graph
            .input
            .push(value_info(name, elem_type, Some(dims)));
        self
    }

    /// Declares a graph output (type left for inference).
    pub fn output(&mut self, name: &str, elem_type: i32) -> &mut Self {
        self.graph.output.push(value_info(name, elem_type, None));
        self
    }

    /// Adds an initializer.
    pub fn init(&mut self, t: TensorProto) -> &mut Self {
        self.graph.initializer.push(t);
        self
    }

    /// Adds a float32 initializer.
    pub fn init_f32(&mut self, name: &str, dims: &[usize], data: &[f32]) -> &mut Self {
        self.init(tensor_f32(name, dims, data))
    }

    /// Adds an int64 initializer.
    pub fn init_i64(&mut self, name: &str, dims: &[usize], data: &[i64]) -> &mut Self {
        self.init(tensor_i64(name, dims, data))
    }

    /// Adds a node (empty input names mark omitted optional inputs).
    pub fn node(
        &mut self,
        op_type: &str,
        inputs: &[&str],
        outputs: &[&str],
        attrs: Vec<(&str, Attr)>,
    ) -> &mut Self {
        let n = self.graph.node.len();
        self.graph.node.push(NodeProto {
            name: format!("{op_type}_{n}"),
            op_type: op_type.to_string(),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: outputs.iter().map(|s| s.to_string()).collect(),
            attribute: attrs.into_iter().map(|(k, v)| attribute(k, v)).collect(),
            ..Default::default()
        });
        self
    }

    /// The `ModelProto`.
    pub fn proto(&self) -> ModelProto {
        ModelProto {
            ir_version: 8,
            producer_name: "edgetrim".into(),
            opset_import: vec![OperatorSetIdProto {
                domain: String::new(),
                version: self.opset,
            }],
            graph: Some(self.graph.clone()),
            metadata_props: self
                .metadata
                .iter()
                .map(|(key, value)| pb::StringStringEntryProto {
                    key: key.clone(),
                    value: value.clone(),
                })
                .collect(),
            ..Default::default()
        }
    }

    /// The encoded model bytes.
    pub fn build(&self) -> Vec<u8> {
        self.proto().encode_to_vec()
    }
}

/// Decodes model bytes into a `ModelProto`.
pub fn decode(bytes: &[u8]) -> Result<pb::ModelProto, prost::DecodeError> {
    pb::ModelProto::decode(bytes)
}
