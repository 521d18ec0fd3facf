-- Indexer state. Hashes are lower-case display hex; keys are x-only hex; raw txs are consensus bytes.
-- Same tables and meaning as migrations/postgres/0001_indexer.sql.

CREATE TABLE indexer_blocks (
    height       INTEGER PRIMARY KEY CHECK (height >= 0),
    hash         TEXT NOT NULL UNIQUE,
    prev_hash    TEXT NOT NULL,
    processed_at TEXT NOT NULL
);

CREATE TABLE indexer_state (
    id            INTEGER PRIMARY KEY CHECK (id = 1),
    confirmed_tvl INTEGER NOT NULL CHECK (confirmed_tvl >= 0)
);
INSERT INTO indexer_state (id, confirmed_tvl) VALUES (1, 0);

CREATE TABLE staking_txs (
    txid                 TEXT PRIMARY KEY NOT NULL,
    raw_tx               BLOB NOT NULL,
    staking_output_index INTEGER NOT NULL CHECK (staking_output_index >= 0),
    inclusion_height     INTEGER NOT NULL REFERENCES indexer_blocks (height),
    block_hash           TEXT NOT NULL,
    position_in_block    INTEGER NOT NULL CHECK (position_in_block >= 0),
    staker_pk            TEXT NOT NULL,
    finality_provider_pk TEXT NOT NULL,
    staking_time         INTEGER NOT NULL CHECK (staking_time BETWEEN 0 AND 65535),
    value                INTEGER NOT NULL CHECK (value >= 0),
    is_overflow          BOOLEAN NOT NULL,
    params_version       INTEGER NOT NULL CHECK (params_version >= 0),
    UNIQUE (inclusion_height, position_in_block)
);
CREATE INDEX staking_txs_staker_pk ON staking_txs (staker_pk);

CREATE TABLE unbonding_txs (
    txid         TEXT PRIMARY KEY NOT NULL,
    raw_tx       BLOB NOT NULL,
    staking_txid TEXT NOT NULL UNIQUE REFERENCES staking_txs (txid),
    height       INTEGER NOT NULL REFERENCES indexer_blocks (height),
    block_hash   TEXT NOT NULL
);
CREATE INDEX unbonding_txs_height ON unbonding_txs (height);

CREATE TABLE invalid_txs (
    txid       TEXT NOT NULL,
    kind       TEXT NOT NULL
               CHECK (kind IN ('staking', 'unbonding', 'withdraw_staking', 'withdraw_unbonding')),
    height     INTEGER NOT NULL REFERENCES indexer_blocks (height),
    block_hash TEXT NOT NULL,
    reason     TEXT NOT NULL,
    raw_tx     BLOB,
    PRIMARY KEY (txid, kind)
);
CREATE INDEX invalid_txs_height ON invalid_txs (height);
