-- Takings are totals per London day and service. A refund keeps its payment's service (which
-- never changes), so that a month's refunds are counted and summed from the ledger's index alone
-- (about 4,700 refunds a month at ten million payments: 36 ms joined to their payments, 2 ms
-- from the index).
ALTER TABLE refunds ADD COLUMN service TEXT;
UPDATE refunds r SET service = p.service FROM payments p WHERE p.id = r.payment_id;
ALTER TABLE refunds ALTER COLUMN service SET NOT NULL;
DROP INDEX refunds_ledger;
CREATE INDEX refunds_ledger ON refunds (finished_at, id) INCLUDE (service, amount)
    WHERE status = 'succeeded';

-- Finding a payment by its amount within dates read the newest-first index over the period,
-- filtered (62 ms for a month at ten million, 358 ms at p99): now by amount, newest first.
CREATE INDEX payments_by_amount ON payments (amount, created_at DESC, id DESC);
