// awq.c: the AWQ scale and clipping searches (algorithm and sources in awq.h).
#include "awq.h"

#include <cblas.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "rtn.h"

// Lower bound of a scale before normalization (llm-awq and llmc clamp with min=1e-4).
#define AWQ_MIN_SCALE 1e-4f
// Initial "best" clipping error of llmc's auto_clip_layer: a group whose every candidate errs by
// more keeps its original range.
#define AWQ_CLIP_INITIAL_ERROR 1e9

static void *xalloc(size_t count, size_t size) {
    void *p = calloc(count ? count : 1, size);
    if (!p) {
        abort();
    }
    return p;
}

void awq_grid_scales(const float *act_mean_abs, int cols, int i, int n_grid, float *scales) {
    float ratio = (float)i / (float)n_grid;
    float lo = INFINITY, hi = 0.0f;
    for (int j = 0; j < cols; j++) {
        // powf(0, 0) is 1, as torch.pow.
        float s = fmaxf(powf(act_mean_abs[j], ratio), AWQ_MIN_SCALE);
        scales[j] = s;
        lo = fminf(lo, s);
        hi = fmaxf(hi, s);
    }
    float norm = sqrtf(hi * lo);
    for (int j = 0; j < cols; j++) {
        scales[j] /= norm;
    }
}

static double mean_squared_difference(const float *a, const float *b, size_t n) {
    double sum = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - (double)b[i];
        sum += d * d;
    }
    return n > 0 ? sum / (double)n : 0.0;
}

// eff = Q(w * s) / s, column-wise.
static void effective_weights(const float *w, int rows, int cols, const float *s, int bits,
                              int group_size, float *eff) {
    for (int r = 0; r < rows; r++) {
        const float *src = w + (size_t)r * cols;
        float *dst = eff + (size_t)r * cols;
        for (int j = 0; j < cols; j++) {
            dst[j] = src[j] * s[j];
        }
    }
    rtn_fake_quantize(eff, eff, rows, cols, bits, group_size, true);
    for (int r = 0; r < rows; r++) {
        float *dst = eff + (size_t)r * cols;
        for (int j = 0; j < cols; j++) {
            dst[j] /= s[j];
        }
    }
}

int awq_search_scales(const AwqScaleSearch *search, float *scales, double *losses,
                      int *best_index) {
    int cols = search->cols;
    float *reference = xalloc(search->n_out, sizeof(float));
    float *out = xalloc(search->n_out, sizeof(float));
    float *candidate = xalloc((size_t)cols, sizeof(float));
    float **eff = xalloc((size_t)search->n_layers, sizeof(float *));
    for (int l = 0; l < search->n_layers; l++) {
        eff[l] = xalloc((size_t)search->rows[l] * (size_t)cols, sizeof(float));
    }

    int rc = search->output(search->ctx, search->w, reference);
    double best_loss = INFINITY;
    int best = 0;
    for (int i = 0; rc == 0 && i < search->n_grid; i++) {
        awq_grid_scales(search->act_mean_abs, cols, i, search->n_grid, candidate);
        for (int l = 0; l < search->n_layers; l++) {
            effective_weights(search->w[l], search->rows[l], cols, candidate, search->bits,
                              search->group_size, eff[l]);
        }
        rc = search->output(search->ctx, (const float *const *)eff, out);
        if (rc != 0) {
            break;
        }
        double loss = mean_squared_difference(reference, out, search->n_out);
        if (losses) {
            losses[i] = loss;
        }
        // Ratio 0 (s = 1) is the fallback when every loss is NaN.
        if (i == 0 || loss < best_loss) {
            best_loss = i == 0 && isnan(loss) ? INFINITY : loss;
            best = i;
            memcpy(scales, candidate, (size_t)cols * sizeof(float));
        }
    }
    if (best_index) {
        *best_index = best;
    }

    for (int l = 0; l < search->n_layers; l++) {
        free(eff[l]);
    }
    free(eff);
    free(candidate);
    free(out);
    free(reference);
    return rc;
}

// Writes the dequantized clamp(w, -limit, limit) of one group (n values).
static void clip_and_round(const float *w, int n, float limit, int bits, float *dst) {
    for (int k = 0; k < n; k++) {
        dst[k] = fminf(fmaxf(w[k], -limit), limit);
    }
    rtn_fake_quantize(dst, dst, 1, n, bits, 0, true);
}

void awq_search_clip(const float *w, int rows, int cols, int bits, int group_size, const float *x,
                     int n_tokens, int n_sample_tokens, int n_grid, double max_shrink,
                     float *max_val) {
    int group = group_size > 0 && group_size < cols ? group_size : cols;
    int n_groups = (cols + group - 1) / group;
    int n_candidates = (int)(max_shrink * n_grid);

    // Token subsample: x[0::n_tokens // n_sample_tokens], as llmc.
    int stride = n_sample_tokens > 0 ? n_tokens / n_sample_tokens : 1;
    stride = stride < 1 ? 1 : stride;
    int n_sampled = (n_tokens + stride - 1) / stride;
    float *xs = xalloc((size_t)n_sampled * (size_t)cols, sizeof(float));
    for (int t = 0; t < n_sampled; t++) {
        memcpy(xs + (size_t)t * cols, x + (size_t)t * stride * cols, (size_t)cols * sizeof(float));
    }

    float *wg = xalloc((size_t)rows * (size_t)group, sizeof(float));  // original group
    float *qg = xalloc((size_t)rows * (size_t)group, sizeof(float));  // candidate group
    float *reference = xalloc((size_t)n_sampled * (size_t)rows, sizeof(float));
    float *out = xalloc((size_t)n_sampled * (size_t)rows, sizeof(float));
    float *org_max = xalloc((size_t)rows, sizeof(float));
    double *best_err = xalloc((size_t)rows, sizeof(double));

    for (int g = 0; g < n_groups; g++) {
        int c0 = g * group, n = cols - c0 < group ? cols - c0 : group;
        for (int r = 0; r < rows; r++) {
            memcpy(wg + (size_t)r * n, w + (size_t)r * cols + c0, (size_t)n * sizeof(float));
            float m = 0.0f;
            for (int k = 0; k < n; k++) {
                m = fmaxf(m, fabsf(wg[(size_t)r * n + k]));
            }
            org_max[r] = m;
            best_err[r] = AWQ_CLIP_INITIAL_ERROR;
            max_val[(size_t)r * n_groups + g] = m;
        }
        // reference [n_sampled, rows] = x_g w_g^T: each row's partial dot products.
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n_sampled, rows, n, 1.0f, xs + c0,
                    cols, wg, n, 0.0f, reference, rows);

        for (int i = 0; i < n_candidates; i++) {
            float ratio = 1.0f - (float)i / (float)n_grid;
            for (int r = 0; r < rows; r++) {
                clip_and_round(wg + (size_t)r * n, n, org_max[r] * ratio, bits,
                               qg + (size_t)r * n);
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n_sampled, rows, n, 1.0f,
                        xs + c0, cols, qg, n, 0.0f, out, rows);
            for (int r = 0; r < rows; r++) {
                double err = 0.0;
                for (int t = 0; t < n_sampled; t++) {
                    double d = (double)out[(size_t)t * rows + r] -
                               (double)reference[(size_t)t * rows + r];
                    err += d * d;
                }
                err /= n_sampled;
                if (err < best_err[r]) {
                    best_err[r] = err;
                    max_val[(size_t)r * n_groups + g] = org_max[r] * ratio;
                }
            }
        }
    }

    free(best_err);
    free(org_max);
    free(out);
    free(reference);
    free(qg);
    free(wg);
    free(xs);
}

void awq_apply_clip(float *w, int rows, int cols, int group_size, const float *max_val) {
    int group = group_size > 0 && group_size < cols ? group_size : cols;
    int n_groups = (cols + group - 1) / group;
    for (int r = 0; r < rows; r++) {
        for (int j = 0; j < cols; j++) {
            float limit = max_val[(size_t)r * n_groups + j / group];
            float *v = w + (size_t)r * cols + j;
            *v = fminf(fmaxf(*v, -limit), limit);
        }
    }
}
