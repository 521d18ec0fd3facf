//! What `stakingd devnet` tells its user: the banner on stdout (what runs where, and how to
//! point the staker CLI, the dApp or curl at it) and the same facts in `<datadir>/devnet.toml`.

use anyhow::Context;
use net::redact_url as redact;

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
         [api]\nurl = {api:?}\n\n[esplora]\nurl = {esplora:?}\n\n\
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
        esplora = run.esplora_url,
        quorum = setup.quorum,
        hmac = setup.hmac_key_path.display().to_string(),
        members = members.join("\n"),
    );
    let path = run.datadir.join("devnet.toml");
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))
}

/// How to run another binary of this workspace (`staker`, `covenant-signer`) so that a command
/// printed with it runs as printed: the absolute path of that binary when it sits next to the
/// running `stakingd` (as after `cargo build`, `cargo test --workspace` or an install of all
/// three), otherwise `cargo run -q --bin NAME --`, which runs from the checkout (and builds the
/// binary the first time). A binary found next to `stakingd` is used as it is: `cargo build
/// --bin NAME` refreshes it after a change to its code.
pub fn tool(name: &str) -> String {
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| {
            Some(
                exe.parent()?
                    .join(format!("{name}{}", std::env::consts::EXE_SUFFIX)),
            )
        })
        .filter(|path| path.is_file());
    match beside {
        Some(path) => shell_quote(&path.display().to_string()),
        None => format!("cargo run -q --bin {name} --"),
    }
}

/// `text` as one POSIX shell word: unchanged when it has no special characters, else in single
/// quotes.
pub fn shell_quote(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+:,=@%".contains(c));
    if plain {
        text.to_owned()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

/// The banner's lines: what runs where, then commands that run as printed from the checkout
/// (`staker` is [`tool`]'s; fill in the `<…>` placeholders; remarks follow a shell `#`, so a
/// pasted line is a valid command). The test `devnet_cli.rs` runs them.
pub fn banner(
    run: &Running,
    setup: &Setup,
    signers: &[RunningSigner],
    staker: &str,
) -> Vec<String> {
    let fp = setup
        .finality_providers
        .first()
        .map(ToString::to_string)
        .unwrap_or_default();
    let ports: Vec<String> = signers.iter().map(|s| s.addr.port().to_string()).collect();
    let params = shell_quote(&setup.params_path.display().to_string());
    let mut lines = vec![
        format!(
            "stakingd devnet is running (regtest; data directory {})",
            run.datadir.display()
        ),
        format!("RPC URL:      {}", run.rpc_url),
        format!("RPC user:     {}", run.rpc_user),
        format!("RPC password: {}", run.rpc_password),
        format!("API URL:      {}", run.api_url),
        format!(
            "Esplora REST: {0}/api and {0}/signet/api (mempool.space shapes)",
            run.esplora_url
        ),
        format!(
            "metrics:      {} (every service; readiness at /health/ready)",
            run.metrics_url
        ),
        format!(
            "committee:    {} covenant signers on 127.0.0.1 ports {}, quorum {}",
            signers.len(),
            ports.join(","),
            setup.quorum
        ),
        format!(
            "services:     indexer, API, expiry checker, unbonding pipeline; database {}; queues {}",
            redact(&run.database_url),
            redact(&run.queue)
        ),
        format!(
            "params:       {} (tag dvnt, activation height {ACTIVATION_HEIGHT}, {} confirmations, unbonding time {} blocks)",
            setup.params_path.display(),
            devnet_committee::CONFIRMATION_DEPTH,
            devnet_committee::UNBONDING_TIME
        ),
        match run.block_interval {
            Some(s) => format!("mining:       one block every {s} s"),
            None => "mining:       only on request (generatetoaddress, faucet)".to_owned(),
        },
        format!(
            "config:       {}",
            run.datadir.join("devnet.toml").display()
        ),
        String::new(),
        if staker.starts_with("cargo ") {
            "Point the tools at it (from the checkout; `cargo run` builds staker the first time):"
        } else {
            "Point the tools at it:"
        }
        .to_owned(),
    ];
    let rpc = format!(
        "--rpc-url {} --rpc-user {} --rpc-password {}",
        run.rpc_url,
        shell_quote(&run.rpc_user),
        shell_quote(&run.rpc_password)
    );
    let api = &run.api_url;
    lines.extend([
        format!("  {staker} keys generate --network regtest   # once: writes ~/.staker/regtest/staker-key.json"),
        format!(
            "  curl -s --user {}:{} -d '{{\"method\":\"faucet\",\"params\":[\"<your bcrt1… or tb1… address>\",1]}}' {}",
            run.rpc_user, run.rpc_password, run.rpc_url
        ),
        format!("  {staker} stake --params {params} --network regtest {rpc} --fp-pk {fp} --amount 100000 --staking-time 100 --wait"),
        format!("  {staker} unbond --params {params} --network regtest --api-url {api} --staking-txid <TXID> --wait"),
        format!("  {staker} withdraw --params {params} --network regtest {rpc} --staking-txid <TXID>   # after an unbonding: --unbonding-txid <UNBONDING TXID>"),
        format!("  {staker} status --network regtest --api-url {api}"),
        format!("  curl -s {api}/v1/stats   # OpenAPI: {api}/swagger/"),
        "# staking dApp: build it with these two; fund its wallet's tb1… address with the faucet line above".to_owned(),
        format!("NEXT_PUBLIC_API_URL={api}"),
        format!("NEXT_PUBLIC_MEMPOOL_API={}", run.esplora_url),
        "Ctrl-C stops everything cleanly; the same command resumes from the data directory.".to_owned(),
    ]);
    lines
}

pub fn print_banner(run: &Running, setup: &Setup, signers: &[RunningSigner]) {
    for line in banner(run, setup, signers, &tool("staker")) {
        println!("{line}");
    }
}

#[cfg(test)]
mod tests {
    use super::{redact, shell_quote};

    #[test]
    fn shell_words_are_quoted_only_when_they_need_it() {
        assert_eq!(
            shell_quote("/tmp/d/global-params.json"),
            "/tmp/d/global-params.json"
        );
        assert_eq!(shell_quote("/tmp/my dir/x"), "'/tmp/my dir/x'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }

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
