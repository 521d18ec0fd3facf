//! Private PostgreSQL and RabbitMQ instances, started and stopped by the harness itself.
//!
//! The machine's shared servers serve other people's tests at the same time, so the faults
//! "stop RabbitMQ" and "restart PostgreSQL" are only ever applied to these private ones: a
//! PostgreSQL cluster from `initdb` in a temp directory and a RabbitMQ node with its own name,
//! ports, Mnesia directory and Erlang cookie (its own `HOME`).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use sqlx::{Connection, Executor, PgConnection};
use tokio::process::Command;

/// Where PostgreSQL 15's server binaries live on Debian/Ubuntu.
const PG_BIN: &str = "/usr/lib/postgresql/15/bin";
const RABBIT_BIN: &str = "/usr/lib/rabbitmq/bin";

async fn run(cmd: &mut Command, what: &str) -> anyhow::Result<()> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .await
        .with_context(|| format!("{what}: cannot start the command"))?;
    if !out.status.success() {
        bail!(
            "{what} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// `initdb` refuses to run as root; run the server binaries as `postgres` then.
fn as_pg_user(program: &str) -> Command {
    let path = format!("{PG_BIN}/{program}");
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--", &path]);
        c
    } else {
        Command::new(path)
    }
}

fn is_root() -> bool {
    std::env::var("USER").is_ok_and(|u| u == "root")
        || std::fs::metadata("/proc/self").is_ok_and(|m| {
            use std::os::unix::fs::MetadataExt;
            m.uid() == 0
        })
}

/// A private PostgreSQL cluster on `127.0.0.1:port`, trust authentication, user `postgres`.
#[derive(Debug)]
pub struct PrivatePostgres {
    dir: PathBuf,
    pub port: u16,
    running: bool,
}

impl PrivatePostgres {
    /// `initdb` + `pg_ctl start` in `dir/pg`.
    pub async fn start(dir: &Path, port: u16) -> anyhow::Result<Self> {
        let dir = dir.join("pg");
        std::fs::create_dir_all(&dir)?;
        if is_root() {
            run(
                Command::new("chown").args(["-R", "postgres", &dir.display().to_string()]),
                "chown of the private PostgreSQL directory",
            )
            .await?;
        }
        run(
            as_pg_user("initdb").args([
                "-D",
                &dir.join("data").display().to_string(),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
            ]),
            "initdb of the private PostgreSQL cluster (is PostgreSQL 15 installed?)",
        )
        .await?;
        let mut pg = PrivatePostgres {
            dir,
            port,
            running: false,
        };
        pg.up().await?;
        Ok(pg)
    }

    async fn up(&mut self) -> anyhow::Result<()> {
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300",
            self.port,
            self.dir.display()
        );
        run(
            as_pg_user("pg_ctl").args([
                "-D",
                &self.dir.join("data").display().to_string(),
                "-o",
                &opts,
                "-l",
                &self.dir.join("server.log").display().to_string(),
                "-w",
                "start",
            ]),
            "starting the private PostgreSQL",
        )
        .await?;
        self.running = true;
        Ok(())
    }

    async fn down(&mut self, mode: &str) -> anyhow::Result<()> {
        run(
            as_pg_user("pg_ctl").args([
                "-D",
                &self.dir.join("data").display().to_string(),
                "-m",
                mode,
                "-w",
                "stop",
            ]),
            "stopping the private PostgreSQL",
        )
        .await?;
        self.running = false;
        Ok(())
    }

    /// The fault: `pg_ctl stop -m immediate` (no clean shutdown, sessions cut, crash recovery
    /// on start), `pause`, start again.
    pub async fn restart(&mut self, pause: Duration) -> anyhow::Result<()> {
        self.down("immediate").await?;
        tokio::time::sleep(pause).await;
        self.up().await
    }

    /// A new empty database; its URL.
    pub async fn create_database(&self, name: &str) -> anyhow::Result<String> {
        let admin = format!("postgres://postgres@127.0.0.1:{}/postgres", self.port);
        let mut c = PgConnection::connect(&admin)
            .await
            .with_context(|| format!("connecting to the private PostgreSQL at {admin}"))?;
        c.execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .with_context(|| format!("creating database {name}"))?;
        Ok(format!(
            "postgres://postgres@127.0.0.1:{}/{name}",
            self.port
        ))
    }

    /// Stops the cluster (fast mode); the directory goes with the harness's temp dir.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if self.running {
            self.down("fast").await?;
        }
        Ok(())
    }
}

/// A private RabbitMQ node `chaos<pid>@localhost` on `127.0.0.1:port`, no plugins.
#[derive(Debug)]
pub struct PrivateRabbit {
    dir: PathBuf,
    node: String,
    pub port: u16,
    running: bool,
}

/// The delay-queue policy of the README's RabbitMQ section (name, pattern, definition).
const DELAY_POLICY_NAME: &str = "staking-delay-at-least-once";
const DELAY_POLICY_PATTERN: &str = "_delay$";
const DELAY_POLICY_DEFINITION: &str =
    r#"{"dead-letter-strategy":"at-least-once","overflow":"reject-publish"}"#;

impl PrivateRabbit {
    pub async fn start(dir: &Path, port: u16, dist_port: u16) -> anyhow::Result<Self> {
        let dir = dir.join("rabbitmq");
        for sub in ["home", "mnesia", "log"] {
            std::fs::create_dir_all(dir.join(sub))?;
        }
        std::fs::write(
            dir.join("rabbitmq.conf"),
            format!("listeners.tcp.local = 127.0.0.1:{port}\n"),
        )?;
        std::fs::write(dir.join("enabled_plugins"), "[].\n")?;
        let node = format!("chaos{}_{port}@localhost", std::process::id());
        let env = [
            ("HOME", dir.join("home").display().to_string()),
            ("RABBITMQ_NODENAME", node.clone()),
            ("RABBITMQ_NODE_PORT", port.to_string()),
            ("RABBITMQ_DIST_PORT", dist_port.to_string()),
            (
                "RABBITMQ_MNESIA_BASE",
                dir.join("mnesia").display().to_string(),
            ),
            ("RABBITMQ_LOG_BASE", dir.join("log").display().to_string()),
            (
                "RABBITMQ_CONFIG_FILE",
                dir.join("rabbitmq.conf").display().to_string(),
            ),
            (
                "RABBITMQ_ENABLED_PLUGINS_FILE",
                dir.join("enabled_plugins").display().to_string(),
            ),
            (
                "RABBITMQ_CONF_ENV_FILE",
                dir.join("no-env.conf").display().to_string(),
            ),
            ("RABBITMQ_PID_FILE", dir.join("pid").display().to_string()),
            ("ERL_EPMD_ADDRESS", "127.0.0.1".to_owned()),
        ];
        std::fs::write(
            dir.join("env"),
            env.iter()
                .map(|(k, v)| format!("{k}={v}\n"))
                .collect::<String>(),
        )?;
        let mut rabbit = PrivateRabbit {
            dir,
            node,
            port,
            running: false,
        };
        rabbit.up().await?;
        rabbit.set_delay_queue_policy().await?;
        Ok(rabbit)
    }

    /// The policy the README asks operators to set: delay queues dead-letter at least once.
    ///
    /// Quorum queues dead-letter expired messages at most once by default, so a requeued
    /// message whose TTL runs out while the node shuts down is dropped on its way back to the
    /// main queue (seen in this harness's `rabbitmq` scenario). A policy, not a queue argument,
    /// so the declared topology stays exactly the reference's. Stored in the node's Mnesia
    /// directory, so it survives the outages.
    async fn set_delay_queue_policy(&self) -> anyhow::Result<()> {
        run(
            self.command("rabbitmqctl")?.args([
                "-n",
                &self.node,
                "set_policy",
                "--apply-to",
                "queues",
                DELAY_POLICY_NAME,
                DELAY_POLICY_PATTERN,
                DELAY_POLICY_DEFINITION,
            ]),
            "setting the delay queues' at-least-once dead-lettering policy",
        )
        .await
    }

    fn command(&self, program: &str) -> anyhow::Result<Command> {
        let mut c = Command::new(format!("{RABBIT_BIN}/{program}"));
        let env = std::fs::read_to_string(self.dir.join("env"))?;
        for line in env.lines() {
            if let Some((k, v)) = line.split_once('=') {
                c.env(k, v);
            }
        }
        Ok(c)
    }

    /// Starts the node and waits until the broker accepts connections.
    pub async fn up(&mut self) -> anyhow::Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("server.out"))?;
        let mut server = self.command("rabbitmq-server")?;
        server
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(false);
        server
            .spawn()
            .context("starting rabbitmq-server (is RabbitMQ installed?)")?;
        let started = Instant::now();
        let pid = self.dir.join("pid");
        run(
            self.command("rabbitmqctl")?.args([
                "-n",
                &self.node,
                "wait",
                "--timeout",
                "90",
                &pid.display().to_string(),
            ]),
            "waiting for the private RabbitMQ node",
        )
        .await?;
        self.running = true;
        eprintln!(
            "chaos: private RabbitMQ {} up on port {} after {:.1}s",
            self.node,
            self.port,
            started.elapsed().as_secs_f64()
        );
        Ok(())
    }

    pub async fn down(&mut self) -> anyhow::Result<()> {
        run(
            self.command("rabbitmqctl")?
                .args(["-n", &self.node, "shutdown"]),
            "stopping the private RabbitMQ node",
        )
        .await?;
        self.running = false;
        Ok(())
    }

    pub fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}", self.port)
    }

    pub async fn stop(mut self) -> anyhow::Result<()> {
        if self.running {
            self.down().await?;
        }
        Ok(())
    }
}
