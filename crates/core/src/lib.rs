//! Phase-1 Bitcoin staking rules, byte-exact with the reference system.
//!
//! Everything that decides whether money moves lives here, so this crate is pure: no async, no
//! I/O, no logging. Services and tools parse their inputs at the edge and call into it.

pub mod builder;
pub mod keys;
pub mod op_return;
pub mod params;
pub mod presets;
pub mod psbt;
pub mod script;
pub mod signed_unbonding;
pub mod signing;
pub mod spend;
pub mod staking_tx;
pub mod unbonding;
pub mod witness;

pub use bitcoin;
