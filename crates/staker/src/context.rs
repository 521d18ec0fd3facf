//! What the commands that touch a node, the API or a key share: connection flags (each with a
//! `STAKER_…` environment variable), the network check and the RPC client.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use bitcoin_rpc::{RpcAuth, RpcClient, RpcConfig};
use staking_core::bitcoin::Network;
use staking_core::params::GlobalParams;

use crate::common::{network_name, parse_network, ParamsSource};
use crate::exit::usage;
use crate::keyfile::StakerKey;

/// Network, key file and mainnet guard.
#[derive(Debug, Clone, clap::Args)]
pub struct KeyArgs {
    /// Network: mainnet, testnet, testnet4, signet or regtest. Defaults to the params preset's.
    #[arg(long, env = "STAKER_NETWORK", value_name = "N", value_parser = parse_network)]
    pub network: Option<Network>,
    /// Directory for the key file when `--key-file` is not given (default `$HOME/.staker`).
    #[arg(long, env = "STAKER_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// The staker key file (default `<data dir>/<network>/staker-key.json`).
    #[arg(long, env = "STAKER_KEY_FILE", value_name = "FILE")]
    pub key_file: Option<PathBuf>,
    /// A plain key file is for test networks; this flag allows it on mainnet anyway.
    #[arg(long, env = "STAKER_I_KNOW_THIS_IS_MAINNET")]
    pub i_know_this_is_mainnet: bool,
}

impl KeyArgs {
    /// The network from the flag, else from the params source, refusing mainnet without the
    /// explicit flag.
    pub fn network(&self, params: Option<&ParamsSource>) -> Result<Network> {
        let network = match (self.network, params.and_then(ParamsSource::network)) {
            (Some(n), _) | (None, Some(n)) => n,
            (None, None) => return Err(usage(
                "no network given: add --network (signet, testnet, testnet4, regtest) or set STAKER_NETWORK",
            )),
        };
        if network == Network::Bitcoin && !self.i_know_this_is_mainnet {
            return Err(usage(
                "refusing mainnet: the key file is a plain file meant for test networks; use a hardware \
                 or wallet signer (--psbt, --psbt-out) or pass --i-know-this-is-mainnet",
            ));
        }
        Ok(network)
    }

    /// The key file path for `network`.
    pub fn key_path(&self, network: Network) -> Result<PathBuf> {
        if let Some(path) = &self.key_file {
            return Ok(path.clone());
        }
        let dir = match &self.data_dir {
            Some(dir) => dir.clone(),
            None => match std::env::var_os("HOME") {
                Some(home) => PathBuf::from(home).join(".staker"),
                None => bail!("no home directory: give --data-dir or --key-file"),
            },
        };
        Ok(dir.join(network_name(network)).join("staker-key.json"))
    }

    /// Loads the key for `network`; the file's network must match.
    pub fn load_key(&self, network: Network) -> Result<StakerKey> {
        let path = self.key_path(network)?;
        StakerKey::load(&path, network)
    }
}

/// Bitcoin Core RPC connection.
#[derive(Debug, Clone, clap::Args)]
pub struct RpcArgs {
    /// The node's RPC URL, e.g. http://127.0.0.1:38332/.
    #[arg(
        long,
        env = "STAKER_RPC_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub rpc_url: Option<String>,
    /// RPC user (with --rpc-password).
    #[arg(long, env = "STAKER_RPC_USER", value_name = "USER")]
    pub rpc_user: Option<String>,
    /// RPC password (with --rpc-user).
    #[arg(
        long,
        env = "STAKER_RPC_PASSWORD",
        value_name = "PASSWORD",
        hide_env_values = true
    )]
    pub rpc_password: Option<String>,
    /// The node's `.cookie` file, instead of user and password.
    #[arg(long, env = "STAKER_RPC_COOKIE", value_name = "FILE")]
    pub rpc_cookie: Option<PathBuf>,
}

impl RpcArgs {
    /// A client for the node.
    pub fn client(&self) -> Result<RpcClient> {
        let Some(url) = &self.rpc_url else {
            return Err(usage(
                "no Bitcoin node given: add --rpc-url (or set STAKER_RPC_URL)",
            ));
        };
        let auth = match (&self.rpc_cookie, &self.rpc_user, &self.rpc_password) {
            (Some(cookie), _, _) => RpcAuth::Cookie(cookie.clone()),
            (None, Some(user), Some(password)) => RpcAuth::UserPass {
                user: user.clone(),
                password: password.clone(),
            },
            _ => {
                return Err(usage(
                    "no RPC credentials: add --rpc-cookie FILE, or --rpc-user and --rpc-password",
                ));
            }
        };
        let mut config = RpcConfig::new(url.clone(), auth);
        config.timeout = Duration::from_secs(30);
        RpcClient::new(config).with_context(|| format!("cannot make an RPC client for {url}"))
    }
}

/// The params flag shared by the chain commands.
#[derive(Debug, Clone, clap::Args)]
pub struct ParamsArgs {
    /// Params file or preset (bbn-test-4, bbn-1).
    #[arg(long, env = "STAKER_PARAMS", value_name = "FILE|PRESET")]
    pub params: String,
}

impl ParamsArgs {
    pub fn source(&self) -> ParamsSource {
        ParamsSource::parse(&self.params)
    }

    pub fn load(&self) -> Result<GlobalParams> {
        self.source().load_valid()
    }
}

/// A current-thread runtime for one command.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}
