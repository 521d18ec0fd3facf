//! The one place where a test learns that a service it needs is missing.
//!
//! A green run must mean that every test ran, so an unreachable PostgreSQL or RabbitMQ fails the
//! test with one sentence: which service, where it was looked for (password redacted) and how
//! to start it. A developer without the services may opt into skipping with
//! [`ALLOW_SKIP_VAR`]`=1`; the skipped tests still pass, so every test binary then ends its run
//! with a line counting them. With `CI=true` skipping is never allowed.

use std::collections::BTreeSet;
use std::fmt;
use std::io::Write as _;
use std::sync::Mutex;

/// The environment variable that lets tests skip, instead of fail, when a service they need is
/// unreachable (`1` to allow). Ignored with `CI=true`.
pub const ALLOW_SKIP_VAR: &str = "STAKINGD_TEST_ALLOW_SKIP";

/// A service or tool some integration tests need.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Service {
    /// The PostgreSQL server (`DATABASE_URL`).
    PostgreSql,
    /// The RabbitMQ broker (`AMQP_URL`).
    RabbitMq,
    /// RabbitMQ's command-line administration tool, for tests that cut connections broker side.
    RabbitMqCtl,
    /// The Node.js project in `interop/psbt` (bitcoinjs-lib), the independent signer of the
    /// staker's unbonding PSBT.
    PsbtSigner,
}

impl Service {
    fn how_to_start(self) -> &'static str {
        match self {
            Service::PostgreSql => {
                "start it with `bash .ci/services` (installs and starts PostgreSQL and RabbitMQ) \
                 or `pg_ctlcluster <version> main start`, or point DATABASE_URL at a running \
                 server"
            }
            Service::RabbitMq => {
                "start it with `bash .ci/services` (installs and starts PostgreSQL and RabbitMQ) \
                 or `rabbitmq-server -detached`, or point AMQP_URL at a running broker"
            }
            Service::RabbitMqCtl => {
                "run the tests on the machine of the broker, where `bash .ci/services` installs \
                 RabbitMQ with its rabbitmqctl"
            }
            Service::PsbtSigner => {
                "install it with `npm ci --prefix interop/psbt` (Node.js >= 18 and npm; `.ci/run` \
                 does it)"
            }
        }
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Service::PostgreSql => "PostgreSQL",
            Service::RabbitMq => "RabbitMQ",
            Service::RabbitMqCtl => "rabbitmqctl",
            Service::PsbtSigner => "the bitcoinjs-lib PSBT signer",
        })
    }
}

/// Whether missing services must fail tests even when [`ALLOW_SKIP_VAR`] is set (`CI=true` or
/// `CI=1`).
pub fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Whether a test may skip itself when a service is unreachable: [`ALLOW_SKIP_VAR`]`=1` and not
/// [`ci`].
pub fn skip_allowed() -> bool {
    !ci() && std::env::var(ALLOW_SKIP_VAR).is_ok_and(|v| v == "1")
}

/// `url` with its password replaced by `***`, for messages ([`net::redact_url`], the one
/// redaction of the workspace).
pub use net::redact_url;

/// The sentence a test fails with when `service` at `url` is unreachable.
pub fn unreachable_message(service: Service, url: &str, cause: &dyn fmt::Display) -> String {
    let opt_out = if ci() && std::env::var_os(ALLOW_SKIP_VAR).is_some() {
        format!("{ALLOW_SKIP_VAR} is ignored with CI=true, where every test must run")
    } else {
        format!("or set {ALLOW_SKIP_VAR}=1 to skip the tests that need it")
    };
    // A URL may carry a password; the signer's location is a directory.
    let url = match service {
        Service::PsbtSigner => url.to_owned(),
        _ => redact_url(url),
    };
    let what = match service {
        Service::PostgreSql | Service::RabbitMq => format!("{service} is unreachable at {url}"),
        Service::RabbitMqCtl => format!("{service} cannot be run for the broker at {url}"),
        Service::PsbtSigner => format!("{service} is not installed in {url}"),
    };
    format!("{what} ({cause}): {}, {opt_out}.", service.how_to_start())
}

/// Reports that `service` at `url` cannot be used, for the current test: panics with
/// [`unreachable_message`] (the test fails), unless [`skip_allowed`], where it records the skip
/// for the end-of-run count, notes it on stderr and returns, and the test returns early.
///
/// Every test that needs PostgreSQL or RabbitMQ comes through here (through
/// [`crate::PgTestDb::create`] and [`crate::rabbitmq`]), so there is one skip rule.
pub fn service_unreachable(service: Service, url: &str, cause: &dyn fmt::Display) {
    let message = unreachable_message(service, url, cause);
    assert!(skip_allowed(), "{message}");
    let test = std::thread::current()
        .name()
        .unwrap_or("an unnamed test thread")
        .to_owned();
    eprintln!("SKIPPED {test}: {message}");
    let mut skipped = SKIPPED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    skipped.tests.insert(test);
    skipped.services.insert(service);
}

#[derive(Debug)]
struct Skipped {
    /// Test names (libtest names each test's thread after the test).
    tests: BTreeSet<String>,
    services: BTreeSet<Service>,
}

static SKIPPED: Mutex<Skipped> = Mutex::new(Skipped {
    tests: BTreeSet::new(),
    services: BTreeSet::new(),
});

/// The line a test binary ends with when tests were skipped, or `None` when none was.
pub fn skip_summary() -> Option<String> {
    let skipped = SKIPPED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if skipped.tests.is_empty() {
        return None;
    }
    let services: Vec<String> = skipped.services.iter().map(ToString::to_string).collect();
    let tests: Vec<&str> = skipped.tests.iter().map(String::as_str).collect();
    let n = tests.len();
    Some(format!(
        "{n} test{} skipped ({ALLOW_SKIP_VAR}=1; unreachable: {}), counted as passed above: {}",
        if n == 1 { "" } else { "s" },
        services.join(", "),
        tests.join(", ")
    ))
}

// libtest has no notion of a test skipped at run time and prints its summary last, so the count
// is printed after `main` returns, once per test binary that linked this crate.
#[dtor::dtor(unsafe)]
fn print_skip_summary() {
    if let Some(line) = skip_summary() {
        // stderr is unbuffered and still usable after `main`; a failed write has nowhere to go.
        let _ = writeln!(std::io::stderr(), "\n{line}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_is_redacted_and_the_rest_is_kept() {
        assert_eq!(
            redact_url("amqp://guest:hunter2@127.0.0.1:5672/%2f"),
            "amqp://guest:***@127.0.0.1:5672/%2f"
        );
        assert_eq!(
            redact_url("postgres://postgres@127.0.0.1:1/x"),
            "postgres://postgres@127.0.0.1:1/x"
        );
        assert!(!redact_url("postgres://u:hunter2@[bad").contains("hunter2"));
    }

    #[test]
    fn the_message_names_the_service_the_url_and_how_to_start_it() {
        let m = unreachable_message(
            Service::PostgreSql,
            "postgres://u:hunter2@127.0.0.1:1/x",
            &"connection refused",
        );
        assert!(m.starts_with("PostgreSQL is unreachable at postgres://u:***@127.0.0.1:1/x (connection refused): start it with `bash .ci/services`"), "{m}");
        assert!(!m.contains("hunter2"), "{m}");
        assert!(m.contains(ALLOW_SKIP_VAR), "{m}");
    }
}
