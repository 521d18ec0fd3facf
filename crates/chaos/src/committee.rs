//! The covenant committee as `covenant-signer start` processes, one per member, on loopback.
//!
//! The members' keys are the fixture's (the load signs its own on-chain unbondings with them
//! too), sealed into real key files with a cheap key-derivation cost: they guard nothing, and a
//! restarted member unlocks its file again at every start.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bitcoin::secp256k1::Keypair;
use covenant_signer::keyfile::{CovenantKey, KdfCost, Passphrase};

use crate::service::Service;

/// Key derivation of the throw-away member key files (as the devnet's committee).
const KDF: KdfCost = KdfCost {
    memory_kib: 1024,
    iterations: 1,
    parallelism: 1,
};

/// One member's signing server.
#[derive(Debug)]
pub struct Member {
    /// The 33-byte compressed key as the params list it.
    pub public_key: String,
    pub url: String,
    pub service: Service,
}

/// The whole committee.
#[derive(Debug)]
pub struct Committee {
    pub members: Vec<Member>,
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

impl Committee {
    /// Writes each member's key file and config under `dir/committee` and starts the servers;
    /// returns once every member answers `/health`.
    pub async fn start(
        signer_bin: &Path,
        dir: &Path,
        keys: &[Keypair],
        rpc_url: &str,
        params: &Path,
    ) -> anyhow::Result<Committee> {
        let cdir = dir.join("committee");
        std::fs::create_dir_all(&cdir)?;
        let passphrase_file = cdir.join("passphrase");
        let passphrase = "chaos committee passphrase";
        std::fs::write(&passphrase_file, passphrase)?;
        let mut members = Vec::with_capacity(keys.len());
        for (i, keypair) in keys.iter().enumerate() {
            let key_file = cdir.join(format!("member-{i}.key"));
            let key = CovenantKey::from_secret_key(&keypair.secret_key());
            key.save_throwaway(&key_file, &Passphrase::new(passphrase.to_owned()), KDF)
                .with_context(|| format!("writing {}", key_file.display()))?;
            let port = free_port()?;
            let config = cdir.join(format!("member-{i}.toml"));
            std::fs::write(
                &config,
                member_config(port, rpc_url, &key_file, &passphrase_file),
            )?;
            let mut service = Service::new(
                &format!("signer-{i}"),
                signer_bin,
                &[
                    "start".to_owned(),
                    "--config".to_owned(),
                    config.display().to_string(),
                    "--params".to_owned(),
                    params.display().to_string(),
                ],
                dir,
            );
            service.start()?;
            members.push(Member {
                public_key: key.public_key().to_string(),
                url: format!("http://127.0.0.1:{port}"),
                service,
            });
        }
        let committee = Committee { members };
        committee.wait_healthy(Duration::from_secs(60)).await?;
        Ok(committee)
    }

    async fn wait_healthy(&self, timeout: Duration) -> anyhow::Result<()> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()?;
        let started = Instant::now();
        for m in &self.members {
            loop {
                let ok = http
                    .get(format!("{}/health", m.url))
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success());
                if ok {
                    break;
                }
                if started.elapsed() > timeout {
                    bail!(
                        "covenant signer {} did not answer /health within {}s (see its log)",
                        m.service.name,
                        timeout.as_secs()
                    );
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        Ok(())
    }

    /// The pipeline's `[[signers]]` entries.
    pub fn pipeline_toml(&self) -> String {
        self.members
            .iter()
            .map(|m| {
                format!(
                    "\n[[signers]]\npublic_key = \"{}\"\nurl = \"{}\"\n",
                    m.public_key, m.url
                )
            })
            .collect()
    }

    /// Members neither killed nor stopped by the harness right now.
    pub fn undisturbed(&self) -> Vec<usize> {
        (0..self.members.len())
            .filter(|i| !self.members[*i].service.disturbed())
            .collect()
    }

    pub fn supervise(&mut self) -> anyhow::Result<()> {
        for m in &mut self.members {
            m.service.supervise()?;
        }
        Ok(())
    }

    pub async fn stop(&mut self) -> anyhow::Result<()> {
        for m in &mut self.members {
            m.service.stop().await?;
        }
        Ok(())
    }
}

fn member_config(port: u16, rpc_url: &str, key_file: &Path, passphrase_file: &Path) -> String {
    format!(
        "[server]\nhost = \"127.0.0.1\"\nport = {port}\n\n\
         [metrics]\nenabled = false\n\n\
         [rate-limit]\nrequests-per-second = 0\nburst = 0\n\n\
         [btc-config]\nurl = {rpc_url:?}\nnetwork = \"regtest\"\nuser = \"devnet\"\npass = \"devnet\"\n\n\
         [signer]\nbackend = \"file\"\nkey-file = {key:?}\npassphrase-file = {pass:?}\n",
        key = key_file.display().to_string(),
        pass = passphrase_file.display().to_string(),
    )
}
