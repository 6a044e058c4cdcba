// gptq.c: GPTQ for one weight matrix (algorithm and sources in gptq.h).
#include "gptq.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "calib.h"
#include "rtn.h"

// LAPACK (OpenBLAS exports the reference routines). The trailing size_t arguments are the hidden
// lengths of the character arguments that gfortran-compiled routines expect.
extern void dpotrf_(const char *uplo, const int *n, double *a, const int *lda, int *info,
                    size_t uplo_len);
extern void dtrtri_(const char *uplo, const char *diag, const int *n, double *a, const int *lda,
                    int *info, size_t uplo_len, size_t diag_len);

static void *xalloc(size_t count, size_t size) {
    void *p = calloc(count ? count : 1, size);
    if (!p) {
        abort();
    }
    return p;
}

struct GptqWorkspace {
    size_t n_h, n_w;  // capacities in elements
    double *hp;       // [cols, cols] permuted, damped Hessian
    double *work;     // [cols, cols] LAPACK factor
    float *hinv;      // [cols, cols] upper factor U in fp32
    float *wp, *qp;   // [rows, cols] permuted weights and quantized output
};

GptqWorkspace *gptq_workspace_new(void) {
    return xalloc(1, sizeof(GptqWorkspace));
}

void gptq_workspace_free(GptqWorkspace *ws) {
    if (!ws) {
        return;
    }
    free(ws->hp);
    free(ws->work);
    free(ws->hinv);
    free(ws->wp);
    free(ws->qp);
    free(ws);
}

// Grows the workspace to n_h Hessian and n_w weight elements.
static void workspace_reserve(GptqWorkspace *ws, size_t n_h, size_t n_w) {
    if (n_h > ws->n_h) {
        free(ws->hp);
        free(ws->work);
        free(ws->hinv);
        ws->hp = quant_alloc_large(n_h * sizeof(double));
        ws->work = quant_alloc_large(n_h * sizeof(double));
        ws->hinv = quant_alloc_large(n_h * sizeof(float));
        ws->n_h = n_h;
    }
    if (n_w > ws->n_w) {
        free(ws->wp);
        free(ws->qp);
        ws->wp = quant_alloc_large(n_w * sizeof(float));
        ws->qp = quant_alloc_large(n_w * sizeof(float));
        ws->n_w = n_w;
    }
}

int gptq_group_count(int cols, int group_size) {
    int group = group_size > 0 && group_size < cols ? group_size : cols;
    return (cols + group - 1) / group;
}

// The grid of one group: w' = (q - zero) * scale with q in [q_min, q_max] (rtn.h's formulas).
typedef struct {
    float scale;
    float zero;
    float q_min, q_max;
} Grid;

static Grid grid_for(const float *w, int n, int bits, bool symmetric) {
    Grid g;
    int zero = 0;
    g.scale = rtn_quantize_group(w, n, bits, symmetric, NULL, &zero);
    g.zero = (float)zero;
    if (symmetric) {
        g.q_min = -(float)(1 << (bits - 1));
        g.q_max = (float)((1 << (bits - 1)) - 1);
    } else {
        g.q_min = 0.0f;
        g.q_max = (float)((1 << bits) - 1);
    }
    return g;
}

static float grid_round(const Grid *g, float w) {
    float q = rintf(w / g->scale) + g->zero;
    q = q < g->q_min ? g->q_min : (q > g->q_max ? g->q_max : q);
    return (q - g->zero) * g->scale;
}

// Computes the upper Cholesky factor U of inv(H + damp * mean(diag H) * I) in double and writes
// it in fp32 to the upper triangle of u [n, n] (row-major); the lower triangle is not written. Returns 0, or the
// LAPACK info of the step that failed (H + damping not positive definite).
//
// The reference computes U as cholesky(cholesky_inverse(cholesky(H))), upper, which costs about
// 4/3 n^3 operations. The same U (a Cholesky factor with a positive diagonal is unique) costs
// 2/3 n^3 this way: with J the exchange matrix, factor J H J = L L^T; then H = R R^T with
// R = J L J upper triangular, so inv(H) = inv(R)^T inv(R) and U = inv(R) = J inv(L) J.
//
// LAPACK is column-major, so it sees a row-major array transposed. J H J is the row-major array
// read backwards, and it is symmetric, so LAPACK's view is the same matrix. LAPACK's lower
// triangle (element (a, b), a >= b, at index a + b n) then holds inv(L); U(i, j) for i <= j is
// inv(L)(n-1-i, n-1-j), at index (n-1-i) + (n-1-j) n = n^2 - 1 - (i + j n), which is the
// row-major element (j, i) of the array read backwards: reversing and transposing gives U.
static int damped_inverse_factor(const double *h, int n, double damp, double mean_diag,
                                 double *work, float *u) {
    size_t nn = (size_t)n * (size_t)n;
    for (size_t k = 0; k < nn; k++) {
        work[k] = h[nn - 1 - k];
    }
    for (int i = 0; i < n; i++) {
        work[(size_t)i * n + i] += damp * mean_diag;
    }
    int info = 0;
    dpotrf_("L", &n, work, &n, &info, 1);
    if (info != 0) {
        return info;
    }
    dtrtri_("L", "N", &n, work, &n, &info, 1, 1);
    if (info != 0) {
        return info;
    }
    // u(i, j) = work[nn - 1 - (i + j n)], in tiles so that both arrays are read in cache lines.
    const int tile = 64;
    for (int i0 = 0; i0 < n; i0 += tile) {
        for (int j0 = i0; j0 < n; j0 += tile) {
            int i1 = i0 + tile < n ? i0 + tile : n, j1 = j0 + tile < n ? j0 + tile : n;
            for (int j = j0; j < j1; j++) {
                for (int i = i0; i < i1 && i <= j; i++) {
                    u[(size_t)i * n + j] = (float)work[nn - 1 - ((size_t)i + (size_t)j * n)];
                }
            }
        }
    }
    return 0;
}

static bool all_finite_f(const float *x, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(x[i])) {
            return false;
        }
    }
    return true;
}

static bool all_finite_d(const double *x, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(x[i])) {
            return false;
        }
    }
    return true;
}

// Column order: by descending diagonal, ties by column index (a stable order, so results do not
// depend on the sort implementation).
typedef struct {
    double diag;
    int index;
} DiagEntry;

static int compare_desc_diag(const void *a, const void *b) {
    const DiagEntry *x = a, *y = b;
    if (x->diag != y->diag) {
        return x->diag > y->diag ? -1 : 1;
    }
    return x->index - y->index;
}

static void act_order_permutation(const double *h, int n, int *perm) {
    DiagEntry *entries = xalloc((size_t)n, sizeof(DiagEntry));
    for (int i = 0; i < n; i++) {
        entries[i].diag = h[(size_t)i * n + i];
        entries[i].index = i;
    }
    qsort(entries, (size_t)n, sizeof(DiagEntry), compare_desc_diag);
    for (int i = 0; i < n; i++) {
        perm[i] = entries[i].index;
    }
    free(entries);
}

// State shared by the column loop.
typedef struct {
    int rows, cols, n_groups, group;
    const GptqParams *p;
    const int *perm;      // [cols] original column of each processed position
    float *w;             // [rows, cols] permuted working weights
    const float *hinv;    // [cols, cols] upper factor U (fp32), permuted order
    Grid *grids;          // [rows, n_groups]: static grids in original group order, or the
                          // dynamic grids in processing order
    bool dynamic;         // grids are taken from the updated weights as groups start
    float *q;             // [rows, cols] permuted dequantized output
    bool compensate;      // false after a failed inverse: round only
} ColumnLoop;

// Processes columns i1..i2-1 of one row: rounds each column and updates the batch's later columns.
// Writes the scaled errors to err1 [i2 - i1] and returns the row's loss over the batch.
static double process_row_batch(ColumnLoop *s, int r, int i1, int i2, float *w1, float *err1) {
    int count = i2 - i1;
    double loss = 0.0;
    float *w_row = s->w + (size_t)r * s->cols;
    memcpy(w1, w_row + i1, (size_t)count * sizeof(float));

    for (int i = 0; i < count; i++) {
        int col = i1 + i;
        Grid *grid;
        if (s->dynamic) {
            // Parameters from the row as updated by the previous batches (the reference reads W,
            // not the batch copy) when a group starts.
            grid = &s->grids[(size_t)r * s->n_groups + col / s->group];
            if (col % s->group == 0) {
                int n = s->cols - col < s->group ? s->cols - col : s->group;
                *grid = grid_for(w_row + col, n, s->p->bits, s->p->symmetric);
            }
        } else {
            grid = &s->grids[(size_t)r * s->n_groups + s->perm[col] / s->group];
        }

        float value = w1[i];
        float q = grid_round(grid, value);
        s->q[(size_t)r * s->cols + col] = q;
        if (!s->compensate) {
            err1[i] = 0.0f;
            continue;
        }
        const float *u_row = s->hinv + (size_t)col * s->cols;
        float d = u_row[col];
        float err = (value - q) / d;
        loss += (double)err * (double)err / 2.0;
        for (int j = i + 1; j < count; j++) {
            w1[j] -= err * u_row[i1 + j];
        }
        err1[i] = err;
    }
    return loss;
}

// Runs the batched column loop over the permuted matrix. err [rows, block_size] is scratch.
static double run_column_loop(ColumnLoop *s) {
    int rows = s->rows, cols = s->cols, block = s->p->block_size;
    float *err = xalloc((size_t)rows * (size_t)block, sizeof(float));
    float *w1 = xalloc((size_t)block, sizeof(float));
    double loss = 0.0;

    for (int i1 = 0; i1 < cols; i1 += block) {
        int i2 = cols - i1 < block ? cols : i1 + block;
        int count = i2 - i1;

        // Rows are independent inside a batch. They run on one thread: this loop costs
        // rows x count^2 operations per batch, far less than the sgemm update below, and an
        // OpenMP team here would compete with OpenBLAS's threads for the cores.
        for (int r = 0; r < rows; r++) {
            loss += process_row_batch(s, r, i1, i2, w1, err + (size_t)r * count);
        }

        // Lazy update of the later columns: W[:, i2:] -= Err1 U[i1:i2, i2:].
        if (s->compensate && i2 < cols) {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, cols - i2, count, -1.0f,
                        err, count, s->hinv + (size_t)i1 * cols + i2, cols, 1.0f, s->w + i2, cols);
        }
    }
    free(w1);
    free(err);
    return loss;
}

static int check_params(const GptqParams *p, int rows, int cols) {
    if (rows <= 0 || cols <= 0 || p->bits < 2 || p->bits > 8 || p->block_size <= 0 ||
        !(p->percdamp > 0.0 && p->percdamp < 1.0) || p->group_size < 0) {
        return GPTQ_INVALID_PARAMS;
    }
    return GPTQ_OK;
}

GptqStatus gptq_quantize(float *w, int rows, int cols, const double *h, const GptqParams *params,
                         float *scales, int *zeros, GptqWorkspace *ws, GptqResult *result) {
    memset(result, 0, sizeof *result);
    if (check_params(params, rows, cols) != GPTQ_OK ||
        (scales && params->act_order && !params->static_groups)) {
        return GPTQ_INVALID_PARAMS;
    }
    size_t n_w = (size_t)rows * (size_t)cols, n_h = (size_t)cols * (size_t)cols;
    if (!all_finite_f(w, n_w)) {
        return GPTQ_NONFINITE_WEIGHT;
    }
    if (!all_finite_d(h, n_h)) {
        return GPTQ_NONFINITE_HESSIAN;
    }

    GptqWorkspace *own_ws = ws ? NULL : gptq_workspace_new();
    ws = ws ? ws : own_ws;
    workspace_reserve(ws, n_h, n_w);

    int group = params->group_size > 0 && params->group_size < cols ? params->group_size : cols;
    int n_groups = gptq_group_count(cols, params->group_size);
    bool static_grids = params->static_groups || group == cols;

    // Group grids from the original weights (step 3), before dead columns are zeroed.
    Grid *grids = xalloc((size_t)rows * (size_t)n_groups, sizeof(Grid));
    if (static_grids) {
        for (int r = 0; r < rows; r++) {
            for (int g = 0; g < n_groups; g++) {
                int c0 = g * group, n = cols - c0 < group ? cols - c0 : group;
                grids[(size_t)r * n_groups + g] =
                    grid_for(w + (size_t)r * cols + c0, n, params->bits, params->symmetric);
            }
        }
    }

    // Act-order permutation from the diagonal before the dead-column fix (llmc's order).
    int *perm = xalloc((size_t)cols, sizeof(int));
    if (params->act_order) {
        act_order_permutation(h, cols, perm);
    } else {
        for (int i = 0; i < cols; i++) {
            perm[i] = i;
        }
    }

    // Permuted copies of H (with the dead-column fix) and W (dead columns zeroed).
    double *hp = ws->hp;
    bool *dead = xalloc((size_t)cols, sizeof(bool));
    double mean_diag = 0.0;
    for (int i = 0; i < cols; i++) {
        dead[i] = h[(size_t)perm[i] * cols + perm[i]] == 0.0;
        result->n_dead += dead[i];
        const double *src = h + (size_t)perm[i] * cols;
        double *dst = hp + (size_t)i * cols;
        for (int j = 0; j < cols; j++) {
            dst[j] = src[perm[j]];
        }
        if (dead[i]) {
            dst[i] = 1.0;
        }
        mean_diag += dst[i];
    }
    mean_diag /= cols;
    float *wp = ws->wp;
    for (int r = 0; r < rows; r++) {
        const float *src = w + (size_t)r * cols;
        float *dst = wp + (size_t)r * cols;
        for (int i = 0; i < cols; i++) {
            dst[i] = dead[i] ? 0.0f : src[perm[i]];
        }
    }
    free(dead);

    // Damped inverse factor, retrying with more damping while the factorization fails.
    float *hinv = ws->hinv;
    double *work = ws->work;
    double damp = params->percdamp;
    bool factored = false;
    while (damp < 1.0) {
        if (damped_inverse_factor(hp, cols, damp, mean_diag, work, hinv) == 0) {
            factored = true;
            break;
        }
        result->n_retries++;
        damp += GPTQ_DAMP_INCREMENT;
    }
    result->damp = factored ? damp : 1.0;
    result->compensation_failed = !factored;

    float *qp = ws->qp;
    ColumnLoop loop = {
        .rows = rows, .cols = cols, .n_groups = n_groups, .group = group, .p = params,
        .perm = perm, .w = wp, .hinv = hinv, .grids = grids, .dynamic = !static_grids,
        .q = qp, .compensate = factored,
    };
    result->loss = run_column_loop(&loop);

    // Undo the permutation.
    for (int r = 0; r < rows; r++) {
        const float *src = qp + (size_t)r * cols;
        float *dst = w + (size_t)r * cols;
        for (int i = 0; i < cols; i++) {
            dst[perm[i]] = src[i];
        }
    }
    if (scales) {
        for (size_t i = 0; i < (size_t)rows * n_groups; i++) {
            scales[i] = grids[i].scale;
            if (zeros) {
                zeros[i] = (int)grids[i].zero;
            }
        }
    }

    gptq_workspace_free(own_ws);
    free(perm);
    free(grids);
    return GPTQ_OK;
}
