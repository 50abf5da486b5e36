/*
 * web.c - serves the web UI (web.h): GET / answers index.html, GET /ui/NAME
 * the other files, all from the bytes built into the binary.
 *
 * Caching: each file carries an ETag (its SHA-256 prefix, computed at build
 * time) and Cache-Control "no-cache", so a browser revalidates and gets 304
 * for what it has; a new binary's files are never served stale. Pages also
 * carry a Content-Security-Policy that allows scripts, styles and requests
 * from this origin only (no inline script), and refuse framing.
 *
 * For working on the UI, BARAM_WEB_DIR=<folder> serves the files from that
 * folder instead (read on each request, never cached), so an edit shows on
 * reload without a rebuild. The NAME segment is already checked by the
 * server (no '/', no "..").
 */
#include "api/web.h"

#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/api.h"
#include "base/buf.h"
#include "base/xalloc.h"

#define WEB_DEV_FILE_MAX (8 * 1024 * 1024)

const struct web_file *web_file_find(const char *name)
{
    for (size_t i = 0; i < web_files_count; i++)
        if (strcmp(web_files[i].name, name) == 0)
            return &web_files[i];
    return NULL;
}

/* BARAM_WEB_DIR: the file read from disk into rs (no ETag, no-store), or a 404. */
static void serve_from_dir(const char *dir, const char *name, const char *ctype,
                           struct api_resp *rs)
{
    char *path = xasprintf("%s/%s", dir, name);
    /* Non-blocking open and a regular file only: a FIFO named app.js must not hold a server
     * thread. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    free(path);
    struct stat st;
    FILE *f = NULL;
    if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode))
        f = fdopen(fd, "rb");
    if (!f) {
        if (fd >= 0)
            close(fd);
        api_problem(rs, 404, "Not Found", "no such file in the web UI: %s", name);
        return;
    }
    struct buf b = BUF_INIT(WEB_DEV_FILE_MAX);
    char chunk[16384];
    size_t n;
    bool ok = true;
    while (ok && (n = fread(chunk, 1, sizeof chunk, f)) > 0)
        ok = buf_add(&b, chunk, n) == 0;
    ok = ok && !ferror(f);
    fclose(f);
    if (!ok) {
        buf_release(&b);
        api_problem(rs, 500, "Internal Server Error", "cannot read %s from BARAM_WEB_DIR", name);
        return;
    }
    rs->status = 200;
    rs->raw = buf_detach(&b, &rs->raw_len);
    rs->content_type = ctype;
    rs->page = true;
}

/* The content type a UI file is served with, from its extension (the one table of them, for
 * the embedded files and BARAM_WEB_DIR alike); NULL: not a UI file type, answered 404 (and
 * tests/e2e/test_web.py, which serves every file of web/, fails on it). */
static const char *web_type_of(const char *name)
{
    static const char *const types[][2] = {
        {".html", "text/html; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
        {".svg", "image/svg+xml"},
        {".png", "image/png"},
        {".ico", "image/x-icon"},
        {".json", "application/json"},
    };
    const char *dot = strrchr(name, '.');
    for (size_t i = 0; dot && i < sizeof(types) / sizeof(types[0]); i++)
        if (strcmp(dot, types[i][0]) == 0)
            return types[i][1];
    return NULL;
}

static void serve(struct api_req *rq, struct api_resp *rs, const char *name)
{
    const char *type = web_type_of(name);
    const char *dir = getenv("BARAM_WEB_DIR");
    if (type && dir && *dir) {
        serve_from_dir(dir, name, type, rs);
        return;
    }
    const struct web_file *f = type ? web_file_find(name) : NULL;
    if (!f) {
        api_problem(rs, 404, "Not Found", "no such file in the web UI: %s", name);
        return;
    }
    rs->etag = f->etag;
    rs->cache_control = "no-cache";
    rs->page = true;
    const char *inm = api_header(rq, "If-None-Match");
    if (inm && strstr(inm, f->etag)) {
        rs->status = 304;
        return;
    }
    rs->status = 200;
    rs->static_body = f->data;
    rs->raw_len = f->len;
    rs->content_type = type;
}

static void web_index(struct api_req *rq, struct api_resp *rs)
{
    serve(rq, rs, "index.html");
}

static void web_asset(struct api_req *rq, struct api_resp *rs)
{
    serve(rq, rs, rq->seg[0]);
}

const struct api_route api_routes_web[] = {
    {"GET", "/", AUTH_NONE, web_index, 0},
    {"GET", "/ui/{file}", AUTH_NONE, web_asset, 0},
    {NULL, NULL, AUTH_NONE, NULL, 0},
};
