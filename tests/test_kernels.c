// test_kernels.c: every kernel path against the scalar reference, bit for bit.
#include <stdlib.h>
#include <string.h>

#include "../engine/util.h"
#include "../kernels/kernels.h"
#include "test.h"

static void fill_random(float *x, size_t n, unsigned seed) {
    srand(seed);
    for (size_t i = 0; i < n; i++) {
        x[i] = (float)rand() / (float)RAND_MAX * 2.0f - 1.0f;
    }
}

// Shapes with tails in every dimension: k not a multiple of 16 (172 is stories260K's FFN width),
// m = 1 and n = 1, odd sizes.
static const int shapes[][3] = {
    {1, 1, 1}, {1, 7, 16}, {3, 5, 17}, {4, 4, 64}, {5, 9, 172}, {1, 512, 64},
    {21, 172, 64}, {7, 64, 172}, {8, 33, 300}, {13, 70, 4096},
};

TEST(gemm_f32_paths_match_scalar_bitwise) {
    const char *paths[] = {"avx2", "avx512"};
    for (size_t s = 0; s < ARRAY_LEN(shapes); s++) {
        int m = shapes[s][0], n = shapes[s][1], k = shapes[s][2];
        float *x = xmalloc((size_t)m * k * sizeof(float));
        float *w = xmalloc((size_t)n * k * sizeof(float));
        float *expected = xmalloc((size_t)m * n * sizeof(float));
        float *got = xmalloc((size_t)m * n * sizeof(float));
        fill_random(x, (size_t)m * k, 1 + (unsigned)s);
        fill_random(w, (size_t)n * k, 100 + (unsigned)s);
        gemm_f32_scalar(x, w, expected, m, n, k, n);

        for (size_t p = 0; p < ARRAY_LEN(paths); p++) {
            const KernelTable *table = kernels_find(paths[p]);
            if (!table) {
                continue; // this CPU lacks the path; the scalar reference still ran
            }
            memset(got, 0, (size_t)m * n * sizeof(float));
            table->gemm_f32(x, w, got, m, n, k, n);
            CHECK_MSG(memcmp(got, expected, (size_t)m * n * sizeof(float)) == 0,
                      "%s differs from scalar for m=%d n=%d k=%d", paths[p], m, n, k);
        }
        free(x);
        free(w);
        free(expected);
        free(got);
    }
}

// A row's result must not depend on how many rows are multiplied with it, nor on the thread count.
TEST(gemm_f32_rows_independent_of_batch) {
    int n = 300, k = 1000, max_m = 37;
    float *x = xmalloc((size_t)max_m * k * sizeof(float));
    float *w = xmalloc((size_t)n * k * sizeof(float));
    float *first = xmalloc((size_t)n * sizeof(float));
    float *batch = xmalloc((size_t)max_m * n * sizeof(float));
    fill_random(x, (size_t)max_m * k, 7);
    fill_random(w, (size_t)n * k, 8);

    kernels_set_threads(1);
    gemm_f32(x, w, first, 1, n, k, n);
    for (int threads = 1; threads <= 3; threads++) {
        kernels_set_threads(threads);
        for (int m = 1; m <= max_m; m += 4) {
            gemm_f32(x, w, batch, m, n, k, n);
            CHECK_MSG(memcmp(batch, first, (size_t)n * sizeof(float)) == 0,
                      "row 0 changed with m=%d threads=%d", m, threads);
        }
    }
    free(x);
    free(w);
    free(first);
    free(batch);
}
