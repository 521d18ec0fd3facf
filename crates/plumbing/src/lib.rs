//! Service plumbing written once for every service.
//!
//! Today it holds the one explanation of a config file that does not parse
//! ([`explain_toml_error`]): every service's TOML sections deny unknown keys, and serde's
//! message for one (`unknown field `netwrok`, expected one of …`) lists every valid key but does
//! not say which was meant. The explanation adds the nearest valid key, so a typo reads as the
//! typo it is.

mod typo;

pub use typo::{explain_toml_error, nearest_key, toml_error_message};
