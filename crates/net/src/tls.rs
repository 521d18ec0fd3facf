//! TLS settings as configs write them, and the server side's rustls configuration (the `ring`
//! provider, TLS 1.2 and 1.3, HTTP/1.1 over ALPN).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use serde::Deserialize;

/// A TLS file that cannot be used, with the path and what is wrong.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {what} {path}: {reason}")]
    Read {
        what: &'static str,
        path: PathBuf,
        reason: String,
    },
    #[error("{what} {path} holds no PEM {expected}")]
    Empty {
        what: &'static str,
        path: PathBuf,
        expected: &'static str,
    },
    #[error("the TLS configuration is not usable: {0}")]
    Config(String),
}

/// A server's `tls` sub-table: its certificate chain and private key (PEM files), and
/// optionally the CA whose client certificates it requires (mutual TLS).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    /// The certificate chain, leaf first (PEM).
    #[serde(alias = "cert-file")]
    pub cert_file: PathBuf,
    /// The private key of the leaf certificate (PEM: PKCS#8, PKCS#1 or SEC1).
    #[serde(alias = "key-file")]
    pub key_file: PathBuf,
    /// When set, clients must present a certificate issued by this CA (PEM bundle).
    #[serde(default, alias = "client-ca-file")]
    pub client_ca_file: Option<PathBuf>,
}

/// A server's TLS, ready to accept connections. Cheap to clone.
#[derive(Clone)]
pub struct TlsServer {
    pub(crate) config: Arc<ServerConfig>,
}

impl std::fmt::Debug for TlsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsServer")
            .field("alpn", &self.config.alpn_protocols)
            .finish_non_exhaustive()
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

pub(crate) fn read_certs(
    what: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
        .map_err(|e| TlsError::Read {
            what,
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Empty {
            what,
            path: path.to_path_buf(),
            expected: "CERTIFICATE",
        });
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => TlsError::Empty {
            what: "key file",
            path: path.to_path_buf(),
            expected: "PRIVATE KEY",
        },
        other => TlsError::Read {
            what: "key file",
            path: path.to_path_buf(),
            reason: other.to_string(),
        },
    })
}

impl TlsServer {
    /// Reads the files of `files` and builds the server configuration.
    pub fn from_files(files: &TlsFiles) -> Result<Self, TlsError> {
        let certs = read_certs("certificate file", &files.cert_file)?;
        let key = read_key(&files.key_file)?;
        let builder = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Config(e.to_string()))?;
        let builder = match &files.client_ca_file {
            None => builder.with_no_client_auth(),
            Some(path) => {
                let mut roots = RootCertStore::empty();
                for cert in read_certs("client CA file", path)? {
                    roots
                        .add(cert)
                        .map_err(|e| TlsError::Config(format!("{}: {e}", path.display())))?;
                }
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
                        .build()
                        .map_err(|e| TlsError::Config(e.to_string()))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut config = builder.with_single_cert(certs, key).map_err(|e| {
            TlsError::Config(format!(
                "{} and {} do not form a certificate and its key: {e}",
                files.cert_file.display(),
                files.key_file.display()
            ))
        })?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self {
            config: Arc::new(config),
        })
    }
}

/// A client's `tls` settings: an extra CA to trust (besides the system's roots), and the
/// certificate and key to present to servers that ask for one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClientTls {
    /// Trust this CA bundle (PEM) too, e.g. for a committee member's self-signed certificate.
    #[serde(alias = "ca-file")]
    pub ca_file: Option<PathBuf>,
    /// The client certificate chain (PEM), with `key_file`.
    #[serde(alias = "cert-file")]
    pub cert_file: Option<PathBuf>,
    /// The client certificate's private key (PEM), with `cert_file`.
    #[serde(alias = "key-file")]
    pub key_file: Option<PathBuf>,
}

impl ClientTls {
    /// Trusts `ca_file` besides the system roots.
    pub fn with_ca_file(path: impl Into<PathBuf>) -> Self {
        Self {
            ca_file: Some(path.into()),
            ..Self::default()
        }
    }

    /// Whether nothing is set (system roots, no client certificate).
    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }
}
