//! What `stakingd devnet` tells its user: the banner on stdout (what runs where, and how to
//! point the staker CLI, the dApp or curl at it) and the same facts in `<datadir>/devnet.toml`.

use anyhow::Context;

use crate::devnet_committee::{self, RunningSigner, Setup, ACTIVATION_HEIGHT};
use crate::devnet_stack::Running;

pub fn write_summary(
    run: &Running,
    setup: &Setup,
    signers: &[RunningSigner],
) -> anyhow::Result<()> {
    let members: Vec<String> = signers
        .iter()
        .map(|s| {
            format!(
                "  {{ url = \"{}\", public_key = \"{}\", config = {:?} }},",
                s.url(),
                s.public_key,
                s.config_path.display().to_string()
            )
        })
        .collect();
    let fps: Vec<String> = setup
        .finality_providers
        .iter()
        .map(|fp| format!("\"{fp}\""))
        .collect();
    let text = format!(
        "# What `stakingd devnet` runs and where; rewritten at every start.\n\
         network = \"regtest\"\nparams = {params:?}\nfinality_providers_file = {fps_file:?}\n\
         finality_providers = [{fps}]\ndatabase_url = {db:?}\nqueue = {queue:?}\n\n\
         [bitcoind]\nurl = {rpc:?}\nuser = {user:?}\npassword = {pass:?}\n\n\
         [api]\nurl = {api:?}\n\n\
         [committee]\nquorum = {quorum}\nhmac_key_file = {hmac:?}\nmembers = [\n{members}\n]\n",
        params = setup.params_path.display().to_string(),
        fps_file = setup.fps_path.display().to_string(),
        fps = fps.join(", "),
        db = redact(&run.database_url),
        queue = redact(&run.queue),
        rpc = run.rpc_url,
        user = run.rpc_user,
        pass = run.rpc_password,
        api = run.api_url,
        quorum = setup.quorum,
        hmac = setup.hmac_key_path.display().to_string(),
        members = members.join("\n"),
    );
    let path = run.datadir.join("devnet.toml");
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))
}

/// `scheme://user:password@host` → `scheme://user:***@host`.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

pub fn print_banner(run: &Running, setup: &Setup, signers: &[RunningSigner]) {
    let fp = setup
        .finality_providers
        .first()
        .map(ToString::to_string)
        .unwrap_or_default();
    let ports: Vec<String> = signers.iter().map(|s| s.addr.port().to_string()).collect();
    let params = setup.params_path.display();
    println!(
        "stakingd devnet is running (regtest; data directory {})",
        run.datadir.display()
    );
    println!("RPC URL:      {}", run.rpc_url);
    println!("RPC user:     {}", run.rpc_user);
    println!("RPC password: {}", run.rpc_password);
    println!("API URL:      {}", run.api_url);
    println!(
        "metrics:      {} (every service; readiness at /health/ready)",
        run.metrics_url
    );
    println!(
        "committee:    {} covenant signers on 127.0.0.1 ports {}, quorum {}",
        signers.len(),
        ports.join(","),
        setup.quorum
    );
    println!(
        "services:     indexer, API, expiry checker, unbonding pipeline; database {}; queues {}",
        redact(&run.database_url),
        redact(&run.queue)
    );
    println!(
        "params:       {params} (tag dvnt, activation height {ACTIVATION_HEIGHT}, {} confirmations, unbonding time {} blocks)",
        devnet_committee::CONFIRMATION_DEPTH,
        devnet_committee::UNBONDING_TIME
    );
    match run.block_interval {
        Some(s) => println!("mining:       one block every {s} s"),
        None => println!("mining:       only on request (generatetoaddress, faucet)"),
    }
    println!(
        "config:       {}",
        run.datadir.join("devnet.toml").display()
    );
    println!();
    println!("Point the tools at it:");
    let rpc = format!(
        "--rpc-url {} --rpc-user {} --rpc-password {}",
        run.rpc_url, run.rpc_user, run.rpc_password
    );
    println!("  staker keys generate --network regtest");
    println!(
        "  curl -s --user {}:{} -d '{{\"method\":\"faucet\",\"params\":[\"<your bcrt1 address>\",1]}}' {}",
        run.rpc_user, run.rpc_password, run.rpc_url
    );
    println!(
        "  staker stake --params {params} --network regtest {rpc} --fp-pk {fp} --amount 100000 --staking-time 100 --wait"
    );
    println!(
        "  staker unbond --params {params} --network regtest --api-url {} --staking-txid <TXID> --wait",
        run.api_url
    );
    println!(
        "  staker withdraw --params {params} --network regtest {rpc} --staking-txid <TXID>   (after an unbonding: --unbonding-txid <UNBONDING TXID>)"
    );
    println!(
        "  staker status --network regtest --api-url {}",
        run.api_url
    );
    println!(
        "  curl -s {}/v1/stats   (OpenAPI: {}/swagger)",
        run.api_url, run.api_url
    );
    println!(
        "  staking dApp: set its API URL to {} (CORS allows any origin)",
        run.api_url
    );
    println!("Ctrl-C stops everything cleanly; the same command resumes from the data directory.");
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_in_urls_are_hidden_and_other_urls_kept() {
        assert_eq!(
            redact("amqp://guest:secret@127.0.0.1:5672"),
            "amqp://guest:***@127.0.0.1:5672"
        );
        assert_eq!(
            redact("postgres://postgres@127.0.0.1/devnet"),
            "postgres://postgres@127.0.0.1/devnet"
        );
        assert_eq!(
            redact("sqlite:/tmp/d/stakingd.db"),
            "sqlite:/tmp/d/stakingd.db"
        );
        assert_eq!(redact("in-process"), "in-process");
    }
}
