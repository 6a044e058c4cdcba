// util.c: error messages, checked allocation, logging and file helpers (see util.h).
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

// ----------------------------------------------------------------------------
// Error messages

static _Thread_local char error_buffer[2048];

int err_set(const char *fmt, ...) {
    // Callers may pass err_msg() as an argument, so format into a temporary before overwriting.
    char message[sizeof error_buffer];
    va_list args;
    va_start(args, fmt);
    vsnprintf(message, sizeof message, fmt, args);
    va_end(args);
    memcpy(error_buffer, message, sizeof error_buffer);
    return -1;
}

int err_prefix(const char *fmt, ...) {
    char prefix[1024];
    va_list args;
    va_start(args, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, args);
    va_end(args);

    char old[sizeof error_buffer];
    memcpy(old, error_buffer, sizeof old);
    size_t n = strlen(prefix);
    if (n > sizeof error_buffer - 3) {
        n = sizeof error_buffer - 3;
    }
    memcpy(error_buffer, prefix, n);
    memcpy(error_buffer + n, ": ", 2);
    size_t room = sizeof error_buffer - n - 3;
    size_t old_len = strnlen(old, room);
    memcpy(error_buffer + n + 2, old, old_len);
    error_buffer[n + 2 + old_len] = '\0';
    return -1;
}

const char *err_msg(void) {
    return error_buffer;
}

// ----------------------------------------------------------------------------
// Checked allocation

static void die_out_of_memory(size_t size) {
    fprintf(stderr, "error: out of memory allocating %zu bytes\n", size);
    abort();
}

void *xmalloc(size_t size) {
    void *p = malloc(size ? size : 1);
    if (!p) {
        die_out_of_memory(size);
    }
    return p;
}

void *xcalloc(size_t count, size_t size) {
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p) {
        die_out_of_memory(count * size);
    }
    return p;
}

void *xrealloc(void *ptr, size_t size) {
    void *p = realloc(ptr, size ? size : 1);
    if (!p) {
        die_out_of_memory(size);
    }
    return p;
}

char *xstrdup(const char *s) {
    return xstrndup(s, strlen(s));
}

char *xstrndup(const char *s, size_t n) {
    char *p = xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *xasprintf(const char *fmt, ...) {
    va_list args;
    va_start(args, fmt);
    int n = vsnprintf(NULL, 0, fmt, args);
    va_end(args);

    char *s = xmalloc((size_t)n + 1);
    va_start(args, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, args);
    va_end(args);
    return s;
}

// ----------------------------------------------------------------------------
// Logging

static LogLevel log_level = LOG_INFO;
static bool log_level_from_env_done = false;

void log_set_level(LogLevel level) {
    log_level = level;
    log_level_from_env_done = true;
}

static void log_read_env_level(void) {
    log_level_from_env_done = true;
    const char *env = getenv("QBIAS_LOG");
    if (!env) {
        return;
    }
    if (strcmp(env, "debug") == 0) log_level = LOG_DEBUG;
    else if (strcmp(env, "info") == 0) log_level = LOG_INFO;
    else if (strcmp(env, "warn") == 0) log_level = LOG_WARN;
    else if (strcmp(env, "error") == 0) log_level = LOG_ERROR;
}

void log_msg(LogLevel level, const char *fmt, ...) {
    if (!log_level_from_env_done) {
        log_read_env_level();
    }
    if (level < log_level) {
        return;
    }
    static const char *names[] = {"debug", "info", "warn", "error"};
    char line[4096];
    va_list args;
    va_start(args, fmt);
    vsnprintf(line, sizeof line, fmt, args);
    va_end(args);
    // One fprintf per message keeps lines from different threads whole.
    fprintf(stderr, "%s: %s\n", names[level], line);
}

double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

// ----------------------------------------------------------------------------
// Files

int file_read_all(const char *path, char **data, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        return err_set("cannot open %s: %s", path, strerror(errno));
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = xmalloc(cap);
    for (;;) {
        if (n + 1 >= cap) {
            cap *= 2;
            buf = xrealloc(buf, cap);
        }
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0) {
            break;
        }
    }
    int failed = ferror(f);
    fclose(f);
    if (failed) {
        free(buf);
        return err_set("cannot read %s: I/O error", path);
    }
    buf[n] = '\0';
    *data = buf;
    *len = n;
    return 0;
}

// Temporary files to delete on a fatal signal, and a line to print then. The handler reads only
// these static arrays and calls only async-signal-safe functions (write, unlink, signal, raise).
static char temp_paths[TEMP_FILES_MAX][4096];
static volatile sig_atomic_t temp_used[TEMP_FILES_MAX];
static char interrupt_message[512];
static volatile sig_atomic_t interrupt_message_len;

static void remove_temp_files_and_exit(int sig) {
    for (int i = 0; i < TEMP_FILES_MAX; i++) {
        if (temp_used[i]) {
            unlink(temp_paths[i]);
        }
    }
    if (interrupt_message_len > 0) {
        ssize_t written = write(STDERR_FILENO, interrupt_message, (size_t)interrupt_message_len);
        (void)written; // nothing to do about a failed write while dying
    }
    // Die of the same signal, so the parent sees how the process ended.
    signal(sig, SIG_DFL);
    raise(sig);
}

static void install_signal_handlers(void) {
    static bool installed = false;
    if (installed) {
        return;
    }
    const int signals[] = {SIGINT, SIGTERM, SIGHUP};
    for (size_t i = 0; i < ARRAY_LEN(signals); i++) {
        // A signal ignored at start stays ignored: nohup, or a shell's background job, asked so.
        struct sigaction old;
        if (sigaction(signals[i], NULL, &old) == 0 && old.sa_handler == SIG_IGN) {
            continue;
        }
        struct sigaction action = {.sa_handler = remove_temp_files_and_exit};
        sigemptyset(&action.sa_mask);
        sigaction(signals[i], &action, NULL);
    }
    installed = true;
}

void interrupt_message_set(const char *message) {
    install_signal_handlers();
    interrupt_message_len = 0;
    snprintf(interrupt_message, sizeof interrupt_message, "%s\n", message);
    interrupt_message_len = (sig_atomic_t)strlen(interrupt_message);
}

void temp_file_register(const char *path) {
    install_signal_handlers();
    for (int i = 0; i < TEMP_FILES_MAX; i++) {
        if (!temp_used[i] && strlen(path) < sizeof temp_paths[i]) {
            snprintf(temp_paths[i], sizeof temp_paths[i], "%s", path);
            temp_used[i] = 1;
            return;
        }
    }
    log_warn("%s will not be deleted if qbias is interrupted (too many temporary files)", path);
}

void temp_file_release(const char *path) {
    for (int i = 0; i < TEMP_FILES_MAX; i++) {
        if (temp_used[i] && strcmp(temp_paths[i], path) == 0) {
            temp_used[i] = 0;
            return;
        }
    }
}

int file_write_atomic(const char *path, const void *data, size_t len) {
    char *tmp = xasprintf("%s.tmp.%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        err_set("cannot create %s: %s", tmp, strerror(errno));
        free(tmp);
        return -1;
    }
    temp_file_register(tmp);

    int rc = 0;
    const char *p = data;
    size_t left = len;
    while (left > 0 && rc == 0) {
        ssize_t wrote = write(fd, p, left);
        if (wrote < 0 && errno != EINTR) {
            rc = err_set("cannot write %s: %s", tmp, strerror(errno));
        } else if (wrote > 0) {
            p += wrote;
            left -= (size_t)wrote;
        }
    }

    if (fsync(fd) != 0 && rc == 0) {
        rc = err_set("cannot flush %s: %s", tmp, strerror(errno));
    }
    if (close(fd) != 0 && rc == 0) {
        rc = err_set("cannot close %s: %s", tmp, strerror(errno));
    }
    if (rc == 0 && rename(tmp, path) != 0) {
        rc = err_set("cannot rename %s to %s: %s", tmp, path, strerror(errno));
    }
    if (rc != 0) {
        unlink(tmp);
    }
    temp_file_release(tmp);
    free(tmp);
    return rc;
}

bool file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

bool dir_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int dir_create(const char *path) {
    char *copy = xstrdup(path);
    for (char *p = copy + 1; *p; p++) {
        if (*p != '/') {
            continue;
        }
        *p = '\0';
        if (mkdir(copy, 0755) != 0 && errno != EEXIST) {
            err_set("cannot create directory %s: %s", copy, strerror(errno));
            free(copy);
            return -1;
        }
        *p = '/';
    }
    if (mkdir(copy, 0755) != 0 && errno != EEXIST) {
        err_set("cannot create directory %s: %s", copy, strerror(errno));
        free(copy);
        return -1;
    }
    free(copy);
    if (!dir_exists(path)) {
        return err_set("cannot create directory %s: a file with that name exists", path);
    }
    return 0;
}

char *path_join(const char *dir, const char *name) {
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/') {
        n--;
    }
    while (*name == '/') {
        name++;
    }
    return xasprintf("%.*s/%s", (int)n, dir, name);
}

static void hex_encode(const unsigned char *digest, unsigned int n, char *hex) {
    static const char digits[] = "0123456789abcdef";
    for (unsigned int i = 0; i < n; i++) {
        hex[2 * i] = digits[digest[i] >> 4];
        hex[2 * i + 1] = digits[digest[i] & 15];
    }
    hex[2 * n] = '\0';
}

int sha256_file(const char *path, char hex[65]) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        return err_set("cannot open %s: %s", path, strerror(errno));
    }
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    unsigned char buf[1 << 16];
    size_t got;
    while ((got = fread(buf, 1, sizeof buf, f)) > 0) {
        EVP_DigestUpdate(ctx, buf, got);
    }
    int failed = ferror(f);
    fclose(f);

    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int digest_len = 0;
    EVP_DigestFinal_ex(ctx, digest, &digest_len);
    EVP_MD_CTX_free(ctx);
    if (failed) {
        return err_set("cannot read %s: I/O error", path);
    }
    hex_encode(digest, digest_len, hex);
    return 0;
}

static int compare_names(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int sha256_path(const char *path, char hex[65]) {
    if (!dir_exists(path)) {
        return sha256_file(path, hex);
    }
    DIR *dir = opendir(path);
    if (!dir) {
        return err_set("cannot list %s: %s", path, strerror(errno));
    }
    char **names = NULL;
    size_t n = 0;
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL) {
        char *full = path_join(path, entry->d_name);
        if (entry->d_name[0] != '.' && file_exists(full)) {
            names = xrealloc(names, (n + 1) * sizeof(char *));
            names[n++] = xstrdup(entry->d_name);
        }
        free(full);
    }
    closedir(dir);
    qsort(names, n, sizeof(char *), compare_names);

    StrBuf lines;
    sb_init(&lines);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        char *full = path_join(path, names[i]);
        char file_hex[65];
        rc = sha256_file(full, file_hex);
        sb_printf(&lines, "%s %s\n", names[i], file_hex);
        free(full);
    }
    for (size_t i = 0; i < n; i++) {
        free(names[i]);
    }
    free(names);
    if (rc == 0) {
        sha256_bytes(lines.data, lines.len, hex);
    }
    sb_free(&lines);
    return rc;
}

void sha256_bytes(const void *data, size_t len, char hex[65]) {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int digest_len = 0;
    EVP_Digest(data, len, digest, &digest_len, EVP_sha256(), NULL);
    hex_encode(digest, digest_len, hex);
}

// ----------------------------------------------------------------------------
// String buffer

void sb_init(StrBuf *sb) {
    sb->cap = 256;
    sb->len = 0;
    sb->data = xmalloc(sb->cap);
    sb->data[0] = '\0';
}

void sb_free(StrBuf *sb) {
    free(sb->data);
    sb->data = NULL;
    sb->len = sb->cap = 0;
}

static void sb_reserve(StrBuf *sb, size_t extra) {
    if (sb->len + extra + 1 <= sb->cap) {
        return;
    }
    while (sb->len + extra + 1 > sb->cap) {
        sb->cap *= 2;
    }
    sb->data = xrealloc(sb->data, sb->cap);
}

void sb_append_n(StrBuf *sb, const char *s, size_t n) {
    sb_reserve(sb, n);
    memcpy(sb->data + sb->len, s, n);
    sb->len += n;
    sb->data[sb->len] = '\0';
}

void sb_append(StrBuf *sb, const char *s) {
    sb_append_n(sb, s, strlen(s));
}

void sb_printf(StrBuf *sb, const char *fmt, ...) {
    va_list args;
    va_start(args, fmt);
    int n = vsnprintf(NULL, 0, fmt, args);
    va_end(args);

    sb_reserve(sb, (size_t)n);
    va_start(args, fmt);
    vsnprintf(sb->data + sb->len, (size_t)n + 1, fmt, args);
    va_end(args);
    sb->len += (size_t)n;
}

void sb_append_json_string(StrBuf *sb, const char *s) {
    sb_append_n(sb, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"': sb_append_n(sb, "\\\"", 2); break;
        case '\\': sb_append_n(sb, "\\\\", 2); break;
        case '\n': sb_append_n(sb, "\\n", 2); break;
        case '\r': sb_append_n(sb, "\\r", 2); break;
        case '\t': sb_append_n(sb, "\\t", 2); break;
        default:
            if (*p < 0x20) {
                sb_printf(sb, "\\u%04x", *p);
            } else {
                sb_append_n(sb, (const char *)p, 1);
            }
        }
    }
    sb_append_n(sb, "\"", 1);
}
