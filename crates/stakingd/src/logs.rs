//! `stakingd`'s logs: on stderr, in colour only when stderr is a terminal (a file or a pipe gets
//! plain text). `RUST_LOG` decides the levels when it is set. Without it the defaults are quiet:
//! INFO from our services (one line each as they start, then what they report), warnings from
//! the covenant signers (the devnet's banner already says where its committee listens), and
//! nothing from the AMQP client (our transport reports its failures in its own words). Once the
//! devnet's banner is printed, [`quiet_after_start`] drops the default to warnings and errors,
//! so that on a terminal the banner and the demo's narration on stdout are not interleaved with
//! periodic status lines on stderr.

use std::io::IsTerminal;
use std::sync::OnceLock;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{reload, EnvFilter, Registry};

/// The levels while the services start, when `RUST_LOG` is not set.
const STARTING: &str = "info,covenant_signer=warn,lapin=off";
/// The levels once the devnet runs, when `RUST_LOG` is not set: what a user acts on.
const RUNNING: &str = "warn,lapin=off";

/// Set only when the levels are ours (no `RUST_LOG`).
static DEFAULT_LEVELS: OnceLock<reload::Handle<EnvFilter, Registry>> = OnceLock::new();

/// Installs the subscriber; call once, first thing.
pub fn init() {
    let from_env = EnvFilter::try_from_default_env().ok();
    let ours = from_env.is_none();
    let (filter, handle) = reload::Layer::new(from_env.unwrap_or_else(|| EnvFilter::new(STARTING)));
    tracing_subscriber::registry()
        .with(filter)
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::stderr().is_terminal()),
        )
        .init();
    if ours {
        let _ignored = DEFAULT_LEVELS.set(handle);
    }
}

/// From now on only warnings and errors, unless `RUST_LOG` chose the levels.
pub fn quiet_after_start() {
    if let Some(handle) = DEFAULT_LEVELS.get() {
        if let Err(e) = handle.reload(EnvFilter::new(RUNNING)) {
            tracing::warn!(error = %e, "cannot lower the log level");
        }
    }
}
