-- Console refunds above a service's threshold wait here for a second person. Nothing reaches the
-- refunds table (and so the provider, the ledger or the CRM) until one approves.

CREATE TABLE refund_approvals (
    id                  TEXT PRIMARY KEY,
    payment_id          TEXT NOT NULL REFERENCES payments (id),
    amount              INTEGER NOT NULL CHECK (amount > 0),
    reason              TEXT NOT NULL,
    requested_by        TEXT NOT NULL,        -- staff:<subject at the identity provider>
    requested_by_label  TEXT NOT NULL,
    requested_at        TEXT NOT NULL,
    status              TEXT NOT NULL CHECK (status IN ('waiting', 'approved', 'declined')),
    decided_by          TEXT,
    decided_by_label    TEXT,
    decided_at          TEXT,
    refund_id           TEXT REFERENCES refunds (id)
);
CREATE INDEX refund_approvals_waiting ON refund_approvals (requested_at) WHERE status = 'waiting';
CREATE INDEX refund_approvals_by_payment ON refund_approvals (payment_id, requested_at);
