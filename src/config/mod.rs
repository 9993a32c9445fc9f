//! Policy files: the model, loading (one file or a directory of `*.yaml`),
//! and validation with file:line:column errors.
//!
//! Loading never stops at the first problem: it returns every diagnostic it
//! can find, so `tidewatch check` shows a user all they have to fix at once.

mod chunks;
mod diagnostic;
mod gates;
mod load;
pub mod model;
mod paths;
mod positions;
mod reporter;
mod validate;

use std::collections::HashMap;
use std::ops::Deref;
use std::path::{Path, PathBuf};

pub use diagnostic::Diagnostic;
pub use model::*;
pub use positions::Position;

use crate::policy::Policy;

/// A config item and where it was written, for errors that point at it.
#[derive(Clone, Debug)]
pub struct Located<T> {
    pub item: T,
    /// Index into [`Config::sources`].
    pub source: usize,
    /// Field path of the item in its file, e.g. `images[3]`.
    pub path: String,
}

impl<T> Deref for Located<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.item
    }
}

/// One policy file that took part in a config, with what it contributed.
#[derive(Debug)]
pub struct Source {
    pub path: PathBuf,
    pub repository: bool,
    pub registries: usize,
    pub images: usize,
    pub updates: usize,
}

impl Source {
    /// The one-line summary `check` prints.
    pub fn summary(&self) -> String {
        let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
        let mut parts = Vec::new();
        if self.repository {
            parts.push("repository".to_string());
        }
        parts.push(plural(self.registries, "registry").replace("registrys", "registries"));
        parts.push(plural(self.images, "image policy").replace("policys", "policies"));
        parts.push(plural(self.updates, "update"));
        format!("{}: ok ({})", self.path.display(), parts.join(", "))
    }
}

/// A loaded, validated configuration: all files merged.
#[derive(Debug)]
pub struct Config {
    pub sources: Vec<Source>,
    pub repository: Option<Located<Repository>>,
    pub registries: Vec<Located<RegistrySettings>>,
    pub images: Vec<Located<ImagePolicy>>,
    pub updates: Vec<Located<Update>>,
    pub server: Option<Located<Server>>,
    /// Each image policy compiled for selection, by policy name.
    pub policies: HashMap<String, Policy>,
    /// Each image policy's image, parsed and normalised, by policy name.
    pub image_names: HashMap<String, crate::reference::ImageName>,
    /// The gate settings, parsed (see `config/gates.rs`).
    pub gates: GateSettings,
}

/// Minimum ages and trusted keys by image policy, soaks by update.
#[derive(Debug, Default)]
pub struct GateSettings {
    pub minimum_age: HashMap<String, std::time::Duration>,
    pub keys: HashMap<String, std::sync::Arc<crate::gate::Keys>>,
    pub soak: HashMap<String, std::time::Duration>,
}

/// Why a config could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} holds no *.yaml or *.yml policy files", path.display())]
    Empty { path: PathBuf },
    #[error("{} problem(s) in the policy files:\n{}", .0.len(), render(.0))]
    Invalid(Vec<Diagnostic>),
}

fn render(diagnostics: &[Diagnostic]) -> String {
    diagnostics
        .iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

impl Config {
    /// Loads `path`: a policy file, or a directory whose `*.yaml`/`*.yml`
    /// files (not recursive, in name order) are merged.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let files = policy_files(path)?;
        let mut diagnostics = Vec::new();
        let mut parsed = Vec::new();
        for file in &files {
            let bytes = read_capped(file)?;
            // A file that cannot be read as text is one diagnostic; the
            // other files are still checked.
            let text = match bytes {
                Some(bytes) => match String::from_utf8(bytes) {
                    Ok(text) => text,
                    Err(e) => {
                        diagnostics.push(Diagnostic {
                            file: file.clone(),
                            position: whereabouts(e.as_bytes(), e.utf8_error().valid_up_to()),
                            path: String::new(),
                            message: "the file is not UTF-8 text; save it as UTF-8".into(),
                            hint: None,
                        });
                        String::new()
                    }
                },
                None => {
                    diagnostics.push(Diagnostic {
                        file: file.clone(),
                        position: Position { line: 1, column: 1 },
                        path: String::new(),
                        message: format!(
                            "the file is larger than {} KiB, more than a policy file needs; split it into several files in one directory",
                            MAX_FILE_BYTES / 1024
                        ),
                        hint: None,
                    });
                    String::new()
                }
            };
            parsed.push(load::parse_file(file, &text, &mut diagnostics));
        }
        let config = validate::merge_and_check(files, parsed, &mut diagnostics);
        if diagnostics.is_empty() {
            Ok(config)
        } else {
            diagnostics.sort_by(|a, b| (&a.file, a.position).cmp(&(&b.file, b.position)));
            Err(ConfigError::Invalid(diagnostics))
        }
    }

    /// The image policies an update writes (its `images:`, else all), in
    /// the order the policy files list them.
    pub fn policies_of<'c>(&'c self, update: &'c Update) -> Vec<&'c str> {
        match &update.images {
            Some(names) => self
                .images
                .iter()
                .map(|i| i.name.as_str())
                .filter(|n| names.iter().any(|m| m == n))
                .collect(),
            None => self.images.iter().map(|i| i.name.as_str()).collect(),
        }
    }

    /// Loads one policy file given as text (`name` is what errors call it):
    /// the entry point for fuzzing and for callers without a file system.
    pub fn from_text(name: &str, text: &str) -> Result<Config, ConfigError> {
        let file = PathBuf::from(name);
        let mut diagnostics = Vec::new();
        let parsed = load::parse_file(&file, text, &mut diagnostics);
        let config = validate::merge_and_check(vec![file], vec![parsed], &mut diagnostics);
        if diagnostics.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError::Invalid(diagnostics))
        }
    }

    /// The settings for a registry host, if the config lists it.
    pub fn registry(&self, host: &str) -> Option<&RegistrySettings> {
        self.registries
            .iter()
            .map(|r| &r.item)
            .find(|r| r.host == host)
    }
}

/// The largest policy file read (1 MiB).
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// The file's bytes, or `None` when it is larger than [`MAX_FILE_BYTES`]
/// (only that much is ever read).
fn read_capped(file: &Path) -> Result<Option<Vec<u8>>, ConfigError> {
    use std::io::Read;
    let read_error = |source| ConfigError::Read {
        path: file.to_path_buf(),
        source,
    };
    let handle = std::fs::File::open(file).map_err(read_error)?;
    let mut bytes = Vec::new();
    handle
        .take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(read_error)?;
    Ok((bytes.len() as u64 <= MAX_FILE_BYTES).then_some(bytes))
}

/// The 1-based line and column of byte `offset`.
fn whereabouts(bytes: &[u8], offset: usize) -> Position {
    let before = &bytes[..offset.min(bytes.len())];
    let line = before.iter().filter(|b| **b == b'\n').count() + 1;
    let column = before.iter().rev().take_while(|b| **b != b'\n').count() + 1;
    Position { line, column }
}

fn policy_files(path: &Path) -> Result<Vec<PathBuf>, ConfigError> {
    let read_error = |source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(read_error)?;
    if !meta.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files = Vec::new();
    for entry in std::fs::read_dir(path).map_err(read_error)? {
        let entry = entry.map_err(read_error)?;
        let p = entry.path();
        let is_yaml = p.extension().is_some_and(|e| e == "yaml" || e == "yml");
        if is_yaml && p.is_file() {
            files.push(p);
        }
    }
    files.sort();
    if files.is_empty() {
        return Err(ConfigError::Empty {
            path: path.to_path_buf(),
        });
    }
    Ok(files)
}
