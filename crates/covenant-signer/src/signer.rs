//! The signing decision: every check of `docs/rules.md#signer-checks`, in the reference's order,
//! then the key backend.
//!
//! Together the checks pin the transaction completely, so the signer only ever signs the single
//! canonical unbonding tx of a real, mature V0 staking output, already signed by its staker.
//! Our additions: an already-spent staking output is refused (`gettxout`), and a committee key
//! this signer does not hold is refused before any signing is attempted.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use bitcoin::secp256k1::schnorr;
use bitcoin::{OutPoint, Transaction, TxOut, Txid};
use staking_core::params::{BlockHeight, GlobalParams, ParamsVersion};
use staking_core::script::{StakingLeaf, StakingOutput};
use staking_core::staking_tx::parse_staking_tx;
use staking_core::unbonding::{
    check_pre_signed, unbonding_output, unbonding_sighash, unbonding_value, UnbondingTerms,
};

use crate::chain::{ChainError, ChainView, TxLookup};
use crate::error::SignError;
use crate::keystore::{KeyBackend, SigningInput};
use crate::request::SignRequest;

/// What is worth keeping per staking tx once it passed the parse: the rebuilt outputs cost
/// several curve operations, and a pipeline asks every committee member about the same tx.
#[derive(Debug)]
struct StakingContext {
    /// The staking output rebuilt from the OP_RETURN and the params committee.
    staking: StakingOutput,
    /// Index and on-chain value of the staking output.
    output_index: u32,
    value: bitcoin::Amount,
    /// Staking time from the OP_RETURN.
    staking_time: u16,
    /// The exact unbonding output the request must pay; `None` when the fee eats the stake.
    expected_output: Option<TxOut>,
}

/// Bound on remembered staking contexts; beyond it the map is cleared (cheap to rebuild).
const MAX_CONTEXTS: usize = 10_000;

/// One committee member's signing service: params, chain view, key backend, cut-off height.
pub struct Signer {
    params: GlobalParams,
    chain: Arc<dyn ChainView>,
    backend: KeyBackend,
    max_staking_tx_height: u32,
    contexts: Mutex<HashMap<(Txid, u32), Arc<StakingContext>>>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("versions", &self.params.versions().len())
            .field("backend", &self.backend)
            .field("max_staking_tx_height", &self.max_staking_tx_height)
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// A signer; `max_staking_tx_height` is `u32::MAX` when the cut-off is off.
    pub fn new(
        params: GlobalParams,
        chain: Arc<dyn ChainView>,
        backend: KeyBackend,
        max_staking_tx_height: u32,
    ) -> Self {
        Self {
            params,
            chain,
            backend,
            max_staking_tx_height,
            contexts: Mutex::new(HashMap::new()),
        }
    }

    /// The params in force.
    pub fn params(&self) -> &GlobalParams {
        &self.params
    }

    /// The key backend.
    pub fn backend(&self) -> &KeyBackend {
        &self.backend
    }

    /// The node's tip height (for the health endpoint).
    pub async fn chain_tip(&self) -> Result<u32, ChainError> {
        self.chain.tip_height().await
    }

    /// Runs every check and returns a signature only if all pass.
    pub async fn sign(&self, request: &SignRequest) -> Result<schnorr::Signature, SignError> {
        let tx = &request.unbonding_tx;
        // 1. Pre-signed shape: 1-in/1-out, version 2, lock time 0, final sequence, …
        check_pre_signed(tx).map_err(|e| SignError::TxSanity(e.to_string()))?;
        // 2. The staking output script is a Taproot output script.
        if !request.staking_output_pk_script.is_p2tr() {
            return Err(SignError::NotTaproot(hex::encode(
                request.staking_output_pk_script.as_bytes(),
            )));
        }
        // 3. The staking tx is in a block and has an output with that script.
        let spent = tx.input[0].previous_output;
        let (staking_tx, height) = self.find_staking_tx(spent.txid, request).await?;
        // 4. Optional cut-off height.
        if height > self.max_staking_tx_height {
            return Err(SignError::StakingTxTooHigh {
                max: self.max_staking_tx_height,
                height,
            });
        }
        // 5. Best height.
        let tip = self.chain.tip_height().await?;
        // 6. Params of the inclusion height.
        let version = self
            .params
            .for_height(BlockHeight::from(height))
            .ok_or(SignError::NoParams(height))?;
        // 7. The requested key is in that committee (full point, parity included).
        if !version.covenant_pks.contains(&request.covenant_key) {
            return Err(SignError::NotCommitteeMember {
                key: hex::encode(request.covenant_key.serialize()),
                height,
            });
        }
        // 7b. … and this signer holds it.
        if !self.backend.may_hold(&request.covenant_key) {
            return Err(SignError::KeyNotHeld(hex::encode(
                request.covenant_key.serialize(),
            )));
        }
        // 8. Deep enough (signed arithmetic tolerates a tip that moved back in a reorg race).
        let confirmations = i64::from(tip) - i64::from(height) + 1;
        if confirmations < i64::from(version.confirmation_depth) {
            return Err(SignError::NotDeepEnough {
                txid: spent.txid,
                confirmations,
                required: u32::from(version.confirmation_depth),
            });
        }
        // 9. Parse (cached per staking tx, with the outputs built from it).
        let context = self.staking_context(&staking_tx, spent.txid, height, version)?;
        // 10. The unbonding tx spends exactly the staking output.
        if spent.vout != context.output_index {
            return Err(SignError::WrongInputIndex {
                spent: spent.vout,
                expected: context.output_index,
            });
        }
        // 11–13. Bounds and fee.
        let expected_output = check_bounds(&context, version)?;
        // 14. Exact unbonding output (value and script).
        if tx.output[0] != *expected_output {
            return Err(SignError::UnbondingOutputMismatch);
        }
        // 15–16. The staker signed this exact tx with SIGHASH_DEFAULT over the unbonding leaf.
        let sighash = unbonding_sighash(tx, &context.staking, context.value)
            .map_err(|_| SignError::StakerSignatureInvalid)?;
        staking_core::signing::verify_parsed(
            &sighash,
            &request.staker_signature,
            &context.staking.keys().staker,
        )
        .map_err(|_| SignError::StakerSignatureInvalid)?;
        // Ours: the staking output is still unspent (mempool included).
        let outpoint = OutPoint::new(spent.txid, context.output_index);
        if !self.chain.is_unspent(outpoint).await? {
            return Err(SignError::AlreadySpent(outpoint));
        }
        // 17. Sign.
        let input = SigningInput {
            unbonding_tx: tx,
            staking_output: TxOut {
                value: context.value,
                script_pubkey: context.staking.script_pubkey().clone(),
            },
            leaf_script: context.staking.leaf_script(StakingLeaf::Unbonding),
            control_block: context.staking.control_block(StakingLeaf::Unbonding),
            sighash,
            covenant_key: request.covenant_key,
        };
        Ok(self.backend.sign(&input).await?)
    }

    async fn find_staking_tx(
        &self,
        txid: Txid,
        request: &SignRequest,
    ) -> Result<(Arc<Transaction>, u32), SignError> {
        match self.chain.transaction(txid).await? {
            TxLookup::NotFound => Err(SignError::StakingTxNotFound(txid)),
            TxLookup::InMempool(_) => Err(SignError::StakingTxNotInBlock(txid)),
            TxLookup::InBlock { tx, height } => {
                if tx
                    .output
                    .iter()
                    .any(|o| o.script_pubkey == request.staking_output_pk_script)
                {
                    Ok((tx, height))
                } else {
                    Err(SignError::StakingOutputNotInTx {
                        txid,
                        script: hex::encode(request.staking_output_pk_script.as_bytes()),
                    })
                }
            }
        }
    }

    fn staking_context(
        &self,
        staking_tx: &Transaction,
        txid: Txid,
        height: u32,
        version: &ParamsVersion,
    ) -> Result<Arc<StakingContext>, SignError> {
        let key = (txid, height);
        if let Some(hit) = self
            .contexts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&key)
        {
            return Ok(Arc::clone(hit));
        }
        let context = Arc::new(build_context(staking_tx, txid, version)?);
        let mut contexts = self.contexts.lock().unwrap_or_else(PoisonError::into_inner);
        if contexts.len() >= MAX_CONTEXTS {
            contexts.clear();
        }
        contexts.insert(key, Arc::clone(&context));
        Ok(context)
    }
}

/// Check 9 and everything that follows from the staking tx alone.
fn build_context(
    staking_tx: &Transaction,
    txid: Txid,
    version: &ParamsVersion,
) -> Result<StakingContext, SignError> {
    // 9. A V0 staking tx of this version (tag, committee, quorum).
    let parsed =
        parse_staking_tx(staking_tx, version).map_err(|reason| SignError::NotStakingTx {
            txid,
            reason: reason.to_string(),
        })?;
    let terms = UnbondingTerms {
        unbonding_time: version.unbonding_time,
        unbonding_fee: version.unbonding_fee,
    };
    // 14 (build) and 15: the canonical unbonding output (when the fee leaves a positive
    // value, check 13) and the staking output with the OP_RETURN time and the params
    // committee, whose unbonding leaf everybody signs.
    let keys = version.staking_keys(parsed.staker, parsed.finality_provider)?;
    let expected_output = match unbonding_value(parsed.staking_value, &terms) {
        Ok(value) => Some(TxOut {
            value,
            script_pubkey: unbonding_output(&keys, &terms)?.script_pubkey().clone(),
        }),
        Err(_) => None,
    };
    let staking = StakingOutput::new(keys, parsed.staking_time)?;
    Ok(StakingContext {
        staking,
        output_index: parsed.staking_output_index,
        value: parsed.staking_value,
        staking_time: parsed.staking_time,
        expected_output,
    })
}

/// Checks 11, 12 and 13, from the cached context.
fn check_bounds<'c>(
    context: &'c StakingContext,
    version: &ParamsVersion,
) -> Result<&'c TxOut, SignError> {
    // 11. Staking time bounds (inclusive).
    if context.staking_time < version.min_staking_time
        || context.staking_time > version.max_staking_time
    {
        return Err(SignError::StakingTimeOutOfBounds {
            time: context.staking_time,
            min: version.min_staking_time,
            max: version.max_staking_time,
        });
    }
    // 12. Staking amount bounds (inclusive).
    if context.value < version.min_staking_amount || context.value > version.max_staking_amount {
        return Err(SignError::StakingAmountOutOfBounds {
            amount: context.value,
            min: version.min_staking_amount,
            max: version.max_staking_amount,
        });
    }
    // 13. The fee leaves something to unbond (a params problem otherwise: 500).
    context
        .expected_output
        .as_ref()
        .ok_or(SignError::FeeExceedsStake {
            fee: version.unbonding_fee,
            amount: context.value,
        })
}
