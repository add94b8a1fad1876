-- The ledger reads succeeded payments and refunds in (finished_at, id) order, a page at a time.
CREATE INDEX payments_ledger ON payments (finished_at, id) WHERE status = 'succeeded';
CREATE INDEX refunds_ledger ON refunds (finished_at, id) WHERE status = 'succeeded';
