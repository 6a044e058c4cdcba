// calib.h: calibration statistics of a linear layer's input X [n_tokens, dim], gathered chunk by
// chunk so that the activations of all calibration tokens never need to exist at once.
//
// HessianAcc: H = 2/n X^T X, GPTQ's Hessian of the layer-wise squared error (the factor 2/n is
// llmc's and GPTQ's normalization; GPTQ's result does not depend on it). Each chunk's X^T X is
// computed in fp32 by BLAS ssyrk (at most HESSIAN_CHUNK_ROWS rows per call) and added to a double
// accumulator, so rounding does not grow with the number of calibration tokens.
//
// ActStats: per-channel maximum of |x| (SmoothQuant's activation scale) and mean of |x| (AWQ's).
#ifndef QBIAS_QUANT_CALIB_H
#define QBIAS_QUANT_CALIB_H

#include <stddef.h>
#include <stdint.h>

// Rows per fp32 ssyrk call; each product sums at most this many terms before the double sum.
#define HESSIAN_CHUNK_ROWS 1024

typedef struct {
    int dim;
    int capacity;    // largest dim the buffers hold
    int64_t n_tokens;
    double *sum;     // [dim, dim] sum of x x^T; only the upper triangle (j >= i) is accumulated
    float *partial;  // [dim, dim] fp32 product of one chunk
} HessianAcc;

// Allocates an accumulator for inputs of up to `capacity` channels, set to `capacity`.
void hessian_init(HessianAcc *acc, int capacity);
void hessian_free(HessianAcc *acc);

// Empties the accumulator for inputs of dim <= capacity channels, reusing its buffers (fresh
// pages of a large matrix are costly to fault in).
void hessian_reset(HessianAcc *acc, int dim);

// Adds the rows of x [n_rows, dim] (row-major).
void hessian_add(HessianAcc *acc, const float *x, int n_rows);

// Writes H = 2/n sum(x x^T) as a full symmetric matrix to h [dim, dim], which may be acc->sum
// itself. With no tokens added, h is all zeros (every column then counts as dead in GPTQ).
void hessian_finish(const HessianAcc *acc, double *h);

typedef struct {
    int dim;
    int64_t n_tokens;
    float *abs_max;  // [dim] max over tokens of |x|
    double *abs_sum; // [dim] sum over tokens of |x|
} ActStats;

void act_stats_init(ActStats *s, int dim);
void act_stats_free(ActStats *s);
void act_stats_add(ActStats *s, const float *x, int n_rows);

// Writes the per-channel mean of |x| to out [dim] (zeros when no tokens were added).
void act_stats_mean_abs(const ActStats *s, float *out);

// Allocates `bytes` (uninitialized) for a large matrix, aligned to 2 MB and marked for
// transparent huge pages where the kernel supports them: one page fault per 2 MB instead of per
// 4 KB when the matrix is first written. Aborts when memory is exhausted; free with free().
void *quant_alloc_large(size_t bytes);

// Per-channel scale migration, the output-preserving transform of AWQ and SmoothQuant: for an
// input channel j with factor s[j], the operation that produces the channel is divided by s[j]
// and the weights that consume it are multiplied by s[j].

// w [rows, cols]: w[r][j] *= s[j] (the consuming linear's input columns).
void migrate_scale_columns(float *w, int rows, int cols, const float *s);
// v [n]: v[j] /= s[j] (a norm weight, or the rows of a producing linear below).
void migrate_divide_vector(float *v, int n, const float *s);
// w [rows, cols]: w[j][c] /= s[j] (the producing linear's output rows).
void migrate_divide_rows(float *w, int rows, int cols, const float *s);
// x [n, cols]: x[t][j] /= s[j] (stored inputs of the consuming linear).
void migrate_divide_columns(float *x, int n, int cols, const float *s);

#endif
