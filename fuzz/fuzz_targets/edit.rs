//! Fuzzes the manifest editor: arbitrary text as a values file holding
//! references to a watched image, edited to a pick chosen by the input.
//! It must never panic; any edit it makes must parse again, and applying the
//! same pick to its own output must change nothing.
#![no_main]

use std::collections::{HashMap, HashSet};

use libfuzzer_sys::fuzz_target;
use tidewatch::manifest::{self, Scope, Watched};
use tidewatch::policy::Pick;
use tidewatch::reference::ImageName;

const PICKS: [&str; 8] = ["1.2.3", "1.20", "2024-06-27", "0755", "true", "a: b", "it's", "v2 #x"];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else { return };
    let Ok(text) = std::str::from_utf8(rest) else { return };
    let Ok(image) = ImageName::parse("ghcr.io/acme/app") else { return };
    let watched = vec![Watched {
        policy: "app".into(),
        image,
        image_text: "ghcr.io/acme/app".into(),
    }];
    let all: HashSet<String> = ["app".to_string()].into();
    let scope = Scope {
        paths: &[],
        watched: &watched,
        all_policies: &all,
        targets: &[],
        size_cap: manifest::DEFAULT_SIZE_CAP,
        foreign_paths: &[],
    };
    let digest = (selector & 0x80 != 0).then(|| format!("sha256:{}", "c".repeat(64)));
    let pick = Pick {
        tag: PICKS[usize::from(selector) % PICKS.len()].to_string(),
        digest,
    };
    let picks: HashMap<String, Pick> = [("app".to_string(), pick)].into();
    if let Ok(Some(change)) = manifest::plan_text("values.yaml", text, &scope, &picks) {
        let again = manifest::plan_text("values.yaml", &change.updated, &scope, &picks);
        assert!(
            matches!(again, Ok(None)),
            "second application is not a no-op: {again:?}"
        );
    }
});
