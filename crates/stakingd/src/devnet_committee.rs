//! The devnet's covenant committee, params and finality providers, generated once per data
//! directory and reused on every restart, and the committee members' signing servers.
//!
//! Each member's key is a real `covenant-signer` key file (sealed with a passphrase kept next to
//! it, since this is a devnet), with a signer config that the standalone `covenant-signer`
//! binary also accepts. In the all-in-one process each member runs the library's own server on
//! its own loopback port, checking requests against the devnet over RPC like any signer.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};
use bitcoin::hashes::{sha256, Hash};
use bitcoin::secp256k1::{PublicKey, SecretKey, XOnlyPublicKey};
use bitcoin::Amount;
use covenant_signer::chain::CachedChain;
use covenant_signer::keyfile::{CovenantKey, KdfCost, Passphrase};
use covenant_signer::rpc_chain::RpcChain;
use staking_core::keys::SECP;
use staking_core::params::{BlockHeight, GlobalParams, ParamsVersion, StakingCap};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::devnet_banner::shell_quote;

/// The first block the devnet's params apply to; a fresh chain is mined up to just below it.
pub const ACTIVATION_HEIGHT: u64 = 110;
/// Confirmations before the indexer counts a tx (the reference's minimum is 2).
pub const CONFIRMATION_DEPTH: u16 = 2;
/// Blocks an unbonding output stays locked.
pub const UNBONDING_TIME: u16 = 5;
/// The fee the canonical unbonding tx pays.
pub const UNBONDING_FEE: Amount = Amount::from_sat(2_000);
/// Shortest staking time the devnet's params allow, in blocks.
pub const MIN_STAKING_TIME: u16 = 10;
/// The devnet's staking tag (`dvnt`).
pub const TAG: [u8; 4] = *b"dvnt";
/// Default committee size and quorum.
pub const DEFAULT_SIGNERS: usize = 9;
pub const DEFAULT_QUORUM: u32 = 6;
/// Finality providers listed by the devnet API.
const FINALITY_PROVIDERS: usize = 3;
/// A cheap key-derivation cost: these keys guard nothing of value, and nine of them are
/// unlocked at every start.
const DEVNET_KDF: KdfCost = KdfCost {
    memory_kib: 1024,
    iterations: 1,
    parallelism: 1,
};

/// Everything generated for one data directory.
#[derive(Debug)]
pub struct Setup {
    pub params: GlobalParams,
    pub params_path: PathBuf,
    pub fps_path: PathBuf,
    pub finality_providers: Vec<XOnlyPublicKey>,
    pub members: Vec<PublicKey>,
    pub quorum: u32,
    /// The shared HMAC key the members require on every signing request.
    pub hmac_key_path: PathBuf,
    committee_dir: PathBuf,
}

fn params_for(members: &[PublicKey], quorum: u32) -> anyhow::Result<GlobalParams> {
    let version = ParamsVersion {
        version: 0,
        activation_height: BlockHeight(ACTIVATION_HEIGHT),
        cap: StakingCap::Amount(Amount::from_btc(1_000.0)?),
        tag: TAG,
        covenant_pks: members.to_vec(),
        covenant_quorum: quorum,
        unbonding_time: UNBONDING_TIME,
        unbonding_fee: UNBONDING_FEE,
        min_staking_amount: Amount::from_sat(10_000),
        max_staking_amount: Amount::from_btc(10.0)?,
        min_staking_time: MIN_STAKING_TIME,
        max_staking_time: u16::MAX,
        confirmation_depth: CONFIRMATION_DEPTH,
    };
    let (params, _warnings) =
        GlobalParams::from_versions(vec![version]).context("the devnet params are invalid")?;
    Ok(params)
}

/// Fixed finality-provider keys: they only need to be well-formed and listed by the API.
fn finality_providers() -> anyhow::Result<Vec<XOnlyPublicKey>> {
    (0..FINALITY_PROVIDERS)
        .map(|i| {
            let seed =
                sha256::Hash::hash(format!("stakingd devnet finality provider {i}").as_bytes());
            let secret = SecretKey::from_slice(seed.as_byte_array())
                .context("a finality provider seed is not a valid key")?;
            Ok(secret.x_only_public_key(&SECP).0)
        })
        .collect()
}

fn fps_json(fps: &[XOnlyPublicKey]) -> String {
    let entries: Vec<String> = fps
        .iter()
        .enumerate()
        .map(|(i, pk)| {
            format!(
                r#"    {{"description": {{"moniker": "devnet finality provider {i}", "identity": "", "website": "", "security_contact": "", "details": ""}}, "commission": "0.0{}0000000000000000", "btc_pk": "{pk}"}}"#,
                i + 5
            )
        })
        .collect();
    format!(
        "{{\n  \"finality_providers\": [\n{}\n  ]\n}}\n",
        entries.join(",\n")
    )
}

fn write_private(path: &Path, contents: &str) -> anyhow::Result<()> {
    std::fs::write(path, contents).with_context(|| format!("writing {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("restricting {}", path.display()))?;
    }
    Ok(())
}

fn key_path(dir: &Path, i: usize) -> PathBuf {
    dir.join(format!("member-{i}.key"))
}

/// Loads the data directory's committee and params, or creates them on first start.
/// `signers` / `quorum` given for an existing directory must match it.
pub fn load_or_create(
    datadir: &Path,
    signers: Option<usize>,
    quorum: Option<u32>,
) -> anyhow::Result<Setup> {
    let params_path = datadir.join("global-params.json");
    let fps_path = datadir.join("finality-providers.json");
    let committee_dir = datadir.join("committee");
    let finality_providers = finality_providers()?;
    if params_path.exists() {
        let text = std::fs::read_to_string(&params_path)
            .with_context(|| format!("reading {}", params_path.display()))?;
        let (params, _) = GlobalParams::from_json(&text)
            .with_context(|| format!("{} is not valid params", params_path.display()))?;
        let version = params
            .versions()
            .first()
            .context("the devnet params have no version")?;
        let members = version.covenant_pks.clone();
        let stored_quorum = version.covenant_quorum;
        if signers.is_some_and(|n| n != members.len()) || quorum.is_some_and(|q| q != stored_quorum)
        {
            bail!(
                "the data directory {} holds a committee of {} signers with quorum {stored_quorum}; \
                 drop --signers/--quorum to resume it, or choose a new --datadir for another committee",
                datadir.display(),
                members.len()
            );
        }
        for i in 0..members.len() {
            if !key_path(&committee_dir, i).exists() {
                bail!(
                    "committee key file {} is missing: the data directory is damaged; \
                     start over with a new --datadir",
                    key_path(&committee_dir, i).display()
                );
            }
        }
        if !fps_path.exists() {
            std::fs::write(&fps_path, fps_json(&finality_providers))
                .with_context(|| format!("writing {}", fps_path.display()))?;
        }
        let hmac_key_path = ensure_hmac_key(&committee_dir)?;
        return Ok(Setup {
            params,
            params_path,
            fps_path,
            finality_providers,
            members,
            quorum: stored_quorum,
            hmac_key_path,
            committee_dir,
        });
    }

    let signers = signers.unwrap_or(DEFAULT_SIGNERS);
    let quorum = quorum.unwrap_or(DEFAULT_QUORUM.min(u32::try_from(signers).unwrap_or(u32::MAX)));
    if signers == 0 || quorum == 0 || usize::try_from(quorum).unwrap_or(usize::MAX) > signers {
        bail!("--quorum {quorum} must be between 1 and --signers {signers}");
    }
    std::fs::create_dir_all(&committee_dir)
        .with_context(|| format!("creating {}", committee_dir.display()))?;
    let passphrase_text = random_hex();
    write_private(&committee_dir.join("passphrase"), &passphrase_text)?;
    let passphrase = Passphrase::new(passphrase_text);
    let mut members = Vec::with_capacity(signers);
    for i in 0..signers {
        let key = CovenantKey::generate();
        let path = key_path(&committee_dir, i);
        key.save_throwaway(&path, &passphrase, DEVNET_KDF)
            .with_context(|| format!("writing committee key file {}", path.display()))?;
        members.push(key.public_key());
    }
    let hmac_key_path = ensure_hmac_key(&committee_dir)?;
    let params = params_for(&members, quorum)?;
    std::fs::write(&fps_path, fps_json(&finality_providers))
        .with_context(|| format!("writing {}", fps_path.display()))?;
    // The params file last: its presence marks a complete setup.
    let json = serde_json::to_string_pretty(&params.to_json())?;
    std::fs::write(&params_path, json)
        .with_context(|| format!("writing {}", params_path.display()))?;
    Ok(Setup {
        params,
        params_path,
        fps_path,
        finality_providers,
        members,
        quorum,
        hmac_key_path,
        committee_dir,
    })
}

fn random_hex() -> String {
    format!(
        "{:x}",
        sha256::Hash::hash(
            &SecretKey::new(&mut bitcoin::secp256k1::rand::thread_rng()).secret_bytes()
        )
    )
}

/// The committee's HMAC key file, created on first use.
fn ensure_hmac_key(committee_dir: &Path) -> anyhow::Result<PathBuf> {
    let path = committee_dir.join("hmac-key");
    if !path.exists() {
        write_private(&path, &random_hex())?;
    }
    Ok(path)
}

/// One running committee member.
#[derive(Debug)]
pub struct RunningSigner {
    pub public_key: PublicKey,
    pub addr: SocketAddr,
    pub config_path: PathBuf,
    /// The signer's metrics, served on the devnet's `/metrics` with `service="signer-<i>"`.
    pub registry: prometheus::Registry,
    pub task: JoinHandle<anyhow::Result<()>>,
}

impl RunningSigner {
    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// Where the members' signers reach the chain.
#[derive(Debug, Clone)]
pub struct ChainAccess {
    pub rpc_url: String,
    pub user: String,
    pub password: String,
}

fn member_config(setup: &Setup, i: usize, port: u16, chain: &ChainAccess) -> String {
    format!(
        "# Covenant committee member {i} of this devnet, written by `stakingd devnet` at every start.\n\
         # The standalone signer reads it too. Check it with\n\
         #   {signer} check --config {config} --params {params}\n\
         # (`start` instead of `check` serves it, once this devnet no longer does).\n\
         [server]\nhost = \"127.0.0.1\"\nport = {port}\n\n\
         [metrics]\nenabled = false\n\n\
         [rate-limit]\nrequests-per-second = 0\nburst = 0\n\n\
         [auth]\nhmac-key-file = {hmac:?}\n\n\
         [btc-config]\nurl = {url:?}\nnetwork = \"regtest\"\nuser = {user:?}\npass = {pass:?}\n\n\
         [signer]\nbackend = \"file\"\nkey-file = {key:?}\npassphrase-file = {passphrase:?}\n",
        signer = crate::devnet_banner::tool("covenant-signer"),
        config = shell_quote(&setup.committee_dir.join(format!("member-{i}.toml")).display().to_string()),
        params = shell_quote(&setup.params_path.display().to_string()),
        url = chain.rpc_url,
        user = chain.user,
        pass = chain.password,
        key = key_path(&setup.committee_dir, i).display().to_string(),
        passphrase = setup.committee_dir.join("passphrase").display().to_string(),
        hmac = setup.hmac_key_path.display().to_string(),
    )
}

/// Starts every member's signing server (port `base_port + i`, or free ports when 0) and
/// returns once all listen.
pub async fn start_signers(
    setup: &Setup,
    chain: &ChainAccess,
    base_port: u16,
    shutdown: &CancellationToken,
) -> anyhow::Result<Vec<RunningSigner>> {
    let mut running = Vec::with_capacity(setup.members.len());
    for (i, public_key) in setup.members.iter().enumerate() {
        let port = if base_port == 0 {
            0
        } else {
            base_port
                .checked_add(u16::try_from(i)?)
                .context("--signer-base-port is too high for the committee size")?
        };
        let config_path = setup.committee_dir.join(format!("member-{i}.toml"));
        std::fs::write(&config_path, member_config(setup, i, port, chain))
            .with_context(|| format!("writing {}", config_path.display()))?;
        let config = covenant_signer::config::Config::from_file(&config_path)
            .with_context(|| format!("signer config {}", config_path.display()))?;
        let backend = covenant_signer::open_backend(&config)
            .with_context(|| format!("committee member {i}"))?;
        let view = Arc::new(CachedChain::new(
            RpcChain::new(covenant_signer::rpc_client(&config.btc_config)?),
            config.cache_ttl(),
            config.cache.max_entries,
        ));
        let (bound_tx, bound_rx) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(covenant_signer::serve(
            config,
            setup.params.clone(),
            view,
            backend,
            shutdown.clone(),
            move |bound| {
                let _ignored = bound_tx.send(bound);
            },
        ));
        let (addr, registry) = match bound_rx.await {
            Ok(bound) => (bound.api, bound.registry),
            Err(_) => {
                let reason = match task.await {
                    Ok(Err(e)) => format!("{e:#}"),
                    Ok(Ok(())) => "it stopped at once".to_owned(),
                    Err(e) => e.to_string(),
                };
                bail!("committee member {i}'s signer did not start: {reason}");
            }
        };
        running.push(RunningSigner {
            public_key: *public_key,
            addr,
            config_path,
            registry,
            task,
        });
    }
    Ok(running)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail loudly")]

    use super::*;

    #[test]
    fn a_new_data_directory_gets_a_committee_params_and_finality_providers() {
        let dir = tempfile::tempdir().unwrap();
        let setup = load_or_create(dir.path(), Some(4), Some(3)).unwrap();
        assert_eq!(setup.members.len(), 4);
        assert_eq!(setup.quorum, 3);
        let version = &setup.params.versions()[0];
        assert_eq!(version.covenant_pks, setup.members);
        assert_eq!(version.covenant_quorum, 3);
        assert_eq!(version.tag, TAG);
        assert_eq!(version.activation_height, BlockHeight(ACTIVATION_HEIGHT));
        // The params file on disk is what the services load.
        let text = std::fs::read_to_string(&setup.params_path).unwrap();
        let (from_disk, _) = GlobalParams::from_json(&text).unwrap();
        assert_eq!(from_disk.versions()[0].covenant_pks, setup.members);
        // Each member's key file unlocks with the committee passphrase to the listed key.
        let passphrase = std::fs::read_to_string(dir.path().join("committee/passphrase")).unwrap();
        for (i, member) in setup.members.iter().enumerate() {
            let key = CovenantKey::load(
                &key_path(&setup.committee_dir, i),
                &Passphrase::new(passphrase.clone()),
            )
            .unwrap();
            assert_eq!(key.public_key(), *member);
        }
        let fps: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&setup.fps_path).unwrap()).unwrap();
        assert_eq!(
            fps["finality_providers"].as_array().unwrap().len(),
            FINALITY_PROVIDERS
        );
        assert_eq!(
            fps["finality_providers"][0]["btc_pk"],
            setup.finality_providers[0].to_string()
        );
        assert!(!std::fs::read(&setup.hmac_key_path).unwrap().is_empty());
    }

    #[test]
    fn a_second_start_resumes_the_same_committee_and_keys() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_create(dir.path(), None, None).unwrap();
        assert_eq!(first.members.len(), DEFAULT_SIGNERS);
        assert_eq!(first.quorum, DEFAULT_QUORUM);
        let hmac = std::fs::read(&first.hmac_key_path).unwrap();
        let second = load_or_create(dir.path(), None, None).unwrap();
        assert_eq!(second.members, first.members);
        assert_eq!(second.quorum, first.quorum);
        assert_eq!(std::fs::read(&second.hmac_key_path).unwrap(), hmac);
        // Naming the same sizes again is fine.
        assert!(load_or_create(dir.path(), Some(DEFAULT_SIGNERS), Some(DEFAULT_QUORUM)).is_ok());
    }

    #[test]
    fn another_committee_for_an_existing_directory_is_refused_with_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        load_or_create(dir.path(), Some(3), Some(2)).unwrap();
        let e = load_or_create(dir.path(), Some(5), None)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("3 signers with quorum 2") && e.contains("new --datadir"),
            "{e}"
        );
        let e = load_or_create(dir.path(), None, Some(3))
            .unwrap_err()
            .to_string();
        assert!(e.contains("quorum 2"), "{e}");
    }

    #[test]
    fn a_quorum_the_committee_cannot_reach_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let e = load_or_create(dir.path(), Some(2), Some(3))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("--quorum 3 must be between 1 and --signers 2"),
            "{e}"
        );
        let e = load_or_create(dir.path(), Some(0), None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("--signers 0"), "{e}");
        // Nothing was written for a refused committee.
        assert!(!dir.path().join("global-params.json").exists());
    }

    #[test]
    fn a_missing_member_key_file_is_reported_as_damage() {
        let dir = tempfile::tempdir().unwrap();
        let setup = load_or_create(dir.path(), Some(2), Some(1)).unwrap();
        std::fs::remove_file(key_path(&setup.committee_dir, 1)).unwrap();
        let e = load_or_create(dir.path(), None, None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("member-1.key is missing"), "{e}");
    }
}
