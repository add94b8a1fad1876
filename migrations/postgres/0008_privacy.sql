-- Privacy promises: pseudonymisation, retention, key expiry.
-- When a payment's personal fields (description, email, metadata values, return URL, and its
-- refunds' reasons) were pseudonymised, by the retention sweep or an erasure request.
ALTER TABLE payments ADD COLUMN personal_erased_at TIMESTAMPTZ;
CREATE INDEX payments_erasable ON payments (finished_at) WHERE personal_erased_at IS NULL;

-- What remains of payment records removed after the retention period: daily totals per
-- Europe/London day and service (fund and cost centre come from the service's configuration,
-- as for the live ledger).
CREATE TABLE ledger_daily_totals (
    day            TEXT NOT NULL,            -- YYYY-MM-DD, Europe/London
    service        TEXT NOT NULL,
    payments       BIGINT NOT NULL,
    gross_pence    BIGINT NOT NULL,
    refunds        BIGINT NOT NULL,
    refunds_pence  BIGINT NOT NULL,
    PRIMARY KEY (day, service)
);

-- Background jobs that must run on one server at a time (the retention sweep).
CREATE TABLE job_leases (
    name          TEXT PRIMARY KEY,
    holder        TEXT NOT NULL,
    leased_until  TIMESTAMPTZ NOT NULL
);

ALTER TABLE api_keys ADD COLUMN expires_at TIMESTAMPTZ;
