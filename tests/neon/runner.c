// runner.c: a minimal test runner for the cross-compiled kernel tests (make test-neon).
//
// tests/runner.c isolates each test in a process but needs engine/util.c, which links OpenSSL;
// this binary must link only kernels/ and quant/ so that Debian's aarch64 cross compiler builds it
// without arm64 library packages. Tests run in one process, in registration order; a crash ends
// the run, and qemu-user's exit status reports it.
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../kernels/kernels.h"
#include "../test.h"

#define MAX_TESTS 256

static struct {
    const char *name;
    TestFn fn;
} tests[MAX_TESTS];
static int n_tests, failures;
static jmp_buf abort_point;

void test_register(const char *name, TestFn fn, const char *file) {
    (void)file;
    if (n_tests == MAX_TESTS) {
        fprintf(stderr, "error: more than %d tests; raise MAX_TESTS in %s\n", MAX_TESTS, __FILE__);
        exit(1);
    }
    tests[n_tests].name = name;
    tests[n_tests].fn = fn;
    n_tests++;
}

void test_fail(const char *file, int line, const char *fmt, ...) {
    char message[4096];
    va_list args;
    va_start(args, fmt);
    vsnprintf(message, sizeof message, fmt, args);
    va_end(args);
    if (failures < 10) {
        printf("  %s:%d: %s\n", file, line, message);
    }
    failures++;
}

void test_abort_current(void) {
    longjmp(abort_point, 1);
}

const char *test_shared_path(const char *relative) {
    test_fail(__FILE__, __LINE__, "reference files (%s) are not available in the cross-compiled "
                                  "kernel tests", relative);
    test_abort_current();
}

const char *test_tmp_dir(void) {
    test_fail(__FILE__, __LINE__, "no temporary directory in the cross-compiled kernel tests");
    test_abort_current();
}

int main(int argc, char **argv) {
    printf("kernel paths on this CPU: %s\n", kernels_supported());
    // volatile: setjmp returns here after a longjmp, and these must keep their values.
    volatile int passed = 0, failed = 0;
    for (volatile int i = 0; i < n_tests; i++) {
        if (argc > 1 && !strstr(tests[i].name, argv[1])) {
            continue;
        }
        failures = 0;
        if (setjmp(abort_point) == 0) {
            tests[i].fn();
        }
        printf("%s %s\n", failures ? "FAIL" : "PASS", tests[i].name);
        if (failures) {
            failed++;
        } else {
            passed++;
        }
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
