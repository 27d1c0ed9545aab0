//! Float models: architectures as data, their parameters, and their candle forward pass.

pub mod arch;
mod batch_norm;
pub mod conv;
pub mod forward;
pub mod params;
pub mod pool;
#[cfg(test)]
pub(crate) mod test_util;
pub mod zoo;
