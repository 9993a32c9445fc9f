//! What an update group covers, as the manifest scanner needs it: the
//! watched images of its policies, its explicit targets, and every policy
//! name (to tell another update's markers from unknown ones).

use std::collections::HashSet;
use std::path::Path;

use crate::config::{Config, TargetPart, Update};
use crate::manifest::{self, Part, Scope, Target, Watched};

pub struct UpdateScope {
    pub watched: Vec<Watched>,
    pub targets: Vec<Target>,
    pub all_policies: HashSet<String>,
    /// The paths of every other update.
    pub foreign_paths: Vec<String>,
}

impl UpdateScope {
    pub fn of(config: &Config, update: &Update) -> UpdateScope {
        let names = config.policies_of(update);
        let watched = config
            .images
            .iter()
            .filter(|i| names.contains(&i.name.as_str()))
            .filter_map(|i| {
                Some(Watched {
                    policy: i.name.clone(),
                    image: config.image_names.get(&i.name)?.clone(),
                    image_text: i.image.clone(),
                })
            })
            .collect();
        let targets = update
            .targets
            .iter()
            .map(|t| Target {
                file: t.file.clone(),
                path: t.path.clone(),
                policy: t.policy.clone(),
                part: match t.part {
                    Some(TargetPart::Full) => Part::Full,
                    Some(TargetPart::Name) => Part::Name,
                    Some(TargetPart::Digest) => Part::Digest,
                    _ => Part::Tag,
                },
            })
            .collect();
        UpdateScope {
            watched,
            targets,
            all_policies: config.images.iter().map(|i| i.name.clone()).collect(),
            foreign_paths: config
                .updates
                .iter()
                .filter(|u| u.name != update.name)
                .flat_map(|u| u.paths.iter().cloned())
                .collect(),
        }
    }

    /// Scans the update's paths under `root` (the worktree).
    pub fn scan(&self, root: &Path, update: &Update) -> manifest::Scan {
        manifest::scan(
            root,
            &Scope {
                paths: &update.paths,
                watched: &self.watched,
                all_policies: &self.all_policies,
                targets: &self.targets,
                size_cap: manifest::DEFAULT_SIZE_CAP,
                foreign_paths: &self.foreign_paths,
            },
        )
    }

    /// The image as the policy file writes it.
    pub fn image_text(&self, policy: &str) -> String {
        self.watched
            .iter()
            .find(|w| w.policy == policy)
            .map_or_else(String::new, |w| w.image_text.clone())
    }
}
