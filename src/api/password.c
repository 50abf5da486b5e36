/*
 * password.c - the password rule (see password.h): PASSWORD_MIN_CHARS
 * characters at least, PASSWORD_MAX_BYTES bytes at most. Characters are
 * counted as UTF-8 code points (bytes that are not continuation bytes), so
 * "pässwörd" is 8 characters as its user sees it. Any thread.
 */
#include "api/password.h"

#include <stddef.h>

#define PASSWORD_STR(x)  #x
#define PASSWORD_XSTR(x) PASSWORD_STR(x)

const char *password_problem(const char *pw)
{
    if (!pw || !*pw)
        return "the password is empty";
    size_t bytes = 0, chars = 0;
    for (const unsigned char *p = (const unsigned char *)pw; *p; p++) {
        if (++bytes > PASSWORD_MAX_BYTES)
            return "the password is longer than " PASSWORD_XSTR(PASSWORD_MAX_BYTES) " bytes";
        if ((*p & 0xC0) != 0x80)
            chars++;
    }
    if (chars < PASSWORD_MIN_CHARS)
        return "the password is shorter than " PASSWORD_XSTR(PASSWORD_MIN_CHARS) " characters";
    return NULL;
}
