-- Reconciliation runs against the provider's own records, and what each found.

CREATE TABLE reconciliation_runs (
    id              TEXT PRIMARY KEY,
    account         TEXT NOT NULL,
    period_from     TEXT NOT NULL,
    period_to       TEXT NOT NULL,
    requested_by    TEXT NOT NULL,
    started_at      TEXT NOT NULL,
    finished_at     TEXT,
    status          TEXT NOT NULL CHECK (status IN ('running', 'completed', 'failed')),
    provider_payments INTEGER NOT NULL DEFAULT 0,
    provider_refunds  INTEGER NOT NULL DEFAULT 0,
    local_payments    INTEGER NOT NULL DEFAULT 0,
    error           TEXT
);
CREATE INDEX reconciliation_runs_by_account ON reconciliation_runs (account, period_from);

CREATE TABLE reconciliation_discrepancies (
    id                   INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id               TEXT NOT NULL REFERENCES reconciliation_runs (id),
    kind                 TEXT NOT NULL CHECK (kind IN ('missing_locally', 'missing_at_provider',
                           'amount_mismatch', 'status_mismatch', 'refund_mismatch')),
    payment_id           TEXT,
    provider_payment_id  TEXT,
    ours                 TEXT,
    theirs               TEXT,
    healed               INTEGER NOT NULL DEFAULT 0,
    note                 TEXT NOT NULL DEFAULT ''
);
CREATE INDEX reconciliation_discrepancies_by_run ON reconciliation_discrepancies (run_id, id);
