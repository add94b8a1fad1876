-- The audit head's forward-only check runs after the statement that moves it, not before: a
-- payment create appends its audit entry and moves the head in one statement (two `WITH`
-- clauses), and a check made before that statement's own entry is visible refused it. The rule is
-- unchanged and still enforced on every update, whoever makes it: the head moves one place, to an
-- entry that exists with that hash, or the statement fails (a constraint trigger that is not
-- deferrable runs at the end of each statement).
DROP TRIGGER audit_head_forward ON audit_head;
CREATE CONSTRAINT TRIGGER audit_head_forward AFTER UPDATE ON audit_head
    FOR EACH ROW EXECUTE FUNCTION audit_head_forward();
