//! Reading ONNX models in place: the protobuf wire format and views of the ONNX messages.

mod model;
pub mod wire;

pub use model::{AttrKind, Attribute, Dim, Model, Node, TensorData, TensorProto, ValueInfo};
