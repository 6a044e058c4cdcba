// scalar.c: the reference implementation of every kernel, in portable C.
//
// fmaf() gives the same single rounding as the SIMD fused multiply-add, which is what makes the
// SIMD paths bit-identical to this file.
#include <math.h>

#include "kernels.h"

// Dot product of x[0..k) and w[0..k) in the 16-lane order (kernels.h).
static float dot_f32_16lane(const float *x, const float *w, int k) {
    float lane[16] = {0};
    int k16 = k - k % 16;
    for (int k0 = 0; k0 < k16; k0 += 16) {
        for (int l = 0; l < 16; l++) {
            lane[l] = fmaf(x[k0 + l], w[k0 + l], lane[l]);
        }
    }
    for (int width = 8; width >= 1; width /= 2) {
        for (int l = 0; l < width; l++) {
            lane[l] += lane[l + width];
        }
    }
    float sum = lane[0];
    for (int i = k16; i < k; i++) {
        sum = fmaf(x[i], w[i], sum);
    }
    return sum;
}

void gemm_f32_scalar(const float *x, const float *w, float *y, int m, int n, int k, int ldy) {
    for (int i = 0; i < m; i++) {
        for (int j = 0; j < n; j++) {
            y[(long)i * ldy + j] = dot_f32_16lane(x + (long)i * k, w + (long)j * k, k);
        }
    }
}
