// calib.c: calibration statistics (definitions in calib.h).
#include "calib.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

// Huge-page size of x86-64 and arm64 Linux; buffers below it are allocated normally.
#define HUGE_PAGE_BYTES ((size_t)2 << 20)

static void *checked_calloc(size_t count, size_t size) {
    void *p = calloc(count, size);
    if (!p) {
        abort();
    }
    return p;
}

void *quant_alloc_large(size_t bytes) {
    if (bytes < HUGE_PAGE_BYTES) {
        void *p = malloc(bytes ? bytes : 1);
        if (!p) {
            abort();
        }
        return p;
    }
    size_t rounded = (bytes + HUGE_PAGE_BYTES - 1) / HUGE_PAGE_BYTES * HUGE_PAGE_BYTES;
    void *p = aligned_alloc(HUGE_PAGE_BYTES, rounded);
    if (!p) {
        abort();
    }
#ifdef MADV_HUGEPAGE
    // Only a hint: without huge pages the memory works the same, with more page faults.
    madvise(p, rounded, MADV_HUGEPAGE);
#endif
    return p;
}

void hessian_init(HessianAcc *acc, int capacity) {
    size_t n = (size_t)capacity * (size_t)capacity;
    acc->capacity = capacity;
    acc->sum = quant_alloc_large(n * sizeof(double));
    acc->partial = quant_alloc_large(n * sizeof(float));
    hessian_reset(acc, capacity);
}

void hessian_reset(HessianAcc *acc, int dim) {
    if (dim > acc->capacity) {
        abort();
    }
    acc->dim = dim;
    acc->n_tokens = 0;
    memset(acc->sum, 0, (size_t)dim * (size_t)dim * sizeof(double));
}

void hessian_free(HessianAcc *acc) {
    free(acc->sum);
    free(acc->partial);
    acc->sum = NULL;
    acc->partial = NULL;
}

void hessian_add(HessianAcc *acc, const float *x, int n_rows) {
    size_t dim = (size_t)acc->dim;
    for (int r0 = 0; r0 < n_rows; r0 += HESSIAN_CHUNK_ROWS) {
        int nr = n_rows - r0 < HESSIAN_CHUNK_ROWS ? n_rows - r0 : HESSIAN_CHUNK_ROWS;
        // partial (upper) = X_chunk^T X_chunk.
        cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, acc->dim, nr, 1.0f,
                    x + (size_t)r0 * dim, acc->dim, 0.0f, acc->partial, acc->dim);
        for (size_t i = 0; i < dim; i++) {
            double *dst = acc->sum + i * dim;
            const float *src = acc->partial + i * dim;
            for (size_t j = i; j < dim; j++) {
                dst[j] += (double)src[j];
            }
        }
    }
    acc->n_tokens += n_rows;
}

void hessian_finish(const HessianAcc *acc, double *h) {
    // h may be acc->sum: each upper element is read before it is written, and the lower
    // triangle that is written is never read.
    size_t dim = (size_t)acc->dim;
    double factor = acc->n_tokens > 0 ? 2.0 / (double)acc->n_tokens : 0.0;
    for (size_t i = 0; i < dim; i++) {
        for (size_t j = i; j < dim; j++) {
            double value = acc->sum[i * dim + j] * factor;
            h[i * dim + j] = value;
            h[j * dim + i] = value;
        }
    }
}

void act_stats_init(ActStats *s, int dim) {
    s->dim = dim;
    s->n_tokens = 0;
    s->abs_max = checked_calloc((size_t)dim, sizeof(float));
    s->abs_sum = checked_calloc((size_t)dim, sizeof(double));
}

void act_stats_free(ActStats *s) {
    free(s->abs_max);
    free(s->abs_sum);
    s->abs_max = NULL;
    s->abs_sum = NULL;
}

void act_stats_add(ActStats *s, const float *x, int n_rows) {
    for (int r = 0; r < n_rows; r++) {
        const float *row = x + (size_t)r * (size_t)s->dim;
        for (int j = 0; j < s->dim; j++) {
            float a = fabsf(row[j]);
            s->abs_max[j] = fmaxf(s->abs_max[j], a);
            s->abs_sum[j] += a;
        }
    }
    s->n_tokens += n_rows;
}

void act_stats_mean_abs(const ActStats *s, float *out) {
    for (int j = 0; j < s->dim; j++) {
        out[j] = s->n_tokens > 0 ? (float)(s->abs_sum[j] / (double)s->n_tokens) : 0.0f;
    }
}

void migrate_scale_columns(float *w, int rows, int cols, const float *s) {
    for (int r = 0; r < rows; r++) {
        float *row = w + (size_t)r * (size_t)cols;
        for (int j = 0; j < cols; j++) {
            row[j] *= s[j];
        }
    }
}

void migrate_divide_vector(float *v, int n, const float *s) {
    for (int j = 0; j < n; j++) {
        v[j] /= s[j];
    }
}

void migrate_divide_rows(float *w, int rows, int cols, const float *s) {
    for (int r = 0; r < rows; r++) {
        float *row = w + (size_t)r * (size_t)cols;
        for (int c = 0; c < cols; c++) {
            row[c] /= s[r];
        }
    }
}

void migrate_divide_columns(float *x, int n, int cols, const float *s) {
    for (int t = 0; t < n; t++) {
        float *row = x + (size_t)t * (size_t)cols;
        for (int j = 0; j < cols; j++) {
            row[j] /= s[j];
        }
    }
}
