// avx2.c: AVX2 kernels (compiled with -mavx2 -mfma; selected at run time on CPUs with it).
//
// gemm_f32 keeps the 16 lanes of the 16-lane order (kernels.h) in two ymm registers per output
// (lanes 0-7 and 8-15) and computes 2 x 2 output tiles, which fit AVX2's 16 registers.
#if defined(__x86_64__)
#include <immintrin.h>
#include <math.h>

#include "kernels.h"

// Adds lanes lo (0-7) and hi (8-15) in the tree order l += l + 8, l += l + 4, l += l + 2, l += l + 1.
static inline float reduce_16lane(__m256 lo, __m256 hi) {
    __m256 s8 = _mm256_add_ps(lo, hi);
    __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
    __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
    __m128 s1 = _mm_add_ss(s2, _mm_movehdup_ps(s2));
    return _mm_cvtss_f32(s1);
}

static inline float finish(__m256 lo, __m256 hi, const float *x, const float *w, int k16, int k) {
    float sum = reduce_16lane(lo, hi);
    for (int i = k16; i < k; i++) {
        sum = fmaf(x[i], w[i], sum);
    }
    return sum;
}

static inline void tile_2x2(const float *x, const float *w, float *y, int k, int ldy) {
    int k16 = k - k % 16;
    __m256 lo[2][2], hi[2][2];
    for (int i = 0; i < 2; i++) {
        for (int j = 0; j < 2; j++) {
            lo[i][j] = _mm256_setzero_ps();
            hi[i][j] = _mm256_setzero_ps();
        }
    }
    for (int k0 = 0; k0 < k16; k0 += 16) {
        __m256 x_lo[2], x_hi[2];
        for (int i = 0; i < 2; i++) {
            x_lo[i] = _mm256_loadu_ps(x + (long)i * k + k0);
            x_hi[i] = _mm256_loadu_ps(x + (long)i * k + k0 + 8);
        }
        for (int j = 0; j < 2; j++) {
            __m256 w_lo = _mm256_loadu_ps(w + (long)j * k + k0);
            __m256 w_hi = _mm256_loadu_ps(w + (long)j * k + k0 + 8);
            for (int i = 0; i < 2; i++) {
                lo[i][j] = _mm256_fmadd_ps(x_lo[i], w_lo, lo[i][j]);
                hi[i][j] = _mm256_fmadd_ps(x_hi[i], w_hi, hi[i][j]);
            }
        }
    }
    for (int i = 0; i < 2; i++) {
        for (int j = 0; j < 2; j++) {
            y[(long)i * ldy + j] =
                finish(lo[i][j], hi[i][j], x + (long)i * k, w + (long)j * k, k16, k);
        }
    }
}

static inline void tile_1x1(const float *x, const float *w, float *y, int k) {
    int k16 = k - k % 16;
    __m256 lo = _mm256_setzero_ps(), hi = _mm256_setzero_ps();
    for (int k0 = 0; k0 < k16; k0 += 16) {
        lo = _mm256_fmadd_ps(_mm256_loadu_ps(x + k0), _mm256_loadu_ps(w + k0), lo);
        hi = _mm256_fmadd_ps(_mm256_loadu_ps(x + k0 + 8), _mm256_loadu_ps(w + k0 + 8), hi);
    }
    *y = finish(lo, hi, x, w, k16, k);
}

void gemm_f32_avx2(const float *x, const float *w, float *y, int m, int n, int k, int ldy) {
    int m2 = m - m % 2, n2 = n - n % 2;
    for (int j = 0; j < n2; j += 2) {
        for (int i = 0; i < m2; i += 2) {
            tile_2x2(x + (long)i * k, w + (long)j * k, y + (long)i * ldy + j, k, ldy);
        }
    }
    for (int i = 0; i < m; i++) {
        int j_start = i < m2 ? n2 : 0; // full row pairs already have columns < n2
        for (int j = j_start; j < n; j++) {
            tile_1x1(x + (long)i * k, w + (long)j * k, y + (long)i * ldy + j, k);
        }
    }
}

#endif // __x86_64__
