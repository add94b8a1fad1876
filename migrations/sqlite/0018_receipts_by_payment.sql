-- A payment's webhook receipts, found by the payment: the retention sweep's removal deletes them
-- by payment and every payment it deletes is checked against them (the foreign key). Without an
-- index each was a scan of every receipt ever kept: at 420,000 receipts, deleting as many
-- payments did not finish in five minutes.
CREATE INDEX webhook_receipts_by_payment ON webhook_receipts (payment_id)
    WHERE payment_id IS NOT NULL;
