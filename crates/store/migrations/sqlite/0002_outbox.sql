-- Transactional outbox (see migrations/postgres/0002_outbox.sql). AUTOINCREMENT: ids are never
-- reused, even after the newest row is deleted, so they order rows for ever.
CREATE TABLE outbox (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    queue      TEXT NOT NULL,
    payload    TEXT NOT NULL,
    created_at TEXT NOT NULL,
    sent_at    TEXT
);
CREATE INDEX outbox_unsent ON outbox (id) WHERE sent_at IS NULL;
