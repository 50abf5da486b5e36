-- 0003_users.sql - the API's users (SPEC section 8): a name, a role
-- ('viewer', 'operator', 'admin') and an argon2id password hash in
-- libsodium's string form (never the password). Mirrors
-- migrations/sqlite/0003_users.sql; times are bigint UTC milliseconds.

CREATE TABLE users (
    name          text PRIMARY KEY,
    role          text NOT NULL,
    password_hash text NOT NULL,
    created_at    bigint NOT NULL
);
