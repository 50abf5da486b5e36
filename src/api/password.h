/*
 * password.h - the rule a new user's password must pass, one for every way
 * a password is set: `baram users add`, BARAM_ADMIN_PASSWORD at `baram
 * init`, and POST /api/v1/users. Logins are not checked against it (a user
 * made before the rule still logs in).
 *
 * No state; any thread.
 */
#ifndef BARAM_API_PASSWORD_H
#define BARAM_API_PASSWORD_H

#define PASSWORD_MIN_CHARS 8    /* characters (UTF-8 code points), not bytes */
#define PASSWORD_MAX_BYTES 1024 /* argon2id hashes any length; this bounds the input */

/* NULL when pw may be set as a password, else why not: a static message naming the rule,
 * lower case, no final period ("the password is shorter than 8 characters"). The message
 * never quotes the password. */
const char *password_problem(const char *pw);

#endif
