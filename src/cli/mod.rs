//! Subcommand implementations for the binary.

pub mod check;
pub mod once;
pub mod schema;
pub mod tags;
