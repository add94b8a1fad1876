-- Refunds (requested by finance, carried out by the provider) and the append-only audit trail.

CREATE TABLE refunds (
    id                  TEXT PRIMARY KEY,
    payment_id          TEXT NOT NULL REFERENCES payments (id),
    amount              INTEGER NOT NULL CHECK (amount > 0),
    status              TEXT NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
    create_outcome      TEXT NOT NULL CHECK (create_outcome IN ('pending', 'confirmed', 'unknown', 'not_created')),
    provider_refund_id  TEXT,
    provider_status     TEXT,
    reason              TEXT NOT NULL,
    requested_by        TEXT NOT NULL,
    requested_by_label  TEXT NOT NULL,
    failure_code        TEXT,
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL,
    finished_at         TEXT
);
CREATE INDEX refunds_by_payment ON refunds (payment_id, created_at);
CREATE INDEX refunds_open ON refunds (status) WHERE status = 'pending';

ALTER TABLE payments ADD COLUMN refunded_amount INTEGER NOT NULL DEFAULT 0;
ALTER TABLE idempotency_keys ADD COLUMN refund_id TEXT REFERENCES refunds (id);
ALTER TABLE outbox ADD COLUMN refund_id TEXT REFERENCES refunds (id);

CREATE TABLE audit_log (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    at            TEXT NOT NULL,
    actor_key_id  TEXT NOT NULL,
    actor_label   TEXT NOT NULL,
    action        TEXT NOT NULL,
    subject       TEXT NOT NULL,
    detail        TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_by_time ON audit_log (at);
