//! Consensus decoding straight from hex, with a lookup table. Blocks arrive as hex
//! (`getblock <hash> 0`): 3 MB per mainnet block, where a char-by-char decoder feeding the
//! consensus reader was the client's largest cost, and decoding to an intermediate byte buffer
//! first cost a page fault per 4 KiB of it (the allocator hands such buffers back to the OS).

use bitcoin::consensus::encode::{self, Decodable};
use bitcoin::io;

/// Why a hex string does not decode to the expected value.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HexDecodeError {
    #[error("odd length {0}")]
    OddLength(usize),
    #[error("invalid hex character {byte:#04x} at position {position}")]
    InvalidChar { byte: u8, position: usize },
    #[error("{0}")]
    Consensus(encode::Error),
    #[error("{0} bytes left over after the value")]
    TrailingBytes(usize),
}

/// Nibble value of each byte, or `INVALID`.
const INVALID: u8 = 0xff;
const NIBBLES: [u8; 256] = {
    let mut table = [INVALID; 256];
    let mut i = 0;
    while i < 10 {
        table[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        table[b'a' as usize + i] = 10 + i as u8;
        table[b'A' as usize + i] = 10 + i as u8;
        i += 1;
    }
    table
};

/// Reads the bytes a hex string (either case) spells.
struct HexReader<'a> {
    hex: &'a [u8],
    /// Index of the next unread hex digit.
    position: usize,
    /// The first invalid character met (the reader then fails every read).
    invalid: Option<(u8, usize)>,
}

impl io::Read for HexReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min((self.hex.len() - self.position) / 2);
        let digits = &self.hex[self.position..self.position + 2 * n];
        for (out, pair) in buf.iter_mut().zip(digits.chunks_exact(2)) {
            let (hi, lo) = (NIBBLES[usize::from(pair[0])], NIBBLES[usize::from(pair[1])]);
            if hi == INVALID || lo == INVALID {
                let offset = pair.as_ptr() as usize - self.hex.as_ptr() as usize;
                let position = offset + usize::from(hi != INVALID);
                self.invalid = Some((self.hex[position], position));
                return Err(io::ErrorKind::InvalidData.into());
            }
            *out = hi << 4 | lo;
        }
        self.position += 2 * n;
        Ok(n)
    }
}

/// Decodes the value `hex` spells, refusing bytes left over.
pub(crate) fn deserialize<T: Decodable>(hex: &[u8]) -> Result<T, HexDecodeError> {
    if !hex.len().is_multiple_of(2) {
        return Err(HexDecodeError::OddLength(hex.len()));
    }
    let mut reader = HexReader {
        hex,
        position: 0,
        invalid: None,
    };
    let decoded = T::consensus_decode_from_finite_reader(&mut reader);
    if let Some((byte, position)) = reader.invalid {
        return Err(HexDecodeError::InvalidChar { byte, position });
    }
    let value = decoded.map_err(HexDecodeError::Consensus)?;
    match (hex.len() - reader.position) / 2 {
        0 => Ok(value),
        left => Err(HexDecodeError::TrailingBytes(left)),
    }
}

#[cfg(test)]
mod tests {
    use bitcoin::blockdata::constants::genesis_block;
    use bitcoin::consensus::encode::serialize_hex;
    use bitcoin::{Block, Network};

    use super::*;

    #[test]
    fn decodes_what_serialize_hex_wrote_in_either_case() {
        let block = genesis_block(Network::Bitcoin);
        let hex = serialize_hex(&block);
        let lower: Block = deserialize(hex.as_bytes()).unwrap();
        let upper: Block = deserialize(hex.to_uppercase().as_bytes()).unwrap();
        assert_eq!(lower, block);
        assert_eq!(upper, block);
    }

    #[test]
    fn every_byte_value_decodes() {
        let all: Vec<u8> = (0..=255).collect();
        let hex = serialize_hex(&all);
        assert_eq!(deserialize::<Vec<u8>>(hex.as_bytes()).unwrap(), all);
    }

    #[test]
    fn odd_lengths_bad_characters_truncation_and_leftovers_are_refused() {
        let hex = serialize_hex(&genesis_block(Network::Bitcoin));
        let odd = format!("{hex}0");
        assert!(matches!(
            deserialize::<Block>(odd.as_bytes()),
            Err(HexDecodeError::OddLength(n)) if n == hex.len() + 1
        ));
        let mut bad = hex.clone().into_bytes();
        bad[81] = b'g';
        assert!(matches!(
            deserialize::<Block>(&bad),
            Err(HexDecodeError::InvalidChar {
                byte: b'g',
                position: 81
            })
        ));
        assert!(matches!(
            deserialize::<Block>(&hex.as_bytes()[..hex.len() - 2]),
            Err(HexDecodeError::Consensus(_))
        ));
        let long = format!("{hex}0000");
        assert!(matches!(
            deserialize::<Block>(long.as_bytes()),
            Err(HexDecodeError::TrailingBytes(2))
        ));
    }
}
