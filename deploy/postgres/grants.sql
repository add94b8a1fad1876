-- Counterfoil on PostgreSQL in production: two roles.
--
--   counterfoil_owner  owns the database's schema; runs `counterfoil migrate` (DDL) and this file.
--   counterfoil_app    what the service connects as: reads and writes the tables it needs, may only
--                      append to the audit trail, and can create, alter or drop nothing. It owns no
--                      table, so it can neither drop nor disable the triggers that keep the audit
--                      trail append-only and chained.
--
-- Once, as a superuser (or a role with CREATEROLE):
--   CREATE ROLE counterfoil_owner LOGIN PASSWORD '...';
--   CREATE ROLE counterfoil_app LOGIN PASSWORD '...';
--   CREATE DATABASE counterfoil OWNER counterfoil_owner;
-- After every upgrade, as counterfoil_owner:
--   DATABASE_URL=postgres://counterfoil_owner:...@host/counterfoil counterfoil migrate
--   psql postgres://counterfoil_owner:...@host/counterfoil -v ON_ERROR_STOP=1 -f grants.sql
-- and run the service as counterfoil_app with `database.migrate_on_start = false`.
-- (A role named otherwise: replace counterfoil_app below.)

REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO counterfoil_app;

GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO counterfoil_app;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO counterfoil_app;

-- The audit trail: read and append only. Its head moves forward one entry at a time (a trigger
-- checks it points at the entry just added).
REVOKE UPDATE, DELETE, TRUNCATE ON audit_log FROM counterfoil_app;
REVOKE INSERT, DELETE, TRUNCATE ON audit_head FROM counterfoil_app;

-- Which migrations ran: read by /readyz, written only by `counterfoil migrate`.
REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON _sqlx_migrations FROM counterfoil_app;

-- Income batches: built once and never rewritten (triggers keep their rows and figures as
-- built); the service may neither delete nor change a row.
REVOKE UPDATE, DELETE, TRUNCATE ON income_batch_lines FROM counterfoil_app;
REVOKE DELETE, TRUNCATE ON income_batches FROM counterfoil_app;
-- Payouts are the provider's record: read and kept, never removed by the service.
REVOKE DELETE, TRUNCATE ON payouts, payout_items FROM counterfoil_app;
