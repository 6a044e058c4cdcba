// avx512.c: AVX-512 kernels (compiled with -mavx512f -mfma; selected at run time on CPUs with it).
//
// gemm_f32 keeps the 16 lanes of the 16-lane order (kernels.h) in one zmm register per output.
// With 4 or more activation rows it computes 6 x 4 output tiles (24 accumulators) over the cache
// blocks of blocked.h. Per step of 16 k values a tile loads 6 activation and 4 weight vectors and
// issues 24 fused multiply-adds. With fewer rows (decode) it streams the weights in 1 x 4 tiles.
#if defined(__x86_64__)
#include <immintrin.h>
#include <math.h>

#include "blocked.h"
#include "kernels.h"

#define ALWAYS_INLINE static inline __attribute__((always_inline))

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
        #pragma GCC unroll 4
        for (int j = 0; j < 4; j++) {
            // Each weight is read once here: fetch 4 KB ahead of the hardware prefetcher.
            _mm_prefetch((const char *)(w + (long)j * k + k0) + 4096, _MM_HINT_T0);
            acc[j] = _mm512_fmadd_ps(xv, _mm512_loadu_ps(w + (long)j * k + k0), acc[j]);
        }
    }
    #pragma GCC unroll 4
    for (int j = 0; j < 4; j++) {
        y[j] = finish(acc[j], x, w + (long)j * k, k16, k);
    }
}

// The many-row product runs through the cache blocks of blocked.h with 6 x 4 register tiles. The
// sizes were chosen on one Zen 5 core (1 MB L2) with the product 512 x 64 x 14336, which is one
// thread's share of a 2-thread product. Without blocking, 4 x 4 tiles ran at 63 GFLOPS; blocked,
// at 148; 6 x 4 tiles with 1024-column chunks, at 178 (the core's fused multiply-add peak is 262).
// The accumulator buffer is then 192 KB, beside chunks of 192 KB (activations) and 256 KB
// (weights).
#define GEMM_MR 6

// Computes one tile of mr x nr outputs (at most GEMM_MR x 4) as GemmTileFn describes.
ALWAYS_INLINE void tile_chunk(const int mr, const int nr, const float *x, const float *w,
                              int k, int k0, int kc, float *acc, int acc_stride, bool first,
                              bool last, float *y, int ldy) {
    int k16 = k - k % 16;
    __m512 a[GEMM_MR][4];
#pragma GCC unroll 8
    for (int i = 0; i < mr; i++) {
#pragma GCC unroll 4
        for (int j = 0; j < nr; j++) {
            a[i][j] = first ? _mm512_setzero_ps()
                            : _mm512_load_ps(acc + ((size_t)i * acc_stride + (size_t)j) * 16);
        }
    }
    for (int kk = k0; kk < k0 + kc; kk += 16) {
        __m512 wv[4];
#pragma GCC unroll 4
        for (int j = 0; j < nr; j++) {
            wv[j] = _mm512_loadu_ps(w + (size_t)j * (size_t)k + (size_t)kk);
            // Keeps each vector in a register: GCC otherwise folds a load into each of its
            // multiply-adds, and a load per multiply-add saturates the load ports.
            __asm__("" : "+v"(wv[j]));
        }
#pragma GCC unroll 8
        for (int i = 0; i < mr; i++) {
            __m512 xv = _mm512_loadu_ps(x + (size_t)i * (size_t)k + (size_t)kk);
            __asm__("" : "+v"(xv));
#pragma GCC unroll 4
            for (int j = 0; j < nr; j++) {
                a[i][j] = _mm512_fmadd_ps(xv, wv[j], a[i][j]);
            }
        }
    }
#pragma GCC unroll 8
    for (int i = 0; i < mr; i++) {
#pragma GCC unroll 4
        for (int j = 0; j < nr; j++) {
            if (last) {
                y[(size_t)i * ldy + j] = finish(a[i][j], x + (size_t)i * (size_t)k,
                                                w + (size_t)j * (size_t)k, k16, k);
            } else {
                _mm512_store_ps(acc + ((size_t)i * acc_stride + (size_t)j) * 16, a[i][j]);
            }
        }
    }
}

GEMM_TILE_FN(tile_6x4, tile_chunk, GEMM_MR, 4)
GEMM_TILE_FN(tile_4x4_chunk, tile_chunk, 4, 4)
GEMM_TILE_FN(tile_1x1_chunk, tile_chunk, 1, 1)

static const GemmBlocking avx512_blocking = {
    .mb = 48, .nb = 64, .kc = 1024,
    .mr = GEMM_MR, .nr = 4, .tile = tile_6x4,
    .mr_mid = 4, .tile_mid = tile_4x4_chunk,
    .tile_one = tile_1x1_chunk,
};

void gemm_f32_avx512(const float *x, const float *w, float *y, int m, int n, int k, int ldy) {
    // Fewer than 4 rows read each weight once, from memory, whatever the blocking.
    if (m >= 4) {
        gemm_f32_blocked(&avx512_blocking, x, w, y, m, n, k, ldy);
        return;
    }
    int n4 = n - n % 4;
    for (int j = 0; j < n4; j += 4) {
        for (int i = 0; i < m; i++) {
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

// ----------------------------------------------------------------------------
// Packed integer weights (layouts and orders in kernels.h)

#if defined(__x86_64__)
#include <string.h>

// Distance of the software prefetches in the int8 streaming loops, tuned on one Zen 5 core: 64
// cache lines ahead.
#define PREFETCH_BYTES 4096

// A16_PREFETCH: the weight-only loops read nr rows side by side, each a separate stream that the
// hardware prefetcher must find again whenever the next nr rows start. Fetching, at each column,
// the same column of the row nr rows below covers those starts too. Against a fixed 1 KB ahead in
// the same row, one Zen 5 core went from 14.6 to 23.0 GB/s on 14336x4096 4-bit rows (from 19.5 to
// 24.1 on 4096x14336), the speed it then reached on rows already in L2.

void quantize_acts_avx512(const float *x, int cols, int group, KActs *a) {
    int c16 = cols - cols % 16;
    for (int i = 0; i < a->m; i++) {
        const float *row = x + (size_t)i * cols;
        int8_t *q = a->q + (size_t)i * a->cols_padded;

        // The maximum is exact in any order.
        __m512 max_v = _mm512_setzero_ps();
        for (int k = 0; k < c16; k += 16) {
            max_v = _mm512_max_ps(max_v, _mm512_abs_ps(_mm512_loadu_ps(row + k)));
        }
        float max_abs = _mm512_reduce_max_ps(max_v);
        for (int k = c16; k < cols; k++) {
            max_abs = fmaxf(max_abs, fabsf(row[k]));
        }
        float scale = max_abs / 127.0f;
        a->scale[i] = scale;

        memset(q, 0, (size_t)a->cols_padded);
        if (scale > 0.0f) {
            __m512 scale_v = _mm512_set1_ps(scale);
            __m512 lo = _mm512_set1_ps(-127.0f), hi = _mm512_set1_ps(127.0f);
            for (int k = 0; k < c16; k += 16) {
                __m512 v = _mm512_div_ps(_mm512_loadu_ps(row + k), scale_v);
                v = _mm512_roundscale_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
                v = _mm512_min_ps(_mm512_max_ps(v, lo), hi);
                _mm_storeu_si128((__m128i *)(q + k), _mm512_cvtsepi32_epi8(_mm512_cvtps_epi32(v)));
            }
            for (int k = c16; k < cols; k++) {
                q[k] = (int8_t)fminf(fmaxf(rintf(row[k] / scale), -127.0f), 127.0f);
            }
        }

        // Group ranges are multiples of 16 columns (groups are multiples of 32 or end at cols_padded).
        for (int g = 0; g < a->n_groups; g++) {
            int end = g == a->n_groups - 1 ? a->cols_padded : (g + 1) * group;
            __m512i sum = _mm512_setzero_si512();
            for (int k = g * group; k < end; k += 16) {
                sum = _mm512_add_epi32(sum, _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(q + k))));
            }
            a->group_sum[(size_t)i * a->n_groups + g] = _mm512_reduce_add_epi32(sum);
        }
    }
}

// Scales of one group of a 16-row tile as fp32.
ALWAYS_INLINE __m512 tile_scales(const KQuantMatrix *w, size_t index) {
    if (w->fp16_scales) {
        return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)((const uint16_t *)w->scales + index)));
    }
    return _mm512_loadu_ps((const float *)w->scales + index);
}

// nt tiles x nm tokens of int8 products, starting at tile `tile` and token i0. Lane r of every
// vector is row r of its tile. With one token, two accumulators per tile split the chunks to keep
// more dot products in flight; integer sums do not depend on that split.
ALWAYS_INLINE void a8_block(const KQuantMatrix *w, const int bits, int tile, const int nt,
                            const KActs *a, int i0, const int nm, float *y, int ldy) {
    const bool split = nm == 1;
    const __m512i nibble = _mm512_set1_epi8(15);
    // The float accumulators live in memory: they change once per group, and keeping them out of
    // the registers leaves all 32 to the int32 accumulators and the codes of the inner loop.
    float facc[4][8][16] __attribute__((aligned(64)));
    __m512i acc[4][8], acc2[4][8];
#pragma GCC unroll 8
    for (int tt = 0; tt < nt; tt++) {
#pragma GCC unroll 8
        for (int mm = 0; mm < nm; mm++) {
            _mm512_store_ps(facc[tt][mm], _mm512_setzero_ps());
        }
    }

    for (int g = 0; g < w->n_groups; g++) {
        int k_begin = g * w->group;
        int k_end = g == w->n_groups - 1 ? w->cols_padded : (g + 1) * w->group;

        // acc starts at -z * group_sum, so it ends at S_g = sum u q - z sum q.
#pragma GCC unroll 8
        for (int tt = 0; tt < nt; tt++) {
            size_t index = ((size_t)(tile + tt) * w->n_groups + g) * KQ_TILE_ROWS;
            __m512i zeros = w->zeros ? _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(w->zeros + index)))
                                     : _mm512_set1_epi32(w->zero_point);
#pragma GCC unroll 8
            for (int mm = 0; mm < nm; mm++) {
                int32_t sum = a->group_sum[(size_t)(i0 + mm) * a->n_groups + g];
                acc[tt][mm] = _mm512_mullo_epi32(zeros, _mm512_set1_epi32(-sum));
                acc2[tt][mm] = _mm512_setzero_si512();
            }
        }

        for (int k = k_begin; k < k_end; k += 8) {
            __m512i w0[4], w1[4];
#pragma GCC unroll 8
            for (int tt = 0; tt < nt; tt++) {
                const uint8_t *tile_codes = w->codes + (size_t)(tile + tt) * w->stride;
                if (split) {
                    // One token reads each chunk once: fetch ahead of the hardware prefetcher,
                    // which follows nt interleaved streams less well than one.
                    const uint8_t *ahead = tile_codes + (size_t)(k / 8) * 64 * (bits / 4) + PREFETCH_BYTES;
                    _mm_prefetch((const char *)ahead, _MM_HINT_T0);
                    if (bits == 8) {
                        _mm_prefetch((const char *)ahead + 64, _MM_HINT_T0);
                    }
                }
                if (bits == 8) {
                    w0[tt] = _mm512_loadu_si512(tile_codes + (size_t)(k / 4) * 64);
                    w1[tt] = _mm512_loadu_si512(tile_codes + (size_t)(k / 4 + 1) * 64);
                } else {
                    __m512i v = _mm512_loadu_si512(tile_codes + (size_t)(k / 8) * 64);
                    w0[tt] = _mm512_and_si512(v, nibble);
                    w1[tt] = _mm512_and_si512(_mm512_srli_epi16(v, 4), nibble);
                }
            }
#pragma GCC unroll 8
            for (int mm = 0; mm < nm; mm++) {
                const int8_t *q = a->q + (size_t)(i0 + mm) * a->cols_padded + k;
                int32_t q0, q1;
                memcpy(&q0, q, 4);
                memcpy(&q1, q + 4, 4);
                __m512i a0 = _mm512_set1_epi32(q0), a1 = _mm512_set1_epi32(q1);
#pragma GCC unroll 8
                for (int tt = 0; tt < nt; tt++) {
                    acc[tt][mm] = _mm512_dpbusd_epi32(acc[tt][mm], w0[tt], a0);
                    if (split) {
                        acc2[tt][mm] = _mm512_dpbusd_epi32(acc2[tt][mm], w1[tt], a1);
                    } else {
                        acc[tt][mm] = _mm512_dpbusd_epi32(acc[tt][mm], w1[tt], a1);
                    }
                }
            }
        }

#pragma GCC unroll 8
        for (int tt = 0; tt < nt; tt++) {
            __m512 scales = tile_scales(w, ((size_t)(tile + tt) * w->n_groups + g) * KQ_TILE_ROWS);
#pragma GCC unroll 8
            for (int mm = 0; mm < nm; mm++) {
                __m512i sum = split ? _mm512_add_epi32(acc[tt][mm], acc2[tt][mm]) : acc[tt][mm];
                _mm512_store_ps(facc[tt][mm], _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), scales,
                                                              _mm512_load_ps(facc[tt][mm])));
            }
        }
    }

#pragma GCC unroll 8
    for (int tt = 0; tt < nt; tt++) {
        int valid = w->rows - (tile + tt) * KQ_TILE_ROWS;
        __mmask16 mask = valid >= 16 ? 0xffff : (__mmask16)((1u << valid) - 1);
#pragma GCC unroll 8
        for (int mm = 0; mm < nm; mm++) {
            __m512 out = _mm512_mul_ps(_mm512_load_ps(facc[tt][mm]), _mm512_set1_ps(a->scale[i0 + mm]));
            _mm512_mask_storeu_ps(y + (size_t)(i0 + mm) * ldy + (size_t)(tile + tt) * KQ_TILE_ROWS,
                                  mask, out);
        }
    }
}

// Tokens per int8 microkernel: 2 tiles x 6 tokens keep 12 int32 accumulators, which GCC 12
// allocates without spills (8 tokens: 5% to 10% slower on Zen 5, from spills).
#define A8_TOKENS 6

// The microkernels for one container size, so that its branches fold away.
ALWAYS_INLINE void a8_tiles(const KQuantMatrix *w, const int bits, int tile0, int tile1,
                            const KActs *a, float *y, int ldy) {
    int m8 = a->m - a->m % A8_TOKENS;
    for (int t = tile0; t < tile1; t += 2) {
        bool pair = t + 1 < tile1;
        for (int i = 0; i < m8; i += A8_TOKENS) {
            if (pair) {
                a8_block(w, bits, t, 2, a, i, A8_TOKENS, y, ldy);
            } else {
                a8_block(w, bits, t, 1, a, i, A8_TOKENS, y, ldy);
            }
        }
    }
    // Remaining tokens one at a time, four tiles per pass.
    for (int i = m8; i < a->m; i++) {
        int t = tile0;
        for (; t + 4 <= tile1; t += 4) {
            a8_block(w, bits, t, 4, a, i, 1, y, ldy);
        }
        for (; t < tile1; t++) {
            a8_block(w, bits, t, 1, a, i, 1, y, ldy);
        }
    }
}

void qgemm_a8_avx512(const KQuantMatrix *w, int tile0, int tile1, const KActs *a, float *y,
                     int ldy) {
    if (w->bits == 8) {
        a8_tiles(w, 8, tile0, tile1, a, y, ldy);
    } else {
        a8_tiles(w, 4, tile0, tile1, a, y, ldy);
    }
}

// Returns the 16 24-bit words of a 3-bit superblock (48 bytes), one per 32-bit lane, top byte 0.
// The masked load reads the superblock's 12 dwords only, vpermd gives each 128-bit lane the 12
// bytes of its four words, and vpshufb moves each word to its own dword.
ALWAYS_INLINE __m512i spread_words3(const uint8_t *super) {
    __m512i dwords = _mm512_maskz_loadu_epi32(0x0fff, super);
    const __m512i place = _mm512_setr_epi32(0, 1, 2, 0, 3, 4, 5, 0, 6, 7, 8, 0, 9, 10, 11, 0);
    const __m512i words = _mm512_broadcast_i32x4(
        _mm_setr_epi8(0, 1, 2, -1, 3, 4, 5, -1, 6, 7, 8, -1, 9, 10, 11, -1));
    return _mm512_shuffle_epi8(_mm512_permutexvar_epi32(place, dwords), words);
}

// Returns the lanes of the superblock that contains step j of a 4- or 3-bit row. Step t = j % 8 is
// in bits bits * t .. bits * t + bits - 1 of each lane.
ALWAYS_INLINE __m512i super_lanes(const int bits, const uint8_t *line, int j) {
    const uint8_t *super = line + (size_t)(j / 8) * (size_t)(bits * 16);
    return bits == 4 ? _mm512_loadu_si512(super) : spread_words3(super);
}

// Returns the codes of the 16 columns [16 * j, 16 * j + 16) of a KQ_ROWS row of w as int32 lanes.
ALWAYS_INLINE __m512i row_codes16(const KQuantMatrix *w, const int bits, const uint8_t *line,
                                  int j) {
    if (bits == 8) {
        return _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(line + (size_t)j * 16)));
    }
    const __m512i mask = _mm512_set1_epi32((1 << bits) - 1);
    int super_steps = kq_rows_super_cols(w) / 16;
    if (j < super_steps) {
        __m512i lanes = super_lanes(bits, line, j);
        return _mm512_and_si512(_mm512_srl_epi32(lanes, _mm_cvtsi32_si128(bits * (j % 8))), mask);
    }

    // 32-column blocks (bits * 4 bytes) follow the superblocks (bits * 16 bytes per 8 steps).
    // super_steps is even, so j % 2 is the half of the block.
    const uint8_t *block = line + (size_t)super_steps * (size_t)(bits * 2) +
                           (size_t)((j - super_steps) / 2) * (size_t)(bits * 4);
    int half = j % 2;
    if (bits == 4) {
        __m512i bytes = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)block));
        return half ? _mm512_srli_epi32(bytes, 4) : _mm512_and_si512(bytes, mask);
    }
    // 3-bit: bytes 0-7 hold two bits of columns i, i + 8, i + 16, i + 24; bytes 8-11 the third.
    __m128i low8 = _mm_loadl_epi64((const __m128i *)block);
    __m512i crumbs = _mm512_cvtepu8_epi32(_mm_unpacklo_epi64(low8, low8));
    const __m512i shifts = half ? _mm512_set_epi32(6, 6, 6, 6, 6, 6, 6, 6, 4, 4, 4, 4, 4, 4, 4, 4)
                                : _mm512_set_epi32(2, 2, 2, 2, 2, 2, 2, 2, 0, 0, 0, 0, 0, 0, 0, 0);
    __m512i u = _mm512_and_si512(_mm512_srlv_epi32(crumbs, shifts), _mm512_set1_epi32(3));
    uint32_t high_bits;
    memcpy(&high_bits, block + 8, 4);
    __mmask16 high = (__mmask16)(high_bits >> (16 * half));
    return _mm512_mask_add_epi32(u, high, u, _mm512_set1_epi32(4));
}

// (u - z) * s for 16 columns: the same value as the scalar (float)(u - z) * s, since u - z is a
// small integer that converts exactly either way.
ALWAYS_INLINE __m512 dequant16(const KQuantMatrix *w, const int bits, const uint8_t *line, int j,
                               __m512 zero, __m512 scale) {
    __m512 u = _mm512_cvtepi32_ps(row_codes16(w, bits, line, j));
    return _mm512_mul_ps(_mm512_sub_ps(u, zero), scale);
}

// Adds the tail columns k16 .. cols - 1 of row n to sum in increasing order, as the scalar path.
static float a16_tail(const KQuantMatrix *w, int n, const float *x, int k16, float sum) {
    for (int k = k16; k < w->cols; k++) {
        int g = k / w->group < w->n_groups ? k / w->group : w->n_groups - 1;
        float value = (float)(kq_code(w, n, k) - kq_zero(w, n, g)) * kq_scale(w, n, g);
        sum = fmaf(x[k], value, sum);
    }
    return sum;
}

// Dequantization of one group of a row. For 4- and 3-bit codes, `table` holds (u - z) * s for every
// code u, and vpermps looks values up in it (the same values as computing them per weight). For
// 8-bit codes, the kernels compute them from `zero` and `scale`.
typedef struct {
    __m512 table, zero, scale;
} GroupDequant;

// Returns the codes whose values a table contains, in its 16 entries. vpermps reads 4 bits of each
// index, so 3-bit tables repeat their 8 codes, and bit 3 of a 3-bit index may then be anything.
ALWAYS_INLINE __m512 table_codes(const int bits) {
    return bits == 3 ? _mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 0, 1, 2, 3, 4, 5, 6, 7)
                     : _mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
}

// Returns the dequantization of group g of row n. `fp16` and `symmetric` are constants in each
// instance (w->fp16_scales, w->zeros == NULL), and sym_codes contains u - z of symmetric formats
// (computed once per row block). A group then costs 3 instructions per row (broadcast, convert,
// multiply) without branches or scalar conversions. That took 4-bit rows from 50.5 to 56 G
// weights/s on one Zen 5 core (256x2048 rows in L2).
ALWAYS_INLINE GroupDequant group_dequant(const KQuantMatrix *w, const int bits, const bool fp16,
                                         const bool symmetric, __m512 sym_codes, int n, int g) {
    // KQ_ROWS scales and zero points are [rows][n_groups] (kq_scale and kq_zero, inlined).
    size_t index = (size_t)n * (size_t)w->n_groups + (size_t)g;
    GroupDequant d;
    d.scale = fp16 ? _mm512_cvtph_ps(_mm256_set1_epi16((short)((const uint16_t *)w->scales)[index]))
                   : _mm512_set1_ps(((const float *)w->scales)[index]);
    d.zero = _mm512_set1_ps((float)(symmetric ? w->zero_point : w->zeros[index]));
    __m512 codes = symmetric ? sym_codes : _mm512_sub_ps(table_codes(bits), d.zero);
    d.table = _mm512_mul_ps(codes, d.scale);
    return d;
}

// Computes y for nr (up to 8) consecutive 4- or 3-bit rows from n0, sharing the loads of x, in the
// 16-lane order. Each group's values (u - z) * s sit in one table register per row. In the superblocks, one load
// per row (and for 3-bit codes a spread of the words over the lanes) serves 8 steps. Step t shifts
// it by bits * t, and vpermps looks the low 4 bits of each lane up in the table. It ignores the
// higher bits, so no mask is needed. That is 3 instructions per 16 weights (shift, vpermps, fma)
// against 3.5 for 4-bit 32-column blocks and about 11 for 3-bit ones, whose bits must first be
// gathered per lane. On one Zen 5 core with 256x2048 rows in L2 (and group_dequant's tables),
// 4-bit rows went from 56 to 66.5 G weights/s with superblocks, 3-bit rows from 25 to 61.
ALWAYS_INLINE void a16_rows_super(const KQuantMatrix *w, const int bits, const bool fp16,
                                  const bool symmetric, int n0, const int nr, const float *x,
                                  float *y) {
    int k16 = w->cols - w->cols % 16;
    int steps = k16 / 16;
    int super_steps = kq_rows_super_cols(w) / 16;
    int whole_steps = (steps < super_steps ? steps : super_steps) / 8 * 8;
    const __m512 sym_codes = _mm512_sub_ps(table_codes(bits), _mm512_set1_ps((float)w->zero_point));
    __m512 lane[8], table[8];
    const uint8_t *line[8];
#pragma GCC unroll 8
    for (int r = 0; r < nr; r++) {
        lane[r] = _mm512_setzero_ps();
        line[r] = w->codes + (size_t)(n0 + r) * w->stride;
        table[r] = group_dequant(w, bits, fp16, symmetric, sym_codes, n0 + r, 0).table;
    }

    // Groups of a matrix with several are multiples of 32 columns, so they start at even steps.
    int g = 0;
    int next_group = w->n_groups > 1 ? w->group / 16 : steps;
    const size_t ahead = (size_t)nr * w->stride; // see A16_PREFETCH
    int j = 0;
    for (; j < whole_steps; j += 8) {
        // Fetch the superblock's last byte: 48-byte superblocks then reach every cache line.
        size_t last = (size_t)(j / 8 + 1) * (size_t)(bits * 16) - 1;
        __m512i lanes[8];
#pragma GCC unroll 8
        for (int r = 0; r < nr; r++) {
            _mm_prefetch((const char *)line[r] + last + ahead, _MM_HINT_T0);
            lanes[r] = super_lanes(bits, line[r], j);
        }
#pragma GCC unroll 4
        for (int p = 0; p < 4; p++) {
            if (j + 2 * p == next_group) {
                g++;
                next_group = (g + 1) * w->group / 16;
#pragma GCC unroll 8
                for (int r = 0; r < nr; r++) {
                    table[r] = group_dequant(w, bits, fp16, symmetric, sym_codes, n0 + r, g).table;
                }
            }
            __m512 x0 = _mm512_loadu_ps(x + (size_t)(j + 2 * p) * 16);
            __m512 x1 = _mm512_loadu_ps(x + (size_t)(j + 2 * p) * 16 + 16);
#pragma GCC unroll 8
            for (int r = 0; r < nr; r++) {
                __m512i i0 = p == 0 ? lanes[r] : _mm512_srli_epi32(lanes[r], 2 * p * bits);
                __m512i i1 = _mm512_srli_epi32(lanes[r], (2 * p + 1) * bits);
                lane[r] = _mm512_fmadd_ps(x0, _mm512_permutexvar_ps(i0, table[r]), lane[r]);
                lane[r] = _mm512_fmadd_ps(x1, _mm512_permutexvar_ps(i1, table[r]), lane[r]);
            }
        }
    }

    // A partial last superblock and the 32-column blocks, one step at a time.
    for (; j < steps; j++) {
        if (j == next_group) {
            g++;
            next_group = (g + 1) * w->group / 16;
#pragma GCC unroll 8
            for (int r = 0; r < nr; r++) {
                table[r] = group_dequant(w, bits, fp16, symmetric, sym_codes, n0 + r, g).table;
            }
        }
        __m512 x0 = _mm512_loadu_ps(x + (size_t)j * 16);
#pragma GCC unroll 8
        for (int r = 0; r < nr; r++) {
            __m512 value = _mm512_permutexvar_ps(row_codes16(w, bits, line[r], j), table[r]);
            lane[r] = _mm512_fmadd_ps(x0, value, lane[r]);
        }
    }
#pragma GCC unroll 8
    for (int r = 0; r < nr; r++) {
        y[n0 + r] = a16_tail(w, n0 + r, x, k16, reduce_16lane(lane[r]));
    }
}

// Computes y for nr (up to 8) consecutive 8-bit rows from n0, sharing the loads of x. Each lane adds
// its columns in increasing order, one 16-column step after another, as the 16-lane order requires.
ALWAYS_INLINE void a16_rows8(const KQuantMatrix *w, const bool fp16, const bool symmetric, int n0,
                             const int nr, const float *x, float *y) {
    int k16 = w->cols - w->cols % 16;
    __m512 lane[8];
    const uint8_t *line[8];
#pragma GCC unroll 8
    for (int r = 0; r < nr; r++) {
        lane[r] = _mm512_setzero_ps();
        line[r] = w->codes + (size_t)(n0 + r) * w->stride;
    }
    const size_t ahead = (size_t)nr * w->stride; // see A16_PREFETCH
    const __m512 unused = _mm512_setzero_ps();   // 8-bit codes need no table
    for (int g = 0; g < w->n_groups; g++) {
        // Groups start at multiples of 32 columns, so j_begin is even.
        int j_begin = g * w->group / 16;
        int j_end = (g + 1) * w->group < k16 ? (g + 1) * w->group / 16 : k16 / 16;
        GroupDequant d[8];
#pragma GCC unroll 8
        for (int r = 0; r < nr; r++) {
            d[r] = group_dequant(w, 8, fp16, symmetric, unused, n0 + r, g);
        }
        int j = j_begin;
        for (; j + 2 <= j_end; j += 2) {
            __m512 x0 = _mm512_loadu_ps(x + (size_t)j * 16);
            __m512 x1 = _mm512_loadu_ps(x + (size_t)j * 16 + 16);
#pragma GCC unroll 8
            for (int r = 0; r < nr; r++) {
                // One prefetch per cache line (2 blocks of 32 codes) of the row nr rows below.
                if ((j / 2) % 2 == 0) {
                    _mm_prefetch((const char *)line[r] + (size_t)j * 16 + ahead, _MM_HINT_T0);
                }
                __m512 w0 = dequant16(w, 8, line[r], j, d[r].zero, d[r].scale);
                __m512 w1 = dequant16(w, 8, line[r], j + 1, d[r].zero, d[r].scale);
                lane[r] = _mm512_fmadd_ps(x0, w0, lane[r]);
                lane[r] = _mm512_fmadd_ps(x1, w1, lane[r]);
            }
        }
        if (j < j_end) {
            __m512 x0 = _mm512_loadu_ps(x + (size_t)j * 16);
#pragma GCC unroll 8
            for (int r = 0; r < nr; r++) {
                __m512 w0 = dequant16(w, 8, line[r], j, d[r].zero, d[r].scale);
                lane[r] = _mm512_fmadd_ps(x0, w0, lane[r]);
            }
        }
    }
#pragma GCC unroll 8
    for (int r = 0; r < nr; r++) {
        y[n0 + r] = a16_tail(w, n0 + r, x, k16, reduce_16lane(lane[r]));
    }
}

ALWAYS_INLINE void a16_range(const KQuantMatrix *w, const int bits, const bool fp16,
                             const bool symmetric, int row0, int row1, const float *x, float *y) {
    int n = row0;
    for (; n + 8 <= row1; n += 8) {
        if (bits == 8) {
            a16_rows8(w, fp16, symmetric, n, 8, x, y);
        } else {
            a16_rows_super(w, bits, fp16, symmetric, n, 8, x, y);
        }
    }
    for (; n < row1; n++) {
        if (bits == 8) {
            a16_rows8(w, fp16, symmetric, n, 1, x, y);
        } else {
            a16_rows_super(w, bits, fp16, symmetric, n, 1, x, y);
        }
    }
}

#include "a16_instances.h"
A16_INSTANCES(8)
A16_INSTANCES(4)
A16_INSTANCES(3)

void qgemv_a16_avx512(const KQuantMatrix *w, int row0, int row1, const float *x, float *y) {
    static void (*const instances[3][4])(const KQuantMatrix *, int, int, const float *, float *) = {
        {a16_range_8_00, a16_range_8_01, a16_range_8_10, a16_range_8_11},
        {a16_range_4_00, a16_range_4_01, a16_range_4_10, a16_range_4_11},
        {a16_range_3_00, a16_range_3_01, a16_range_3_10, a16_range_3_11},
    };
    int size = 2; // 3-bit
    if (w->bits == 8) {
        size = 0;
    } else if (w->bits == 4) {
        size = 1;
    }
    instances[size][a16_kind(w)](w, row0, row1, x, y);
}

void dequantize_rows_avx512(const KQuantMatrix *w, int row0, int row1, float *out) {
    int k16 = w->cols - w->cols % 16;
    for (int n = row0; n < row1; n++) {
        const uint8_t *line = w->codes + (size_t)n * w->stride;
        float *dst = out + (size_t)(n - row0) * w->cols;
        for (int g = 0; g < w->n_groups; g++) {
            int j_begin = g * w->group / 16;
            int j_end = (g + 1) * w->group < k16 ? (g + 1) * w->group / 16 : k16 / 16;
            __m512 zero = _mm512_set1_ps((float)kq_zero(w, n, g));
            __m512 scale = _mm512_set1_ps(kq_scale(w, n, g));
            for (int j = j_begin; j < j_end; j++) {
                _mm512_storeu_ps(dst + (size_t)j * 16, dequant16(w, w->bits, line, j, zero, scale));
            }
        }
        for (int k = k16; k < w->cols; k++) {
            int g = k / w->group < w->n_groups ? k / w->group : w->n_groups - 1;
            dst[k] = (float)(kq_code(w, n, k) - kq_zero(w, n, g)) * kq_scale(w, n, g);
        }
    }
}

#endif // __x86_64__

#if defined(__x86_64__)
// Twelve independent accumulators cover the latency of vpdpbusd and vfmadd on current cores.
double peak_int8_avx512(long iterations, int32_t *sink) {
    __m512i acc[12];
    for (int j = 0; j < 12; j++) {
        acc[j] = _mm512_setzero_si512();
    }
    volatile int source = 0x01020304;
    __m512i u = _mm512_set1_epi32(source), q = _mm512_set1_epi32(source + 1);
    for (long i = 0; i < iterations; i++) {
#pragma GCC unroll 12
        for (int j = 0; j < 12; j++) {
            acc[j] = _mm512_dpbusd_epi32(acc[j], u, q);
        }
    }
    for (int j = 1; j < 12; j++) {
        acc[0] = _mm512_add_epi32(acc[0], acc[j]);
    }
    *sink = _mm512_reduce_add_epi32(acc[0]);
    return (double)iterations * 12 * 64 * 2;
}

double peak_fp32_avx512(long iterations, float *sink) {
    __m512 acc[12];
    for (int j = 0; j < 12; j++) {
        acc[j] = _mm512_setzero_ps();
    }
    volatile float source = 1e-7f;
    __m512 a = _mm512_set1_ps(source);
    for (long i = 0; i < iterations; i++) {
#pragma GCC unroll 12
        for (int j = 0; j < 12; j++) {
            acc[j] = _mm512_fmadd_ps(a, a, acc[j]);
        }
    }
    for (int j = 1; j < 12; j++) {
        acc[0] = _mm512_add_ps(acc[0], acc[j]);
    }
    *sink = _mm512_reduce_add_ps(acc[0]);
    return (double)iterations * 12 * 16 * 2;
}
#endif // __x86_64__
