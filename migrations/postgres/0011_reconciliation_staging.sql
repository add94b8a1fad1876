-- What the provider's search listed during a running reconciliation, page by page, so a run
-- compares the two sides in bounded chunks with ordered joins instead of holding a whole period in
-- memory. Only the allow-listed fields a comparison reads; removed when the run finishes.

CREATE TABLE reconciliation_provider_payments (
    run_id               TEXT NOT NULL REFERENCES reconciliation_runs (id) ON DELETE CASCADE,
    provider_payment_id  TEXT NOT NULL,
    status               TEXT NOT NULL,
    failure_code         TEXT,
    next_url             TEXT,
    amount               BIGINT NOT NULL,
    reference            TEXT NOT NULL,
    counterfoil_id       TEXT,
    created_at           TIMESTAMPTZ,
    finished_at          TIMESTAMPTZ,
    refund_available     BIGINT,
    PRIMARY KEY (run_id, provider_payment_id)
);

CREATE TABLE reconciliation_provider_refunds (
    run_id               TEXT NOT NULL REFERENCES reconciliation_runs (id) ON DELETE CASCADE,
    provider_payment_id  TEXT NOT NULL,
    provider_refund_id   TEXT NOT NULL,
    status               TEXT NOT NULL,
    provider_status      TEXT NOT NULL,
    amount               BIGINT NOT NULL,
    PRIMARY KEY (run_id, provider_payment_id, provider_refund_id)
);

-- The payments of one account in creation order: a run's own side, read in chunks.
CREATE INDEX payments_by_account_created ON payments (account, created_at, id);
