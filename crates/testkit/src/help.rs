//! `--help` never shows a password: not the value of an environment variable an argument reads
//! (clap prints `[env: NAME=value]` unless the argument hides it), and not in a default value.

use std::path::Path;
use std::process::Command;

/// The password put into every environment variable a help text names.
pub const HELP_MARKER: &str = "HelpMarkerPassw0rd";

/// Walks every subcommand of `bin` and returns a sentence per help text that shows a password:
/// the text shown with every environment variable it names that may hold one (a URL, a
/// password, a secret, a key or token) set to a URL whose password is
/// [`HELP_MARKER`], and its `[default: …]` values holding an `@`, which must be equal to their
/// [`net::redact_url`] form. Empty: no help text shows one.
pub fn help_password_leaks(bin: &Path) -> Vec<String> {
    let mut leaks = Vec::new();
    let mut pending: Vec<Vec<String>> = vec![Vec::new()];
    while let Some(path) = pending.pop() {
        let shown = format!("{} {} --help", bin.display(), path.join(" "));
        let plain = help(bin, &path, &[]);
        for sub in subcommands(&plain) {
            let mut next = path.clone();
            next.push(sub);
            pending.push(next);
        }
        let secret = format!("postgres://user:{HELP_MARKER}@db.example:5432/x");
        let env: Vec<(String, String)> = env_names(&plain)
            .into_iter()
            .filter(|name| may_hold_a_password(name))
            .map(|name| (name, secret.clone()))
            .collect();
        if help(bin, &path, &env).contains(HELP_MARKER) {
            let names: Vec<&str> = env.iter().map(|(name, _)| name.as_str()).collect();
            leaks.push(format!(
                "`{shown}` prints the password of one of the environment variables {names:?}"
            ));
        }
        for default in defaults(&plain) {
            // Credentials in a URL come before an '@'.
            if default.contains('@') && net::redact_url(&default) != default {
                leaks.push(format!("`{shown}` prints the default {default:?}"));
            }
        }
    }
    leaks
}

fn help(bin: &Path, path: &[String], env: &[(String, String)]) -> String {
    let output = Command::new(bin)
        .args(path)
        .arg("--help")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output();
    match output {
        Ok(output) => format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
        Err(e) => panic!("cannot run {}: {e}", bin.display()),
    }
}

/// Variables whose value may carry a password (a URL or a secret); the others (paths, ports,
/// names) are shown as they are, which is their purpose.
fn may_hold_a_password(name: &str) -> bool {
    // `…_FILE` and `…_DIR` name a path (`STAKER_KEY_FILE`), not the secret in it.
    !name.ends_with("_FILE")
        && !name.ends_with("_DIR")
        && ["URL", "PASS", "SECRET", "KEY", "TOKEN", "HMAC"]
            .iter()
            .any(|word| name.contains(word))
}

/// The subcommand names of a clap help text (its `Commands:` section, less `help`).
fn subcommands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|line| line.trim() != "Commands:")
        .skip(1)
        .take_while(|line| !line.trim().is_empty())
        .filter(|line| line.starts_with("  ") && !line.starts_with("    "))
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_owned)
        .collect()
}

/// The variables of every `[env: NAME…]`.
fn env_names(help: &str) -> Vec<String> {
    help.match_indices("[env: ")
        .map(|(at, tag)| {
            help[at + tag.len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect()
        })
        .collect()
}

/// The values of every `[default: …]`.
fn defaults(help: &str) -> Vec<String> {
    help.match_indices("[default: ")
        .filter_map(|(at, tag)| {
            let rest = &help[at + tag.len()..];
            rest.find(']').map(|end| rest[..end].to_owned())
        })
        .collect()
}
