//! A service as a real process (`stakingd indexer`, `covenant-signer start`, …) under a
//! supervisor that restarts it when it exits, as systemd's `Restart=always` would: the harness
//! kills it with SIGKILL (or stops it with SIGSTOP) and checks the system recovers, and a
//! service that gives up on a lost dependency is brought back the same way in production.
//!
//! The fault's timing lives here too: a killed service comes back when [`Service::supervise`]
//! runs after its restart moment, a held one only after [`Service::release`], a paused one is
//! continued (SIGCONT) after its pause, so the scenario loop only has to call `supervise` on
//! every service each tick.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

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
    /// Killed by the harness: started again by `supervise` at this moment.
    restart_at: Option<Instant>,
    /// Killed by the harness and kept down until [`Service::release`].
    held: bool,
    /// Stopped (SIGSTOP) by the harness: continued by `supervise` at this moment.
    resume_at: Option<Instant>,
    /// SIGKILLs the harness sent.
    pub kills: u32,
    /// SIGSTOPs the harness sent.
    pub pauses: u32,
    /// Times the process exited on its own and was restarted.
    pub exits: u32,
}

/// Sends `signal` (`-STOP`, `-CONT`, `-TERM`) with kill(1); a child that already exited is fine.
fn signal(child: &Child, signal: &str) {
    if let Some(pid) = child.id() {
        let _ignored = std::process::Command::new("kill")
            .args([signal, &pid.to_string()])
            .status();
    }
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
            restart_at: None,
            held: false,
            resume_at: None,
            kills: 0,
            pauses: 0,
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
        self.restart_at = None;
        Ok(())
    }

    /// Whether the harness holds the process down or stopped right now (a fault in progress).
    pub fn disturbed(&self) -> bool {
        self.held || self.restart_at.is_some() || self.resume_at.is_some()
    }

    /// Whether the harness holds it down until [`Service::release`].
    pub fn held(&self) -> bool {
        self.held
    }

    async fn sigkill(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            // A stopped process dies of SIGKILL too; `start_kill` sends SIGKILL on Unix.
            child.start_kill().ok();
            child.wait().await?;
            self.kills += 1;
        }
        self.resume_at = None;
        Ok(())
    }

    /// SIGKILL, reaped; `supervise` starts it again once `down` has passed.
    pub async fn kill_for(&mut self, down: Duration) -> anyhow::Result<()> {
        self.sigkill().await?;
        self.restart_at = Some(Instant::now() + down);
        Ok(())
    }

    /// SIGKILL, reaped, kept down until [`Service::release`] (a dead committee member).
    pub async fn kill_held(&mut self) -> anyhow::Result<()> {
        self.sigkill().await?;
        self.held = true;
        Ok(())
    }

    /// Lets `supervise` start a held service again.
    pub fn release(&mut self) {
        self.held = false;
    }

    /// SIGSTOP: the process keeps its sockets (connections are accepted by the kernel and then
    /// hang), so it is a slow service, not a dead one; `supervise` sends SIGCONT after `pause`.
    pub fn pause_for(&mut self, pause: Duration) {
        if let Some(child) = &self.child {
            signal(child, "-STOP");
            self.pauses += 1;
            self.resume_at = Some(Instant::now() + pause);
        }
    }

    /// Carries out what is due: continues a paused process, starts a killed one whose restart
    /// moment has passed, and restarts one that exited by itself (counted in `exits`).
    pub fn supervise(&mut self) -> anyhow::Result<()> {
        let now = Instant::now();
        if let Some(at) = self.resume_at {
            if now >= at {
                if let Some(child) = &self.child {
                    signal(child, "-CONT");
                }
                self.resume_at = None;
            }
        }
        if self.held || self.restart_at.is_some_and(|at| now < at) {
            return Ok(());
        }
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

    /// SIGTERM and wait (a clean stop at the end of a run); a paused process is continued first.
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        self.held = false;
        self.restart_at = None;
        if let Some(mut child) = self.child.take() {
            if self.resume_at.take().is_some() {
                signal(&child, "-CONT");
            }
            signal(&child, "-TERM");
            match tokio::time::timeout(Duration::from_secs(15), child.wait()).await {
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
