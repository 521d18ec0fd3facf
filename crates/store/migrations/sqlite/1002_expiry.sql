-- Expiry checker: which (delegation, path) expiries have been emitted (exactly once each), and
-- its own outbox, relayed only by expiry checkers (the indexer's relay never reads it, so a
-- shared database never double-publishes). Relays claim rows with a lease (`claimed_by`,
-- `claimed_until`, Unix seconds) so several checkers never publish the same row at once.
CREATE TABLE api_expiry_emitted (
    staking_tx_hash TEXT NOT NULL,
    tx_type         TEXT NOT NULL,
    expire_height   BIGINT NOT NULL,
    tip_height      BIGINT NOT NULL,
    emitted_at      BIGINT NOT NULL,
    PRIMARY KEY (staking_tx_hash, tx_type)
);

CREATE TABLE api_expiry_outbox (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    queue         TEXT NOT NULL,
    payload       TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    claimed_by    TEXT,
    claimed_until BIGINT,
    sent_at       BIGINT
);
CREATE INDEX api_expiry_outbox_unsent ON api_expiry_outbox (id) WHERE sent_at IS NULL;
