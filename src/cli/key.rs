//! `dropkey key set|delete|status PROFILE`: the keychain side of a profile. The secret is read
//! from stdin only (never an argument, which other users can see in the process list) and no
//! command ever prints it.

use clap::Subcommand;
use serde_json::{json, Value};

use super::Context;
use crate::Error;
use dropkey_core::secrets::env_var_name;
use secrecy::SecretString;
use zeroize::Zeroizing;

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
            let secret = read_secret(&format!(
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

/// Reads a secret from stdin: without echo when stdin is a terminal, else the whole input with
/// one trailing newline removed. The core's `SecretStore::set` then checks its shape, for the
/// CLI and the app alike.
fn read_secret(prompt: &str) -> Result<SecretString, Error> {
    use std::io::{IsTerminal as _, Read as _};
    let secret = if std::io::stdin().is_terminal() {
        Zeroizing::new(rpassword::prompt_password(prompt).map_err(Error::Stdin)?)
    } else {
        // Room for any real key up front: growing the string would free copies unwiped.
        let mut text = Zeroizing::new(String::with_capacity(16 * 1024));
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(Error::Stdin)?;
        if text.ends_with('\n') {
            text.pop();
            if text.ends_with('\r') {
                text.pop();
            }
        }
        text
    };
    Ok(SecretString::from(secret.as_str()))
}
