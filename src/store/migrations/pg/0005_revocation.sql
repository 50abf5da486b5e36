-- 0005_revocation.sql - revoked API tokens (SPEC section 8; api/revoke.h).
-- Mirrors migrations/sqlite/0005_revocation.sql. revoked_tokens is the deny
-- list of tokens revoked one by one (a logout), by jti, each row kept until
-- its token's exp (UTC ms) is past (then purged). revoked_users holds, per
-- user name, the second before which every token issued to that user is
-- refused. Every revocation raises the one generation number in
-- revocation_gen in its own transaction and stamps its row with it (the
-- UPDATE's row lock orders concurrent revocations): a server reads that one
-- row on each request and, when it moved, only the rows above the
-- generation it had seen.
CREATE TABLE revoked_tokens (
    jti    text PRIMARY KEY,
    name   text NOT NULL,
    exp_at bigint NOT NULL,
    gen    bigint NOT NULL
);
CREATE INDEX revoked_tokens_gen ON revoked_tokens (gen);
CREATE INDEX revoked_tokens_exp ON revoked_tokens (exp_at);

CREATE TABLE revoked_users (
    name     text PRIMARY KEY,
    before_s bigint NOT NULL,
    gen      bigint NOT NULL
);

CREATE TABLE revocation_gen (
    id  integer PRIMARY KEY CHECK (id = 1),
    gen bigint NOT NULL
);
INSERT INTO revocation_gen (id, gen) VALUES (1, 0);
