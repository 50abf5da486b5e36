/*
 * web.h - the web UI's files (SPEC section 9), built into the binary from
 * web/ by src/api/embed_web.cmake, and the routes that serve them:
 * GET / (index.html) and GET /ui/NAME.
 */
#ifndef BARAM_API_WEB_H
#define BARAM_API_WEB_H

#include <stddef.h>

struct web_file {
    const char *name;          /* "app.js" */
    const unsigned char *data; /* NUL-terminated */
    size_t len;
    const char *etag; /* "\"<sha-256 prefix>\"" */
};

extern const struct web_file web_files[];
extern const size_t web_files_count;

/* The embedded file called name, or NULL. */
const struct web_file *web_file_find(const char *name);

#endif
