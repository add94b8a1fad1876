-- Refunds that say who did what. A refund sent on a second person's approval keeps who asked
-- (requested_by: the requester, never the approver) and who approved; a declined refund keeps why;
-- an approval whose refund the provider refused goes back to waiting with what went wrong.

ALTER TABLE refunds ADD COLUMN approval_id TEXT;
ALTER TABLE refunds ADD COLUMN approved_by TEXT;
ALTER TABLE refunds ADD COLUMN approved_by_label TEXT;
ALTER TABLE refunds ADD COLUMN approved_at TEXT;
-- What one person has refunded without a second person, per payment and per day.
CREATE INDEX refunds_by_requester ON refunds (requested_by, created_at);
-- The register, newest first, and its failed refunds.
CREATE INDEX refunds_by_time ON refunds (created_at);
CREATE INDEX refunds_failed ON refunds (finished_at) WHERE status = 'failed';

ALTER TABLE refund_approvals ADD COLUMN decline_reason TEXT;
ALTER TABLE refund_approvals ADD COLUMN last_failure TEXT;
CREATE INDEX refund_approvals_by_time ON refund_approvals (requested_at);
CREATE INDEX refund_approvals_by_requester ON refund_approvals (requested_by, requested_at);
