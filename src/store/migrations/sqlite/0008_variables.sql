-- 0008_variables.sql - variables and secrets (SPEC section 13): a key
-- ([A-Za-z0-9_.-], 1-200 characters) and its value. A plain variable keeps
-- its value in `value`; a secret keeps none there, only its libsodium
-- secretbox ciphertext and the nonce of that write (both hex), sealed with a
-- key derived from the home's secret key (store/vars.h). Times are INTEGER UTC
-- milliseconds; updated_by names who wrote it ("cli" or an API user).

CREATE TABLE variables (
    key        TEXT PRIMARY KEY,
    value      TEXT,
    ciphertext TEXT,
    nonce      TEXT,
    is_secret  INTEGER NOT NULL DEFAULT 0,
    updated_at INTEGER NOT NULL,
    updated_by TEXT
);
