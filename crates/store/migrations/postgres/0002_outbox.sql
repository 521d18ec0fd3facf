-- Transactional outbox shared by every service: a state change and its events commit together;
-- the relay publishes unsent rows in id order and marks them sent. Rows are kept as history.
CREATE TABLE outbox (
    id         BIGSERIAL PRIMARY KEY,
    queue      TEXT NOT NULL,
    payload    TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    sent_at    TIMESTAMPTZ
);
CREATE INDEX outbox_unsent ON outbox (id) WHERE sent_at IS NULL;
