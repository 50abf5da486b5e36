-- 0005_revocation.sql - revoked API tokens (SPEC section 8; api/revoke.h).
-- revoked_tokens is the deny list of tokens revoked one by one (a logout),
-- by jti, each row kept until its token's exp (UTC ms) is past (then
-- purged). revoked_users holds, per user name, the second before which
-- every token issued to that user is refused (the user was deleted, or
-- their role or password replaced). Every revocation raises the one
-- generation number in revocation_gen in its own transaction and stamps
-- its row with it: a server reads that one row on each request and, when
-- it moved, only the rows above the generation it had seen.
CREATE TABLE revoked_tokens (
    jti    TEXT PRIMARY KEY,
    name   TEXT NOT NULL,
    exp_at INTEGER NOT NULL,
    gen    INTEGER NOT NULL
);
CREATE INDEX revoked_tokens_gen ON revoked_tokens (gen);
CREATE INDEX revoked_tokens_exp ON revoked_tokens (exp_at);

CREATE TABLE revoked_users (
    name     TEXT PRIMARY KEY,
    before_s INTEGER NOT NULL,
    gen      INTEGER NOT NULL
);

CREATE TABLE revocation_gen (
    id  INTEGER PRIMARY KEY CHECK (id = 1),
    gen INTEGER NOT NULL
);
INSERT INTO revocation_gen (id, gen) VALUES (1, 0);
