// dispatch.c: picks the kernel path for this CPU and splits work across threads (OpenMP).
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"

static const KernelTable scalar_table = {
    "scalar",         gemm_f32_scalar,        quantize_acts_scalar, qgemm_a8_scalar,
    qgemv_a16_scalar, dequantize_rows_scalar, peak_int8_scalar,     peak_fp32_scalar};
#if defined(__x86_64__)
// NOTE: the AVX2 and NEON tables quantize activations with the scalar code (a small share of the
// time next to the products); only AVX-512 has its own.
static const KernelTable avx2_table = {
    "avx2",         gemm_f32_avx2,        quantize_acts_scalar, qgemm_a8_avx2,
    qgemv_a16_avx2, dequantize_rows_avx2, peak_int8_avx2,       peak_fp32_avx2};
static const KernelTable avxvnni_table = {
    "avxvnni",      gemm_f32_avx2,        quantize_acts_scalar, qgemm_a8_avxvnni,
    qgemv_a16_avx2, dequantize_rows_avx2, peak_int8_avxvnni,    peak_fp32_avx2};
static const KernelTable avx512_table = {
    "avx512",         gemm_f32_avx512,        quantize_acts_avx512, qgemm_a8_avx512,
    qgemv_a16_avx512, dequantize_rows_avx512, peak_int8_avx512,     peak_fp32_avx512};
#endif
#if defined(__aarch64__)
static const KernelTable neon_table = {
    "neon",         gemm_f32_neon,        quantize_acts_scalar, qgemm_a8_neon,
    qgemv_a16_neon, dequantize_rows_neon, peak_int8_neon,       peak_fp32_neon};
#endif

// The paths, best first.
static const char *const path_names[] = {"avx512", "avxvnni", "avx2", "neon", "scalar"};

static bool cpu_has(const char *name) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (strcmp(name, "avx512") == 0) {
        // The int8 kernels use vpdpbusd (AVX512_VNNI) on 512-bit registers.
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
    }
    if (strcmp(name, "avxvnni") == 0) {
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
               __builtin_cpu_supports("avxvnni");
    }
    if (strcmp(name, "avx2") == 0) {
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    }
#endif
#if defined(__aarch64__)
    // Every path of the NEON file uses Armv8.2's dot-product instructions (sdot), which Linux
    // reports as hwcap "asimddp"; the build enables them with -march=armv8.2-a+dotprod.
    if (strcmp(name, "neon") == 0) {
        return neon_has_dotprod();
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
    if (strcmp(name, "avxvnni") == 0) return &avxvnni_table;
    if (strcmp(name, "avx2") == 0) return &avx2_table;
#endif
#if defined(__aarch64__)
    if (strcmp(name, "neon") == 0) return &neon_table;
#endif
    if (strcmp(name, "scalar") == 0) return &scalar_table;
    return NULL;
}

const char *kernels_supported(void) {
    static char list[64];
    list[0] = '\0';
    for (size_t i = 0; i < sizeof path_names / sizeof path_names[0]; i++) {
        if (kernels_find(path_names[i])) {
            strcat(list, list[0] ? " " : "");
            strcat(list, path_names[i]);
        }
    }
    return list;
}

static const KernelTable *selected;

const KernelTable *kernels_get(void) {
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

bool kernels_select(const char *name) {
    const KernelTable *table = kernels_find(name);
    if (table) {
        selected = table;
    }
    return table != NULL;
}

static int thread_count;

// OpenBLAS's thread setter, declared weak so that kernels/ links without OpenBLAS (the NEON test
// binary) and governs OpenBLAS's pool too where the program links it.
extern void openblas_set_num_threads(int n) __attribute__((weak));

void kernels_set_threads(int n) {
    thread_count = n > 0 ? n : omp_get_num_procs();
    omp_set_num_threads(thread_count);
    if (openblas_set_num_threads) {
        openblas_set_num_threads(thread_count);
    }
}

int kernels_threads(void) {
    if (thread_count <= 0) {
        kernels_set_threads(0);
    }
    return thread_count;
}

// Columns per work item: a multiple of every path's tile width, small enough to balance threads.
#define GEMM_COLUMN_BLOCK 64

// Products below this many multiply-adds run on the calling thread: waking threads costs more.
#define SERIAL_MACS 1e6

void gemm_f32(const float *x, const float *w, float *y, int m, int n, int k, int ldy) {
    const KernelTable *table = kernels_get();
    int n_blocks = (n + GEMM_COLUMN_BLOCK - 1) / GEMM_COLUMN_BLOCK;
    int threads = kernels_threads();
    if (threads == 1 || (double)m * n * k < SERIAL_MACS) {
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

// ----------------------------------------------------------------------------
// Packed weights

KActs *kacts_new(const KQuantMatrix *w, int m) {
    KActs *a = calloc(1, sizeof *a);
    if (!a) {
        abort();
    }
    a->m = m;
    a->cols_padded = w->cols_padded;
    a->n_groups = w->n_groups;
    // 64-byte alignment lets vector loads of a row's chunks stay within cache lines.
    size_t q_bytes = ((size_t)m * (size_t)w->cols_padded + 63) / 64 * 64;
    a->q = aligned_alloc(64, q_bytes);
    a->scale = malloc((size_t)m * sizeof(float));
    a->group_sum = malloc((size_t)m * (size_t)w->n_groups * sizeof(int32_t));
    if (!a->q || !a->scale || !a->group_sum) {
        abort();
    }
    return a;
}

void kacts_free(KActs *a) {
    if (!a) {
        return;
    }
    free(a->q);
    free(a->scale);
    free(a->group_sum);
    free(a);
}

// Tokens [i0, i0 + n) of a, as activations of their own (no copy).
static KActs kacts_slice(const KActs *a, int i0, int n) {
    KActs s = *a;
    s.m = n;
    s.q = a->q + (size_t)i0 * (size_t)a->cols_padded;
    s.scale = a->scale + i0;
    s.group_sum = a->group_sum + (size_t)i0 * (size_t)a->n_groups;
    return s;
}

// Tokens per activation-quantization work item.
#define QUANTIZE_TOKEN_BLOCK 16
// Tiles of 16 rows per int8 work item: two tiles are the widest microkernel of every path.
#define A8_TILE_BLOCK 2
// Rows per weight-only work item: dequantized to fp32, 64 rows of 4096 columns are 1 MB.
#define A16_ROW_BLOCK 64
// Up to this many tokens, weight-only products run as one matrix-vector product per token; more
// tokens amortize dequantizing a block of rows once for all of them.
#define A16_GEMV_MAX_TOKENS 4

static void qgemm_a8(const KernelTable *table, const KQuantMatrix *w, const float *x, float *y,
                     int m, int ldy, int threads) {
    KActs *a = kacts_new(w, m);
    int n_token_blocks = (m + QUANTIZE_TOKEN_BLOCK - 1) / QUANTIZE_TOKEN_BLOCK;
    // A product small enough to run on one thread is quantized on it too. Each parallel region
    // can cost milliseconds when a thread's virtual CPU has been descheduled (docs/benchmarks.md),
    // and 14 of them made a 64-token prefill of a 2-layer model 200 times slower than 1 thread.
    bool serial = threads == 1 || (double)m * w->rows * w->cols < SERIAL_MACS;
#pragma omp parallel for schedule(static) num_threads(threads) if (n_token_blocks > 1 && !serial)
    for (int b = 0; b < n_token_blocks; b++) {
        int i0 = b * QUANTIZE_TOKEN_BLOCK;
        KActs slice = kacts_slice(a, i0, m - i0 < QUANTIZE_TOKEN_BLOCK ? m - i0 : QUANTIZE_TOKEN_BLOCK);
        table->quantize_acts(x + (size_t)i0 * (size_t)w->cols, w->cols, w->group, &slice);
    }

    int n_tiles = (w->rows + KQ_TILE_ROWS - 1) / KQ_TILE_ROWS;
    int n_blocks = (n_tiles + A8_TILE_BLOCK - 1) / A8_TILE_BLOCK;
#pragma omp parallel for schedule(static) num_threads(threads) if (!serial)
    for (int b = 0; b < n_blocks; b++) {
        int t0 = b * A8_TILE_BLOCK;
        int t1 = t0 + A8_TILE_BLOCK < n_tiles ? t0 + A8_TILE_BLOCK : n_tiles;
        table->qgemm_a8(w, t0, t1, a, y, ldy);
    }
    kacts_free(a);
}

static void qgemm_a16(const KernelTable *table, const KQuantMatrix *w, const float *x, float *y,
                      int m, int ldy, int threads) {
    int n_blocks = (w->rows + A16_ROW_BLOCK - 1) / A16_ROW_BLOCK;
    bool serial = threads == 1 || (double)m * w->rows * w->cols < SERIAL_MACS;
    if (m <= A16_GEMV_MAX_TOKENS) {
        for (int i = 0; i < m; i++) {
#pragma omp parallel for schedule(static) num_threads(threads) if (!serial)
            for (int b = 0; b < n_blocks; b++) {
                int r0 = b * A16_ROW_BLOCK;
                int r1 = r0 + A16_ROW_BLOCK < w->rows ? r0 + A16_ROW_BLOCK : w->rows;
                table->qgemv_a16(w, r0, r1, x + (size_t)i * (size_t)w->cols, y + (size_t)i * ldy);
            }
        }
        return;
    }

#pragma omp parallel num_threads(threads) if (!serial)
    {
        float *block = malloc((size_t)A16_ROW_BLOCK * (size_t)w->cols * sizeof(float));
        if (!block) {
            abort();
        }
#pragma omp for schedule(static)
        for (int b = 0; b < n_blocks; b++) {
            int r0 = b * A16_ROW_BLOCK;
            int r1 = r0 + A16_ROW_BLOCK < w->rows ? r0 + A16_ROW_BLOCK : w->rows;
            table->dequantize_rows(w, r0, r1, block);
            table->gemm_f32(x, block, y + r0, m, r1 - r0, w->cols, ldy);
        }
        free(block);
    }
}

void qgemm(const KQuantMatrix *w, const float *x, float *y, int m, int ldy) {
    const KernelTable *table = kernels_get();
    int threads = kernels_threads();
    if (w->layout == KQ_TILES) {
        qgemm_a8(table, w, x, y, m, ldy, threads);
    } else {
        qgemm_a16(table, w, x, y, m, ldy, threads);
    }
}
