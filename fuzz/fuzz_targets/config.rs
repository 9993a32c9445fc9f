//! The policy-file loader must never panic, whatever the text: every
//! problem is a diagnostic with a position, or the file loads.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tidewatch::config::{Config, ConfigError};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Config::from_text("fuzz.yaml", text) {
        Ok(config) => {
            // Whatever loaded must be usable by the engine without panics.
            for update in &config.updates {
                let _ = config.policies_of(update);
            }
        }
        Err(ConfigError::Invalid(diagnostics)) => {
            for d in diagnostics {
                let _ = d.to_string();
            }
        }
        Err(other) => {
            let _ = other.to_string();
        }
    }
});
