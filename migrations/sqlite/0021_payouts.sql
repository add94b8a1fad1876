-- Payouts: the provider's transfers to the council's bank (Stripe's payouts; for GOV.UK Pay, the
-- payments it says were settled on one day), and the items each holds (charges, refunds, fees).
-- A payout is named by its account and the provider's id (ids are only unique within an
-- account). Only the provider's facts are kept; which payment, refund and income batch an item
-- is matched to is read through the ids each time, so a payment learnt or a batch built after
-- the payout was read is matched all the same.

CREATE TABLE payouts (
    account         TEXT NOT NULL,
    id              TEXT NOT NULL,            -- the provider's payout id
    amount          BIGINT NOT NULL,          -- pence to the bank
    arrival_date    TEXT NOT NULL,            -- YYYY-MM-DD, as the bank statement shows it
    status          TEXT NOT NULL,            -- the provider's: paid, in_transit, failed…
    created_at      TEXT NOT NULL,
    read_at         TEXT NOT NULL,
    PRIMARY KEY (account, id)
);
CREATE INDEX payouts_newest ON payouts (arrival_date DESC, account DESC, id DESC);

CREATE TABLE payout_items (
    account         TEXT NOT NULL,
    payout_id       TEXT NOT NULL,
    position        BIGINT NOT NULL,
    item_id         TEXT NOT NULL,            -- the provider's (Stripe: balance transaction)
    kind            TEXT NOT NULL,            -- charge, refund, payout, adjustment…
    amount          BIGINT NOT NULL,
    fee             BIGINT NOT NULL,
    net             BIGINT NOT NULL,
    provider_payment_id TEXT,                 -- a charge's payment as the provider names it
    provider_refund_id  TEXT,                 -- a refund's id at the provider
    PRIMARY KEY (account, payout_id, position),
    FOREIGN KEY (account, payout_id) REFERENCES payouts (account, id)
);

-- A refund found by the provider's id (a payout names refunds so).
CREATE INDEX refunds_by_provider_id ON refunds (provider_refund_id)
    WHERE provider_refund_id IS NOT NULL;
