-- Every new audit entry is in the chain, enforced by the database (see the PostgreSQL migration).
CREATE TRIGGER audit_log_in_chain BEFORE INSERT ON audit_log
WHEN NEW.seq IS NULL OR NEW.prev_hash IS NULL OR NEW.hash IS NULL
     OR NEW.seq <> (SELECT last_seq + 1 FROM audit_head WHERE id = 1)
     OR NEW.prev_hash <> (SELECT last_hash FROM audit_head WHERE id = 1)
BEGIN
    SELECT RAISE(ABORT, 'the audit trail is a chain: an entry must take the next place after the head');
END;
CREATE TRIGGER audit_head_forward BEFORE UPDATE ON audit_head
WHEN NEW.id <> OLD.id OR NEW.last_seq <> OLD.last_seq + 1
     OR NOT EXISTS (SELECT 1 FROM audit_log WHERE seq = NEW.last_seq AND hash = NEW.last_hash)
BEGIN
    SELECT RAISE(ABORT, 'the audit head only moves forward, to the entry just added');
END;
CREATE TRIGGER audit_head_no_insert BEFORE INSERT ON audit_head
BEGIN
    SELECT RAISE(ABORT, 'the audit trail is append-only: INSERT on audit_head refused');
END;
