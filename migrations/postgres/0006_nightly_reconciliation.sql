-- One nightly reconciliation per account and period, however many replicas try to start it.
CREATE UNIQUE INDEX reconciliation_runs_nightly ON reconciliation_runs (account, period_from)
    WHERE requested_by = 'nightly';
