-- 0012_variables.sql - variables and secrets (SPEC section 13). Mirrors
-- migrations/sqlite/0008_variables.sql: a plain variable's value in `value`,
-- a secret's only as secretbox ciphertext and nonce (hex); times are bigint
-- UTC milliseconds.

CREATE TABLE variables (
    key        text PRIMARY KEY,
    value      text,
    ciphertext text,
    nonce      text,
    is_secret  boolean NOT NULL DEFAULT false,
    updated_at bigint NOT NULL,
    updated_by text
);
