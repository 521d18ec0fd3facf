//! Secrets named by the config (key passphrase, HMAC key, RPC passwords) are read from the
//! environment once, at start, and then removed from it.
//!
//! Removing a variable (`unsetenv`) only drops it from the C library's `environ` array: the
//! kernel keeps showing the environment the process started with in `/proc/<pid>/environ`,
//! and core dumps hold it too. So [`Config::take_env_secrets`] also overwrites the original
//! `NAME=value` bytes with zeros, through `/proc/self/mem` (plain file I/O, Linux only; the
//! workspace forbids `unsafe`), after `unsetenv` stopped anything from pointing at them.

use std::fmt;

use zeroize::Zeroizing;

use crate::config::Config;
use crate::keyfile::PassphraseSource;

/// A secret read from the environment. Wiped on drop; `Debug` prints `<redacted>`.
#[derive(Clone)]
pub struct TakenSecret(Zeroizing<String>);

impl TakenSecret {
    /// The secret's text.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for TakenSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// What [`Config::take_env_secrets`] did, for the start-up log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Taken {
    /// The variables read and removed (names only).
    pub names: Vec<String>,
    /// Whether the process's original environment block no longer holds them; `Err` says why
    /// not (not Linux, `/proc` not mounted, …): the variables are still gone from `environ`.
    pub original_wiped: Result<(), String>,
}

impl Config {
    /// Reads every secret this config takes from an environment variable (the key passphrase,
    /// the HMAC key, the RPC passwords), keeps it in this config (where the readers find it),
    /// and removes the variable from the process: from `environ`, and its bytes from the
    /// original environment block (`/proc/<pid>/environ`). A variable that is not set is left
    /// to the reader, whose error names it.
    ///
    /// Call it on the main thread before any other thread exists (before the async runtime):
    /// `std::env::remove_var` is not thread-safe (another thread's `getenv` may read the entry
    /// being removed; it is `unsafe` from edition 2024 for that reason), and no other thread
    /// may hold a pointer into the block being overwritten.
    pub fn take_env_secrets(&mut self) -> Taken {
        let mut names = Vec::new();
        if let PassphraseSource::Env(name) = self.passphrase_source() {
            self.signer.passphrase_taken = take(&name, &mut names);
        }
        if let Some(name) = self.auth.hmac_key_env.clone() {
            self.auth.hmac_key_taken = take(&name, &mut names);
        }
        for node in std::iter::once(&mut self.btc_config).chain(self.btc_signer_config.as_mut()) {
            if let Some(name) = node.pass_env.clone() {
                node.pass_taken = take(&name, &mut names);
            }
        }
        let original_wiped = if names.is_empty() {
            Ok(())
        } else {
            wipe_original_environment(&names).map_err(|e| e.to_string())
        };
        Taken {
            names,
            original_wiped,
        }
    }
}

/// Reads `name` and removes it from `environ` (see [`Config::take_env_secrets`] for why this is
/// only called before any other thread exists).
fn take(name: &str, names: &mut Vec<String>) -> Option<TakenSecret> {
    let value = Zeroizing::new(std::env::var(name).ok()?);
    // Thread safety: only called from `take_env_secrets`, on the main thread before the
    // runtime or any other thread is started (see its documentation).
    std::env::remove_var(name);
    names.push(name.to_owned());
    Some(TakenSecret(value))
}

/// Overwrites the `NAME=value` entries of `names` in the environment block the process started
/// with (what `/proc/self/environ` shows) with zeros.
#[cfg(target_os = "linux")]
fn wipe_original_environment(names: &[String]) -> std::io::Result<()> {
    use std::io::{Error, Seek, SeekFrom, Write};

    let stat = std::fs::read_to_string("/proc/self/stat")?;
    // Fields after the command name (which may hold spaces and parentheses): the 3rd is the
    // first; env_start and env_end are the 50th and 51st (proc(5)).
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let field = |n: usize| -> std::io::Result<u64> {
        fields
            .get(n - 3)
            .and_then(|f| f.parse().ok())
            .ok_or_else(|| Error::other(format!("/proc/self/stat has no field {n}")))
    };
    let (start, end) = (field(50)?, field(51)?);
    let block = std::fs::read("/proc/self/environ")?;
    if end.checked_sub(start) != Some(block.len() as u64) {
        return Err(Error::other(
            "/proc/self/environ does not match env_start..env_end",
        ));
    }
    let mut mem = std::fs::OpenOptions::new()
        .write(true)
        .open("/proc/self/mem")?;
    let mut offset = 0u64;
    for entry in block.split(|b| *b == 0) {
        let secret = names.iter().any(|name| {
            entry.len() > name.len()
                && entry.starts_with(name.as_bytes())
                && entry[name.len()] == b'='
        });
        if secret {
            mem.seek(SeekFrom::Start(start + offset))?;
            mem.write_all(&vec![0u8; entry.len()])?;
        }
        offset += entry.len() as u64 + 1;
    }
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn wipe_original_environment(_names: &[String]) -> std::io::Result<()> {
    Err(std::io::Error::other(
        "only Linux: the original environment block stays readable",
    ))
}
