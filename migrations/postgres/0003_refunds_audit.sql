-- Refunds (requested by finance, carried out by the provider) and the append-only audit trail.

CREATE TABLE refunds (
    id                  TEXT PRIMARY KEY,
    payment_id          TEXT NOT NULL REFERENCES payments (id),
    amount              BIGINT NOT NULL CHECK (amount > 0),
    status              TEXT NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
    create_outcome      TEXT NOT NULL CHECK (create_outcome IN ('pending', 'confirmed', 'unknown', 'not_created')),
    provider_refund_id  TEXT,
    provider_status     TEXT,                 -- the provider's own word (GOV.UK Pay: submitted, success, error)
    reason              TEXT NOT NULL,
    requested_by        TEXT NOT NULL,        -- API key id
    requested_by_label  TEXT NOT NULL,
    failure_code        TEXT,
    created_at          TIMESTAMPTZ NOT NULL,
    updated_at          TIMESTAMPTZ NOT NULL,
    finished_at         TIMESTAMPTZ
);
CREATE INDEX refunds_by_payment ON refunds (payment_id, created_at);
CREATE INDEX refunds_open ON refunds (status) WHERE status = 'pending';

ALTER TABLE payments ADD COLUMN refunded_amount BIGINT NOT NULL DEFAULT 0;
ALTER TABLE idempotency_keys ADD COLUMN refund_id TEXT REFERENCES refunds (id);
ALTER TABLE outbox ADD COLUMN refund_id TEXT REFERENCES refunds (id);

CREATE TABLE audit_log (
    id            BIGSERIAL PRIMARY KEY,
    at            TIMESTAMPTZ NOT NULL,
    actor_key_id  TEXT NOT NULL,              -- the API key, or 'cli' / 'system'
    actor_label   TEXT NOT NULL,
    action        TEXT NOT NULL,              -- e.g. refund.requested, key.created
    subject       TEXT NOT NULL,              -- what it was done to (an id)
    detail        TEXT NOT NULL DEFAULT '{}'  -- JSON: amounts and references, never personal data
);
CREATE INDEX audit_log_by_time ON audit_log (at);
