// dispatch.c: picks the kernel path for this CPU and splits work across threads (OpenMP).
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"

static const KernelTable scalar_table = {"scalar", gemm_f32_scalar};
#if defined(__x86_64__)
static const KernelTable avx2_table = {"avx2", gemm_f32_avx2};
static const KernelTable avx512_table = {"avx512", gemm_f32_avx512};
#endif

static bool cpu_has(const char *name) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (strcmp(name, "avx512") == 0) {
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vl");
    }
    if (strcmp(name, "avx2") == 0) {
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    }
#endif
    return strcmp(name, "scalar") == 0;
}

const KernelTable *kernels_find(const char *name) {
    if (!cpu_has(name)) {
        return NULL;
    }
#if defined(__x86_64__)
    if (strcmp(name, "avx512") == 0) return &avx512_table;
    if (strcmp(name, "avx2") == 0) return &avx2_table;
#endif
    if (strcmp(name, "scalar") == 0) return &scalar_table;
    return NULL;
}

const char *kernels_supported(void) {
    static char list[64];
    list[0] = '\0';
    const char *names[] = {"avx512", "avx2", "scalar"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (kernels_find(names[i])) {
            strcat(list, list[0] ? " " : "");
            strcat(list, names[i]);
        }
    }
    return list;
}

const KernelTable *kernels_get(void) {
    static const KernelTable *selected;
    if (selected) {
        return selected;
    }
    const char *forced = getenv("QBIAS_KERNELS");
    if (forced && *forced) {
        selected = kernels_find(forced);
        if (!selected) {
            fprintf(stderr, "warn: QBIAS_KERNELS=%s is unknown or unsupported on this CPU "
                            "(supported: %s); using the best supported path\n",
                    forced, kernels_supported());
        }
    }
    if (!selected) {
        const char *best = kernels_supported();
        char first[16] = {0};
        sscanf(best, "%15s", first);
        selected = kernels_find(first);
    }
    return selected;
}

static int thread_count;

void kernels_set_threads(int n) {
    thread_count = n > 0 ? n : omp_get_num_procs();
    omp_set_num_threads(thread_count);
}

int kernels_threads(void) {
    if (thread_count <= 0) {
        kernels_set_threads(0);
    }
    return thread_count;
}

// Columns per work item: a multiple of every path's tile width, small enough to balance threads.
#define GEMM_COLUMN_BLOCK 64

void gemm_f32(const float *x, const float *w, float *y, int m, int n, int k, int ldy) {
    const KernelTable *table = kernels_get();
    int n_blocks = (n + GEMM_COLUMN_BLOCK - 1) / GEMM_COLUMN_BLOCK;
    int threads = kernels_threads();
    // Small products are not worth waking threads for.
    if (threads == 1 || (double)m * n * k < 1e5) {
        table->gemm_f32(x, w, y, m, n, k, ldy);
        return;
    }
#pragma omp parallel for schedule(static) num_threads(threads)
    for (int b = 0; b < n_blocks; b++) {
        int j0 = b * GEMM_COLUMN_BLOCK;
        int nj = n - j0 < GEMM_COLUMN_BLOCK ? n - j0 : GEMM_COLUMN_BLOCK;
        table->gemm_f32(x, w + (long)j0 * k, y + j0, m, nj, k, ldy);
    }
}
