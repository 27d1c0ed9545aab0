//! Float models, training, and every quantization method of qbench. Methods lower their models to
//! the integer engine's graph; this crate never runs integer inference itself.

pub mod checkpoint;
pub mod error;
pub mod method;
pub mod model;

pub use error::{MethodError, Result};
pub mod data;
pub mod decode;
pub mod objective;
pub mod optim;
pub mod train;
