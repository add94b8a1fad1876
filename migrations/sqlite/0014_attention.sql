-- What needs a person: the queue is read from the tables that already hold each kind of trouble
-- (payments not final, creates with an unknown outcome, dead CRM notifications, reconciliation
-- discrepancies, failed refunds). What a person says when they mark one as dealt with is kept
-- here, one row per item, and the same act is in the audit trail under their name.

CREATE TABLE attention_resolutions (
    kind          TEXT NOT NULL CHECK (kind IN ('stuck_payment', 'unknown_create',
                    'dead_notification', 'discrepancy', 'failed_refund')),
    item_id       TEXT NOT NULL,          -- the payment, notification, discrepancy or refund id
    resolved_at   TEXT NOT NULL,
    resolved_by   TEXT NOT NULL,          -- the actor's id
    resolved_by_label TEXT NOT NULL,
    note          TEXT NOT NULL,
    PRIMARY KEY (kind, item_id)
);

-- The queue's sources, each read newest first without a scan of the table it lives in.
CREATE INDEX payments_not_final_newest ON payments (created_at DESC, id DESC)
    WHERE status IN ('created', 'in_progress');
CREATE INDEX payments_create_unknown ON payments (created_at DESC, id DESC)
    WHERE create_outcome = 'unknown';
CREATE INDEX outbox_dead ON outbox (created_at DESC, id DESC) WHERE status = 'dead';
CREATE INDEX refunds_failed_newest ON refunds (updated_at DESC, id DESC) WHERE status = 'failed';
CREATE INDEX reconciliation_discrepancies_unhealed ON reconciliation_discrepancies (id DESC)
    WHERE healed = 0;

-- Who started a run, as the audit trail names them, for the console's list of runs; and that list
-- newest first.
ALTER TABLE reconciliation_runs ADD COLUMN requested_by_label TEXT NOT NULL DEFAULT '';
CREATE INDEX reconciliation_runs_newest ON reconciliation_runs (started_at DESC, id DESC);

-- The data-protection officer's pages: a person found by their email address (any case), and the
-- audit trail filtered by who, what and what it was done to, newest first.
CREATE INDEX payments_by_email ON payments (LOWER(email)) WHERE email IS NOT NULL;
CREATE INDEX audit_log_by_actor ON audit_log (actor_key_id, id);
CREATE INDEX audit_log_by_action ON audit_log (action, id);
CREATE INDEX audit_log_by_subject ON audit_log (subject, id);

-- The administrator's list of live console sessions names the person, as sign-in did.
ALTER TABLE staff_sessions ADD COLUMN name TEXT NOT NULL DEFAULT '';
