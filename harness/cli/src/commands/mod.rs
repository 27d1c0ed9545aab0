//! One module per subcommand.

pub mod data;
pub mod models;
pub mod reproduce;
pub mod train;
