-- Takings are totals per London day and service. A refund keeps its payment's service (which
-- never changes), so that a month's refunds are counted and summed from the ledger's index alone.
ALTER TABLE refunds ADD COLUMN service TEXT NOT NULL DEFAULT '';
UPDATE refunds SET service = (SELECT p.service FROM payments p WHERE p.id = refunds.payment_id);
DROP INDEX refunds_ledger;
CREATE INDEX refunds_ledger ON refunds (finished_at, id, service, amount)
    WHERE status = 'succeeded';

-- Finding a payment by its amount within dates read the newest-first index over the period,
-- filtered (62 ms for a month at ten million, 358 ms at p99): now by amount, newest first.
CREATE INDEX payments_by_amount ON payments (amount, created_at DESC, id DESC);
