//! KITTI's 2D object detection benchmark: the label format, the folder layout, the official
//! evaluation, and a generated set in the same format.

mod object;

pub use object::{EVAL_CLASSES, Object, ObjectType};

pub mod eval;
mod label;

pub use label::{format_result_line, parse_labels, read_labels, write_results};
