//! Where cross-check problems are reported: a field path of an item in
//! one of the policy files, resolved to file:line:col.

use std::path::PathBuf;

use super::diagnostic::Diagnostic;
use super::positions::{Position, PositionIndex};

/// Reports problems at a field path of an item in one of the files.
pub(super) struct Reporter<'a> {
    pub(super) files: &'a [PathBuf],
    pub(super) indexes: &'a [PositionIndex],
    pub(super) diagnostics: &'a mut Vec<Diagnostic>,
}

impl Reporter<'_> {
    /// Reports at the key of `path` (the field name), where a field is wrong
    /// as a whole, e.g. it conflicts with another.
    pub(super) fn at(&mut self, source: usize, path: &str, message: String, hint: Option<String>) {
        let index = &self.indexes[source];
        let position = index.key(path).unwrap_or_else(|| index.nearest(path));
        self.push(source, position, path, message, hint);
    }

    /// Reports at the value of `path`, where the value itself is wrong.
    pub(super) fn at_value(
        &mut self,
        source: usize,
        path: &str,
        message: String,
        hint: Option<String>,
    ) {
        let position = self.indexes[source].nearest(path);
        self.push(source, position, path, message, hint);
    }

    fn push(
        &mut self,
        source: usize,
        position: Position,
        path: &str,
        message: String,
        hint: Option<String>,
    ) {
        self.diagnostics.push(Diagnostic {
            file: self.files[source].clone(),
            position,
            path: path.to_string(),
            message,
            hint,
        });
    }

    /// Diagnostics reported so far.
    pub(super) fn count(&self) -> usize {
        self.diagnostics.len()
    }

    pub(super) fn where_is(&self, source: usize, path: &str) -> String {
        let p = self.indexes[source].nearest(path);
        format!("{}:{}:{}", self.files[source].display(), p.line, p.column)
    }
}
