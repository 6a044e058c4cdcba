// avx2_a8.h: the AVX2 int8-activation kernel, included by avx2.c and avxvnni.c.
//
// The includer defines A8_ENTRY and A8_PEAK_ENTRY (the names of the product and of the throughput
// loop) and dot_u8s8(acc, u, q, bits), which adds to each int32 lane of acc the four products of
// its unsigned weight bytes u and signed activation bytes q. AVX-VNNI does that in one vpdpbusd.
// Plain AVX2 needs vpmaddubsw, whose int16 sums saturate, so avx2.c splits 8-bit codes into
// nibbles (15 * 127 * 2 fits int16). Either way the int32 sums are
// exact, so both give the scalar path's results bit for bit.
//
// A 16-row tile is two vectors: rows 0-7 and rows 8-15 (lane r of half h is row 8h + r).

#include <string.h>

#define A8_ALWAYS_INLINE static inline __attribute__((always_inline))

A8_ALWAYS_INLINE __m256 a8_tile_scales(const KQuantMatrix *w, size_t index) {
    if (w->fp16_scales) {
        return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)w->scales + index)));
    }
    return _mm256_loadu_ps((const float *)w->scales + index);
}

// nt tiles x nm tokens from tile `tile` and token i0.
A8_ALWAYS_INLINE void a8_block(const KQuantMatrix *w, int tile, const int nt, const KActs *a, int i0,
                               const int nm, float *y, int ldy) {
    const __m256i nibble = _mm256_set1_epi8(15);
    __m256 facc[2][4][2];
    __m256i acc[2][4][2];
#pragma GCC unroll 8
    for (int tt = 0; tt < nt; tt++) {
#pragma GCC unroll 8
        for (int mm = 0; mm < nm; mm++) {
            facc[tt][mm][0] = facc[tt][mm][1] = _mm256_setzero_ps();
        }
    }

    for (int g = 0; g < w->n_groups; g++) {
        int k_begin = g * w->group;
        int k_end = g == w->n_groups - 1 ? w->cols_padded : (g + 1) * w->group;

        // acc starts at -z * group_sum, so it ends at S_g = sum u q - z sum q.
#pragma GCC unroll 8
        for (int tt = 0; tt < nt; tt++) {
            size_t index = ((size_t)(tile + tt) * w->n_groups + g) * KQ_TILE_ROWS;
#pragma GCC unroll 2
            for (int h = 0; h < 2; h++) {
                __m256i zeros = w->zeros ? _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(w->zeros + index + 8 * h)))
                                         : _mm256_set1_epi32(w->zero_point);
#pragma GCC unroll 8
                for (int mm = 0; mm < nm; mm++) {
                    int32_t sum = a->group_sum[(size_t)(i0 + mm) * a->n_groups + g];
                    acc[tt][mm][h] = _mm256_mullo_epi32(zeros, _mm256_set1_epi32(-sum));
                }
            }
        }

        for (int k = k_begin; k < k_end; k += 8) {
            __m256i w0[2][2], w1[2][2];
#pragma GCC unroll 8
            for (int tt = 0; tt < nt; tt++) {
                const uint8_t *tile_codes = w->codes + (size_t)(tile + tt) * w->stride;
#pragma GCC unroll 2
                for (int h = 0; h < 2; h++) {
                    if (w->bits == 8) {
                        w0[tt][h] = _mm256_loadu_si256((const __m256i *)(tile_codes + (size_t)(k / 4) * 64 + 32 * h));
                        w1[tt][h] = _mm256_loadu_si256((const __m256i *)(tile_codes + (size_t)(k / 4 + 1) * 64 + 32 * h));
                    } else {
                        __m256i v = _mm256_loadu_si256((const __m256i *)(tile_codes + (size_t)(k / 8) * 64 + 32 * h));
                        w0[tt][h] = _mm256_and_si256(v, nibble);
                        w1[tt][h] = _mm256_and_si256(_mm256_srli_epi16(v, 4), nibble);
                    }
                }
            }
#pragma GCC unroll 8
            for (int mm = 0; mm < nm; mm++) {
                const int8_t *q = a->q + (size_t)(i0 + mm) * a->cols_padded + k;
                int32_t q0, q1;
                memcpy(&q0, q, 4);
                memcpy(&q1, q + 4, 4);
                __m256i a0 = _mm256_set1_epi32(q0), a1 = _mm256_set1_epi32(q1);
#pragma GCC unroll 8
                for (int tt = 0; tt < nt; tt++) {
#pragma GCC unroll 2
                    for (int h = 0; h < 2; h++) {
                        acc[tt][mm][h] = dot_u8s8(acc[tt][mm][h], w0[tt][h], a0, w->bits);
                        acc[tt][mm][h] = dot_u8s8(acc[tt][mm][h], w1[tt][h], a1, w->bits);
                    }
                }
            }
        }

#pragma GCC unroll 8
        for (int tt = 0; tt < nt; tt++) {
            size_t index = ((size_t)(tile + tt) * w->n_groups + g) * KQ_TILE_ROWS;
#pragma GCC unroll 2
            for (int h = 0; h < 2; h++) {
                __m256 scales = a8_tile_scales(w, index + 8 * h);
#pragma GCC unroll 8
                for (int mm = 0; mm < nm; mm++) {
                    facc[tt][mm][h] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(acc[tt][mm][h]), scales,
                                                      facc[tt][mm][h]);
                }
            }
        }
    }

#pragma GCC unroll 8
    for (int tt = 0; tt < nt; tt++) {
#pragma GCC unroll 8
        for (int mm = 0; mm < nm; mm++) {
            float out[16];
            __m256 scale = _mm256_set1_ps(a->scale[i0 + mm]);
            _mm256_storeu_ps(out, _mm256_mul_ps(facc[tt][mm][0], scale));
            _mm256_storeu_ps(out + 8, _mm256_mul_ps(facc[tt][mm][1], scale));
            int valid = w->rows - (tile + tt) * KQ_TILE_ROWS;
            memcpy(y + (size_t)(i0 + mm) * ldy + (size_t)(tile + tt) * KQ_TILE_ROWS, out,
                   (size_t)(valid < 16 ? valid : 16) * sizeof(float));
        }
    }
}

void A8_ENTRY(const KQuantMatrix *w, int tile0, int tile1, const KActs *a, float *y, int ldy) {
    int m4 = a->m - a->m % 4;
    for (int t = tile0; t < tile1; t += 2) {
        bool pair = t + 1 < tile1;
        for (int i = 0; i < m4; i += 4) {
            if (pair) {
                a8_block(w, t, 2, a, i, 4, y, ldy);
            } else {
                a8_block(w, t, 1, a, i, 4, y, ldy);
            }
        }
        for (int i = m4; i < a->m; i++) {
            if (pair) {
                a8_block(w, t, 2, a, i, 1, y, ldy);
            } else {
                a8_block(w, t, 1, a, i, 1, y, ldy);
            }
        }
    }
}

// Ten independent accumulators cover the latency of the dot products.
double A8_PEAK_ENTRY(long iterations, int32_t *sink) {
    __m256i acc[10];
    for (int j = 0; j < 10; j++) {
        acc[j] = _mm256_setzero_si256();
    }
    volatile int source = 0x01020304;
    __m256i u = _mm256_set1_epi32(source), q = _mm256_set1_epi32(source + 1);
    for (long i = 0; i < iterations; i++) {
#pragma GCC unroll 10
        for (int j = 0; j < 10; j++) {
            acc[j] = dot_u8s8(acc[j], u, q, 4);
        }
    }
    for (int j = 1; j < 10; j++) {
        acc[0] = _mm256_add_epi32(acc[0], acc[j]);
    }
    *sink = _mm256_extract_epi32(acc[0], 0);
    return (double)iterations * 10 * 32 * 2;
}
