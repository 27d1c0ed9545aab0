//! [`Emitter`]: appends ONNX nodes and initializers in groups, one group per engine node, so that
//! every ONNX node and constant of an exported model says which engine node it implements.
//!
//! Naming: the group of engine node `n` outputs the value `n`; its helper values and nodes are
//! `n:0`, `n:1`, ...; its constants are `n.<role>`. The group's first node carries
//! `qbench:<hint JSON>` in its `doc_string`: the little an ONNX graph cannot say itself (bit widths
//! below 8 and the weight kind).

use crate::proto::{AttributeProto, NodeProto, TensorProto, attribute_type};

/// Collects nodes and initializers.
#[derive(Debug, Default)]
pub struct Emitter {
    /// Nodes in topological order.
    pub nodes: Vec<NodeProto>,
    /// Constants.
    pub inits: Vec<TensorProto>,
    group: String,
    next: usize,
    start: usize,
}

impl Emitter {
    /// Starts the group of engine node `group`; `hint` goes into its first node's doc string.
    pub fn begin(&mut self, group: &str) {
        self.group = group.to_string();
        self.next = 0;
        self.start = self.nodes.len();
    }

    /// Adds a constant named `<group>.<role>` (the tensor's own name is replaced); returns its name.
    pub fn constant(&mut self, role: &str, mut t: TensorProto) -> String {
        t.name = format!("{}.{role}", self.group);
        let name = t.name.clone();
        self.inits.push(t);
        name
    }

    /// Appends a default-domain node; returns its output's name.
    pub fn op(&mut self, op_type: &str, inputs: &[&str], attrs: Vec<AttributeProto>) -> String {
        self.op_in("", op_type, inputs, attrs)
    }

    /// Appends a node of `domain`; returns its output's name.
    pub fn op_in(
        &mut self,
        domain: &str,
        op_type: &str,
        inputs: &[&str],
        attrs: Vec<AttributeProto>,
    ) -> String {
        let out = format!("{}:{}", self.group, self.next);
        self.next += 1;
        self.nodes.push(NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![out.clone()],
            name: out.clone(),
            op_type: op_type.to_string(),
            domain: domain.to_string(),
            attribute: attrs,
            doc_string: String::new(),
        });
        out
    }

    /// Ends the group: its last node is renamed to output the value `<group>` (or `output` when
    /// given) and its first node gets the hint. Returns the output value's name.
    pub fn end(&mut self, hint: &str, output: Option<&str>) -> String {
        let out = output.unwrap_or(&self.group).to_string();
        if let Some(last) = self.nodes.last_mut() {
            last.output = vec![out.clone()];
            last.name = self.group.clone();
        }
        if let Some(first) = self.nodes.get_mut(self.start) {
            first.doc_string = format!("qbench:{hint}");
        }
        out
    }

    /// The nodes of the group begun last.
    pub fn group_nodes(&self) -> &[NodeProto] {
        &self.nodes[self.start..]
    }
}

/// An int attribute.
pub fn int(name: &str, i: i64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: attribute_type::INT,
        i,
        ..AttributeProto::default()
    }
}

/// An ints attribute.
pub fn ints(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: attribute_type::INTS,
        ints: v.to_vec(),
        ..AttributeProto::default()
    }
}

/// A float attribute.
pub fn float(name: &str, f: f32) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: attribute_type::FLOAT,
        f,
        ..AttributeProto::default()
    }
}

/// A string attribute.
pub fn string(name: &str, s: &str) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: attribute_type::STRING,
        s: s.as_bytes().to_vec(),
        ..AttributeProto::default()
    }
}
