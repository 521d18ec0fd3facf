//! `stakingd devnet` as a process, as a new user meets it: `--chain-only` prints its RPC URL and
//! stops on SIGTERM; a second devnet on a data directory in use is refused and changes nothing
//! in it; the commands the banner prints run as printed. The all-in-one lifecycle is tested in
//! `devnet_all_in_one.rs`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failed test"
)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

#[test]
fn devnet_chain_only_prints_its_rpc_url_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_stakingd"))
        .args([
            "devnet",
            "--chain-only",
            "--rpc-port",
            "0",
            "--esplora-port",
            "0",
            "--datadir",
        ])
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let url = loop {
        let line = lines.next().expect("output").unwrap();
        if let Some(url) = line.strip_prefix("RPC URL:") {
            break url.trim().to_owned();
        }
    };
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let password = lines.next().unwrap().unwrap();
    assert!(password.starts_with("RPC user:"));
    signal(&child, "TERM");
    let exit = child.wait().unwrap();
    assert!(exit.success(), "{exit:?}");
    assert!(dir.path().join("blocks.dat").exists());
}

/// An all-in-one `stakingd devnet` on `datadir`, killed when dropped.
struct Devnet {
    child: Child,
    /// Its stdout, line by line, until the banner's last line.
    banner: Vec<String>,
}

impl Devnet {
    fn start(datadir: &Path, extra: &[&str]) -> Devnet {
        let mut child = Command::new(env!("CARGO_BIN_EXE_stakingd"))
            .args([
                "devnet",
                "--rpc-port",
                "0",
                "--api-port",
                "0",
                "--esplora-port",
                "0",
                "--datadir",
            ])
            .arg(datadir)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        // Keeps reading after the banner so the process never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                println!("devnet> {line}");
                let _ = tx.send(line);
            }
        });
        // Owned by a `Devnet` from here on, so a failed wait still kills and reaps it.
        let mut devnet = Devnet {
            child,
            banner: Vec::new(),
        };
        let started = Instant::now();
        loop {
            let left = Duration::from_secs(180).saturating_sub(started.elapsed());
            let line = rx
                .recv_timeout(left)
                .unwrap_or_else(|e| panic!("no banner ({e}); so far: {:#?}", devnet.banner));
            let last = line.starts_with("Ctrl-C stops everything");
            devnet.banner.push(line);
            if last {
                return devnet;
            }
        }
    }

    /// The value after `label` in the banner.
    fn printed(&self, label: &str) -> String {
        self.banner
            .iter()
            .find_map(|l| l.strip_prefix(label))
            .unwrap_or_else(|| panic!("no {label:?} in {:#?}", self.banner))
            .trim()
            .to_owned()
    }

    fn stop(mut self) {
        signal(&self.child, "TERM");
        assert!(self.child.wait().unwrap().success());
    }
}

impl Drop for Devnet {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn signal(child: &Child, signal: &str) {
    let ok = Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{signal} failed");
}

/// Every file under `dir` with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                files.insert(path.clone(), std::fs::read(&path).unwrap());
            }
        }
    }
    files
}

#[test]
fn a_second_devnet_on_a_data_directory_in_use_is_refused_naming_the_first_and_changes_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let datadir = dir.path().join("devnet");
    let first = Devnet::start(&datadir, &[]);
    let api = first.printed("API URL:");
    // Frozen, the first devnet writes nothing while the directory is compared (it keeps its
    // lock: the lock belongs to its open file, not to a running thread).
    signal(&first.child, "STOP");
    std::thread::sleep(Duration::from_millis(200));
    let before = snapshot(&datadir);
    let second = Command::new(env!("CARGO_BIN_EXE_stakingd"))
        .args([
            "devnet",
            "--rpc-port",
            "0",
            "--api-port",
            "0",
            "--esplora-port",
            "0",
            "--datadir",
        ])
        .arg(&datadir)
        .output()
        .unwrap();
    let after = snapshot(&datadir);
    signal(&first.child, "CONT");

    assert!(!second.status.success(), "{second:?}");
    let stderr = String::from_utf8_lossy(&second.stderr);
    let said = format!("pid {}, API {api}", first.child.id());
    assert!(stderr.contains(&said), "{said:?} not in {stderr}");
    assert!(stderr.contains("another --datadir"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "one sentence: {stderr}");
    assert!(before.len() > 5, "{:?}", before.keys());
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>()
    );
    for (path, bytes) in &before {
        assert!(&after[path] == bytes, "{} changed", path.display());
    }
    first.stop();
}

/// Runs `line` as a shell does, from the checkout, with `home` as `$HOME` (the staker's key
/// goes to `~/.staker`).
fn shell(line: &str, home: &Path) -> Output {
    let checkout = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut command = Command::new("sh");
    command
        .args(["-c", line])
        .current_dir(checkout)
        .env("HOME", home);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("STAKER_") {
            command.env_remove(key);
        }
    }
    let out = command.output().unwrap();
    println!(
        "$ {line}\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
fn the_staker_commands_of_the_banner_run_as_printed() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let devnet = Devnet::start(&dir.path().join("devnet"), &["--block-interval", "1"]);
    let command = |needle: &str| -> String {
        devnet
            .banner
            .iter()
            .find(|l| l.starts_with("  ") && l.contains(needle))
            .unwrap_or_else(|| panic!("no {needle:?} command in {:#?}", devnet.banner))
            .trim()
            .to_owned()
    };

    let generate = shell(&command(" keys generate "), &home);
    assert!(generate.status.success(), "keys generate failed");
    let address = String::from_utf8_lossy(&generate.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("p2tr_address: ").map(str::to_owned))
        .expect("the key's address");
    let faucet = command("\"faucet\"").replace("<your bcrt1… or tb1… address>", &address);
    let funded = shell(&faucet, &home);
    assert!(
        funded.status.success() && !String::from_utf8_lossy(&funded.stdout).contains("\"error\":{"),
        "faucet failed"
    );
    let stake = shell(&command(" stake "), &home);
    assert!(stake.status.success(), "stake failed");

    // The API has the stake once the indexer counted it; `status` lists it.
    let status_line = command(" status ");
    let started = Instant::now();
    loop {
        let status = shell(&status_line, &home);
        assert!(status.status.success(), "status failed");
        if String::from_utf8_lossy(&status.stdout).contains(": 1 delegation(s)") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the API never listed the stake"
        );
        std::thread::sleep(Duration::from_secs(1));
    }

    // The committee members' configs carry a command that checks them, as printed.
    let member =
        std::fs::read_to_string(dir.path().join("devnet/committee/member-0.toml")).unwrap();
    let check = member
        .lines()
        .find_map(|l| l.strip_prefix("#   "))
        .unwrap_or_else(|| panic!("no command in member-0.toml:\n{member}"));
    let checked = shell(check, &home);
    assert!(
        checked.status.success(),
        "the member config's command failed"
    );
    devnet.stop();
}
