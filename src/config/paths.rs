//! Paths written in policy files must stay inside the repository.

use std::path::{Component, Path};

/// Why a configured path is unsafe, if it is: absolute, or escaping the
/// repository with `..`.
pub(super) fn unsafe_path(path: &str) -> Option<&'static str> {
    if path.trim().is_empty() {
        return Some("is empty");
    }
    let p = Path::new(path);
    if p.is_absolute() || path.starts_with('/') || path.starts_with('\\') || path.contains(":\\") {
        return Some("is absolute");
    }
    if p.components().any(|c| matches!(c, Component::ParentDir)) || path.contains("\\..") {
        return Some("leaves the repository with `..`");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::unsafe_path;

    #[test]
    fn paths_must_stay_inside_the_repository() {
        assert_eq!(unsafe_path("envs/dev"), None);
        assert_eq!(unsafe_path("./envs/dev"), None);
        assert_eq!(unsafe_path("."), None);
        assert!(unsafe_path("/etc").is_some());
        assert!(unsafe_path("../other").is_some());
        assert!(unsafe_path("envs/../../x").is_some());
        assert!(unsafe_path("C:\\x").is_some());
        assert!(unsafe_path("").is_some());
    }
}
