-- 0003_users.sql - the API's users (SPEC section 8): a name, a role
-- ('viewer', 'operator', 'admin') and an argon2id password hash in
-- libsodium's string form (never the password). Times are INTEGER UTC
-- milliseconds.

CREATE TABLE users (
    name          TEXT PRIMARY KEY,
    role          TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_at    INTEGER NOT NULL
);
