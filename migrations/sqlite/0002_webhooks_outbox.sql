-- Provider webhooks (deduplicated, never their bodies), the notification outbox, and the lease the
-- mop-up poller takes on a payment it is checking.

CREATE TABLE webhook_receipts (
    account              TEXT NOT NULL,
    message_id           TEXT NOT NULL,
    event_type           TEXT NOT NULL,
    provider_payment_id  TEXT NOT NULL,
    reported_status      TEXT,
    failure_code         TEXT,
    occurred_at          TEXT,
    received_at          TEXT NOT NULL,
    outcome              TEXT NOT NULL CHECK (outcome IN ('applied', 'ignored', 'orphan', 'matched')),
    payment_id           TEXT REFERENCES payments (id),
    PRIMARY KEY (account, message_id)
);
CREATE INDEX webhook_receipts_orphans ON webhook_receipts (account, provider_payment_id)
    WHERE outcome = 'orphan';

CREATE TABLE outbox (
    id               TEXT PRIMARY KEY,
    event_type       TEXT NOT NULL,
    payment_id       TEXT NOT NULL REFERENCES payments (id),
    created_at       TEXT NOT NULL,
    status           TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'dead')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TEXT NOT NULL,
    leased_until     TEXT,
    last_error       TEXT,
    delivered_at     TEXT
);
CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE status = 'pending';
CREATE INDEX outbox_by_payment ON outbox (payment_id);

ALTER TABLE payments ADD COLUMN poll_leased_until TEXT;
