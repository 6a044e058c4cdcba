// test.h: a small unit-test framework. Each TEST() registers itself at start-up, so a new test
// file needs no central list. The runner (tests/runner.c) forks one process per test, so a crash or
// a hang in one test is reported as that test's failure and the others still run.
//
// CHECK* records a failure and continues; REQUIRE* records a failure and ends the test at once
// (use it where later checks would read invalid memory).
#ifndef QBIAS_TEST_H
#define QBIAS_TEST_H

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

typedef void (*TestFn)(void);

void test_register(const char *name, TestFn fn, const char *file);
void test_fail(const char *file, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void test_abort_current(void) __attribute__((noreturn));

// Returns the path of a file under the shared reference folder (../shared beside the repository, or
// $QBIAS_SHARED_DIR). When the file is missing, the test fails with a message saying where to put it
// and ends. The returned string is valid until the next call.
const char *test_shared_path(const char *relative);

// Returns a fresh empty directory for this test's outputs (under build/test-tmp).
const char *test_tmp_dir(void);

#define TEST(name)                                                                                 \
    static void name(void);                                                                        \
    __attribute__((constructor)) static void name##_register(void) {                               \
        test_register(#name, name, __FILE__);                                                      \
    }                                                                                              \
    static void name(void)

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) test_fail(__FILE__, __LINE__, "CHECK(%s) failed", #cond);                     \
    } while (0)

#define CHECK_MSG(cond, ...)                                                                       \
    do {                                                                                           \
        if (!(cond)) test_fail(__FILE__, __LINE__, __VA_ARGS__);                                   \
    } while (0)

#define REQUIRE(cond)                                                                              \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            test_fail(__FILE__, __LINE__, "REQUIRE(%s) failed", #cond);                            \
            test_abort_current();                                                                  \
        }                                                                                          \
    } while (0)

#define REQUIRE_MSG(cond, ...)                                                                     \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            test_fail(__FILE__, __LINE__, __VA_ARGS__);                                            \
            test_abort_current();                                                                  \
        }                                                                                          \
    } while (0)

#define CHECK_EQ_INT(a, b)                                                                         \
    do {                                                                                           \
        long long va_ = (long long)(a), vb_ = (long long)(b);                                      \
        if (va_ != vb_) test_fail(__FILE__, __LINE__, "%s == %lld, expected %s == %lld", #a, va_,  \
                                  #b, vb_);                                                        \
    } while (0)

#define CHECK_NEAR(a, b, tol)                                                                      \
    do {                                                                                           \
        double va_ = (double)(a), vb_ = (double)(b), tol_ = (double)(tol);                         \
        if (!(fabs(va_ - vb_) <= tol_))                                                            \
            test_fail(__FILE__, __LINE__, "%s = %.9g, expected %s = %.9g within %g (diff %.3g)",   \
                      #a, va_, #b, vb_, tol_, fabs(va_ - vb_));                                    \
    } while (0)

#define CHECK_STR(a, b)                                                                            \
    do {                                                                                           \
        const char *sa_ = (a), *sb_ = (b);                                                         \
        if (!sa_ || !sb_ || strcmp(sa_, sb_) != 0)                                                 \
            test_fail(__FILE__, __LINE__, "%s = \"%s\", expected \"%s\"", #a, sa_ ? sa_ : "(null)", \
                      sb_ ? sb_ : "(null)");                                                       \
    } while (0)

// Checks that a call returned 0; on failure prints qbias's error message and ends the test.
#define REQUIRE_OK(call)                                                                           \
    do {                                                                                           \
        if ((call) != 0) {                                                                         \
            test_fail(__FILE__, __LINE__, "%s failed: %s", #call, err_msg());                      \
            test_abort_current();                                                                  \
        }                                                                                          \
    } while (0)

#endif
