//! The real phase-1 params files, shipped in the binary so that nothing is downloaded at run
//! time: signet `bbn-test-4` and mainnet `bbn-1` (copied unchanged from the public
//! `networks` repositories; see `testdata/params/README.md`).

use std::fmt;
use std::str::FromStr;

use bitcoin::Network;

use crate::params::GlobalParams;

/// A named, shipped params file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Preset {
    /// Signet testnet `bbn-test-4`, versions 0–4, tag `bbt4`.
    BbnTest4,
    /// Mainnet phase-1 `bbn-1`, versions 0–2, tag `bbn1`.
    Bbn1,
}

impl Preset {
    /// Every preset.
    pub const ALL: [Preset; 2] = [Preset::BbnTest4, Preset::Bbn1];

    /// The name used on command lines and in config files.
    pub fn name(self) -> &'static str {
        match self {
            Self::BbnTest4 => "bbn-test-4",
            Self::Bbn1 => "bbn-1",
        }
    }

    /// The Bitcoin network the params were made for.
    pub fn network(self) -> Network {
        match self {
            Self::BbnTest4 => Network::Signet,
            Self::Bbn1 => Network::Bitcoin,
        }
    }

    /// The file, byte for byte as published.
    pub fn json(self) -> &'static str {
        match self {
            Self::BbnTest4 => include_str!("../presets/bbn-test-4.global-params.json"),
            Self::Bbn1 => include_str!("../presets/bbn-1.global-params.json"),
        }
    }

    /// The parsed params.
    pub fn params(self) -> GlobalParams {
        // Both files are fixed at build time and parsed by the test suite; they carry no
        // warnings and cannot fail to parse.
        #[allow(clippy::expect_used, reason = "shipped files, parsed by the tests")]
        GlobalParams::from_json(self.json())
            .map(|(params, _)| params)
            .expect("shipped preset parses")
    }
}

impl fmt::Display for Preset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is not a preset.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown params preset `{0}` (known: bbn-test-4, bbn-1)")]
pub struct UnknownPreset(pub String);

impl FromStr for Preset {
    type Err = UnknownPreset;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| UnknownPreset(s.to_owned()))
    }
}

impl GlobalParams {
    /// The shipped params named `name` (`bbn-test-4` or `bbn-1`).
    pub fn preset(name: &str) -> Option<GlobalParams> {
        name.parse::<Preset>().ok().map(Preset::params)
    }
}
