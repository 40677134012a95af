// Calls into the SQLite library that sqlite-nio compiles into the binary (its functions are renamed with the prefix
// `sqlite_nio_`). Declared here with SQLite's own signatures (https://sqlite.org/c3ref/funclist.html), in this file
// alone, so that no module sees two declarations of one function.
#include "CSQLiteShim.h"

typedef long long sqlite_nio_int64;

int sqlite_nio_sqlite3_open_v2(const char *filename, gw_sqlite3 **db, int flags, const char *vfs);
int sqlite_nio_sqlite3_close_v2(gw_sqlite3 *db);
int sqlite_nio_sqlite3_busy_timeout(gw_sqlite3 *db, int milliseconds);
const char *sqlite_nio_sqlite3_errmsg(gw_sqlite3 *db);
int sqlite_nio_sqlite3_extended_errcode(gw_sqlite3 *db);
int sqlite_nio_sqlite3_prepare_v3(gw_sqlite3 *db, const char *sql, int bytes, unsigned int flags, gw_sqlite3_stmt **statement,
                                  const char **tail);
int sqlite_nio_sqlite3_step(gw_sqlite3_stmt *statement);
int sqlite_nio_sqlite3_reset(gw_sqlite3_stmt *statement);
int sqlite_nio_sqlite3_clear_bindings(gw_sqlite3_stmt *statement);
int sqlite_nio_sqlite3_finalize(gw_sqlite3_stmt *statement);
int sqlite_nio_sqlite3_bind_int64(gw_sqlite3_stmt *statement, int index, sqlite_nio_int64 value);
int sqlite_nio_sqlite3_bind_double(gw_sqlite3_stmt *statement, int index, double value);
int sqlite_nio_sqlite3_bind_text(gw_sqlite3_stmt *statement, int index, const char *text, int bytes, void (*destructor)(void *));
int sqlite_nio_sqlite3_bind_null(gw_sqlite3_stmt *statement, int index);
int sqlite_nio_sqlite3_column_count(gw_sqlite3_stmt *statement);
const char *sqlite_nio_sqlite3_column_name(gw_sqlite3_stmt *statement, int column);
int sqlite_nio_sqlite3_column_type(gw_sqlite3_stmt *statement, int column);
sqlite_nio_int64 sqlite_nio_sqlite3_column_int64(gw_sqlite3_stmt *statement, int column);
double sqlite_nio_sqlite3_column_double(gw_sqlite3_stmt *statement, int column);
const unsigned char *sqlite_nio_sqlite3_column_text(gw_sqlite3_stmt *statement, int column);
int sqlite_nio_sqlite3_column_bytes(gw_sqlite3_stmt *statement, int column);

int gw_sqlite3_open_v2(const char *filename, gw_sqlite3 **db, int flags) { return sqlite_nio_sqlite3_open_v2(filename, db, flags, 0); }
int gw_sqlite3_close_v2(gw_sqlite3 *db) { return sqlite_nio_sqlite3_close_v2(db); }
int gw_sqlite3_busy_timeout(gw_sqlite3 *db, int milliseconds) { return sqlite_nio_sqlite3_busy_timeout(db, milliseconds); }
const char *gw_sqlite3_errmsg(gw_sqlite3 *db) { return sqlite_nio_sqlite3_errmsg(db); }
int gw_sqlite3_extended_errcode(gw_sqlite3 *db) { return sqlite_nio_sqlite3_extended_errcode(db); }
int gw_sqlite3_prepare_v3(gw_sqlite3 *db, const char *sql, int bytes, unsigned int flags, gw_sqlite3_stmt **statement) {
    return sqlite_nio_sqlite3_prepare_v3(db, sql, bytes, flags, statement, 0);
}
int gw_sqlite3_step(gw_sqlite3_stmt *statement) { return sqlite_nio_sqlite3_step(statement); }
int gw_sqlite3_reset(gw_sqlite3_stmt *statement) { return sqlite_nio_sqlite3_reset(statement); }
int gw_sqlite3_clear_bindings(gw_sqlite3_stmt *statement) { return sqlite_nio_sqlite3_clear_bindings(statement); }
int gw_sqlite3_finalize(gw_sqlite3_stmt *statement) { return sqlite_nio_sqlite3_finalize(statement); }
int gw_sqlite3_bind_int64(gw_sqlite3_stmt *statement, int index, int64_t value) { return sqlite_nio_sqlite3_bind_int64(statement, index, value); }
int gw_sqlite3_bind_double(gw_sqlite3_stmt *statement, int index, double value) { return sqlite_nio_sqlite3_bind_double(statement, index, value); }
int gw_sqlite3_bind_text(gw_sqlite3_stmt *statement, int index, const char *text, int bytes) {
    return sqlite_nio_sqlite3_bind_text(statement, index, text, bytes, (void (*)(void *))-1);  // SQLITE_TRANSIENT
}
int gw_sqlite3_bind_null(gw_sqlite3_stmt *statement, int index) { return sqlite_nio_sqlite3_bind_null(statement, index); }
int gw_sqlite3_column_count(gw_sqlite3_stmt *statement) { return sqlite_nio_sqlite3_column_count(statement); }
const char *gw_sqlite3_column_name(gw_sqlite3_stmt *statement, int column) { return sqlite_nio_sqlite3_column_name(statement, column); }
int gw_sqlite3_column_type(gw_sqlite3_stmt *statement, int column) { return sqlite_nio_sqlite3_column_type(statement, column); }
int64_t gw_sqlite3_column_int64(gw_sqlite3_stmt *statement, int column) { return sqlite_nio_sqlite3_column_int64(statement, column); }
double gw_sqlite3_column_double(gw_sqlite3_stmt *statement, int column) { return sqlite_nio_sqlite3_column_double(statement, column); }
const unsigned char *gw_sqlite3_column_text(gw_sqlite3_stmt *statement, int column) {
    return sqlite_nio_sqlite3_column_text(statement, column);
}
int gw_sqlite3_column_bytes(gw_sqlite3_stmt *statement, int column) { return sqlite_nio_sqlite3_column_bytes(statement, column); }
