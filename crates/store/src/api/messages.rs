//! Messages the consumers gave up on (kept for `stakingd api replay-unprocessable`) and the
//! terms-acceptance log.

use super::types::UnprocessableMessage;
use super::ApiStore;
use crate::error::Result;
use crate::sanitize::{error_text, without_nul};

impl ApiStore {
    /// Keeps a message that failed past the retry limit. Its body came from the queue: a NUL
    /// (which PostgreSQL cannot store in text, and which no valid message contains) is replaced,
    /// the rest is kept as received so a replay publishes the same message; the reason is
    /// stored as error text (see [`crate::sanitize`]).
    pub async fn insert_unprocessable(
        &self,
        queue: &str,
        body: &str,
        receipt: &str,
        reason: &str,
    ) -> Result<()> {
        self.db
            .query(
                "INSERT INTO api_unprocessable_messages (queue, message_body, receipt, reason, \
                 created_at) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(queue)
            .bind(without_nul(body))
            .bind(receipt)
            .bind(error_text(reason))
            .bind(chrono::Utc::now().timestamp())
            .execute("insert unprocessable message")
            .await?;
        Ok(())
    }

    pub async fn unprocessable(&self) -> Result<Vec<UnprocessableMessage>> {
        self.db
            .query(
                "SELECT id, queue, message_body, receipt, reason FROM api_unprocessable_messages \
                 ORDER BY id",
            )
            .fetch_all("list unprocessable messages")
            .await
    }

    pub async fn delete_unprocessable(&self, id: i64) -> Result<bool> {
        let deleted = self
            .db
            .query("DELETE FROM api_unprocessable_messages WHERE id = $1")
            .bind(id)
            .execute("delete unprocessable message")
            .await?;
        Ok(deleted == 1)
    }

    /// Logs a terms acceptance (the handler has validated the address and the key).
    pub async fn insert_terms(&self, address: &str, public_key: &str) -> Result<()> {
        self.db
            .query(
                "INSERT INTO api_terms_acceptance (address, public_key, created_at) \
                 VALUES ($1, $2, $3)",
            )
            .bind(address)
            .bind(public_key)
            .bind(chrono::Utc::now().timestamp())
            .execute("insert terms acceptance")
            .await?;
        Ok(())
    }

    pub async fn terms_count(&self) -> Result<i64> {
        self.db
            .query("SELECT COUNT(*) FROM api_terms_acceptance")
            .scalar("count terms acceptance")
            .await
    }
}
