//! The exit statuses of `staker`: one per kind of outcome a script branches on, so "wait and run
//! again", "fix the input" and "the node or API is down, retry" are told apart without parsing
//! messages.
//!
//! A command marks a failure by returning one of the [`Failure`] constructors ([`not_yet`],
//! [`refused`], …) as the root error; `.context(...)` added above keeps the kind. Errors from
//! the node's or the API's transport are recognised by type ([`code_of`]), so the many places
//! that call the node need no marking.

use std::fmt;
use std::process::ExitCode;

use bitcoin_rpc::RpcError;

/// The statuses, as documented in `staker --help` and the README.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// 1: anything else (a file that cannot be read or written, an unexpected answer).
    Error,
    /// 2: the command line is wrong (clap's own usage errors use 2 as well).
    Usage,
    /// 3: not yet: the timelock still holds, the API does not know the stake yet, or a wait
    /// timed out. Nothing changed; run the same command again later.
    NotYet,
    /// 4: refused: the input or the request is wrong and retrying will not help (a PSBT or
    /// signature that fails its checks, a key that is not the delegation's, a delegation that is
    /// not active, a tx the node or the API refuses, an invalid params file, an output already
    /// spent).
    Refused,
    /// 5: the node or the API cannot be reached or failed (connection, timeout, credentials,
    /// HTTP 5xx). Retrying later may help.
    Unreachable,
}

impl Kind {
    /// The process exit status.
    pub fn code(self) -> u8 {
        match self {
            Self::Error => 1,
            Self::Usage => 2,
            Self::NotYet => 3,
            Self::Refused => 4,
            Self::Unreachable => 5,
        }
    }

    pub fn exit(self) -> ExitCode {
        ExitCode::from(self.code())
    }
}

/// An error of a known kind; its message is the whole sentence shown to the user.
#[derive(Debug)]
pub struct Failure {
    pub kind: Kind,
    message: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

fn failure(kind: Kind, message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Failure {
        kind,
        message: message.into(),
    })
}

/// Exit 2: the command line is wrong.
pub fn usage(message: impl Into<String>) -> anyhow::Error {
    failure(Kind::Usage, message)
}

/// Exit 3: not yet; run again later.
pub fn not_yet(message: impl Into<String>) -> anyhow::Error {
    failure(Kind::NotYet, message)
}

/// Exit 4: refused; retrying the same input will not help.
pub fn refused(message: impl Into<String>) -> anyhow::Error {
    failure(Kind::Refused, message)
}

/// Exit 5: the node or the API failed; retry later.
pub fn unreachable(message: impl Into<String>) -> anyhow::Error {
    failure(Kind::Unreachable, message)
}

/// The kind of `error`: a [`Failure`] anywhere below the contexts, else a transport error of
/// the node's RPC client or of the HTTP client, else [`Kind::Error`].
pub fn kind_of(error: &anyhow::Error) -> Kind {
    if let Some(failure) = error.downcast_ref::<Failure>() {
        return failure.kind;
    }
    for cause in error.chain() {
        if let Some(rpc) = cause.downcast_ref::<RpcError>() {
            return match rpc {
                // The node answered: the request itself was refused or unknown.
                RpcError::Rpc { code, .. } if *code == bitcoin_rpc::codes::IN_WARMUP => {
                    Kind::Unreachable
                }
                RpcError::Rpc { .. } | RpcError::Decode { .. } => Kind::Error,
                _ => Kind::Unreachable,
            };
        }
        if cause.downcast_ref::<reqwest::Error>().is_some() {
            return Kind::Unreachable;
        }
    }
    Kind::Error
}

/// The exit status of a failed command.
pub fn code_of(error: &anyhow::Error) -> ExitCode {
    kind_of(error).exit()
}

/// The table printed by `staker --help` (and repeated in the README), as a literal so
/// `concat!` can put it after the examples.
macro_rules! exit_help {
    () => {
        "Exit status:\n  \
        0  done\n  \
        1  error: anything not listed below (a file that cannot be read or written, an unexpected answer)\n  \
        2  usage: the command line is wrong (unknown flag, missing value, conflicting flags)\n  \
        3  not yet: the timelock still holds (`withdraw` says how many blocks and about how long), the API\n     \
           does not know the stake yet, or a --wait timed out; nothing changed, run it again later\n  \
        4  refused: the input or request is wrong and retrying will not help (a PSBT or signature for another\n     \
           tx, by another key or tampered; a delegation that is not active; a tx the node or API refuses;\n     \
           an invalid params file; an output already spent)\n  \
        5  unreachable: the node or the API cannot be reached or failed (connection, timeout, credentials,\n     \
           HTTP 5xx); retry later"
    };
}

/// [`exit_help!`] as a constant.
#[cfg(test)]
const HELP: &str = exit_help!();

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn a_marked_failure_keeps_its_kind_under_contexts() {
        let error = Err::<(), _>(not_yet("the timelock holds"))
            .context("withdraw")
            .context("outer")
            .unwrap_err();
        assert_eq!(kind_of(&error), Kind::NotYet);
        assert_eq!(format!("{error:#}"), "outer: withdraw: the timelock holds");
    }

    #[test]
    fn node_transport_errors_are_unreachable_and_node_answers_are_not() {
        let timeout = anyhow::Error::new(RpcError::Timeout {
            method: "getblockcount".into(),
            url: "http://127.0.0.1:1".into(),
            timeout: std::time::Duration::from_secs(1),
        })
        .context("cannot reach the node");
        assert_eq!(kind_of(&timeout), Kind::Unreachable);
        let answer = anyhow::Error::new(RpcError::Rpc {
            code: -5,
            message: "No such mempool or blockchain transaction".into(),
        })
        .context("lookup");
        assert_eq!(kind_of(&answer), Kind::Error);
        assert_eq!(kind_of(&anyhow::anyhow!("plain")), Kind::Error);
    }

    #[test]
    fn every_status_is_distinct_and_in_the_help() {
        let kinds = [
            Kind::Error,
            Kind::Usage,
            Kind::NotYet,
            Kind::Refused,
            Kind::Unreachable,
        ];
        let codes: std::collections::BTreeSet<u8> = kinds.iter().map(|k| k.code()).collect();
        assert_eq!(codes.len(), kinds.len());
        for code in codes {
            assert!(HELP.contains(&format!("\n  {code}  ")), "{code}");
        }
    }
}
