//! What every handler shares: the store, the params, the FP metadata, derived settings.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use bitcoin::key::CompressedPublicKey;
use bitcoin::secp256k1::{PublicKey, XOnlyPublicKey};
use bitcoin::{Address, Network};
use serde::Deserialize;
use staking_core::keys::SECP;
use staking_core::params::GlobalParams;
use store::api::{AddressMapping, ApiStore};

use crate::model::FpDescription;

/// One entry of the finality-providers file.
#[derive(Debug, Clone, Deserialize)]
pub struct FpEntry {
    #[serde(default)]
    pub description: FpDescription,
    #[serde(default)]
    pub commission: String,
    #[serde(default)]
    pub btc_pk: String,
    #[serde(default)]
    pub eots_pk: String,
}

impl FpEntry {
    /// `eots_pk` wins over `btc_pk` when non-empty (as the reference).
    pub fn key(&self) -> &str {
        if self.eots_pk.is_empty() {
            &self.btc_pk
        } else {
            &self.eots_pk
        }
    }
}

#[derive(Debug, Deserialize)]
struct FpFile {
    finality_providers: Vec<FpEntry>,
}

/// Loads the FP file (JSON parsing only, as the reference).
pub fn load_finality_providers(path: &Path) -> anyhow::Result<Vec<FpEntry>> {
    use anyhow::Context;
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading finality providers file {}", path.display()))?;
    let file: FpFile = serde_json::from_str(&text)
        .with_context(|| format!("parsing finality providers file {}", path.display()))?;
    Ok(file.finality_providers)
}

/// Shared handler state. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    pub inner: Arc<Inner>,
}

#[derive(Debug)]
pub struct Inner {
    pub store: ApiStore,
    pub params: GlobalParams,
    /// `{"data": <params>}`, rendered once; `Bytes` so each answer shares it instead of copying.
    pub params_body: axum::body::Bytes,
    pub fps: Vec<FpEntry>,
    /// FP key (lower hex) → index into `fps`.
    pub fp_index: HashMap<String, usize>,
    pub network: Network,
    pub page_size: u32,
    pub ordinals: Option<crate::ordinals::Ordinals>,
    /// The rendered `/v1/stats` answer (see [`crate::stats_cache`]).
    pub stats_cache: crate::stats_cache::StatsCache,
}

impl AppState {
    pub fn new(
        store: ApiStore,
        params: GlobalParams,
        fps: Vec<FpEntry>,
        network: Network,
        page_size: u32,
        ordinals: Option<crate::ordinals::Ordinals>,
    ) -> Self {
        let params_body = serde_json::to_vec(&serde_json::json!({ "data": params_json(&params) }))
            .unwrap_or_default()
            .into();
        let fp_index = fps
            .iter()
            .enumerate()
            .map(|(i, f)| (f.key().to_ascii_lowercase(), i))
            .collect();
        AppState {
            inner: Arc::new(Inner {
                store,
                params,
                params_body,
                fps,
                fp_index,
                network,
                page_size,
                ordinals,
                stats_cache: crate::stats_cache::StatsCache::default(),
            }),
        }
    }
}

/// The three addresses of a staker key on `network` (`docs/reference.md#address-mapping`): BIP86
/// taproot, and P2WPKH of `02‖x` and `03‖x`.
pub fn address_mapping(pk: XOnlyPublicKey, network: Network) -> AddressMapping {
    let taproot = Address::p2tr(&SECP, pk, None, network).to_string();
    let segwit = |parity: bitcoin::secp256k1::Parity| {
        let full = PublicKey::from_x_only_public_key(pk, parity);
        Address::p2wpkh(&CompressedPublicKey(full), network).to_string()
    };
    AddressMapping {
        staker_pk: pk,
        taproot,
        native_segwit_even: segwit(bitcoin::secp256k1::Parity::Even),
        native_segwit_odd: segwit(bitcoin::secp256k1::Parity::Odd),
    }
}

/// The params as `/v1/global-params` shows them: both cap fields always present, 0 when unused
/// (`docs/reference.md#global-params`).
pub fn params_json(params: &GlobalParams) -> serde_json::Value {
    let mut json = params.to_json();
    if let Some(versions) = json
        .get_mut("versions")
        .and_then(serde_json::Value::as_array_mut)
    {
        for v in versions {
            if let Some(obj) = v.as_object_mut() {
                for field in ["staking_cap", "cap_height"] {
                    obj.entry(field).or_insert(serde_json::Value::from(0));
                }
            }
        }
    }
    json
}
