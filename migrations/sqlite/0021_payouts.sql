-- Payouts: the provider's transfers to the council's bank (Stripe's payouts), and the items each
-- holds (charges, refunds, fees). Only the provider's facts are kept; which payment, refund and
-- income batch an item is matched to is read through the ids each time, so a payment learnt or
-- a batch built after the payout was read is matched all the same.

CREATE TABLE payouts (
    id              TEXT PRIMARY KEY,         -- the provider's payout id
    account         TEXT NOT NULL,
    amount          BIGINT NOT NULL,          -- pence to the bank
    arrival_date    TEXT NOT NULL,            -- YYYY-MM-DD, as the bank statement shows it
    status          TEXT NOT NULL,            -- the provider's: paid, in_transit, failed…
    created_at      TEXT NOT NULL,
    read_at         TEXT NOT NULL
);
CREATE INDEX payouts_newest ON payouts (arrival_date DESC, id DESC);

CREATE TABLE payout_items (
    payout_id       TEXT NOT NULL REFERENCES payouts (id),
    position        BIGINT NOT NULL,
    item_id         TEXT NOT NULL,            -- the provider's (Stripe: balance transaction)
    kind            TEXT NOT NULL,            -- charge, refund, payout, adjustment…
    amount          BIGINT NOT NULL,
    fee             BIGINT NOT NULL,
    net             BIGINT NOT NULL,
    provider_payment_id TEXT,                 -- a charge's payment as the provider names it
    provider_refund_id  TEXT,                 -- a refund's id at the provider
    PRIMARY KEY (payout_id, position)
);

-- A refund found by the provider's id (a payout names refunds so).
CREATE INDEX refunds_by_provider_id ON refunds (provider_refund_id)
    WHERE provider_refund_id IS NOT NULL;
