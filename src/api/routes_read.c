/*
 * routes_read.c - the API's read routes (see api.h for the table's rules).
 * Handlers run on the server's threads (api.h: threading).
 */
#include "api/api.h"

const struct api_route api_routes_read[] = {
    {NULL, NULL, AUTH_NONE, NULL},
};
