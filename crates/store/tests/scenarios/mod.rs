//! The conformance scenarios, one async fn each, backend-agnostic: they only see a
//! [`crate::common::TestDb`] and the [`store::Db`] handles it opens.

mod blocks;
mod concurrency;
mod lookups;
mod outbox;
mod rollback;
mod unbonding;

pub use blocks::*;
pub use concurrency::*;
pub use lookups::*;
pub use outbox::*;
pub use rollback::*;
pub use unbonding::*;
