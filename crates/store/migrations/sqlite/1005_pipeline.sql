-- Unbonding pipeline bookkeeping on api_unbonding_requests (crates/unbonding-pipeline).
--   lease_until  (existing) unix MILLISECONDS: for `claimed`, when the lease ends and another
--                pipeline may take the request over; for `accepted`, the earliest time of the
--                next attempt (backoff after a transient failure); NULL = now.
--   attempts     how many times the request was claimed (a crash mid-attempt counts too).
--   claim_token  the token of the pipeline holding the lease; outcomes are recorded only by
--                the holder, so a pipeline whose lease expired cannot overwrite the new owner.
--   last_error   the latest transient failure (the request is retried); failure_reason is
--                the terminal one.
--   sent_txid    the txid broadcast when the request became `sent`.
--   updated_at   unix seconds of the latest state change.
ALTER TABLE api_unbonding_requests ADD COLUMN attempts BIGINT NOT NULL DEFAULT 0;
ALTER TABLE api_unbonding_requests ADD COLUMN claim_token TEXT;
ALTER TABLE api_unbonding_requests ADD COLUMN last_error TEXT;
ALTER TABLE api_unbonding_requests ADD COLUMN sent_txid TEXT;
ALTER TABLE api_unbonding_requests ADD COLUMN updated_at BIGINT;
CREATE INDEX api_unbonding_requests_lease ON api_unbonding_requests (state, lease_until);
