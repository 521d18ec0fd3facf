//! Where the node is and how to authenticate to it.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bitcoin::Network;

/// Per-request timeout used by [`RpcConfig::new`]: long enough for `getblock` of a full
/// mainnet block on a busy node, short enough that a hung node is noticed.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Largest answer read from the node by [`RpcConfig::new`]: 32 MiB. The largest answer we ask
/// for is `getblock <hash> 0` of a block at the consensus limit (4,000,000 bytes of weight,
/// so at most 4 MB serialised, 8 MB of hex), plus the JSON envelope: four times that leaves
/// room for the verbose calls while a hostile or broken node cannot make us buffer more.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 32 << 20;
// The hex of a block at the consensus limit, with room for the envelope, fits.
const _: () = assert!(DEFAULT_MAX_RESPONSE_BYTES >= 2 * 4_000_000 + 1024);

/// How to reach a node.
#[derive(Clone, Debug)]
pub struct RpcConfig {
    /// `http://host:port` or `https://host:port` (optionally with a path such as
    /// `/wallet/name`). Bitcoin Core's RPC has no TLS of its own: for a remote node, put a TLS
    /// proxy in front of it and use `https://` (plain `http://` to another machine logs a
    /// warning: the credentials would travel in clear).
    pub url: String,
    /// Credentials.
    pub auth: RpcAuth,
    /// Upper bound for one request, connecting included.
    pub timeout: Duration,
    /// Answers longer than this are abandoned while reading ([`RpcError::TooLarge`](crate::RpcError::TooLarge)).
    pub max_response_bytes: usize,
    /// For `https://`: an extra CA to trust (besides the system's roots) and an optional client
    /// certificate.
    pub tls: net::ClientTls,
}

impl RpcConfig {
    /// A configuration with the [`DEFAULT_TIMEOUT`].
    pub fn new(url: impl Into<String>, auth: RpcAuth) -> Self {
        Self {
            url: url.into(),
            auth,
            timeout: DEFAULT_TIMEOUT,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            tls: net::ClientTls::default(),
        }
    }
}

/// Credentials for the node's RPC server.
#[derive(Clone, PartialEq, Eq)]
pub enum RpcAuth {
    /// `rpcuser` / `rpcpassword` (or an `rpcauth` entry).
    UserPass {
        /// User name.
        user: String,
        /// Password; never printed by `Debug`.
        password: String,
    },
    /// The `.cookie` file the node writes at start. It changes at every restart of the node,
    /// so the client re-reads it whenever the node answers 401.
    Cookie(PathBuf),
}

impl RpcAuth {
    /// Cookie authentication with the file Bitcoin Core writes for `network` under `datadir`
    /// (`<datadir>/.cookie` on mainnet, `<datadir>/<network dir>/.cookie` elsewhere).
    pub fn cookie_in_datadir(datadir: &Path, network: Network) -> Self {
        let dir = match network {
            Network::Bitcoin => datadir.to_path_buf(),
            Network::Testnet => datadir.join("testnet3"),
            Network::Testnet4 => datadir.join("testnet4"),
            Network::Signet => datadir.join("signet"),
            Network::Regtest => datadir.join("regtest"),
        };
        RpcAuth::Cookie(dir.join(".cookie"))
    }
}

impl fmt::Debug for RpcAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RpcAuth::UserPass { user, .. } => f
                .debug_struct("UserPass")
                .field("user", user)
                .field("password", &"<redacted>")
                .finish(),
            RpcAuth::Cookie(path) => f.debug_tuple("Cookie").field(path).finish(),
        }
    }
}

/// Bitcoin Core's default RPC port for `network`.
pub fn default_rpc_port(network: Network) -> u16 {
    match network {
        Network::Bitcoin => 8332,
        Network::Testnet => 18332,
        Network::Testnet4 => 48332,
        Network::Signet => 38332,
        Network::Regtest => 18443,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_paths_follow_bitcoin_core_datadir_layout() {
        let datadir = Path::new("/var/lib/bitcoind");
        let path = |network| match RpcAuth::cookie_in_datadir(datadir, network) {
            RpcAuth::Cookie(path) => path,
            RpcAuth::UserPass { .. } => PathBuf::new(),
        };
        assert_eq!(path(Network::Bitcoin), datadir.join(".cookie"));
        assert_eq!(path(Network::Testnet), datadir.join("testnet3/.cookie"));
        assert_eq!(path(Network::Testnet4), datadir.join("testnet4/.cookie"));
        assert_eq!(path(Network::Signet), datadir.join("signet/.cookie"));
        assert_eq!(path(Network::Regtest), datadir.join("regtest/.cookie"));
    }

    #[test]
    fn debug_output_never_shows_the_password() {
        let auth = RpcAuth::UserPass {
            user: "alice".into(),
            password: "hunter2".into(),
        };
        let printed = format!("{auth:?}");
        assert!(printed.contains("alice"), "{printed}");
        assert!(!printed.contains("hunter2"), "{printed}");
    }

    #[test]
    fn default_ports_are_bitcoin_cores() {
        assert_eq!(default_rpc_port(Network::Bitcoin), 8332);
        assert_eq!(default_rpc_port(Network::Signet), 38332);
        assert_eq!(default_rpc_port(Network::Regtest), 18443);
    }
}
