//! The encrypted covenant key file and the passphrase that opens it.
//!
//! Format (JSON, one file per key): the public key in clear (so an operator can see which key a
//! file holds), Argon2id parameters and salt, and the secret key sealed with XChaCha20-Poly1305
//! under the Argon2id-derived key, the public key bound as associated data. Nothing about the
//! secret can be learned without the passphrase; a wrong passphrase or any edit of the file fails
//! authentication. The passphrase never comes from the command line (it would show in `ps`):
//! only from a file or an environment variable. Neither the passphrase nor the key is ever
//! formatted into a log line or an error: their `Debug` prints `<redacted>`.

use std::fmt;
use std::path::{Path, PathBuf};

use argon2::{Algorithm, Argon2, Params, Version};
use bitcoin::secp256k1::{Keypair, PublicKey, SecretKey};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use staking_core::keys::SECP;

/// The format tag written into every key file.
pub const FORMAT: &str = "covenant-signer-key/1";

/// Passphrases shorter than this are refused when a key file is created.
pub const MIN_PASSPHRASE_LEN: usize = 12;

/// A passphrase held in memory that is wiped on drop and never printed.
#[derive(Clone)]
pub struct Passphrase(Zeroizing<String>);

impl Passphrase {
    /// Wraps a passphrase (surrounding line breaks are removed, as editors add them to files).
    pub fn new(value: String) -> Self {
        let value = Zeroizing::new(value);
        Self(Zeroizing::new(
            value.trim_end_matches(['\r', '\n']).to_owned(),
        ))
    }

    fn bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Passphrase(<redacted>)")
    }
}

/// Where the passphrase comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PassphraseSource {
    /// The whole content of a file (trailing line breaks removed).
    File(PathBuf),
    /// An environment variable, by name.
    Env(String),
}

impl PassphraseSource {
    /// Reads the passphrase. Errors name the source, never the content.
    pub fn read(&self) -> Result<Passphrase, KeyFileError> {
        let passphrase = match self {
            Self::File(path) => Passphrase::new(
                std::fs::read_to_string(path)
                    .map_err(|e| KeyFileError::Io(format!("{}: {e}", path.display())))?,
            ),
            Self::Env(name) => Passphrase::new(
                std::env::var(name).map_err(|_| KeyFileError::MissingEnv(name.clone()))?,
            ),
        };
        self.check(passphrase)
    }

    /// Refuses an empty passphrase read from this source.
    pub fn check(&self, passphrase: Passphrase) -> Result<Passphrase, KeyFileError> {
        if passphrase.bytes().is_empty() {
            return Err(KeyFileError::EmptyPassphrase(self.to_string()));
        }
        Ok(passphrase)
    }
}

impl fmt::Display for PassphraseSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(path) => write!(f, "passphrase file {}", path.display()),
            Self::Env(name) => write!(f, "environment variable {name}"),
        }
    }
}

/// Why a key file could not be created or opened. No variant carries secret material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyFileError {
    #[error("cannot read or write key file: {0}")]
    Io(String),
    #[error("environment variable {0} with the key passphrase is not set")]
    MissingEnv(String),
    #[error("the {0} is empty")]
    EmptyPassphrase(String),
    #[error("passphrase is too short: use at least {MIN_PASSPHRASE_LEN} characters")]
    WeakPassphrase,
    #[error("key file is not a {FORMAT} file: {0}")]
    Format(String),
    #[error("wrong passphrase, or the key file was modified")]
    Decrypt,
    #[error("key derivation parameters rejected: {0}")]
    Kdf(String),
    #[error("{0}")]
    WeakKdf(KdfWeakness),
    #[error("{0} already exists; refusing to overwrite a key file")]
    Exists(PathBuf),
}

/// Argon2id cost. The default is the `argon2` crate's recommended one (19 MiB, 2 passes),
/// which is also [`KdfCost::MINIMUM`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct KdfCost {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl KdfCost {
    /// The cheapest cost a key file may be created with: OWASP's minimum for Argon2id
    /// (m = 19 MiB, t = 2, p = 1; Password Storage Cheat Sheet), the `argon2` crate's default.
    /// It lets one core try about 14 passphrases a second against a stolen key file, and each
    /// try needs 19 MiB of memory, which keeps GPUs from doing much better; 8 KiB allowed
    /// thousands a second. Only [`CovenantKey::save_throwaway`] goes below it.
    pub const MINIMUM: KdfCost = KdfCost {
        memory_kib: 19 * 1024,
        iterations: 2,
        parallelism: 1,
    };

    /// Why this cost is below [`KdfCost::MINIMUM`], or `None` when it is not.
    pub fn weakness(&self) -> Option<KdfWeakness> {
        let min = Self::MINIMUM;
        (self.memory_kib < min.memory_kib
            || self.iterations < min.iterations
            || self.parallelism < min.parallelism)
            .then_some(KdfWeakness(*self))
    }
}

/// An Argon2id cost below [`KdfCost::MINIMUM`]; its `Display` is the sentence saying why that
/// matters and what to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KdfWeakness(pub KdfCost);

impl fmt::Display for KdfWeakness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (cost, min) = (self.0, KdfCost::MINIMUM);
        write!(
            f,
            "Argon2id cost of {} KiB, {} passes, {} lanes is below the minimum of {} KiB \
             (19 MiB), {} passes, {} lane (OWASP's minimum for Argon2id): a stolen key file \
             would give up its passphrase to a fast offline search; use at least \
             --kdf-memory-kib {} --kdf-iterations {}",
            cost.memory_kib,
            cost.iterations,
            cost.parallelism,
            min.memory_kib,
            min.iterations,
            min.parallelism,
            min.memory_kib,
            min.iterations
        )
    }
}

impl Default for KdfCost {
    fn default() -> Self {
        Self {
            memory_kib: Params::DEFAULT_M_COST,
            iterations: Params::DEFAULT_T_COST,
            parallelism: Params::DEFAULT_P_COST,
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct KdfSection {
    algorithm: String,
    #[serde(flatten)]
    cost: KdfCost,
    salt: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct CipherSection {
    algorithm: String,
    nonce: String,
    ciphertext: String,
}

/// The on-disk JSON document.
#[derive(Debug, Serialize, Deserialize)]
struct KeyFileJson {
    format: String,
    public_key: String,
    kdf: KdfSection,
    cipher: CipherSection,
}

/// The unlocked covenant key. Wiped on drop; `Debug` shows only the public key.
pub struct CovenantKey {
    keypair: Keypair,
    /// The Argon2id cost of the file it was loaded from (`None`: not loaded from a file).
    file_cost: Option<KdfCost>,
}

impl CovenantKey {
    /// A fresh random key.
    pub fn generate() -> Self {
        let secret = SecretKey::new(&mut rand::thread_rng());
        Self {
            keypair: Keypair::from_secret_key(&SECP, &secret),
            file_cost: None,
        }
    }

    /// Wraps an existing secret (devnet committees, tests).
    pub fn from_secret_key(secret: &SecretKey) -> Self {
        Self {
            keypair: Keypair::from_secret_key(&SECP, secret),
            file_cost: None,
        }
    }

    /// Why the key file this key was loaded from is below [`KdfCost::MINIMUM`] (files made
    /// before the minimum was enforced, or by [`CovenantKey::save_throwaway`]): the signer
    /// warns with it at start. Such a file still opens: refusing would lock a committee member
    /// out of its identity; the fix is a new key file.
    pub fn file_weakness(&self) -> Option<KdfWeakness> {
        self.file_cost.as_ref().and_then(KdfCost::weakness)
    }

    /// The 33-byte compressed public key, the committee member's identity.
    pub fn public_key(&self) -> PublicKey {
        self.keypair.public_key()
    }

    /// The key pair, for BIP340 signing.
    pub(crate) fn keypair(&self) -> &Keypair {
        &self.keypair
    }

    /// Seals this key with `passphrase` and writes it to `path` (never overwrites a file).
    /// A `cost` below [`KdfCost::MINIMUM`] is refused with [`KeyFileError::WeakKdf`].
    pub fn save(
        &self,
        path: &Path,
        passphrase: &Passphrase,
        cost: KdfCost,
    ) -> Result<(), KeyFileError> {
        if let Some(weakness) = cost.weakness() {
            return Err(KeyFileError::WeakKdf(weakness));
        }
        self.save_throwaway(path, passphrase, cost)
    }

    /// [`CovenantKey::save`] at any cost, below the minimum too: only for keys that guard
    /// nothing (the devnet's and the chaos harness's committees, tests), where a fast start
    /// matters more than a stolen file.
    pub fn save_throwaway(
        &self,
        path: &Path,
        passphrase: &Passphrase,
        cost: KdfCost,
    ) -> Result<(), KeyFileError> {
        if passphrase.bytes().len() < MIN_PASSPHRASE_LEN {
            return Err(KeyFileError::WeakPassphrase);
        }
        let mut salt = [0u8; 16];
        let mut nonce = [0u8; 24];
        rand::rngs::OsRng.fill_bytes(&mut salt);
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let public = self.public_key().serialize();
        let wrapping = derive_key(passphrase, &salt, cost)?;
        let cipher = XChaCha20Poly1305::new(Key::from_slice(&wrapping[..]));
        let secret = Zeroizing::new(self.keypair.secret_bytes());
        let ciphertext = cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: secret.as_ref(),
                    aad: &public,
                },
            )
            .map_err(|_| KeyFileError::Format("encryption failed".into()))?;
        let document = KeyFileJson {
            format: FORMAT.into(),
            public_key: hex::encode(public),
            kdf: KdfSection {
                algorithm: "argon2id".into(),
                cost,
                salt: hex::encode(salt),
            },
            cipher: CipherSection {
                algorithm: "xchacha20poly1305".into(),
                nonce: hex::encode(nonce),
                ciphertext: hex::encode(ciphertext),
            },
        };
        let text = serde_json::to_string_pretty(&document)
            .map_err(|e| KeyFileError::Format(e.to_string()))?;
        write_new_private_file(path, text.as_bytes())
    }

    /// Reads and unlocks the key file at `path`.
    pub fn load(path: &Path, passphrase: &Passphrase) -> Result<Self, KeyFileError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| KeyFileError::Io(format!("{}: {e}", path.display())))?;
        let document: KeyFileJson =
            serde_json::from_str(&text).map_err(|e| KeyFileError::Format(e.to_string()))?;
        if document.format != FORMAT
            || document.kdf.algorithm != "argon2id"
            || document.cipher.algorithm != "xchacha20poly1305"
        {
            return Err(KeyFileError::Format(format!(
                "unsupported format {:?} / {:?} / {:?}",
                document.format, document.kdf.algorithm, document.cipher.algorithm
            )));
        }
        let field = |name: &str, value: &str| {
            hex::decode(value).map_err(|_| KeyFileError::Format(format!("{name} is not hex")))
        };
        let public = field("public_key", &document.public_key)?;
        let salt = field("kdf.salt", &document.kdf.salt)?;
        let nonce = field("cipher.nonce", &document.cipher.nonce)?;
        let ciphertext = field("cipher.ciphertext", &document.cipher.ciphertext)?;
        if nonce.len() != 24 {
            return Err(KeyFileError::Format("cipher.nonce must be 24 bytes".into()));
        }
        let wrapping = derive_key(passphrase, &salt, document.kdf.cost)?;
        let cipher = XChaCha20Poly1305::new(Key::from_slice(&wrapping[..]));
        let secret = Zeroizing::new(
            cipher
                .decrypt(
                    XNonce::from_slice(&nonce),
                    Payload {
                        msg: &ciphertext,
                        aad: &public,
                    },
                )
                .map_err(|_| KeyFileError::Decrypt)?,
        );
        let secret = SecretKey::from_slice(&secret).map_err(|_| KeyFileError::Decrypt)?;
        let key = Self {
            keypair: Keypair::from_secret_key(&SECP, &secret),
            file_cost: Some(document.kdf.cost),
        };
        if key.public_key().serialize().as_slice() != public.as_slice() {
            return Err(KeyFileError::Decrypt);
        }
        Ok(key)
    }
}

impl Drop for CovenantKey {
    fn drop(&mut self) {
        self.keypair.non_secure_erase();
    }
}

impl fmt::Debug for CovenantKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CovenantKey")
            .field("public_key", &self.public_key())
            .field("secret", &"<redacted>")
            .finish()
    }
}

fn derive_key(
    passphrase: &Passphrase,
    salt: &[u8],
    cost: KdfCost,
) -> Result<Zeroizing<[u8; 32]>, KeyFileError> {
    let params = Params::new(cost.memory_kib, cost.iterations, cost.parallelism, Some(32))
        .map_err(|e| KeyFileError::Kdf(e.to_string()))?;
    let mut out = Zeroizing::new([0u8; 32]);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(passphrase.bytes(), salt, out.as_mut())
        .map_err(|e| KeyFileError::Kdf(e.to_string()))?;
    Ok(out)
}

/// Creates `path` exclusively, readable by its owner only.
fn write_new_private_file(path: &Path, bytes: &[u8]) -> Result<(), KeyFileError> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            KeyFileError::Exists(path.to_path_buf())
        } else {
            KeyFileError::Io(format!("{}: {e}", path.display()))
        }
    })?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| KeyFileError::Io(format!("{}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Cheap parameters: the tests exercise the format, not the cost.
    pub(crate) const FAST: KdfCost = KdfCost {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
    };

    fn pass(text: &str) -> Passphrase {
        Passphrase::new(text.to_owned())
    }

    #[test]
    fn a_saved_key_opens_with_its_passphrase() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.json");
        let key = CovenantKey::generate();
        key.save_throwaway(&path, &pass("correct horse battery"), FAST)
            .unwrap();
        let loaded = CovenantKey::load(&path, &pass("correct horse battery\n")).unwrap();
        assert_eq!(loaded.public_key(), key.public_key());
        assert_eq!(
            loaded.keypair().secret_bytes(),
            key.keypair().secret_bytes()
        );
    }

    #[test]
    fn a_wrong_passphrase_does_not_open_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.json");
        CovenantKey::generate()
            .save_throwaway(&path, &pass("correct horse battery"), FAST)
            .unwrap();
        let err = CovenantKey::load(&path, &pass("correct horse batterY")).unwrap_err();
        assert_eq!(err, KeyFileError::Decrypt);
    }

    #[test]
    fn the_file_holds_no_clear_secret() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.json");
        let key = CovenantKey::generate();
        key.save_throwaway(&path, &pass("correct horse battery"), FAST)
            .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let secret_hex = hex::encode(key.keypair().secret_bytes());
        assert!(!text.contains(&secret_hex));
        assert!(text.contains(&hex::encode(key.public_key().serialize())));
    }

    #[test]
    fn swapping_the_public_key_in_the_file_fails_authentication() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.json");
        let key = CovenantKey::generate();
        key.save_throwaway(&path, &pass("correct horse battery"), FAST)
            .unwrap();
        let other = hex::encode(CovenantKey::generate().public_key().serialize());
        let text = std::fs::read_to_string(&path)
            .unwrap()
            .replace(&hex::encode(key.public_key().serialize()), &other);
        std::fs::write(&path, text).unwrap();
        let err = CovenantKey::load(&path, &pass("correct horse battery")).unwrap_err();
        assert_eq!(err, KeyFileError::Decrypt);
    }

    #[test]
    fn an_existing_key_file_is_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.json");
        let phrase = pass("correct horse battery");
        CovenantKey::generate()
            .save_throwaway(&path, &phrase, FAST)
            .unwrap();
        let err = CovenantKey::generate()
            .save_throwaway(&path, &phrase, FAST)
            .unwrap_err();
        assert_eq!(err, KeyFileError::Exists(path));
    }

    #[test]
    fn a_cost_below_the_minimum_is_refused_with_the_reason_and_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.json");
        let min = KdfCost::MINIMUM;
        for weak in [
            KdfCost {
                memory_kib: 8,
                ..min
            },
            KdfCost {
                memory_kib: min.memory_kib - 1,
                ..min
            },
            KdfCost {
                iterations: 1,
                ..min
            },
            KdfCost {
                parallelism: 0,
                ..min
            },
        ] {
            let err = CovenantKey::generate()
                .save(&path, &pass("correct horse battery"), weak)
                .unwrap_err();
            assert_eq!(err, KeyFileError::WeakKdf(KdfWeakness(weak)));
            let sentence = err.to_string();
            assert!(
                sentence.contains("below the minimum of 19456 KiB"),
                "{sentence}"
            );
            assert!(sentence.contains("OWASP"), "{sentence}");
            assert!(!path.exists());
        }
        assert_eq!(KdfCost::default(), KdfCost::MINIMUM);
        assert_eq!(KdfCost::MINIMUM.weakness(), None);
    }

    #[test]
    fn a_weak_file_still_opens_and_says_why_it_is_weak() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.json");
        let phrase = pass("correct horse battery");
        CovenantKey::generate()
            .save_throwaway(&path, &phrase, FAST)
            .unwrap();
        let loaded = CovenantKey::load(&path, &phrase).unwrap();
        assert_eq!(loaded.file_weakness(), Some(KdfWeakness(FAST)));
        assert_eq!(CovenantKey::generate().file_weakness(), None);
    }

    #[test]
    fn short_passphrases_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let err = CovenantKey::generate()
            .save_throwaway(&dir.path().join("k"), &pass("short"), FAST)
            .unwrap_err();
        assert_eq!(err, KeyFileError::WeakPassphrase);
    }

    #[cfg(unix)]
    #[test]
    fn the_key_file_is_readable_by_its_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.json");
        CovenantKey::generate()
            .save_throwaway(&path, &pass("correct horse battery"), FAST)
            .unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn debug_output_redacts_secrets() {
        let key = CovenantKey::generate();
        let secret_hex = hex::encode(key.keypair().secret_bytes());
        let printed = format!("{key:?} {:?}", pass("correct horse battery"));
        assert!(!printed.contains(&secret_hex));
        assert!(!printed.contains("correct horse"));
        assert!(printed.contains("<redacted>"));
    }

    #[test]
    fn passphrase_sources_report_what_is_missing_without_content() {
        let err = PassphraseSource::Env("COVENANT_SIGNER_TEST_UNSET_VAR".into())
            .read()
            .unwrap_err();
        assert_eq!(
            err,
            KeyFileError::MissingEnv("COVENANT_SIGNER_TEST_UNSET_VAR".into())
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pass");
        std::fs::write(&path, "\n").unwrap();
        let err = PassphraseSource::File(path).read().unwrap_err();
        assert!(matches!(err, KeyFileError::EmptyPassphrase(_)));
    }
}
