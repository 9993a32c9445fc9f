//! Subcommand implementations for the binary.

pub mod check;
pub mod once;
pub mod run;
pub mod schema;
pub mod tags;
