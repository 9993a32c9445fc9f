//! Subcommand implementations for the binary.

pub mod check;
pub mod schema;
pub mod tags;
