// util.h: error messages, checked allocation, logging, timing and file helpers shared by every room.
//
// Error convention: a function that can fail on user input returns -1 (or NULL), after calling
// err_set() with a message that names the file, the value and what to do. The caller either adds
// context with err_prefix() and returns failure too, or prints err_msg() and exits. The message
// buffer is thread-local, so worker threads do not overwrite each other's messages.
//
// Allocation failures are not user errors: xmalloc() and friends print the size and abort.
#ifndef QBIAS_UTIL_H
#define QBIAS_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define QBIAS_VERSION "0.1.0"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

// ----------------------------------------------------------------------------
// Error messages

// Sets the thread's error message (printf format). Always returns -1 so that callers can write
// `return err_set(...)`.
int err_set(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

// Prepends "<prefix>: " to the current error message, for callers that add context. Returns -1.
int err_prefix(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

// Returns the thread's last error message ("" if none). Valid until the next err_set().
const char *err_msg(void);

// ----------------------------------------------------------------------------
// Checked allocation: abort with the requested size on failure.

void *xmalloc(size_t size);
void *xcalloc(size_t count, size_t size);
void *xrealloc(void *ptr, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
// Returns a newly allocated printf-formatted string; the caller frees it.
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

// Multiplies two sizes, returning false (and leaving *out unchanged) on overflow.
static inline bool size_mul(size_t a, size_t b, size_t *out) {
    if (a != 0 && b > SIZE_MAX / a) {
        return false;
    }
    *out = a * b;
    return true;
}

// ----------------------------------------------------------------------------
// Logging to stderr with a level. Results never go through these; they go to stdout or files.

typedef enum { LOG_DEBUG = 0, LOG_INFO = 1, LOG_WARN = 2, LOG_ERROR = 3 } LogLevel;

// Messages below this level are dropped (default LOG_INFO; QBIAS_LOG=debug|info|warn|error).
void log_set_level(LogLevel level);
void log_msg(LogLevel level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

// Monotonic wall-clock time in seconds.
double now_seconds(void);

// ----------------------------------------------------------------------------
// Files

// Reads a whole file into a newly allocated buffer with a terminating NUL (not counted in *len).
// Returns 0, or -1 with an error naming the path.
int file_read_all(const char *path, char **data, size_t *len);

// Writes `len` bytes to `path` atomically: to "<path>.tmp.<pid>", fsync, then rename over `path`.
// A reader sees either the old file or the complete new one, never a half-written file.
int file_write_atomic(const char *path, const void *data, size_t len);

// Registers a temporary file that SIGINT, SIGTERM or SIGHUP deletes before the process ends, so
// that an interrupted atomic write leaves no partial file behind (a saved model can take
// gigabytes). At most TEMP_FILES_MAX are registered at once; beyond that a warning is logged and
// the file is not cleaned up. Release the path once the file is renamed or removed.
#define TEMP_FILES_MAX 4
void temp_file_register(const char *path);
void temp_file_release(const char *path);

// Sets a line that SIGINT, SIGTERM or SIGHUP prints on stderr before the process ends (after the
// temporary files are deleted), for example how to resume the interrupted work.
void interrupt_message_set(const char *message);

bool file_exists(const char *path);
bool dir_exists(const char *path);

// Creates a directory and its parents (like mkdir -p). Returns 0 or -1 with an error.
int dir_create(const char *path);

// Joins two path parts with exactly one '/'. The caller frees the result.
char *path_join(const char *dir, const char *name);

// Computes the SHA-256 of a file as 64 lowercase hex characters plus NUL.
int sha256_file(const char *path, char hex[65]);
// Computes the SHA-256 of a file, or of a folder's regular files (not recursive): the hash of the
// lines "<name> <sha256 of the file>", one per file, sorted by name. A model folder's hash thus
// changes when any of its files changes.
int sha256_path(const char *path, char hex[65]);
// Computes the SHA-256 of a buffer.
void sha256_bytes(const void *data, size_t len, char hex[65]);

// ----------------------------------------------------------------------------
// Growable string buffer, used to build JSON lines, reports and messages.

typedef struct {
    char *data; // NUL-terminated, owned
    size_t len;
    size_t cap;
} StrBuf;

void sb_init(StrBuf *sb);
void sb_free(StrBuf *sb);
void sb_append(StrBuf *sb, const char *s);
void sb_append_n(StrBuf *sb, const char *s, size_t n);
void sb_printf(StrBuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
// Appends `s` as a JSON string literal, quotes included.
void sb_append_json_string(StrBuf *sb, const char *s);

#endif
