-- Privacy promises: pseudonymisation, retention, key expiry (see the PostgreSQL migration).
ALTER TABLE payments ADD COLUMN personal_erased_at TEXT;
CREATE INDEX payments_erasable ON payments (finished_at) WHERE personal_erased_at IS NULL;

CREATE TABLE ledger_daily_totals (
    day            TEXT NOT NULL,
    service        TEXT NOT NULL,
    payments       INTEGER NOT NULL,
    gross_pence    INTEGER NOT NULL,
    refunds        INTEGER NOT NULL,
    refunds_pence  INTEGER NOT NULL,
    PRIMARY KEY (day, service)
);

CREATE TABLE job_leases (
    name          TEXT PRIMARY KEY,
    holder        TEXT NOT NULL,
    leased_until  TEXT NOT NULL
);

ALTER TABLE api_keys ADD COLUMN expires_at TEXT;
