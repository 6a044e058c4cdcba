// avx512.c: AVX-512 kernels (compiled with -mavx512f -mfma; selected at run time on CPUs with it).
//
// gemm_f32 keeps the 16 lanes of the 16-lane order (kernels.h) in one zmm register per output and
// computes 4 x 4 output tiles: per step of 16 k values it loads 4 activation and 4 weight vectors
// and issues 16 fused multiply-adds.
#if defined(__x86_64__)
#include <immintrin.h>
#include <math.h>

#include "kernels.h"

// Adds the 16 lanes in the tree order l += l + 8, l += l + 4, l += l + 2, l += l + 1.
static inline float reduce_16lane(__m512 v) {
    __m256 lo = _mm512_castps512_ps256(v);
    __m256 hi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1));
    __m256 s8 = _mm256_add_ps(lo, hi);
    __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
    __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
    __m128 s1 = _mm_add_ss(s2, _mm_movehdup_ps(s2));
    return _mm_cvtss_f32(s1);
}

static inline float finish(__m512 acc, const float *x, const float *w, int k16, int k) {
    float sum = reduce_16lane(acc);
    for (int i = k16; i < k; i++) {
        sum = fmaf(x[i], w[i], sum);
    }
    return sum;
}

// One output tile of up to 4 x 4 elements; mr, nr are the tile's rows and columns.
static inline void tile_4x4(const float *x, const float *w, float *y, int k, int ldy) {
    int k16 = k - k % 16;
    __m512 acc[4][4];
    for (int i = 0; i < 4; i++) {
        for (int j = 0; j < 4; j++) {
            acc[i][j] = _mm512_setzero_ps();
        }
    }
    for (int k0 = 0; k0 < k16; k0 += 16) {
        __m512 xv[4], wv[4];
        for (int i = 0; i < 4; i++) {
            xv[i] = _mm512_loadu_ps(x + (long)i * k + k0);
        }
        for (int j = 0; j < 4; j++) {
            wv[j] = _mm512_loadu_ps(w + (long)j * k + k0);
        }
        for (int i = 0; i < 4; i++) {
            for (int j = 0; j < 4; j++) {
                acc[i][j] = _mm512_fmadd_ps(xv[i], wv[j], acc[i][j]);
            }
        }
    }
    for (int i = 0; i < 4; i++) {
        for (int j = 0; j < 4; j++) {
            y[(long)i * ldy + j] = finish(acc[i][j], x + (long)i * k, w + (long)j * k, k16, k);
        }
    }
}

static inline void tile_1x1(const float *x, const float *w, float *y, int k) {
    int k16 = k - k % 16;
    __m512 acc = _mm512_setzero_ps();
    for (int k0 = 0; k0 < k16; k0 += 16) {
        acc = _mm512_fmadd_ps(_mm512_loadu_ps(x + k0), _mm512_loadu_ps(w + k0), acc);
    }
    *y = finish(acc, x, w, k16, k);
}

// A row of 4 outputs for one activation row (decode and the row tail).
static inline void tile_1x4(const float *x, const float *w, float *y, int k) {
    int k16 = k - k % 16;
    __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(),
                     _mm512_setzero_ps()};
    for (int k0 = 0; k0 < k16; k0 += 16) {
        __m512 xv = _mm512_loadu_ps(x + k0);
        for (int j = 0; j < 4; j++) {
            acc[j] = _mm512_fmadd_ps(xv, _mm512_loadu_ps(w + (long)j * k + k0), acc[j]);
        }
    }
    for (int j = 0; j < 4; j++) {
        y[j] = finish(acc[j], x, w + (long)j * k, k16, k);
    }
}

void gemm_f32_avx512(const float *x, const float *w, float *y, int m, int n, int k, int ldy) {
    int m4 = m - m % 4, n4 = n - n % 4;
    for (int j = 0; j < n4; j += 4) {
        for (int i = 0; i < m4; i += 4) {
            tile_4x4(x + (long)i * k, w + (long)j * k, y + (long)i * ldy + j, k, ldy);
        }
        for (int i = m4; i < m; i++) {
            tile_1x4(x + (long)i * k, w + (long)j * k, y + (long)i * ldy + j, k);
        }
    }
    for (int j = n4; j < n; j++) {
        for (int i = 0; i < m; i++) {
            tile_1x1(x + (long)i * k, w + (long)j * k, y + (long)i * ldy + j, k);
        }
    }
}

#endif // __x86_64__
