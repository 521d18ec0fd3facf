//! One `stakingd devnet` per data directory.
//!
//! Two processes on one data directory would both append blocks to `chain/blocks.dat` (two
//! competing forks in one file), rewrite `devnet.toml` and the committee configs with ports that
//! die with one of them, and write the same database. So the first thing a devnet does with its
//! data directory, before writing anything else in it, is take an exclusive lock on
//! `<datadir>/stakingd.lock` (an OS file lock: released by the kernel when the process ends,
//! even on `kill -9`, so a stale lock never needs cleaning up). A second start finds it taken,
//! reads who holds it (the holder writes its pid and API URL into the file) and stops without
//! touching the directory: the lock file is opened without truncating, and nothing else is
//! opened for writing.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;

/// The lock file's name inside the data directory.
pub const LOCK_FILE: &str = "stakingd.lock";

/// The held lock; dropping it (or the process ending) releases it.
#[derive(Debug)]
pub struct DatadirLock {
    file: File,
    path: PathBuf,
}

impl DatadirLock {
    /// Creates `datadir` if missing and takes its lock, or says who holds it.
    pub fn acquire(datadir: &Path) -> anyhow::Result<DatadirLock> {
        let path = datadir.join(LOCK_FILE);
        std::fs::create_dir_all(datadir)
            .with_context(|| format!("creating the data directory {}", datadir.display()))?;
        // No truncate: a refused second start must leave the holder's note as it is.
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .with_context(|| format!("opening the data directory's lock {}", path.display()))?;
        match file.try_lock() {
            Ok(()) => Ok(DatadirLock { file, path }),
            Err(TryLockError::WouldBlock) => anyhow::bail!(
                "the data directory {} is in use by another stakingd devnet ({}): stop that one \
                 first, or pass another --datadir",
                datadir.display(),
                holder_of(file)
            ),
            Err(TryLockError::Error(e)) => {
                Err(e).with_context(|| format!("locking the data directory {}", path.display()))
            }
        }
    }

    /// Records who holds the lock (read by a refused second start): this process's id and
    /// where it serves, e.g. `API http://127.0.0.1:8092`.
    pub fn record_holder(&mut self, serving: &str) -> anyhow::Result<()> {
        let note = format!("pid {}, {serving}\n", std::process::id());
        self.file
            .set_len(0)
            .and_then(|()| self.file.seek(SeekFrom::Start(0)).map(drop))
            .and_then(|()| self.file.write_all(note.as_bytes()))
            .with_context(|| format!("writing {}", self.path.display()))
    }
}

/// What the holder wrote, or a placeholder when it has not written yet.
fn holder_of(mut file: File) -> String {
    let mut note = String::new();
    match file.read_to_string(&mut note) {
        Ok(_) if !note.trim().is_empty() => note.trim().to_owned(),
        _ => "it has not written its pid yet".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail loudly")]

    use super::*;

    #[test]
    fn a_second_lock_on_one_directory_is_refused_naming_the_holder_and_freed_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let datadir = dir.path().join("d");
        let mut first = DatadirLock::acquire(&datadir).unwrap();
        first.record_holder("API http://127.0.0.1:8092").unwrap();
        let before = std::fs::read(datadir.join(LOCK_FILE)).unwrap();
        // A second open file description conflicts even within one process (flock semantics).
        let refused = DatadirLock::acquire(&datadir).unwrap_err().to_string();
        assert!(
            refused.contains(&format!(
                "pid {}, API http://127.0.0.1:8092",
                std::process::id()
            )),
            "{refused}"
        );
        assert!(refused.contains("another --datadir"), "{refused}");
        assert_eq!(std::fs::read(datadir.join(LOCK_FILE)).unwrap(), before);
        drop(first);
        DatadirLock::acquire(&datadir).unwrap();
    }
}
