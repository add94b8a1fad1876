-- Foundation: API keys, payments with their status timeline, and idempotency keys.
-- Counterfoil keeps references and statuses only: no column here may ever hold card data.
-- Times are UTC text of one fixed width (YYYY-MM-DDTHH:MM:SS.ffffffZ), so they sort as they compare.

CREATE TABLE api_keys (
    id            TEXT PRIMARY KEY,
    role          TEXT NOT NULL CHECK (role IN ('crm', 'finance', 'admin')),
    label         TEXT NOT NULL,
    token_sha256  TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    revoked_at    TEXT,
    last_used_at  TEXT
);

CREATE TABLE payments (
    id                   TEXT PRIMARY KEY,
    request_ref          TEXT NOT NULL,
    service              TEXT NOT NULL,
    account              TEXT NOT NULL,
    provider             TEXT NOT NULL,
    amount               INTEGER NOT NULL CHECK (amount > 0),
    currency             TEXT NOT NULL DEFAULT 'GBP',
    description          TEXT NOT NULL,
    email                TEXT,
    metadata             TEXT NOT NULL DEFAULT '{}',
    return_url           TEXT NOT NULL,
    status               TEXT NOT NULL CHECK (status IN
                           ('created', 'in_progress', 'succeeded', 'failed', 'cancelled', 'expired', 'error')),
    create_outcome       TEXT NOT NULL CHECK (create_outcome IN ('pending', 'confirmed', 'unknown', 'not_created')),
    provider_payment_id  TEXT,
    next_url             TEXT,
    failure_code         TEXT,
    created_at           TEXT NOT NULL,
    updated_at           TEXT NOT NULL,
    finished_at          TEXT,
    refreshed_at         TEXT
);
CREATE INDEX payments_newest_first ON payments (created_at DESC, id DESC);
CREATE INDEX payments_by_request_ref ON payments (request_ref);
CREATE INDEX payments_not_final ON payments (status) WHERE status IN ('created', 'in_progress');
CREATE UNIQUE INDEX payments_by_provider_id ON payments (account, provider_payment_id)
    WHERE provider_payment_id IS NOT NULL;

CREATE TABLE payment_events (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    payment_id   TEXT NOT NULL REFERENCES payments (id),
    at           TEXT NOT NULL,
    from_status  TEXT,
    to_status    TEXT NOT NULL,
    source       TEXT NOT NULL CHECK (source IN ('api', 'webhook', 'poll', 'reconciliation'))
);
CREATE INDEX payment_events_by_payment ON payment_events (payment_id, id);

CREATE TABLE idempotency_keys (
    principal        TEXT NOT NULL,
    idempotency_key  TEXT NOT NULL,
    route            TEXT NOT NULL,
    fingerprint      TEXT NOT NULL,
    state            TEXT NOT NULL CHECK (state IN ('in_flight', 'completed', 'linked')),
    payment_id       TEXT REFERENCES payments (id),
    response_status  INTEGER,
    response_body    TEXT,
    locked_until     TEXT NOT NULL,
    created_at       TEXT NOT NULL,
    expires_at       TEXT NOT NULL,
    PRIMARY KEY (principal, idempotency_key)
);
CREATE INDEX idempotency_keys_expiry ON idempotency_keys (expires_at);
