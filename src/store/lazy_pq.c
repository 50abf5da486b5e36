/*
 * lazy_pq.c - libpq, opened the first time baram talks to PostgreSQL
 * (base/dynlib.h). Defines the libpq functions baram uses under their own
 * names, so the store calls libpq's documented API as if it were linked; a
 * process whose store is SQLite never loads libpq, nor its TLS, Kerberos and
 * LDAP libraries. On a failed load every call fails the way libpq reports
 * it (NULL, CONNECTION_BAD, PGRES_FATAL_ERROR, -1, 0), so the caller's usual
 * error path runs; pg__lib_error() says why. Any thread (libpq's own rules:
 * one connection per thread at a time).
 *
 * To use another libpq function, add one line to the lists below.
 */
#include <libpq-fe.h>

#include "base/dynlib.h"
#include "store/pg_int.h"

/* X(return type, name, parameters, arguments, value on failure) */
#define LAZY_PQ_FUNCS(X)                                                                           \
    /* connections */                                                                              \
    X(PGconn *, PQconnectdb, (const char *conninfo), (conninfo), NULL)                             \
    X(PGconn *, PQconnectdbParams,                                                                 \
      (const char *const *keywords, const char *const *values, int expand_dbname),                 \
      (keywords, values, expand_dbname), NULL)                                                     \
    X(PGconn *, PQconnectStartParams,                                                              \
      (const char *const *keywords, const char *const *values, int expand_dbname),                 \
      (keywords, values, expand_dbname), NULL)                                                     \
    X(PostgresPollingStatusType, PQconnectPoll, (PGconn * c), (c), PGRES_POLLING_FAILED)           \
    X(int, PQresetStart, (PGconn * c), (c), 0)                                                     \
    X(PostgresPollingStatusType, PQresetPoll, (PGconn * c), (c), PGRES_POLLING_FAILED)             \
    X(ConnStatusType, PQstatus, (const PGconn *c), (c), CONNECTION_BAD)                            \
    X(PGTransactionStatusType, PQtransactionStatus, (const PGconn *c), (c), PQTRANS_UNKNOWN)       \
    X(char *, PQerrorMessage, (const PGconn *c), (c), "libpq is not loaded")                       \
    X(int, PQsocket, (const PGconn *c), (c), -1)                                                   \
    X(int, PQbackendPID, (const PGconn *c), (c), 0)                                                \
    X(int, PQserverVersion, (const PGconn *c), (c), 0)                                             \
    X(int, PQprotocolVersion, (const PGconn *c), (c), 0)                                           \
    X(int, PQlibVersion, (void), (), 0)                                                            \
    X(char *, PQdb, (const PGconn *c), (c), NULL)                                                  \
    X(char *, PQuser, (const PGconn *c), (c), NULL)                                                \
    X(char *, PQhost, (const PGconn *c), (c), NULL)                                                \
    X(char *, PQport, (const PGconn *c), (c), NULL)                                                \
    X(const char *, PQparameterStatus, (const PGconn *c, const char *name), (c, name), NULL)       \
    X(int, PQconnectionNeedsPassword, (const PGconn *c), (c), 0)                                   \
    X(int, PQconnectionUsedPassword, (const PGconn *c), (c), 0)                                    \
    X(int, PQsslInUse, (PGconn * c), (c), 0)                                                       \
    X(int, PQclientEncoding, (const PGconn *c), (c), -1)                                           \
    X(int, PQsetClientEncoding, (PGconn * c, const char *enc), (c, enc), -1)                       \
    X(PGPing, PQping, (const char *conninfo), (conninfo), PQPING_NO_ATTEMPT)                       \
    X(PGPing, PQpingParams,                                                                        \
      (const char *const *keywords, const char *const *values, int expand_dbname),                 \
      (keywords, values, expand_dbname), PQPING_NO_ATTEMPT)                                        \
    X(PQconninfoOption *, PQconninfoParse, (const char *conninfo, char **errmsg),                  \
      (conninfo, errmsg), NULL)                                                                    \
    X(PQconninfoOption *, PQconninfo, (PGconn * c), (c), NULL)                                     \
    X(PQnoticeProcessor, PQsetNoticeProcessor, (PGconn * c, PQnoticeProcessor p, void *arg),       \
      (c, p, arg), NULL)                                                                           \
    X(PQnoticeReceiver, PQsetNoticeReceiver, (PGconn * c, PQnoticeReceiver p, void *arg),          \
      (c, p, arg), NULL)                                                                           \
    X(PGcancel *, PQgetCancel, (PGconn * c), (c), NULL)                                            \
    X(int, PQcancel, (PGcancel * cancel, char *errbuf, int size), (cancel, errbuf, size), 0)       \
    /* queries, waiting */                                                                         \
    X(PGresult *, PQexec, (PGconn * c, const char *query), (c, query), NULL)                       \
    X(PGresult *, PQexecParams,                                                                    \
      (PGconn * c, const char *command, int n, const Oid *types, const char *const *values,        \
       const int *lengths, const int *formats, int result_format),                                 \
      (c, command, n, types, values, lengths, formats, result_format), NULL)                       \
    X(PGresult *, PQprepare,                                                                       \
      (PGconn * c, const char *name, const char *query, int n, const Oid *types),                  \
      (c, name, query, n, types), NULL)                                                            \
    X(PGresult *, PQexecPrepared,                                                                  \
      (PGconn * c, const char *name, int n, const char *const *values, const int *lengths,         \
       const int *formats, int result_format),                                                     \
      (c, name, n, values, lengths, formats, result_format), NULL)                                 \
    X(PGresult *, PQdescribePrepared, (PGconn * c, const char *name), (c, name), NULL)             \
    /* queries, asynchronous and pipelined */                                                      \
    X(int, PQsendQuery, (PGconn * c, const char *query), (c, query), 0)                            \
    X(int, PQsendQueryParams,                                                                      \
      (PGconn * c, const char *command, int n, const Oid *types, const char *const *values,        \
       const int *lengths, const int *formats, int result_format),                                 \
      (c, command, n, types, values, lengths, formats, result_format), 0)                          \
    X(int, PQsendPrepare,                                                                          \
      (PGconn * c, const char *name, const char *query, int n, const Oid *types),                  \
      (c, name, query, n, types), 0)                                                               \
    X(int, PQsendQueryPrepared,                                                                    \
      (PGconn * c, const char *name, int n, const char *const *values, const int *lengths,         \
       const int *formats, int result_format),                                                     \
      (c, name, n, values, lengths, formats, result_format), 0)                                    \
    X(PGresult *, PQgetResult, (PGconn * c), (c), NULL)                                            \
    X(int, PQconsumeInput, (PGconn * c), (c), 0)                                                   \
    X(int, PQisBusy, (PGconn * c), (c), 0)                                                         \
    X(int, PQflush, (PGconn * c), (c), -1)                                                         \
    X(int, PQsetnonblocking, (PGconn * c, int arg), (c, arg), -1)                                  \
    X(int, PQisnonblocking, (const PGconn *c), (c), 0)                                             \
    X(int, PQsetSingleRowMode, (PGconn * c), (c), 0)                                               \
    X(int, PQenterPipelineMode, (PGconn * c), (c), 0)                                              \
    X(int, PQexitPipelineMode, (PGconn * c), (c), 0)                                               \
    X(int, PQpipelineSync, (PGconn * c), (c), 0)                                                   \
    X(int, PQsendFlushRequest, (PGconn * c), (c), 0)                                               \
    X(PGpipelineStatus, PQpipelineStatus, (const PGconn *c), (c), PQ_PIPELINE_OFF)                 \
    X(PGnotify *, PQnotifies, (PGconn * c), (c), NULL)                                             \
    /* results */                                                                                  \
    X(ExecStatusType, PQresultStatus, (const PGresult *r), (r), PGRES_FATAL_ERROR)                 \
    X(char *, PQresStatus, (ExecStatusType s), (s), "libpq is not loaded")                         \
    X(char *, PQresultErrorMessage, (const PGresult *r), (r), "libpq is not loaded")               \
    X(char *, PQresultErrorField, (const PGresult *r, int field), (r, field), NULL)                \
    X(int, PQntuples, (const PGresult *r), (r), 0)                                                 \
    X(int, PQnfields, (const PGresult *r), (r), 0)                                                 \
    X(char *, PQfname, (const PGresult *r, int i), (r, i), NULL)                                   \
    X(int, PQfnumber, (const PGresult *r, const char *name), (r, name), -1)                        \
    X(Oid, PQftype, (const PGresult *r, int i), (r, i), 0)                                         \
    X(int, PQfformat, (const PGresult *r, int i), (r, i), 0)                                       \
    X(int, PQbinaryTuples, (const PGresult *r), (r), 0)                                            \
    X(char *, PQgetvalue, (const PGresult *r, int row, int col), (r, row, col), NULL)              \
    X(int, PQgetlength, (const PGresult *r, int row, int col), (r, row, col), 0)                   \
    X(int, PQgetisnull, (const PGresult *r, int row, int col), (r, row, col), 1)                   \
    X(char *, PQcmdStatus, (PGresult * r), (r), NULL)                                              \
    X(char *, PQcmdTuples, (PGresult * r), (r), NULL)                                              \
    /* escaping */                                                                                 \
    X(char *, PQescapeLiteral, (PGconn * c, const char *s, size_t len), (c, s, len), NULL)         \
    X(char *, PQescapeIdentifier, (PGconn * c, const char *s, size_t len), (c, s, len), NULL)      \
    X(unsigned char *, PQescapeByteaConn,                                                          \
      (PGconn * c, const unsigned char *from, size_t from_len, size_t *to_len),                    \
      (c, from, from_len, to_len), NULL)                                                           \
    X(unsigned char *, PQunescapeBytea, (const unsigned char *from, size_t *to_len),               \
      (from, to_len), NULL)

/* V(name, parameters, arguments) */
#define LAZY_PQ_VOIDS(V)                                                                           \
    V(PQfinish, (PGconn * c), (c))                                                                 \
    V(PQreset, (PGconn * c), (c))                                                                  \
    V(PQclear, (PGresult * r), (r))                                                                \
    V(PQfreemem, (void *p), (p))                                                                   \
    V(PQconninfoFree, (PQconninfoOption * o), (o))                                                 \
    V(PQfreeCancel, (PGcancel * cancel), (cancel))

#define LAZY_PQ_OTHERS(N)

DYNLIB_STUBS(BARAM_SONAME_PQ, LAZY_PQ_FUNCS, LAZY_PQ_VOIDS, LAZY_PQ_OTHERS);

const char *pg__lib_error(void)
{
    return dynlib_open(&lazy_lib) ? NULL : dynlib_error(&lazy_lib);
}
