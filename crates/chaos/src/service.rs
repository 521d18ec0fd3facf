//! A service as a real process (`stakingd indexer`, `stakingd api`, …) under a supervisor that
//! restarts it when it exits, as systemd's `Restart=always` would: the harness kills it with
//! SIGKILL and checks the system recovers, and a service that gives up on a lost dependency is
//! brought back the same way in production.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::Context;
use tokio::process::{Child, Command};

/// One supervised process.
#[derive(Debug)]
pub struct Service {
    pub name: String,
    program: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
    log: PathBuf,
    child: Option<Child>,
    /// SIGKILLs the harness sent.
    pub kills: u32,
    /// Times the process exited on its own and was restarted.
    pub exits: u32,
}

impl Service {
    pub fn new(name: &str, program: &Path, args: &[String], log_dir: &Path) -> Self {
        Service {
            name: name.to_owned(),
            program: program.to_owned(),
            args: args.to_vec(),
            env: vec![("RUST_LOG".to_owned(), "info".to_owned())],
            log: log_dir.join(format!("{name}.log")),
            child: None,
            kills: 0,
            exits: 0,
        }
    }

    /// Starts the process, appending its stdout and stderr to `<log_dir>/<name>.log`.
    pub fn start(&mut self) -> anyhow::Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .with_context(|| format!("opening {}", self.log.display()))?;
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true);
        let child = cmd.spawn().with_context(|| {
            format!(
                "starting {} ({} {})",
                self.name,
                self.program.display(),
                self.args.join(" ")
            )
        })?;
        self.child = Some(child);
        Ok(())
    }

    /// SIGKILL, reaped, not restarted (call [`Service::start`] or [`Service::supervise`]).
    pub async fn kill(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            // `start_kill` sends SIGKILL on Unix.
            child.start_kill().ok();
            child.wait().await?;
            self.kills += 1;
        }
        Ok(())
    }

    /// Restarts the process if it has exited by itself (counted in `exits`).
    pub fn supervise(&mut self) -> anyhow::Result<()> {
        let exited = match self.child.as_mut() {
            None => true,
            Some(child) => child.try_wait()?.is_some(),
        };
        if exited {
            if self.child.is_some() {
                self.exits += 1;
                eprintln!(
                    "chaos: {} exited by itself; restarting (see {})",
                    self.name,
                    self.log.display()
                );
            }
            self.start()?;
        }
        Ok(())
    }

    /// SIGTERM and wait (a clean stop at the end of a run).
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            if let Some(pid) = child.id() {
                let _ignored = std::process::Command::new("kill")
                    .args(["-TERM", &pid.to_string()])
                    .status();
            }
            match tokio::time::timeout(std::time::Duration::from_secs(15), child.wait()).await {
                Ok(r) => {
                    r?;
                }
                Err(_) => {
                    child.start_kill().ok();
                    child.wait().await?;
                }
            }
        }
        Ok(())
    }
}
