//! `tidewatch schema`: the JSON schema of the policy file.

use std::process::ExitCode;

pub fn run() -> ExitCode {
    match serde_json::to_string_pretty(&tidewatch::config::model::json_schema()) {
        Ok(text) => {
            println!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: cannot render the schema: {e}");
            ExitCode::FAILURE
        }
    }
}
