//! A throw-away TLS certificate for servers under test, and a lower open-file limit for tests
//! that must show a server survives running out of file descriptors.

use std::path::PathBuf;

/// A self-signed certificate for `localhost` and 127.0.0.1 (its own CA: clients trust it by
/// naming the certificate file as their CA file), written as PEM files that live as long as
/// this value.
#[derive(Debug)]
pub struct TestCert {
    _dir: tempfile::TempDir,
    /// The certificate (PEM); also the CA file for clients.
    pub cert: PathBuf,
    /// Its private key (PEM, PKCS#8).
    pub key: PathBuf,
}

impl TestCert {
    /// Generates a new key and certificate.
    ///
    /// # Panics
    /// When the key cannot be generated or the files cannot be written (test support: a panic
    /// is a failed test).
    #[allow(clippy::expect_used, reason = "test support: a panic is a failed test")]
    pub fn new() -> Self {
        let certified =
            rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
                .expect("rcgen generates a certificate");
        let dir = tempfile::tempdir().expect("a temporary directory");
        let cert = dir.path().join("server.crt");
        let key = dir.path().join("server.key");
        std::fs::write(&cert, certified.cert.pem()).expect("writing the certificate");
        std::fs::write(&key, certified.signing_key.serialize_pem()).expect("writing the key");
        Self {
            _dir: dir,
            cert,
            key,
        }
    }

    /// The `[server.tls]` table of a TOML config naming these files.
    pub fn toml(&self) -> String {
        format!(
            "[server.tls]\ncert_file = \"{}\"\nkey_file = \"{}\"\n",
            self.cert.display(),
            self.key.display()
        )
    }
}

impl Default for TestCert {
    fn default() -> Self {
        Self::new()
    }
}

/// Lowers this process's soft open-file limit to `limit` (as an operator's `ulimit -n` would),
/// so a test can show that idle connections cannot exhaust a server's descriptors. Affects the
/// whole test binary: use it in a test file of its own.
///
/// # Panics
/// When the limit cannot be read or set.
#[allow(clippy::expect_used, reason = "test support: a panic is a failed test")]
pub fn lower_fd_limit(limit: u64) {
    let (_, hard) = rlimit::Resource::NOFILE
        .get()
        .expect("reading the open-file limit");
    rlimit::Resource::NOFILE
        .set(limit.min(hard), hard)
        .expect("setting the open-file limit");
}
