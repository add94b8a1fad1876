-- Console sessions, held on the server: the browser's (encrypted) cookie names one by a random
-- token, kept here only as its SHA-256. Sign-out, an administrator or a change of roles revokes
-- it, and idle and absolute timeouts are checked here, so a copied cookie is worth nothing once
-- the session has ended.

CREATE TABLE staff_sessions (
    token_hash     TEXT PRIMARY KEY,
    subject        TEXT NOT NULL,         -- staff:<subject at the identity provider>
    roles          TEXT NOT NULL,         -- the console roles, comma-separated, at sign-in
    signed_in_at   TEXT NOT NULL,
    last_seen      TEXT NOT NULL,
    revoked_at     TEXT,
    revoked_why    TEXT
);
CREATE INDEX staff_sessions_by_subject ON staff_sessions (subject) WHERE revoked_at IS NULL;
CREATE INDEX staff_sessions_by_age ON staff_sessions (last_seen);
