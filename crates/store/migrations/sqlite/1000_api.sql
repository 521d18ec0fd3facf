-- Staking API (v1): delegations, statistics, the timelock queue read by the expiry checker, the
-- unbonding requests read by the pipeline, and the consumers' bookkeeping.
CREATE TABLE api_delegations (
    staking_tx_hash           TEXT PRIMARY KEY,
    staker_pk                 TEXT NOT NULL,
    finality_provider_pk      TEXT NOT NULL,
    staking_value             BIGINT NOT NULL,
    state                     TEXT NOT NULL,
    staking_tx_hex            TEXT NOT NULL,
    staking_output_index      BIGINT NOT NULL,
    staking_start_timestamp   BIGINT NOT NULL,
    staking_start_height      BIGINT NOT NULL,
    staking_timelock          BIGINT NOT NULL,
    unbonding_tx_hex          TEXT,
    unbonding_output_index    BIGINT,
    unbonding_start_timestamp BIGINT,
    unbonding_start_height    BIGINT,
    unbonding_timelock        BIGINT,
    is_overflow               BOOLEAN NOT NULL
);
CREATE INDEX api_delegations_staker ON api_delegations (staker_pk, staking_start_height DESC, staking_tx_hash);
CREATE INDEX api_delegations_staker_state ON api_delegations (staker_pk, state, staking_start_height DESC, staking_tx_hash);

CREATE TABLE api_timelock_queue (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    staking_tx_hash TEXT NOT NULL,
    expire_height   BIGINT NOT NULL,
    tx_type         TEXT NOT NULL
);
CREATE INDEX api_timelock_queue_expire ON api_timelock_queue (expire_height);

CREATE TABLE api_unbonding_requests (
    id                    INTEGER PRIMARY KEY AUTOINCREMENT,
    staking_tx_hash       TEXT NOT NULL,
    unbonding_tx_hash     TEXT NOT NULL UNIQUE,
    unbonding_tx_hex      TEXT NOT NULL,
    staker_pk             TEXT NOT NULL,
    finality_provider_pk  TEXT NOT NULL,
    staker_signature_hex  TEXT NOT NULL,
    staking_tx_hex        TEXT NOT NULL,
    staking_output_index  BIGINT NOT NULL,
    staking_timelock      BIGINT NOT NULL,
    staking_amount        BIGINT NOT NULL,
    state                 TEXT NOT NULL,
    lease_until           BIGINT,
    failure_reason        TEXT,
    created_at            BIGINT NOT NULL
);
CREATE INDEX api_unbonding_requests_state ON api_unbonding_requests (state, id);

CREATE TABLE api_stats_lock (
    staking_tx_hash TEXT NOT NULL,
    state           TEXT NOT NULL,
    PRIMARY KEY (staking_tx_hash, state)
);

CREATE TABLE api_overall_stats (
    id                 INTEGER PRIMARY KEY,
    active_tvl         BIGINT NOT NULL,
    total_tvl          BIGINT NOT NULL,
    active_delegations BIGINT NOT NULL,
    total_delegations  BIGINT NOT NULL,
    total_stakers      BIGINT NOT NULL
);

CREATE TABLE api_fp_stats (
    finality_provider_pk TEXT PRIMARY KEY,
    active_tvl           BIGINT NOT NULL,
    total_tvl            BIGINT NOT NULL,
    active_delegations   BIGINT NOT NULL,
    total_delegations    BIGINT NOT NULL
);
CREATE INDEX api_fp_stats_tvl ON api_fp_stats (active_tvl DESC, finality_provider_pk);

CREATE TABLE api_staker_stats (
    staker_pk          TEXT PRIMARY KEY,
    active_tvl         BIGINT NOT NULL,
    total_tvl          BIGINT NOT NULL,
    active_delegations BIGINT NOT NULL,
    total_delegations  BIGINT NOT NULL
);
CREATE INDEX api_staker_stats_tvl ON api_staker_stats (active_tvl DESC, staker_pk);

CREATE TABLE api_btc_info (
    id              INTEGER PRIMARY KEY,
    height          BIGINT NOT NULL,
    confirmed_tvl   BIGINT NOT NULL,
    unconfirmed_tvl BIGINT NOT NULL
);

CREATE TABLE api_pk_address_mappings (
    staker_pk          TEXT PRIMARY KEY,
    taproot            TEXT NOT NULL UNIQUE,
    native_segwit_odd  TEXT NOT NULL UNIQUE,
    native_segwit_even TEXT NOT NULL UNIQUE
);

CREATE TABLE api_unprocessable_messages (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    queue        TEXT NOT NULL,
    message_body TEXT NOT NULL,
    receipt      TEXT NOT NULL,
    reason       TEXT NOT NULL,
    created_at   BIGINT NOT NULL
);

CREATE TABLE api_terms_acceptance (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    address    TEXT NOT NULL,
    public_key TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE api_consumed_messages (
    queue       TEXT NOT NULL,
    body_sha256 TEXT NOT NULL,
    consumed_at BIGINT NOT NULL,
    PRIMARY KEY (queue, body_sha256)
);
