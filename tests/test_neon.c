// test_neon.c: runs the NEON kernels' tests, cross-compiled for aarch64, under qemu-user, so the
// ARM path is tested on x86 machines too. `make test` builds the binary (build/aarch64/).
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "../engine/util.h"
#include "test.h"

TEST(neon_kernels_pass_under_qemu) {
    const char *bin = getenv("QBIAS_BIN");
    // The cross-compiled binary sits in the same build folder as the qbias binary under test.
    char *build = xstrdup(bin && *bin ? bin : "./build/qbias");
    char *slash = strrchr(build, '/');
    if (slash) {
        *slash = '\0';
    }
    char *binary = xasprintf("%s/aarch64/kernel_tests", build);
    REQUIRE_MSG(file_exists(binary),
                "%s is missing; build it with `make test` or `make test-neon` (Debian packages "
                "gcc-aarch64-linux-gnu and qemu-user)",
                binary);
    char *out_path = path_join(test_tmp_dir(), "neon.txt");
    char *command = xasprintf("qemu-aarch64 -cpu max -L /usr/aarch64-linux-gnu '%s' >'%s' 2>&1",
                              binary, out_path);
    int status = system(command);
    char *out = NULL;
    size_t len = 0;
    REQUIRE_OK(file_read_all(out_path, &out, &len));
    CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the NEON tests failed:\n%s", out);

    // The NEON path must have run, not only the scalar reference.
    CHECK_MSG(strstr(out, "neon") != NULL, "the NEON path was not selected under qemu:\n%s", out);
    const char *last = out + len;
    while (last > out && (last[-1] == '\n')) {
        last--;
    }
    while (last > out && last[-1] != '\n') {
        last--;
    }
    int passed = 0, failed = -1;
    CHECK_MSG(sscanf(last, "%d passed, %d failed", &passed, &failed) == 2 && failed == 0 &&
                  passed >= 8,
              "unexpected summary line: %s", last);
    free(out);
    free(command);
    free(out_path);
    free(binary);
    free(build);
}
