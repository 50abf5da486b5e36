/*
 * lazy_mhd.c - libmicrohttpd, opened the first time baram calls it
 * (base/dynlib.h): only the roles that serve the API (standalone, api) load
 * it and the GnuTLS libraries it pulls in. Defines the functions server.c
 * uses under their own names. MHD_start_daemon's option list is forwarded to
 * MHD_start_daemon_va; the info getters take no further argument in this API
 * version, so none is forwarded. Any thread.
 */
#include <microhttpd.h>
#include <stdarg.h>

#include "base/dynlib.h"

/* X(return type, name, parameters, arguments, value on failure) */
#define LAZY_MHD_FUNCS(X)                                                                          \
    X(enum MHD_Result, MHD_add_response_header,                                                    \
      (struct MHD_Response * r, const char *header, const char *content), (r, header, content),    \
      MHD_NO)                                                                                      \
    X(struct MHD_Response *, MHD_create_response_from_buffer,                                      \
      (size_t size, void *buffer, enum MHD_ResponseMemoryMode mode), (size, buffer, mode), NULL)   \
    X(struct MHD_Response *, MHD_create_response_from_callback,                                    \
      (uint64_t size, size_t block, MHD_ContentReaderCallback crc, void *cls,                      \
       MHD_ContentReaderFreeCallback crfc),                                                        \
      (size, block, crc, cls, crfc), NULL)                                                         \
    X(const char *, MHD_lookup_connection_value,                                                   \
      (struct MHD_Connection * c, enum MHD_ValueKind kind, const char *key), (c, kind, key), NULL) \
    X(enum MHD_Result, MHD_queue_response,                                                         \
      (struct MHD_Connection * c, unsigned int status, struct MHD_Response *r), (c, status, r),    \
      MHD_NO)

/* V(name, parameters, arguments) */
#define LAZY_MHD_VOIDS(V)                                                                          \
    V(MHD_destroy_response, (struct MHD_Response * r), (r))                                        \
    V(MHD_resume_connection, (struct MHD_Connection * c), (c))                                     \
    V(MHD_stop_daemon, (struct MHD_Daemon * d), (d))                                               \
    V(MHD_suspend_connection, (struct MHD_Connection * c), (c))

/* N(name): written out below */
#define LAZY_MHD_OTHERS(N) N(MHD_start_daemon_va) N(MHD_get_connection_info) N(MHD_get_daemon_info)

DYNLIB_STUBS(BARAM_SONAME_MHD, LAZY_MHD_FUNCS, LAZY_MHD_VOIDS, LAZY_MHD_OTHERS);

struct MHD_Daemon *MHD_start_daemon(unsigned int flags, uint16_t port, MHD_AcceptPolicyCallback apc,
                                    void *apc_cls, MHD_AccessHandlerCallback dh, void *dh_cls, ...)
{
    if (!dynlib_open(&lazy_lib))
        return NULL;
    struct MHD_Daemon *(*start)(unsigned int, uint16_t, MHD_AcceptPolicyCallback, void *,
                                MHD_AccessHandlerCallback, void *, va_list) =
        lazy_table[DYNLIB_SYM_MHD_start_daemon_va];
    va_list ap;
    va_start(ap, dh_cls);
    struct MHD_Daemon *d = start(flags, port, apc, apc_cls, dh, dh_cls, ap);
    va_end(ap);
    return d;
}

const union MHD_ConnectionInfo *MHD_get_connection_info(struct MHD_Connection *c,
                                                        enum MHD_ConnectionInfoType type, ...)
{
    if (!dynlib_open(&lazy_lib))
        return NULL;
    const union MHD_ConnectionInfo *(*get)(struct MHD_Connection *, enum MHD_ConnectionInfoType,
                                           ...) = lazy_table[DYNLIB_SYM_MHD_get_connection_info];
    return get(c, type);
}

const union MHD_DaemonInfo *MHD_get_daemon_info(struct MHD_Daemon *d, enum MHD_DaemonInfoType type,
                                                ...)
{
    if (!dynlib_open(&lazy_lib))
        return NULL;
    const union MHD_DaemonInfo *(*get)(struct MHD_Daemon *, enum MHD_DaemonInfoType, ...) =
        lazy_table[DYNLIB_SYM_MHD_get_daemon_info];
    return get(d, type);
}
