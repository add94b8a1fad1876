-- Takings posted into the council's income system. A batch is one provider account's London day,
-- built once the day is over, numbered, and never changed after: its rows are frozen here as they
-- were posted (a later change of codes or layout alters no batch already built), and each payment
-- or refund is in exactly one batch, ever (`line_id` is unique across all of them). A payment or
-- refund learnt after its day's batch was built goes into the next batch built.

CREATE TABLE income_batches (
    id              TEXT PRIMARY KEY,
    account         TEXT NOT NULL,
    number          BIGINT NOT NULL,          -- 1, 2, 3… per account
    reference       TEXT NOT NULL UNIQUE,     -- the income system's BatchReference
    day             TEXT NOT NULL,            -- the London day it closes, YYYY-MM-DD
    period          TEXT NOT NULL,            -- the month it posts into, YYYY-MM
    layout          TEXT NOT NULL,            -- how it is written (JSON), frozen
    row_count       BIGINT NOT NULL,
    control_total   BIGINT NOT NULL,          -- pence, refunds negative
    checksum        TEXT NOT NULL,            -- SHA-256 of the document, hex
    built_at        TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('ready', 'posted', 'failed')),
    pushed          INTEGER NOT NULL,         -- Counterfoil posts it (else a person imports the file)
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT,
    outcome_unknown INTEGER NOT NULL DEFAULT 0, -- the last post's answer was lost
    last_error      TEXT,
    posted_at       TEXT,
    posted_by       TEXT,                     -- the actor's id
    posted_by_label TEXT,
    UNIQUE (account, number),
    UNIQUE (account, day)
);
CREATE INDEX income_batches_latest_day ON income_batches (day DESC, account DESC);
CREATE INDEX income_batches_to_post ON income_batches (next_attempt_at) WHERE status = 'ready' AND pushed = 1;

CREATE TABLE income_batch_lines (
    batch_id        TEXT NOT NULL REFERENCES income_batches (id),
    line_number     BIGINT NOT NULL,
    kind            TEXT NOT NULL CHECK (kind IN ('payment', 'refund')),
    line_id         TEXT NOT NULL UNIQUE,     -- the payment's or refund's id: one batch, ever
    payment_id      TEXT NOT NULL,
    refund_id       TEXT,
    service         TEXT NOT NULL,
    at              TEXT NOT NULL,
    gross           BIGINT NOT NULL,
    vat_amount      BIGINT NOT NULL,
    fund_code       TEXT NOT NULL,
    mop_code        TEXT NOT NULL,
    vat_code        TEXT NOT NULL,
    vat_rate_basis_points BIGINT NOT NULL,
    amounts_include_vat INTEGER NOT NULL,
    office_code     TEXT NOT NULL,
    account_reference TEXT NOT NULL,
    unallocated     INTEGER NOT NULL,
    narrative       TEXT NOT NULL,
    psp_reference   TEXT,
    PRIMARY KEY (batch_id, line_number)
);
CREATE INDEX income_batch_lines_by_payment ON income_batch_lines (payment_id);

-- Months closed by finance: nothing is posted into a locked month; a batch built after the lock
-- posts into the next open one.
CREATE TABLE income_periods (
    period          TEXT PRIMARY KEY,         -- YYYY-MM
    locked_at       TEXT NOT NULL,
    locked_by       TEXT NOT NULL,
    locked_by_label TEXT NOT NULL
);

-- A built batch is never rewritten: its rows may not change or go, and of the batch itself only
-- its posting state moves.
CREATE TRIGGER income_batch_lines_unchanged BEFORE UPDATE ON income_batch_lines
BEGIN
    SELECT RAISE(ABORT, 'a built batch''s rows are never changed');
END;
CREATE TRIGGER income_batch_lines_kept BEFORE DELETE ON income_batch_lines
BEGIN
    SELECT RAISE(ABORT, 'a built batch''s rows are never changed');
END;
CREATE TRIGGER income_batches_kept BEFORE DELETE ON income_batches
BEGIN
    SELECT RAISE(ABORT, 'a built batch''s rows are never changed');
END;
CREATE TRIGGER income_batches_frozen BEFORE UPDATE ON income_batches
WHEN NEW.id IS NOT OLD.id OR NEW.account IS NOT OLD.account OR NEW.number IS NOT OLD.number
  OR NEW.reference IS NOT OLD.reference OR NEW.day IS NOT OLD.day OR NEW.period IS NOT OLD.period
  OR NEW.layout IS NOT OLD.layout OR NEW.row_count IS NOT OLD.row_count
  OR NEW.control_total IS NOT OLD.control_total OR NEW.checksum IS NOT OLD.checksum
  OR NEW.built_at IS NOT OLD.built_at OR NEW.pushed IS NOT OLD.pushed
  OR (OLD.status = 'posted' AND NEW.status <> 'posted')
BEGIN
    SELECT RAISE(ABORT, 'a built batch''s contents are never changed');
END;
