// The SQLite C API, as far as the gateway's SQLite store uses it, over the SQLite library that sqlite-nio builds into
// every binary that links it (its functions carry the prefix `sqlite_nio_`). Each function here is the SQLite function
// of the same name after `gw_`; see https://sqlite.org/c3ref/funclist.html.
#ifndef CSQLITESHIM_H
#define CSQLITESHIM_H

#include <stdint.h>

typedef struct gw_sqlite3 gw_sqlite3;
typedef struct gw_sqlite3_stmt gw_sqlite3_stmt;

enum {
    GW_SQLITE_OK = 0,
    GW_SQLITE_BUSY = 5,
    GW_SQLITE_CONSTRAINT = 19,
    GW_SQLITE_ROW = 100,
    GW_SQLITE_DONE = 101,
    GW_SQLITE_INTEGER = 1,
    GW_SQLITE_FLOAT = 2,
    GW_SQLITE_TEXT = 3,
    GW_SQLITE_BLOB = 4,
    GW_SQLITE_NULL = 5,
    GW_SQLITE_OPEN_READWRITE = 0x00000002,
    GW_SQLITE_OPEN_CREATE = 0x00000004,
    GW_SQLITE_OPEN_NOMUTEX = 0x00008000,
    GW_SQLITE_OPEN_EXRESCODE = 0x02000000,
    GW_SQLITE_PREPARE_PERSISTENT = 0x01,
};

int gw_sqlite3_open_v2(const char *filename, gw_sqlite3 **db, int flags);
int gw_sqlite3_close_v2(gw_sqlite3 *db);
int gw_sqlite3_busy_timeout(gw_sqlite3 *db, int milliseconds);
const char *gw_sqlite3_errmsg(gw_sqlite3 *db);
int gw_sqlite3_extended_errcode(gw_sqlite3 *db);

int gw_sqlite3_prepare_v3(gw_sqlite3 *db, const char *sql, int bytes, unsigned int flags, gw_sqlite3_stmt **statement);
int gw_sqlite3_step(gw_sqlite3_stmt *statement);
int gw_sqlite3_reset(gw_sqlite3_stmt *statement);
int gw_sqlite3_clear_bindings(gw_sqlite3_stmt *statement);
int gw_sqlite3_finalize(gw_sqlite3_stmt *statement);

int gw_sqlite3_bind_int64(gw_sqlite3_stmt *statement, int index, int64_t value);
int gw_sqlite3_bind_double(gw_sqlite3_stmt *statement, int index, double value);
/// Binds `bytes` bytes of UTF-8 at `text`, copied by SQLite (SQLITE_TRANSIENT).
int gw_sqlite3_bind_text(gw_sqlite3_stmt *statement, int index, const char *text, int bytes);
int gw_sqlite3_bind_null(gw_sqlite3_stmt *statement, int index);

int gw_sqlite3_column_count(gw_sqlite3_stmt *statement);
const char *gw_sqlite3_column_name(gw_sqlite3_stmt *statement, int column);
int gw_sqlite3_column_type(gw_sqlite3_stmt *statement, int column);
int64_t gw_sqlite3_column_int64(gw_sqlite3_stmt *statement, int column);
double gw_sqlite3_column_double(gw_sqlite3_stmt *statement, int column);
const unsigned char *gw_sqlite3_column_text(gw_sqlite3_stmt *statement, int column);
int gw_sqlite3_column_bytes(gw_sqlite3_stmt *statement, int column);

#endif
