-- Reads measured at ten million payments (docs/benchmarks.md) that sorted or fetched too much.
--
-- The refunds register lists refunds newest *asked for* first, and a refund sent on a second
-- person's approval was asked for when the approval was: the order was an expression across two
-- tables, so every refund was joined and sorted to show the first page. Each refund now keeps when
-- it was asked for, and the register reads its newest from an index, with or without a state.
ALTER TABLE refunds ADD COLUMN requested_at TEXT NOT NULL DEFAULT '';
UPDATE refunds SET requested_at = COALESCE(
    (SELECT a.requested_at FROM refund_approvals a WHERE a.id = refunds.approval_id), created_at);
CREATE INDEX refunds_register ON refunds (requested_at DESC, id DESC);
CREATE INDEX refunds_register_by_state ON refunds (status, requested_at DESC, id DESC);
CREATE INDEX refund_approvals_register ON refund_approvals (status, requested_at DESC, id DESC)
    WHERE status IN ('waiting', 'declined');

-- Takings are totals per London day and service, summed from the ledger's index alone.
DROP INDEX payments_ledger;
CREATE INDEX payments_ledger ON payments (finished_at, id, service, amount)
    WHERE status = 'succeeded';

-- The dashboard's count of payments in `error` (0.2% of payments) read the newest-first index
-- filtered by status, about 50,000 entries for its first 100; the error payments are now listed
-- on their own.
CREATE INDEX payments_error_newest ON payments (created_at DESC, id DESC) WHERE status = 'error';
