-- Foundation: API keys, payments with their status timeline, and idempotency keys.
-- Counterfoil keeps references and statuses only: no column here may ever hold card data.

CREATE TABLE api_keys (
    id            TEXT PRIMARY KEY,           -- the visible part of the key, cf_<id>_…
    role          TEXT NOT NULL CHECK (role IN ('crm', 'finance', 'admin')),
    label         TEXT NOT NULL,
    token_sha256  TEXT NOT NULL,              -- hex SHA-256 of the whole key; the key itself is never stored
    created_at    TIMESTAMPTZ NOT NULL,
    revoked_at    TIMESTAMPTZ,
    last_used_at  TIMESTAMPTZ
);

CREATE TABLE payments (
    id                   TEXT PRIMARY KEY,
    request_ref          TEXT NOT NULL,
    service              TEXT NOT NULL,
    account              TEXT NOT NULL,
    provider             TEXT NOT NULL,
    amount               BIGINT NOT NULL CHECK (amount > 0),
    currency             TEXT NOT NULL DEFAULT 'GBP',
    description          TEXT NOT NULL,
    email                TEXT,
    metadata             TEXT NOT NULL DEFAULT '{}',   -- JSON object of string pairs
    return_url           TEXT NOT NULL,
    status               TEXT NOT NULL CHECK (status IN
                           ('created', 'in_progress', 'succeeded', 'failed', 'cancelled', 'expired', 'error')),
    create_outcome       TEXT NOT NULL CHECK (create_outcome IN ('pending', 'confirmed', 'unknown', 'not_created')),
    provider_payment_id  TEXT,
    next_url             TEXT,
    failure_code         TEXT,
    created_at           TIMESTAMPTZ NOT NULL,
    updated_at           TIMESTAMPTZ NOT NULL,
    finished_at          TIMESTAMPTZ,
    refreshed_at         TIMESTAMPTZ
);
CREATE INDEX payments_newest_first ON payments (created_at DESC, id DESC);
CREATE INDEX payments_by_request_ref ON payments (request_ref);
CREATE INDEX payments_not_final ON payments (status) WHERE status IN ('created', 'in_progress');
CREATE UNIQUE INDEX payments_by_provider_id ON payments (account, provider_payment_id)
    WHERE provider_payment_id IS NOT NULL;

CREATE TABLE payment_events (
    id           BIGSERIAL PRIMARY KEY,
    payment_id   TEXT NOT NULL REFERENCES payments (id),
    at           TIMESTAMPTZ NOT NULL,
    from_status  TEXT,
    to_status    TEXT NOT NULL,
    source       TEXT NOT NULL CHECK (source IN ('api', 'webhook', 'poll', 'reconciliation'))
);
CREATE INDEX payment_events_by_payment ON payment_events (payment_id, id);

CREATE TABLE idempotency_keys (
    principal        TEXT NOT NULL,           -- the API key id that made the request
    idempotency_key  TEXT NOT NULL,
    route            TEXT NOT NULL,
    fingerprint      TEXT NOT NULL,           -- SHA-256 of route, caller and canonical body
    state            TEXT NOT NULL CHECK (state IN ('in_flight', 'completed', 'linked')),
    payment_id       TEXT REFERENCES payments (id),
    response_status  INTEGER,
    response_body    TEXT,
    locked_until     TIMESTAMPTZ NOT NULL,
    created_at       TIMESTAMPTZ NOT NULL,
    expires_at       TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (principal, idempotency_key)
);
CREATE INDEX idempotency_keys_expiry ON idempotency_keys (expires_at);
