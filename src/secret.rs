//! A secret string (password, token, private key) that cannot leak.
//!
//! Its `Debug` prints `Secret(***)` and it has no `Display`, so it cannot end
//! up in a log line, an error message or a metric label by accident; code
//! that must send it calls [`Secret::expose`] at that one place.

use std::fmt;
use std::path::PathBuf;

#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The secret itself, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// Where a secret is read from at run time. Every secret of the project
/// (git token, SSH passphrase, forge token or key, registry credentials,
/// webhook secret) is read through [`Source::read`], once per cycle or at
/// startup, so there is one place that touches the environment and files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// An environment variable.
    Env(String),
    /// A file; surrounding whitespace (a trailing newline) is dropped.
    File(PathBuf),
}

/// A secret could not be read; says which one and from where, never its value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("the environment variable {var} for the {what} is not set; export it or use `file:`")]
    MissingEnv { var: String, what: String },
    #[error("cannot read the {what} from {}: {detail}", path.display())]
    File {
        path: PathBuf,
        what: String,
        detail: String,
    },
    #[error("the {what} is empty in {origin}; set it to the secret")]
    Empty { what: String, origin: String },
}

impl Source {
    /// Reads the secret, trimmed; `what` names it in errors ("git token").
    pub fn read(&self, what: &str) -> Result<Secret, SecretError> {
        let (value, origin) = match self {
            Source::Env(var) => (
                std::env::var(var).map_err(|_| SecretError::MissingEnv {
                    var: var.clone(),
                    what: what.to_string(),
                })?,
                format!("${var}"),
            ),
            Source::File(path) => (
                std::fs::read_to_string(path).map_err(|e| SecretError::File {
                    path: path.clone(),
                    what: what.to_string(),
                    detail: e.to_string(),
                })?,
                path.display().to_string(),
            ),
        };
        let value = value.trim();
        if value.is_empty() {
            return Err(SecretError::Empty {
                what: what.to_string(),
                origin,
            });
        }
        Ok(Secret::new(value))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::Secret;

    #[test]
    fn sources_are_read_trimmed_and_errors_name_them() {
        use super::{SecretError, Source};
        let dir = std::env::temp_dir().join(format!("tw-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("token");
        std::fs::write(&file, "s3cret\n").unwrap();
        assert_eq!(
            Source::File(file.clone())
                .read("git token")
                .unwrap()
                .expose(),
            "s3cret"
        );
        std::fs::write(&file, "\n").unwrap();
        assert!(matches!(
            Source::File(file).read("git token"),
            Err(SecretError::Empty { .. })
        ));
        let missing = Source::Env("TW_SURELY_UNSET_VARIABLE".into())
            .read("forge token")
            .unwrap_err()
            .to_string();
        assert!(missing.contains("TW_SURELY_UNSET_VARIABLE") && missing.contains("forge token"));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn debug_hides_the_value() {
        assert_eq!(format!("{:?}", Secret::new("hunter2")), "Secret(***)");
        assert_eq!(Secret::new("x").expose(), "x");
    }
}
