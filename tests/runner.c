// runner.c: runs every registered test in its own process and prints "N passed, N failed" last.
//
// Usage: build/qbias_tests [--list] [SUBSTRING ...]
// With substrings, only tests whose name or file contains one of them run. Each test has a time
// limit (QBIAS_TEST_TIMEOUT seconds, default 600); a test that exceeds it is killed and fails.
#include "test.h"

#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../engine/util.h"

typedef struct {
    const char *name;
    const char *file;
    TestFn fn;
} TestCase;

static TestCase *tests;
static int n_tests, cap_tests;
static int current_failures;
static const char *current_name;
static jmp_buf current_abort;

void test_register(const char *name, TestFn fn, const char *file) {
    if (n_tests == cap_tests) {
        cap_tests = cap_tests ? 2 * cap_tests : 64;
        tests = realloc(tests, (size_t)cap_tests * sizeof *tests);
        if (!tests) {
            abort();
        }
    }
    tests[n_tests++] = (TestCase){name, file, fn};
}

void test_fail(const char *file, int line, const char *fmt, ...) {
    char message[4096];
    va_list args;
    va_start(args, fmt);
    vsnprintf(message, sizeof message, fmt, args);
    va_end(args);
    // Only the first few failures of a test are printed; a loop over 512 logits would drown the log.
    if (current_failures < 10) {
        fprintf(stdout, "  %s:%d: %s\n", file, line, message);
    } else if (current_failures == 10) {
        fprintf(stdout, "  (further failures of %s not shown)\n", current_name);
    }
    current_failures++;
}

void test_abort_current(void) {
    longjmp(current_abort, 1);
}

const char *test_shared_path(const char *relative) {
    static char path[4096];
    const char *root = getenv("QBIAS_SHARED_DIR");
    snprintf(path, sizeof path, "%s/%s", root ? root : "../shared", relative);
    if (access(path, R_OK) != 0) {
        test_fail(__FILE__, __LINE__,
                  "reference file %s not found (%s). Put the shared reference folder beside the "
                  "repository as ../shared, or set QBIAS_SHARED_DIR to its location.",
                  path, strerror(errno));
        test_abort_current();
    }
    return path;
}

const char *test_tmp_dir(void) {
    static char path[4096];
    snprintf(path, sizeof path, "build/test-tmp/%s.%ld", current_name, (long)getpid());
    char *command = xasprintf("rm -rf '%s'", path);
    if (system(command) != 0) {
        free(command);
        test_fail(__FILE__, __LINE__, "cannot clear %s", path);
        test_abort_current();
    }
    free(command);
    if (dir_create(path) != 0) {
        test_fail(__FILE__, __LINE__, "%s", err_msg());
        test_abort_current();
    }
    return path;
}

static bool test_selected(const TestCase *t, int argc, char **argv) {
    bool any_filter = false;
    for (int i = 1; i < argc; i++) {
        if (argv[i][0] == '-') {
            continue;
        }
        any_filter = true;
        if (strstr(t->name, argv[i]) || strstr(t->file, argv[i])) {
            return true;
        }
    }
    return !any_filter;
}

// Runs one test in a child process and returns true when it passed.
static bool run_isolated(const TestCase *t, int timeout_seconds) {
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stdout, "  fork failed: %s\n", strerror(errno));
        return false;
    }
    if (pid == 0) {
        alarm((unsigned)timeout_seconds);
        current_name = t->name;
        current_failures = 0;
        if (setjmp(current_abort) == 0) {
            t->fn();
        }
        fflush(stdout);
        fflush(stderr);
        _exit(current_failures == 0 ? 0 : 1);
    }

    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (WIFEXITED(status)) {
        return WEXITSTATUS(status) == 0;
    }
    if (WIFSIGNALED(status)) {
        int sig = WTERMSIG(status);
        if (sig == SIGALRM) {
            fprintf(stdout, "  timed out after %d s (QBIAS_TEST_TIMEOUT)\n", timeout_seconds);
        } else {
            fprintf(stdout, "  crashed with signal %d (%s)\n", sig, strsignal(sig));
        }
    }
    return false;
}

static int compare_tests(const void *a, const void *b) {
    const TestCase *x = a, *y = b;
    int c = strcmp(x->file, y->file);
    return c ? c : strcmp(x->name, y->name);
}

int main(int argc, char **argv) {
    // Line buffering keeps each PASS/FAIL line in order with the failure details the children print.
    setvbuf(stdout, NULL, _IOLBF, 0);
    qsort(tests, (size_t)n_tests, sizeof *tests, compare_tests);

    bool list_only = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--list") == 0) {
            list_only = true;
        }
    }

    const char *timeout_env = getenv("QBIAS_TEST_TIMEOUT");
    int timeout_seconds = timeout_env ? atoi(timeout_env) : 600;
    if (timeout_seconds <= 0) {
        timeout_seconds = 600;
    }

    int passed = 0, failed = 0;
    double start = now_seconds();
    for (int i = 0; i < n_tests; i++) {
        const TestCase *t = &tests[i];
        if (!test_selected(t, argc, argv)) {
            continue;
        }
        if (list_only) {
            printf("%s (%s)\n", t->name, t->file);
            continue;
        }
        double t0 = now_seconds();
        bool ok = run_isolated(t, timeout_seconds);
        double elapsed = now_seconds() - t0;
        printf("%s %s (%.2f s)\n", ok ? "PASS" : "FAIL", t->name, elapsed);
        if (ok) {
            passed++;
        } else {
            failed++;
        }
    }
    if (list_only) {
        return 0;
    }
    printf("total time %.1f s\n", now_seconds() - start);
    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
