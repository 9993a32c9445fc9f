//! tidewatch: watch container registries, pick image tags by policy, and
//! rewrite GitOps manifests without reformatting them.
//!
//! The modules follow the data flow of one cycle (see `DESIGN.md`):
//! `config` loads and checks policy files; `registry` lists tags and their
//! metadata; `policy` picks tags; `manifest` edits files byte-exactly; `git`
//! and `forge` deliver commits and pull requests; `engine` wires one cycle;
//! `reference` parses and normalises image names for all of them.

pub mod config;
pub mod deadline;
pub mod duration;
pub mod engine;
pub mod forge;
pub mod gate;
pub mod git;
pub mod lease;
pub mod manifest;
pub mod policy;
pub mod reference;
pub mod registry;
pub mod retry;
pub mod schedule;
pub mod secret;
pub mod server;
pub mod timeouts;
pub mod webhook;
