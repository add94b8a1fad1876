-- Every new audit entry is in the chain, enforced by the database, whoever writes it: it must take
-- the next place (seq = the head's last_seq + 1), point at the head's hash, and carry its own.
-- The head may only move forward one entry at a time, to an entry that exists with that hash.
-- Entries written before the chain began (migration 0007) keep seq NULL; none can be added now.
CREATE FUNCTION audit_entry_in_chain() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    head audit_head%ROWTYPE;
BEGIN
    SELECT * INTO head FROM audit_head WHERE id = 1;
    IF NEW.seq IS NULL OR NEW.prev_hash IS NULL OR NEW.hash IS NULL
       OR NEW.seq <> head.last_seq + 1 OR NEW.prev_hash <> head.last_hash THEN
        RAISE EXCEPTION 'the audit trail is a chain: an entry must take the next place after the head'
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER audit_log_in_chain BEFORE INSERT ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_entry_in_chain();

CREATE FUNCTION audit_head_forward() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.id <> OLD.id OR NEW.last_seq <> OLD.last_seq + 1 OR NOT EXISTS (
        SELECT 1 FROM audit_log WHERE seq = NEW.last_seq AND hash = NEW.last_hash
    ) THEN
        RAISE EXCEPTION 'the audit head only moves forward, to the entry just added'
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER audit_head_forward BEFORE UPDATE ON audit_head
    FOR EACH ROW EXECUTE FUNCTION audit_head_forward();
CREATE TRIGGER audit_head_no_insert BEFORE INSERT ON audit_head
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
