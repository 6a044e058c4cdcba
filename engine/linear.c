// linear.c: y = x W^T for weights in their stored precision or packed.
//
// The product runs on qbias's own kernels (kernels/), not BLAS sgemm, because their result for a
// row does not depend on how many rows are multiplied together: OpenBLAS 0.3.21's sgemm changes a
// row's values by up to ~8e-6 (K = 4096) when the number of rows changes, which would make scores
// depend on the batch size. F16 and BF16 weights are converted to fp32 a block of rows at a time,
// so the fp32 copy of a whole matrix never exists. Packed weights go to the integer kernels.
#include <stdlib.h>

#include "../kernels/kernels.h"
#include "forward.h"
#include "util.h"

// Rows converted per block: 256 rows of 4096 fp32 columns are 4 MB, about an L2/L3 slice.
#define CONVERT_BLOCK_ROWS 256

// Replaces each row of x [n, cols] by its per-token int8 quantization, dequantized: the int8
// kernels' activations (kernels.h), simulated in fp32.
static float *fake_quantize_acts(const float *x, int n, int cols) {
    KQuantMatrix shape = {.rows = 1, .cols = cols, .group = cols, .n_groups = 1};
    shape.cols_padded = (cols + KQ_BLOCK_COLS - 1) / KQ_BLOCK_COLS * KQ_BLOCK_COLS;
    KActs *a = kacts_new(&shape, n);
    quantize_acts_scalar(x, cols, cols, a);
    float *out = xmalloc((size_t)n * (size_t)cols * sizeof(float));
    for (int t = 0; t < n; t++) {
        for (int k = 0; k < cols; k++) {
            out[(size_t)t * cols + k] = (float)a->q[(size_t)t * a->cols_padded + k] * a->scale[t];
        }
    }
    kacts_free(a);
    return out;
}

void linear_forward(const Weight *w, const float *x, int n, float *y) {
    if (w->packed) {
        qgemm(&w->packed->view, x, y, n, w->rows);
        return;
    }
    float *x_fake = NULL;
    if (w->act_bits == 8) {
        x_fake = fake_quantize_acts(x, n, w->cols);
        x = x_fake;
    }

    if (w->type == GGML_TYPE_F32) {
        gemm_f32(x, (const float *)w->data, y, n, w->rows, w->cols, w->rows);
        free(x_fake);
        return;
    }

    int block_rows = w->rows < CONVERT_BLOCK_ROWS ? w->rows : CONVERT_BLOCK_ROWS;
    float *block = xmalloc((size_t)block_rows * (size_t)w->cols * sizeof(float));
    for (int r0 = 0; r0 < w->rows; r0 += block_rows) {
        int nr = w->rows - r0 < block_rows ? w->rows - r0 : block_rows;
        for (int r = 0; r < nr; r++) {
            weight_row_to_f32(w, r0 + r, block + (size_t)r * (size_t)w->cols);
        }
        gemm_f32(x, block, y + r0, n, nr, w->cols, w->rows);
    }
    free(block);
    free(x_fake);
}
