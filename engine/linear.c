// linear.c: y = x W^T for weights in their stored precision.
//
// The product runs on qbias's own fp32 kernel (kernels/), not BLAS sgemm, because its result for a
// row does not depend on how many rows are multiplied together: OpenBLAS 0.3.21's sgemm changes a
// row's values by up to ~8e-6 (K = 4096) when the number of rows changes, which would make scores
// depend on the batch size. F16 and BF16 weights are converted to fp32 a block of rows at a time,
// so the fp32 copy of a whole matrix never exists.
#include <stdlib.h>

#include "../kernels/kernels.h"
#include "forward.h"
#include "util.h"

// Rows converted per block: 256 rows of 4096 fp32 columns are 4 MB, about an L2/L3 slice.
#define CONVERT_BLOCK_ROWS 256

void linear_forward(const Weight *w, const float *x, int n, float *y) {
    if (w->type == GGML_TYPE_F32) {
        gemm_f32(x, (const float *)w->data, y, n, w->rows, w->cols, w->rows);
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
}
