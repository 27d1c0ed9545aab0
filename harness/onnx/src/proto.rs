//! The subset of ONNX's protobuf schema (`onnx.proto`, IR version 8 and later) that qbench reads
//! and writes, as hand-written `prost` messages.
//!
//! Field numbers and types are those of the official `onnx/onnx.proto`; fields qbench does not use
//! (training info, functions, sparse tensors, sequences and maps) are left out, and `prost` skips
//! them when decoding, so any valid ONNX file decodes. Scalars are written proto3-style (a field at
//! its default value is omitted), which proto2 readers decode to the same value.

/// `TensorProto.DataType` values qbench uses.
pub mod data_type {
    /// 32-bit float.
    pub const FLOAT: i32 = 1;
    /// 8-bit unsigned.
    pub const UINT8: i32 = 2;
    /// 8-bit signed.
    pub const INT8: i32 = 3;
    /// 32-bit signed.
    pub const INT32: i32 = 6;
    /// 64-bit signed.
    pub const INT64: i32 = 7;
    /// 64-bit float.
    pub const DOUBLE: i32 = 11;

    /// Short name of a data type, for messages.
    pub fn name(t: i32) -> &'static str {
        match t {
            FLOAT => "float",
            UINT8 => "uint8",
            INT8 => "int8",
            4 => "uint16",
            5 => "int16",
            INT32 => "int32",
            INT64 => "int64",
            8 => "string",
            9 => "bool",
            10 => "float16",
            DOUBLE => "double",
            _ => "unsupported",
        }
    }
}

/// `AttributeProto.AttributeType` values qbench uses.
pub mod attribute_type {
    /// One float.
    pub const FLOAT: i32 = 1;
    /// One int.
    pub const INT: i32 = 2;
    /// One string.
    pub const STRING: i32 = 3;
    /// One tensor.
    pub const TENSOR: i32 = 4;
    /// A list of floats.
    pub const FLOATS: i32 = 6;
    /// A list of ints.
    pub const INTS: i32 = 7;
}

/// A whole ONNX model.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ModelProto {
    /// IR version.
    #[prost(int64, tag = "1")]
    pub ir_version: i64,
    /// Operator sets used.
    #[prost(message, repeated, tag = "8")]
    pub opset_import: Vec<OperatorSetIdProto>,
    /// Producer name.
    #[prost(string, tag = "2")]
    pub producer_name: String,
    /// Producer version.
    #[prost(string, tag = "3")]
    pub producer_version: String,
    /// Model domain.
    #[prost(string, tag = "4")]
    pub domain: String,
    /// Model version.
    #[prost(int64, tag = "5")]
    pub model_version: i64,
    /// Documentation.
    #[prost(string, tag = "6")]
    pub doc_string: String,
    /// The graph.
    #[prost(message, optional, tag = "7")]
    pub graph: Option<GraphProto>,
    /// Named metadata.
    #[prost(message, repeated, tag = "14")]
    pub metadata_props: Vec<StringStringEntryProto>,
}

/// An operator set and its version.
#[derive(Clone, PartialEq, prost::Message)]
pub struct OperatorSetIdProto {
    /// Domain (`""` = `ai.onnx`).
    #[prost(string, tag = "1")]
    pub domain: String,
    /// Version.
    #[prost(int64, tag = "2")]
    pub version: i64,
}

/// A key-value pair.
#[derive(Clone, PartialEq, prost::Message)]
pub struct StringStringEntryProto {
    /// Key.
    #[prost(string, tag = "1")]
    pub key: String,
    /// Value.
    #[prost(string, tag = "2")]
    pub value: String,
}

/// A computation graph.
#[derive(Clone, PartialEq, prost::Message)]
pub struct GraphProto {
    /// Nodes, in topological order.
    #[prost(message, repeated, tag = "1")]
    pub node: Vec<NodeProto>,
    /// Graph name.
    #[prost(string, tag = "2")]
    pub name: String,
    /// Constant tensors.
    #[prost(message, repeated, tag = "5")]
    pub initializer: Vec<TensorProto>,
    /// Documentation.
    #[prost(string, tag = "10")]
    pub doc_string: String,
    /// Graph inputs.
    #[prost(message, repeated, tag = "11")]
    pub input: Vec<ValueInfoProto>,
    /// Graph outputs.
    #[prost(message, repeated, tag = "12")]
    pub output: Vec<ValueInfoProto>,
    /// Types of intermediate values.
    #[prost(message, repeated, tag = "13")]
    pub value_info: Vec<ValueInfoProto>,
}

/// One operator application.
#[derive(Clone, PartialEq, prost::Message)]
pub struct NodeProto {
    /// Input value names (`""` = omitted optional input).
    #[prost(string, repeated, tag = "1")]
    pub input: Vec<String>,
    /// Output value names.
    #[prost(string, repeated, tag = "2")]
    pub output: Vec<String>,
    /// Node name.
    #[prost(string, tag = "3")]
    pub name: String,
    /// Operator type.
    #[prost(string, tag = "4")]
    pub op_type: String,
    /// Operator domain (`""` = `ai.onnx`).
    #[prost(string, tag = "7")]
    pub domain: String,
    /// Attributes.
    #[prost(message, repeated, tag = "5")]
    pub attribute: Vec<AttributeProto>,
    /// Documentation.
    #[prost(string, tag = "6")]
    pub doc_string: String,
}

/// A named attribute of a node.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AttributeProto {
    /// Name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// Which value field is used (see [`attribute_type`]).
    #[prost(int32, tag = "20")]
    pub r#type: i32,
    /// Float value.
    #[prost(float, tag = "2")]
    pub f: f32,
    /// Int value.
    #[prost(int64, tag = "3")]
    pub i: i64,
    /// String value (bytes).
    #[prost(bytes = "vec", tag = "4")]
    pub s: Vec<u8>,
    /// Tensor value.
    #[prost(message, optional, tag = "5")]
    pub t: Option<TensorProto>,
    /// Float list.
    #[prost(float, repeated, tag = "7")]
    pub floats: Vec<f32>,
    /// Int list.
    #[prost(int64, repeated, tag = "8")]
    pub ints: Vec<i64>,
}

/// A typed, named value (graph input, output or intermediate).
#[derive(Clone, PartialEq, prost::Message)]
pub struct ValueInfoProto {
    /// Value name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// Its type.
    #[prost(message, optional, tag = "2")]
    pub r#type: Option<TypeProto>,
    /// Documentation.
    #[prost(string, tag = "3")]
    pub doc_string: String,
}

/// A value's type; qbench uses tensor types only.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TypeProto {
    /// Tensor type (field 1 of the `value` oneof).
    #[prost(message, optional, tag = "1")]
    pub tensor_type: Option<TypeProtoTensor>,
}

/// `TypeProto.Tensor`: element type and shape.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TypeProtoTensor {
    /// Element type (see [`data_type`]).
    #[prost(int32, tag = "1")]
    pub elem_type: i32,
    /// Shape.
    #[prost(message, optional, tag = "2")]
    pub shape: Option<TensorShapeProto>,
}

/// A tensor shape of fixed and symbolic dimensions.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TensorShapeProto {
    /// Dimensions.
    #[prost(message, repeated, tag = "1")]
    pub dim: Vec<Dimension>,
}

/// One dimension: a size or a symbol (oneof `value`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Dimension {
    /// Fixed size.
    #[prost(int64, optional, tag = "1")]
    pub dim_value: Option<i64>,
    /// Symbolic name (e.g. the batch `N`).
    #[prost(string, optional, tag = "2")]
    pub dim_param: Option<String>,
}

/// A constant tensor.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TensorProto {
    /// Dimensions.
    #[prost(int64, repeated, tag = "1")]
    pub dims: Vec<i64>,
    /// Element type (see [`data_type`]).
    #[prost(int32, tag = "2")]
    pub data_type: i32,
    /// Float elements (when not in `raw_data`).
    #[prost(float, repeated, tag = "4")]
    pub float_data: Vec<f32>,
    /// int32, int8, uint8 (and other narrow) elements (when not in `raw_data`).
    #[prost(int32, repeated, tag = "5")]
    pub int32_data: Vec<i32>,
    /// int64 elements (when not in `raw_data`).
    #[prost(int64, repeated, tag = "7")]
    pub int64_data: Vec<i64>,
    /// Name.
    #[prost(string, tag = "8")]
    pub name: String,
    /// Documentation.
    #[prost(string, tag = "12")]
    pub doc_string: String,
    /// Little-endian elements.
    #[prost(bytes = "vec", tag = "9")]
    pub raw_data: Vec<u8>,
    /// 1 = external data (not supported by qbench).
    #[prost(int32, tag = "14")]
    pub data_location: i32,
    /// Double elements (when not in `raw_data`).
    #[prost(double, repeated, tag = "10")]
    pub double_data: Vec<f64>,
}
