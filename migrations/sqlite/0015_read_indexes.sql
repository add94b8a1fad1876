-- Reads measured at ten million payments (examples/seed.rs, docs/benchmarks.md) that scanned:
-- the console's search by the provider's reference (1.2 s: the only index on it leads with the
-- account), a status within a service (193 ms for a rare status: newest first, filtered), and the
-- audit trail by person (826 ms: a substring match). Each now reads an index (under 1 ms).
CREATE INDEX payments_by_provider_ref ON payments (provider_payment_id)
    WHERE provider_payment_id IS NOT NULL;
CREATE INDEX payments_by_service_status ON payments (service, status, created_at DESC, id DESC);
-- "Who" is a person's id exactly, or the start of their name (any case).
CREATE INDEX audit_log_by_label ON audit_log (LOWER(actor_label), id);
