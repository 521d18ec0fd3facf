//! Persistence: one append-only file of records (blocks in the order they were accepted, and
//! `invalidateblock` / `reconsiderblock` commands). Replaying it rebuilds the exact same block
//! tree, active chain and UTXO set. Each record carries a checksum; a torn record at the end
//! (a crash mid-write) is cut off on open, anything else that does not parse is an error.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use bitcoin::consensus::{deserialize, serialize};
use bitcoin::hashes::{sha256d, Hash};
use bitcoin::{Block, BlockHash};

use crate::error::DevnetError;

const BLOCK: u8 = 1;
const INVALIDATE: u8 = 2;
const RECONSIDER: u8 = 3;
const HEADER_LEN: usize = 1 + 4 + 4;

/// One stored record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// A block accepted into the block tree.
    Block(Block),
    /// `invalidateblock`.
    Invalidate(BlockHash),
    /// `reconsiderblock`.
    Reconsider(BlockHash),
}

/// The append-only block file.
#[derive(Debug)]
pub struct BlockStore {
    path: PathBuf,
    file: File,
}

impl BlockStore {
    /// Opens (creating) `dir/blocks.dat`, returns the store and every record in it.
    pub fn open(dir: &Path) -> Result<(Self, Vec<Record>), DevnetError> {
        std::fs::create_dir_all(dir).map_err(|source| DevnetError::Store {
            path: dir.to_owned(),
            source,
        })?;
        let path = dir.join("blocks.dat");
        let io = |source| DevnetError::Store {
            path: path.clone(),
            source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .map_err(io)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(io)?;
        let mut records = Vec::new();
        let mut offset = 0usize;
        while offset < bytes.len() {
            let Some(header) = bytes.get(offset..offset + HEADER_LEN) else {
                break;
            };
            let kind = header[0];
            let len = u32::from_le_bytes([header[1], header[2], header[3], header[4]]) as usize;
            let sum = [header[5], header[6], header[7], header[8]];
            let Some(payload) = bytes.get(offset + HEADER_LEN..offset + HEADER_LEN + len) else {
                break;
            };
            if checksum(payload) != sum {
                if offset + HEADER_LEN + len == bytes.len() {
                    break; // torn last record
                }
                return Err(corrupt(&path, offset, "checksum mismatch"));
            }
            let record = match kind {
                BLOCK => Record::Block(
                    deserialize(payload).map_err(|e| corrupt(&path, offset, &e.to_string()))?,
                ),
                INVALIDATE | RECONSIDER => {
                    let hash = BlockHash::from_slice(payload)
                        .map_err(|e| corrupt(&path, offset, &e.to_string()))?;
                    if kind == INVALIDATE {
                        Record::Invalidate(hash)
                    } else {
                        Record::Reconsider(hash)
                    }
                }
                other => {
                    return Err(corrupt(
                        &path,
                        offset,
                        &format!("unknown record kind {other}"),
                    ))
                }
            };
            records.push(record);
            offset += HEADER_LEN + len;
        }
        if offset < bytes.len() {
            tracing::warn!(path = %path.display(), offset, dropped = bytes.len() - offset, "cutting a torn record off the block file");
            file.set_len(offset as u64).map_err(io)?;
            file.seek(SeekFrom::End(0)).map_err(io)?;
        }
        Ok((Self { path, file }, records))
    }

    /// Appends a record (written with one `write_all`; call [`BlockStore::sync`] to make it
    /// durable against power loss).
    pub fn append(&mut self, record: &Record) -> Result<(), DevnetError> {
        let (kind, payload) = match record {
            Record::Block(b) => (BLOCK, serialize(b)),
            Record::Invalidate(h) => (INVALIDATE, h.to_byte_array().to_vec()),
            Record::Reconsider(h) => (RECONSIDER, h.to_byte_array().to_vec()),
        };
        let mut buf = Vec::with_capacity(HEADER_LEN + payload.len());
        buf.push(kind);
        buf.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        buf.extend_from_slice(&checksum(&payload));
        buf.extend_from_slice(&payload);
        self.file
            .write_all(&buf)
            .map_err(|source| DevnetError::Store {
                path: self.path.clone(),
                source,
            })
    }

    /// Flushes written records to disk.
    pub fn sync(&mut self) -> Result<(), DevnetError> {
        self.file.sync_data().map_err(|source| DevnetError::Store {
            path: self.path.clone(),
            source,
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn checksum(payload: &[u8]) -> [u8; 4] {
    let h = sha256d::Hash::hash(payload).to_byte_array();
    [h[0], h[1], h[2], h[3]]
}

fn corrupt(path: &Path, offset: usize, what: &str) -> DevnetError {
    DevnetError::Corrupt {
        path: path.to_owned(),
        offset: offset as u64,
        what: what.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitcoin::blockdata::constants::genesis_block;

    #[test]
    fn records_round_trip_and_a_torn_tail_is_cut_off() {
        let dir = tempfile::tempdir().unwrap();
        let genesis = genesis_block(bitcoin::Network::Regtest);
        let hash = genesis.block_hash();
        {
            let (mut store, records) = BlockStore::open(dir.path()).unwrap();
            assert!(records.is_empty());
            store.append(&Record::Block(genesis.clone())).unwrap();
            store.append(&Record::Invalidate(hash)).unwrap();
            store.append(&Record::Reconsider(hash)).unwrap();
        }
        // A crash in the middle of a fourth record.
        let path = dir.path().join("blocks.dat");
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&[BLOCK, 200, 0, 0, 0, 1, 2]).unwrap();
        drop(f);
        let (mut store, records) = BlockStore::open(dir.path()).unwrap();
        assert_eq!(
            records,
            vec![
                Record::Block(genesis.clone()),
                Record::Invalidate(hash),
                Record::Reconsider(hash)
            ]
        );
        store.append(&Record::Invalidate(hash)).unwrap();
        drop(store);
        let (_, records) = BlockStore::open(dir.path()).unwrap();
        assert_eq!(records.len(), 4);
    }

    #[test]
    fn a_damaged_record_in_the_middle_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let genesis = genesis_block(bitcoin::Network::Regtest);
        {
            let (mut store, _) = BlockStore::open(dir.path()).unwrap();
            store.append(&Record::Block(genesis.clone())).unwrap();
            store.append(&Record::Block(genesis)).unwrap();
        }
        let path = dir.path().join("blocks.dat");
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[HEADER_LEN + 10] ^= 0xff;
        std::fs::write(&path, bytes).unwrap();
        assert!(matches!(
            BlockStore::open(dir.path()),
            Err(DevnetError::Corrupt { offset: 0, .. })
        ));
    }
}
