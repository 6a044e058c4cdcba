// test_kernels.c: every kernel path against the scalar reference, bit for bit, and the reference
// against the arithmetic it stands for.
//
// This file and test_format.c also build into the cross-compiled NEON test binary (make
// test-neon), which links only kernels/ and quant/, so they use nothing from engine/.
#include <stdlib.h>
#include <string.h>

#include "../kernels/kernels.h"
#include "../quant/format.h"
#include "test.h"

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

// Every SIMD path this build can have; those the CPU lacks are skipped (the scalar one still runs).
static const char *const simd_paths[] = {"avx2", "avxvnni", "avx512", "neon"};

static void *alloc_or_fail(size_t bytes) {
    void *p = malloc(bytes ? bytes : 1);
    REQUIRE_MSG(p != NULL, "cannot allocate %zu bytes", bytes);
    return p;
}

// xorshift32: the same numbers on every platform (rand() differs between C libraries).
static uint32_t next_random(uint32_t *state) {
    uint32_t x = *state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *state = x;
}

static void fill_random(float *x, size_t n, uint32_t seed) {
    uint32_t state = seed * 2654435761u + 1;
    for (size_t i = 0; i < n; i++) {
        x[i] = (float)(next_random(&state) >> 8) / 16777216.0f * 2.0f - 1.0f;
    }
}

// Shapes with tails in every dimension: k not a multiple of 16 (172 is stories260K's FFN width),
// m = 1 and n = 1, odd sizes.
static const int shapes[][3] = {
    {1, 1, 1}, {1, 7, 16}, {3, 5, 17}, {4, 4, 64}, {5, 9, 172}, {1, 512, 64}, {9, 6, 7},
    {21, 172, 64}, {7, 64, 172}, {8, 33, 300}, {13, 70, 4096},
    // Past the cache blocks (AVX-512: 48 x 64 outputs and 1024-column chunks; AVX2: 16 x 32 and
    // 1024; NEON: 32 x 32 and 512), with tails.
    {70, 131, 600}, {129, 65, 2100},
};

TEST(gemm_f32_paths_match_scalar_bitwise) {
    for (size_t s = 0; s < COUNT(shapes); s++) {
        int m = shapes[s][0], n = shapes[s][1], k = shapes[s][2];
        float *x = alloc_or_fail((size_t)m * k * sizeof(float));
        float *w = alloc_or_fail((size_t)n * k * sizeof(float));
        float *expected = alloc_or_fail((size_t)m * n * sizeof(float));
        float *got = alloc_or_fail((size_t)m * n * sizeof(float));
        fill_random(x, (size_t)m * k, 1 + (unsigned)s);
        fill_random(w, (size_t)n * k, 100 + (unsigned)s);
        gemm_f32_scalar(x, w, expected, m, n, k, n);

        for (size_t p = 0; p < COUNT(simd_paths); p++) {
            const KernelTable *table = kernels_find(simd_paths[p]);
            if (!table) {
                continue;
            }
            memset(got, 0, (size_t)m * n * sizeof(float));
            table->gemm_f32(x, w, got, m, n, k, n);
            CHECK_MSG(memcmp(got, expected, (size_t)m * n * sizeof(float)) == 0,
                      "%s differs from scalar for m=%d n=%d k=%d", simd_paths[p], m, n, k);
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
    float *x = alloc_or_fail((size_t)max_m * k * sizeof(float));
    float *w = alloc_or_fail((size_t)n * k * sizeof(float));
    float *first = alloc_or_fail((size_t)n * sizeof(float));
    float *batch = alloc_or_fail((size_t)max_m * n * sizeof(float));
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

// ----------------------------------------------------------------------------
// Packed weights

// A packed matrix with random codes, scales and zero points. Scales are positive and about
// 1 / (range * sqrt(cols)), like real weights, so outputs stay near 1.
static QMatrix *random_qmatrix(int rows, int cols, const QFormat *f, uint32_t seed) {
    QMatrix *m = qmatrix_new(rows, cols, f);
    REQUIRE(m != NULL);
    uint32_t state = seed * 2654435761u + 17;
    int levels = 1 << f->code_bits;
    for (int r = 0; r < rows; r++) {
        for (int c = 0; c < cols; c++) {
            qmatrix_set_code(m, r, c, (int)(next_random(&state) % (uint32_t)levels));
        }
        for (int g = 0; g < m->view.n_groups; g++) {
            float scale = (0.5f + (float)(next_random(&state) % 1000) / 1000.0f) /
                          (float)levels / sqrtf((float)cols);
            qmatrix_set_group(m, r, g, scale, (int)(next_random(&state) % (uint32_t)levels));
        }
    }
    return m;
}

// Formats covering each container, symmetric and zero point, fp16 and fp32 scales, and groups of
// 32, 64, 128 and whole rows. The weight-only kernels have one instance per container and kind
// of scale and zero point, so the 4- and 3-bit formats cover all four kinds.
static const QFormat a8_formats[] = {
    {8, 128, true, false, true}, {8, 32, false, true, true}, {8, 0, true, true, true},
    {4, 128, true, true, true},  {4, 64, false, false, true}, {4, 0, false, false, true},
    {3, 32, true, false, true},  {2, 128, false, true, true},
};
static const QFormat a16_formats[] = {
    {8, 128, true, false, false}, {8, 0, false, true, false}, {4, 128, true, true, false},
    {4, 32, false, false, false}, {4, 0, true, false, false},  {3, 128, true, false, false},
    {3, 64, false, true, false},  {3, 0, false, false, false}, {2, 32, true, false, false},
    {4, 64, false, true, false},  {3, 32, true, true, false},
};

static const int q_shapes[][3] = {
    {1, 1, 1},    {1, 16, 32},  {2, 17, 172}, {9, 33, 172}, {1, 512, 64}, {8, 48, 256},
    {13, 70, 300}, {17, 31, 1000}, {3, 64, 4096}, {5, 19, 224}, {2, 11, 480},
};

static void check_paths_a8(const QFormat *f, int m, int n, int k) {
    QMatrix *w = random_qmatrix(n, k, f, (uint32_t)(n * 31 + k));
    float *x = alloc_or_fail((size_t)m * k * sizeof(float));
    fill_random(x, (size_t)m * k, (uint32_t)(m + k));
    float *expected = alloc_or_fail((size_t)m * n * sizeof(float));
    float *got = alloc_or_fail((size_t)m * n * sizeof(float));
    int n_tiles = (n + KQ_TILE_ROWS - 1) / KQ_TILE_ROWS;

    KActs *a = kacts_new(&w->view, m);
    KActs *b = kacts_new(&w->view, m);
    quantize_acts_scalar(x, k, w->view.group, a);
    qgemm_a8_scalar(&w->view, 0, n_tiles, a, expected, n);
    for (size_t p = 0; p < COUNT(simd_paths); p++) {
        const KernelTable *table = kernels_find(simd_paths[p]);
        if (!table) {
            continue;
        }
        table->quantize_acts(x, k, w->view.group, b);
        CHECK_MSG(memcmp(a->q, b->q, (size_t)m * w->view.cols_padded) == 0 &&
                      memcmp(a->scale, b->scale, (size_t)m * sizeof(float)) == 0 &&
                      memcmp(a->group_sum, b->group_sum, (size_t)m * a->n_groups * 4) == 0,
                  "%s: int8 activations differ from scalar for m=%d k=%d", simd_paths[p], m, k);
        memset(got, 0, (size_t)m * n * sizeof(float));
        table->qgemm_a8(&w->view, 0, n_tiles, a, got, n);
        CHECK_MSG(memcmp(got, expected, (size_t)m * n * sizeof(float)) == 0,
                  "%s: W%dA8 g%d %s %s differs from scalar for m=%d n=%d k=%d", simd_paths[p],
                  f->code_bits, f->group, f->symmetric ? "sym" : "asym",
                  f->fp16_scales ? "fp16" : "fp32", m, n, k);
    }
    kacts_free(a);
    kacts_free(b);
    free(x);
    free(expected);
    free(got);
    free(w);
}

TEST(qgemm_a8_paths_match_scalar_bitwise) {
    for (size_t fi = 0; fi < COUNT(a8_formats); fi++) {
        for (size_t s = 0; s < COUNT(q_shapes); s++) {
            check_paths_a8(&a8_formats[fi], q_shapes[s][0], q_shapes[s][1], q_shapes[s][2]);
        }
    }
}

static void check_paths_a16(const QFormat *f, int n, int k) {
    QMatrix *w = random_qmatrix(n, k, f, (uint32_t)(n * 7 + k));
    float *x = alloc_or_fail((size_t)k * sizeof(float));
    fill_random(x, (size_t)k, (uint32_t)k);
    float *expected = alloc_or_fail((size_t)n * sizeof(float));
    float *got = alloc_or_fail((size_t)n * sizeof(float));
    float *deq_expected = alloc_or_fail((size_t)n * k * sizeof(float));
    float *deq_got = alloc_or_fail((size_t)n * k * sizeof(float));

    qgemv_a16_scalar(&w->view, 0, n, x, expected);
    dequantize_rows_scalar(&w->view, 0, n, deq_expected);
    for (size_t p = 0; p < COUNT(simd_paths); p++) {
        const KernelTable *table = kernels_find(simd_paths[p]);
        if (!table) {
            continue;
        }
        memset(got, 0, (size_t)n * sizeof(float));
        table->qgemv_a16(&w->view, 0, n, x, got);
        CHECK_MSG(memcmp(got, expected, (size_t)n * sizeof(float)) == 0,
                  "%s: W%dA16 g%d %s differs from scalar for n=%d k=%d", simd_paths[p],
                  f->code_bits, f->group, f->symmetric ? "sym" : "asym", n, k);
        table->dequantize_rows(&w->view, 0, n, deq_got);
        CHECK_MSG(memcmp(deq_got, deq_expected, (size_t)n * k * sizeof(float)) == 0,
                  "%s: dequantized W%d g%d differs from scalar for n=%d k=%d", simd_paths[p],
                  f->code_bits, f->group, n, k);
    }
    free(x);
    free(expected);
    free(got);
    free(deq_expected);
    free(deq_got);
    free(w);
}

TEST(qgemv_a16_paths_match_scalar_bitwise) {
    for (size_t fi = 0; fi < COUNT(a16_formats); fi++) {
        for (size_t s = 0; s < COUNT(q_shapes); s++) {
            check_paths_a16(&a16_formats[fi], q_shapes[s][1], q_shapes[s][2]);
        }
    }
}

// The scalar int8 reference computes sum_k (q s_a) ((u - z) s_w): compare it with that sum in
// double from the stored codes, so the reference is checked against the math, not itself.
TEST(qgemm_a8_scalar_matches_double_math) {
    for (size_t fi = 0; fi < COUNT(a8_formats); fi++) {
        const QFormat *f = &a8_formats[fi];
        int m = 3, n = 19, k = 172;
        QMatrix *w = random_qmatrix(n, k, f, 5);
        float x[3 * 172], y[3 * 19];
        fill_random(x, COUNT(x), 6);
        KActs *a = kacts_new(&w->view, m);
        quantize_acts_scalar(x, k, w->view.group, a);
        qgemm_a8_scalar(&w->view, 0, 2, a, y, n);
        for (int i = 0; i < m; i++) {
            for (int j = 0; j < n; j++) {
                double sum = 0, magnitude = 0;
                for (int c = 0; c < k; c++) {
                    int g = c / w->view.group;
                    double wv = (double)(kq_code(&w->view, j, c) - kq_zero(&w->view, j, g)) *
                                kq_scale(&w->view, j, g);
                    double xv = (double)a->q[(size_t)i * a->cols_padded + c] * a->scale[i];
                    sum += wv * xv;
                    magnitude += fabs(wv * xv);
                }
                // fp32 rounding of the group sums and of the epilogue: a few ulps of the magnitude.
                CHECK_NEAR(y[i * n + j], sum, 1e-6 * magnitude + 1e-30);
            }
        }
        // The int8 activations are within half a step of x.
        for (int i = 0; i < m; i++) {
            for (int c = 0; c < k; c++) {
                float back = (float)a->q[(size_t)i * a->cols_padded + c] * a->scale[i];
                CHECK_NEAR(back, x[i * k + c], a->scale[i] * 0.5f * 1.0001f);
            }
        }
        kacts_free(a);
        free(w);
    }
}

// qgemm's rows must not depend on the number of tokens multiplied with them, nor on the thread
// count: that makes probe scores independent of batch size and threads.
static void check_batch_independence(const QFormat *f) {
    int n = 100, k = 300, max_m = 21;
    QMatrix *w = random_qmatrix(n, k, f, 11);
    float *x = alloc_or_fail((size_t)max_m * k * sizeof(float));
    float *single = alloc_or_fail((size_t)max_m * n * sizeof(float));
    float *batch = alloc_or_fail((size_t)max_m * n * sizeof(float));
    fill_random(x, (size_t)max_m * k, 12);

    kernels_set_threads(1);
    for (int i = 0; i < max_m; i++) {
        qgemm(&w->view, x + (size_t)i * k, single + (size_t)i * n, 1, n);
    }
    for (int threads = 1; threads <= 3; threads++) {
        kernels_set_threads(threads);
        for (int m = 1; m <= max_m; m += 5) {
            qgemm(&w->view, x, batch, m, n);
            CHECK_MSG(memcmp(batch, single, (size_t)m * n * sizeof(float)) == 0,
                      "W%d%s: rows changed with m=%d threads=%d", f->code_bits,
                      f->int8_acts ? "A8" : "A16", m, threads);
        }
    }
    free(x);
    free(single);
    free(batch);
    free(w);
}

TEST(qgemm_rows_independent_of_batch) {
    const QFormat formats[] = {
        {8, 128, true, false, true}, {4, 32, false, true, true},  {4, 128, true, false, false},
        {3, 64, false, false, false}, {8, 0, true, true, false},
    };
    for (size_t i = 0; i < COUNT(formats); i++) {
        check_batch_independence(&formats[i]);
    }
}

// The weight-only product equals gemm_f32 on the dequantized matrix, bit for bit.
TEST(qgemm_a16_equals_f32_on_dequantized) {
    int m = 6, n = 45, k = 172;
    const QFormat f = {4, 128, true, false, false};
    QMatrix *w = random_qmatrix(n, k, &f, 21);
    float *dense = alloc_or_fail((size_t)n * k * sizeof(float));
    float x[6 * 172], expected[6 * 45], got[6 * 45];
    fill_random(x, COUNT(x), 22);
    for (int r = 0; r < n; r++) {
        qmatrix_dequantize_row(w, r, dense + (size_t)r * k);
    }
    gemm_f32_scalar(x, dense, expected, m, n, k, n);
    qgemm(&w->view, x, got, m, n);
    CHECK(memcmp(got, expected, sizeof got) == 0);
    qgemm(&w->view, x, got, 1, n);
    CHECK(memcmp(got, expected, (size_t)n * sizeof(float)) == 0);
    free(dense);
    free(w);
}

TEST(kernels_select_forces_path) {
    const KernelTable *before = kernels_get();
    CHECK(kernels_select("scalar"));
    CHECK_STR(kernels_get()->name, "scalar");
    CHECK(!kernels_select("no-such-path"));
    CHECK_STR(kernels_get()->name, "scalar");
    CHECK(kernels_select(before->name));
    CHECK(strstr(kernels_supported(), "scalar") != NULL);
}
