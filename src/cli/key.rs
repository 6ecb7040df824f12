//! `dropkey key set|delete|status PROFILE`: the keychain side of a profile. The secret is read
//! from stdin only (never an argument, which other users can see in the process list) and no
//! command ever prints it.

use clap::Subcommand;
use serde_json::{json, Value};

use super::Context;
use crate::Error;
use dropkey_core::secrets::{env_var_name, read_secret_from_stdin};

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Store PROFILE's private key in the keychain, read from stdin (no echo on a terminal).
    Set { profile: String },
    /// Remove PROFILE's private key from the keychain.
    Delete { profile: String },
    /// Say where PROFILE's key comes from: keychain, env, file (sandbox only) or missing.
    Status { profile: String },
}

pub fn run(ctx: &Context, command: &KeyCommand) -> Result<Value, Error> {
    match command {
        KeyCommand::Set { profile } => {
            let profile = ctx.profile(profile)?;
            let secret = read_secret_from_stdin(&format!(
                "Private key for profile `{}` (input hidden): ",
                profile.name
            ))?;
            ctx.secrets.set(profile, &secret)?;
            let env_var = env_var_name(&profile.name);
            if dropkey_core::secrets::env_override_set(&profile.name) {
                tracing::warn!("{env_var} is set and takes precedence over the keychain");
            }
            Ok(json!({ "profile": profile.name, "source": "keychain", "stored": true }))
        }
        KeyCommand::Delete { profile } => {
            let profile = ctx.profile(profile)?;
            let deleted = ctx.secrets.delete(profile)?;
            Ok(json!({ "profile": profile.name, "deleted": deleted }))
        }
        KeyCommand::Status { profile } => {
            let profile = ctx.profile(profile)?;
            let source = ctx.secrets.status(profile)?;
            Ok(json!({ "profile": profile.name, "source": source.as_str() }))
        }
    }
}
