//! A generated committee, params version and staker for tests, benchmarks and demos: builds
//! real staking txs, canonical unbonding txs, staker signatures and signing requests with the
//! `staking-core` rules. Not used by the server itself.

use bitcoin::absolute::LockTime;
use bitcoin::secp256k1::{schnorr, Keypair, PublicKey, SecretKey, XOnlyPublicKey};
use bitcoin::transaction::Version;
use bitcoin::{Amount, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Witness};
use staking_core::keys::SECP;
use staking_core::op_return::V0OpReturn;
use staking_core::params::{BlockHeight, GlobalParams, ParamsVersion, StakingCap};
use staking_core::script::{StakingLeaf, StakingOutput};
use staking_core::unbonding::{canonical_unbonding_tx, unbonding_sighash, UnbondingTerms};

use crate::keyfile::CovenantKey;
use crate::request::SignRequest;

/// Shape of the generated params version (defaults: the reference signer's e2e test values).
#[derive(Debug, Clone)]
pub struct FixtureShape {
    pub members: usize,
    pub quorum: u32,
    pub activation_height: u64,
    pub unbonding_time: u16,
    pub unbonding_fee: Amount,
    pub confirmation_depth: u16,
    pub min_staking_amount: Amount,
    pub max_staking_amount: Amount,
    pub min_staking_time: u16,
    pub max_staking_time: u16,
    pub tag: [u8; 4],
}

impl Default for FixtureShape {
    fn default() -> Self {
        Self {
            members: 3,
            quorum: 2,
            activation_height: 100,
            unbonding_time: 100,
            unbonding_fee: Amount::from_sat(1000),
            confirmation_depth: 10,
            min_staking_amount: Amount::from_sat(10_000),
            max_staking_amount: Amount::from_sat(10_000_000),
            min_staking_time: 100,
            max_staking_time: 10_000,
            tag: [0x00, 0x01, 0x02, 0x03],
        }
    }
}

/// A committee with its secret keys, a staker and a finality provider.
#[derive(Debug)]
pub struct Fixture {
    pub shape: FixtureShape,
    pub members: Vec<Keypair>,
    pub staker: Keypair,
    pub finality_provider: XOnlyPublicKey,
    pub params: GlobalParams,
}

/// Errors building fixtures are bugs in the fixture or in the caller's shape.
pub type FixtureResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

fn keypair(seed: u64, role: u8) -> FixtureResult<Keypair> {
    let mut bytes = [0u8; 32];
    bytes[0] = role;
    bytes[24..].copy_from_slice(&seed.to_be_bytes());
    bytes[31] |= 1;
    Ok(Keypair::from_secret_key(
        &SECP,
        &SecretKey::from_slice(&bytes)?,
    ))
}

impl Fixture {
    /// A deterministic fixture: the same `seed` gives the same keys.
    pub fn new(shape: FixtureShape, seed: u64) -> FixtureResult<Self> {
        let members = (0..shape.members)
            .map(|i| keypair(seed, 0x10 + u8::try_from(i)?))
            .collect::<FixtureResult<Vec<_>>>()?;
        let version = ParamsVersion {
            version: 0,
            activation_height: BlockHeight(shape.activation_height),
            cap: StakingCap::Amount(Amount::from_sat(100_000_000_000)),
            tag: shape.tag,
            covenant_pks: members.iter().map(Keypair::public_key).collect(),
            covenant_quorum: shape.quorum,
            unbonding_time: shape.unbonding_time,
            unbonding_fee: shape.unbonding_fee,
            min_staking_amount: shape.min_staking_amount,
            max_staking_amount: shape.max_staking_amount,
            min_staking_time: shape.min_staking_time,
            max_staking_time: shape.max_staking_time,
            confirmation_depth: shape.confirmation_depth,
        };
        let (params, _warnings) = GlobalParams::from_versions(vec![version])?;
        Ok(Self {
            shape,
            members,
            staker: keypair(seed, 0x01)?,
            finality_provider: keypair(seed, 0x02)?.x_only_public_key().0,
            params,
        })
    }

    /// The only params version.
    pub fn version(&self) -> FixtureResult<&ParamsVersion> {
        Ok(self.params.versions().first().ok_or("no params version")?)
    }

    /// Member `i`'s compressed public key.
    pub fn member_key(&self, i: usize) -> FixtureResult<PublicKey> {
        Ok(self.members.get(i).ok_or("no such member")?.public_key())
    }

    /// Member `i`'s key as the key-file backend holds it.
    pub fn member_covenant_key(&self, i: usize) -> FixtureResult<CovenantKey> {
        let pair = self.members.get(i).ok_or("no such member")?;
        Ok(CovenantKey::from_secret_key(&pair.secret_key()))
    }

    /// The staking output for `staking_time`.
    pub fn staking_output(&self, staking_time: u16) -> FixtureResult<StakingOutput> {
        let keys = self
            .version()?
            .staking_keys(self.staker.x_only_public_key().0, self.finality_provider)?;
        Ok(StakingOutput::new(keys, staking_time)?)
    }

    /// The V0 OP_RETURN output.
    pub fn op_return(&self, staking_time: u16) -> TxOut {
        V0OpReturn {
            tag: self.shape.tag,
            staker: self.staker.x_only_public_key().0,
            finality_provider: self.finality_provider,
            staking_time,
        }
        .tx_out()
    }

    /// An unsigned staking tx spending `funding`: `[staking, OP_RETURN, change]`.
    pub fn staking_tx(
        &self,
        funding: OutPoint,
        amount: Amount,
        staking_time: u16,
        change: Option<TxOut>,
    ) -> FixtureResult<Transaction> {
        let staking = self.staking_output(staking_time)?;
        let mut output = vec![
            TxOut {
                value: amount,
                script_pubkey: staking.script_pubkey().clone(),
            },
            self.op_return(staking_time),
        ];
        output.extend(change);
        Ok(Transaction {
            version: Version::TWO,
            lock_time: LockTime::ZERO,
            input: vec![TxIn {
                previous_output: funding,
                script_sig: ScriptBuf::new(),
                sequence: Sequence::ENABLE_RBF_NO_LOCKTIME,
                witness: Witness::new(),
            }],
            output,
        })
    }

    /// The canonical unbonding tx of output 0 of `staking_tx`.
    pub fn unbonding_tx(
        &self,
        staking_tx: &Transaction,
        staking_time: u16,
    ) -> FixtureResult<Transaction> {
        let staking = self.staking_output(staking_time)?;
        let value = staking_tx.output.first().ok_or("no staking output")?.value;
        let version = self.version()?;
        let terms = UnbondingTerms {
            unbonding_time: version.unbonding_time,
            unbonding_fee: version.unbonding_fee,
        };
        Ok(canonical_unbonding_tx(
            &staking,
            OutPoint::new(staking_tx.compute_txid(), 0),
            value,
            &terms,
        )?)
    }

    /// The staker's signature over `unbonding_tx` (spending output 0 of `staking_tx`).
    pub fn staker_signature(
        &self,
        unbonding_tx: &Transaction,
        staking_tx: &Transaction,
        staking_time: u16,
    ) -> FixtureResult<schnorr::Signature> {
        let staking = self.staking_output(staking_time)?;
        let value = staking_tx.output.first().ok_or("no staking output")?.value;
        let sighash = unbonding_sighash(unbonding_tx, &staking, value)?;
        Ok(staking_core::signing::sign(&sighash, &self.staker))
    }

    /// The valid request to member `i` for output 0 of `staking_tx`.
    pub fn request(
        &self,
        staking_tx: &Transaction,
        staking_time: u16,
        member: usize,
    ) -> FixtureResult<SignRequest> {
        let unbonding_tx = self.unbonding_tx(staking_tx, staking_time)?;
        let staker_signature = self.staker_signature(&unbonding_tx, staking_tx, staking_time)?;
        Ok(SignRequest {
            staking_output_pk_script: staking_tx
                .output
                .first()
                .ok_or("no staking output")?
                .script_pubkey
                .clone(),
            unbonding_tx,
            staker_signature,
            covenant_key: self.member_key(member)?,
        })
    }

    /// The unbonding-leaf script and control block (for witness assembly in tests).
    pub fn unbonding_leaf(&self, staking_time: u16) -> FixtureResult<(ScriptBuf, Vec<u8>)> {
        let staking = self.staking_output(staking_time)?;
        Ok((
            staking.leaf_script(StakingLeaf::Unbonding).clone(),
            staking.control_block(StakingLeaf::Unbonding).serialize(),
        ))
    }
}
