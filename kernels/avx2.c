// avx2.c: AVX2 kernels (compiled with -mavx2 -mfma; selected at run time on CPUs with it).
//
// gemm_f32 keeps the 16 lanes of the 16-lane order (kernels.h) in two ymm registers per output
// (lanes 0-7 and 8-15) and computes 2 x 2 output tiles, which fit AVX2's 16 registers, over the
// cache blocks of blocked.h.
#if defined(__x86_64__)
#include <immintrin.h>
#include <math.h>
#include <stdbool.h>

#include "blocked.h"
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

// Computes one tile of mr x nr outputs (at most 2 x 2) as GemmTileFn (blocked.h) describes. The
// 16 floats of an output's accumulators are its lanes 0-7, then 8-15.
static inline __attribute__((always_inline)) void
tile_chunk(const int mr, const int nr, const float *x, const float *w, int k, int k0, int kc,
           float *acc, int acc_stride, bool first, bool last, float *y, int ldy) {
    int k16 = k - k % 16;
    __m256 lo[2][2], hi[2][2];
    #pragma GCC unroll 2
    for (int i = 0; i < mr; i++) {
        #pragma GCC unroll 2
        for (int j = 0; j < nr; j++) {
            float *a = acc + ((size_t)i * acc_stride + (size_t)j) * 16;
            lo[i][j] = first ? _mm256_setzero_ps() : _mm256_load_ps(a);
            hi[i][j] = first ? _mm256_setzero_ps() : _mm256_load_ps(a + 8);
        }
    }
    for (int kk = k0; kk < k0 + kc; kk += 16) {
        __m256 w_lo[2], w_hi[2];
        #pragma GCC unroll 2
        for (int j = 0; j < nr; j++) {
            w_lo[j] = _mm256_loadu_ps(w + (size_t)j * (size_t)k + (size_t)kk);
            w_hi[j] = _mm256_loadu_ps(w + (size_t)j * (size_t)k + (size_t)kk + 8);
            // In registers, so that GCC does not fold a load into each multiply-add.
            __asm__("" : "+x"(w_lo[j]), "+x"(w_hi[j]));
        }
        #pragma GCC unroll 2
        for (int i = 0; i < mr; i++) {
            __m256 x_lo = _mm256_loadu_ps(x + (size_t)i * (size_t)k + (size_t)kk);
            __m256 x_hi = _mm256_loadu_ps(x + (size_t)i * (size_t)k + (size_t)kk + 8);
            #pragma GCC unroll 2
            for (int j = 0; j < nr; j++) {
                lo[i][j] = _mm256_fmadd_ps(x_lo, w_lo[j], lo[i][j]);
                hi[i][j] = _mm256_fmadd_ps(x_hi, w_hi[j], hi[i][j]);
            }
        }
    }
    #pragma GCC unroll 2
    for (int i = 0; i < mr; i++) {
        #pragma GCC unroll 2
        for (int j = 0; j < nr; j++) {
            if (last) {
                y[(size_t)i * ldy + j] = finish(lo[i][j], hi[i][j], x + (size_t)i * (size_t)k,
                                                w + (size_t)j * (size_t)k, k16, k);
            } else {
                float *a = acc + ((size_t)i * acc_stride + (size_t)j) * 16;
                _mm256_store_ps(a, lo[i][j]);
                _mm256_store_ps(a + 8, hi[i][j]);
            }
        }
    }
}

GEMM_TILE_FN(tile_2x2_chunk, tile_chunk, 2, 2)
GEMM_TILE_FN(tile_1x1_chunk, tile_chunk, 1, 1)

// Blocks for an L2 of 256 KB or more: a 32 KB accumulator buffer beside chunks of 64 KB
// (activations) and 128 KB (weights). Chosen on one Zen 5 core with 512 x 64 products: at
// k = 896, 4864 and 14336, 81, 80 and 68 GFLOPS, against 80, 61-66 and 23 unblocked.
static const GemmBlocking avx2_blocking = {
    .mb = 16, .nb = 32, .kc = 1024,
    .mr = 2, .nr = 2, .tile = tile_2x2_chunk,
    .tile_one = tile_1x1_chunk,
};

void gemm_f32_avx2(const float *x, const float *w, float *y, int m, int n, int k, int ldy) {
    if (m >= 4) {
        gemm_f32_blocked(&avx2_blocking, x, w, y, m, n, k, ldy);
        return;
    }
    // Fewer than 4 rows (decode) read each weight once, from memory. One pass over a whole row per
    // output keeps one stream, which the hardware prefetcher follows, whereas the blocked loop
    // would interleave 32 rows in 4 KB pieces.
    int k16 = k - k % 16;
    float unused[16] __attribute__((aligned(32))); // first and last: the buffer is not touched
    for (int i = 0; i < m; i++) {
        for (int j = 0; j < n; j++) {
            tile_chunk(1, 1, x + (size_t)i * (size_t)k, w + (size_t)j * (size_t)k, k, 0, k16,
                       unused, 0, true, true, y + (size_t)i * ldy + j, ldy);
        }
    }
}

#endif // __x86_64__

// ----------------------------------------------------------------------------
// Packed integer weights (layouts and orders in kernels.h)

#if defined(__x86_64__)
#include <stdbool.h>
#include <string.h>

// Four u8 x s8 products per int32 lane without AVX-VNNI. vpmaddubsw adds pairs into int16 with
// saturation: 4-bit codes cannot reach it (2 * 15 * 127), 8-bit codes are split into nibbles.
static inline __m256i dot_u8s8(__m256i acc, __m256i u, __m256i q, int bits) {
    const __m256i ones = _mm256_set1_epi16(1);
    if (bits == 4) {
        return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u, q), ones));
    }
    const __m256i nibble = _mm256_set1_epi8(15);
    __m256i low = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_and_si256(u, nibble), q), ones);
    __m256i high_u = _mm256_and_si256(_mm256_srli_epi16(u, 4), nibble);
    __m256i high = _mm256_madd_epi16(_mm256_maddubs_epi16(high_u, q), ones);
    return _mm256_add_epi32(acc, _mm256_add_epi32(low, _mm256_slli_epi32(high, 4)));
}

#define A8_ENTRY qgemm_a8_avx2
#define A8_PEAK_ENTRY peak_int8_avx2
#include "avx2_a8.h"

#define AVX2_ALWAYS_INLINE static inline __attribute__((always_inline))

// Codes of the 8 columns [8 * e, 8 * e + 8) of a KQ_ROWS row, as int32 lanes.
AVX2_ALWAYS_INLINE __m256i row_codes8(const KQuantMatrix *w, const uint8_t *line, int e) {
    int j = e / 2;  // 16-column step
    int part = e % 2; // lanes 0-7 or 8-15 of the step
    int half = j % 2;
    if (w->bits == 8) {
        return _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(line + (size_t)e * 8)));
    }
    int super_steps = kq_rows_super_cols(w) / 16;
    if (j < super_steps) {
        // Lanes 8 * part .. 8 * part + 7 of a 128-column superblock, step j % 8 (kernels.h).
        const uint8_t *super = line + (size_t)(j / 8) * (size_t)(w->bits * 16);
        __m256i v;
        if (w->bits == 4) {
            v = _mm256_loadu_si256((const __m256i *)(super + 32 * part));
        } else {
            // Eight 24-bit words: the masked load reads their 6 dwords only, vpermd gives each
            // 128-bit lane the 12 bytes of its four words, and vpshufb moves each to its dword.
            __m256i dwords = _mm256_maskload_epi32((const int *)(super + 24 * part),
                                                   _mm256_setr_epi32(-1, -1, -1, -1, -1, -1, 0, 0));
            __m256i placed = _mm256_permutevar8x32_epi32(dwords, _mm256_setr_epi32(0, 1, 2, 0, 3, 4, 5, 0));
            const __m256i words = _mm256_setr_epi8(0, 1, 2, -1, 3, 4, 5, -1, 6, 7, 8, -1, 9, 10, 11, -1,
                                                   0, 1, 2, -1, 3, 4, 5, -1, 6, 7, 8, -1, 9, 10, 11, -1);
            v = _mm256_shuffle_epi8(placed, words);
        }
        __m256i shifted = _mm256_srl_epi32(v, _mm_cvtsi32_si128(w->bits * (j % 8)));
        return _mm256_and_si256(shifted, _mm256_set1_epi32((1 << w->bits) - 1));
    }

    // 32-column blocks (bits * 4 bytes) follow the superblocks. super_steps is even, so j % 2 is
    // the half of the block.
    const uint8_t *block = line + (size_t)super_steps * (size_t)(w->bits * 2) +
                           (size_t)((j - super_steps) / 2) * (size_t)(w->bits * 4);
    if (w->bits == 4) {
        const __m256i nibble = _mm256_set1_epi32(15);
        __m256i bytes = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(block + 8 * part)));
        return half ? _mm256_srli_epi32(bytes, 4) : _mm256_and_si256(bytes, nibble);
    }
    // 3-bit: bytes 0-7 hold two bits of columns i, i + 8, i + 16, i + 24; bytes 8-11 the third.
    __m256i crumbs = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)block));
    __m256i low = _mm256_and_si256(_mm256_srli_epi32(crumbs, 2 * (2 * half + part)), _mm256_set1_epi32(3));
    uint32_t high_bits;
    memcpy(&high_bits, block + 8, 4);
    __m256i bits = _mm256_set1_epi32((int)(high_bits >> (16 * half + 8 * part)));
    __m256i high = _mm256_and_si256(_mm256_srlv_epi32(bits, _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)),
                                    _mm256_set1_epi32(1));
    return _mm256_or_si256(low, _mm256_slli_epi32(high, 2));
}

// (u - z) * s for 8 columns, equal to the scalar (float)(u - z) * s (u - z converts exactly).
AVX2_ALWAYS_INLINE __m256 dequant8(const KQuantMatrix *w, const uint8_t *line, int e, __m256 zero,
                                   __m256 scale) {
    __m256 u = _mm256_cvtepi32_ps(row_codes8(w, line, e));
    return _mm256_mul_ps(_mm256_sub_ps(u, zero), scale);
}

// Dequantized value of column k of row n, as the scalar path computes it.
static float dequant_one(const KQuantMatrix *w, int n, int k) {
    int g = k / w->group < w->n_groups ? k / w->group : w->n_groups - 1;
    return (float)(kq_code(w, n, k) - kq_zero(w, n, g)) * kq_scale(w, n, g);
}

// Returns row n's product: lanes lo and hi added in the tree order, then the columns k16 .. cols - 1
// in increasing order, as the scalar path.
static float a16_finish(const KQuantMatrix *w, int n, const float *x, int k16, __m256 lo,
                        __m256 hi) {
    float sum = reduce_16lane(lo, hi);
    for (int k = k16; k < w->cols; k++) {
        sum = fmaf(x[k], dequant_one(w, n, k), sum);
    }
    return sum;
}

// Last 16-column step of group g (exclusive), clipped to k16.
static int group_step_end(const KQuantMatrix *w, int g, int k16) {
    return (g + 1) * w->group < k16 ? (g + 1) * w->group / 16 : k16 / 16;
}

AVX2_ALWAYS_INLINE void a16_rows(const KQuantMatrix *w, int n0, const int nr, const float *x, float *y) {
    int k16 = w->cols - w->cols % 16;
    __m256 lo[4], hi[4];
    const uint8_t *line[4];
#pragma GCC unroll 4
    for (int r = 0; r < nr; r++) {
        lo[r] = hi[r] = _mm256_setzero_ps();
        line[r] = w->codes + (size_t)(n0 + r) * w->stride;
    }
    for (int g = 0; g < w->n_groups; g++) {
        __m256 zero[4], scale[4];
#pragma GCC unroll 4
        for (int r = 0; r < nr; r++) {
            zero[r] = _mm256_set1_ps((float)kq_zero(w, n0 + r, g));
            scale[r] = _mm256_set1_ps(kq_scale(w, n0 + r, g));
        }
        for (int j = g * w->group / 16; j < group_step_end(w, g, k16); j++) {
            __m256 x_lo = _mm256_loadu_ps(x + (size_t)j * 16);
            __m256 x_hi = _mm256_loadu_ps(x + (size_t)j * 16 + 8);
#pragma GCC unroll 4
            for (int r = 0; r < nr; r++) {
                // One prefetch per cache line (4 steps of 8-bit codes) of the row nr rows below.
                if (w->bits == 8 && j % 4 == 0) {
                    _mm_prefetch((const char *)line[r] + (size_t)j * 16 + (size_t)nr * w->stride,
                                 _MM_HINT_T0);
                }
                lo[r] = _mm256_fmadd_ps(x_lo, dequant8(w, line[r], 2 * j, zero[r], scale[r]), lo[r]);
                hi[r] = _mm256_fmadd_ps(x_hi, dequant8(w, line[r], 2 * j + 1, zero[r], scale[r]), hi[r]);
            }
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < nr; r++) {
        y[n0 + r] = a16_finish(w, n0 + r, x, k16, lo[r], hi[r]);
    }
}

// Stores the 16 words of a 3-bit superblock (kernels.h) to lanes[16], one per 32-bit lane. The
// masked loads read the superblock's 12 dwords only.
AVX2_ALWAYS_INLINE void spread_words3(const uint8_t *super, uint32_t *lanes) {
    const __m256i first_six = _mm256_setr_epi32(-1, -1, -1, -1, -1, -1, 0, 0);
    const __m256i place = _mm256_setr_epi32(0, 1, 2, 0, 3, 4, 5, 0);
    const __m256i words = _mm256_setr_epi8(0, 1, 2, -1, 3, 4, 5, -1, 6, 7, 8, -1, 9, 10, 11, -1,
                                           0, 1, 2, -1, 3, 4, 5, -1, 6, 7, 8, -1, 9, 10, 11, -1);
    for (int part = 0; part < 2; part++) {
        __m256i dwords = _mm256_maskload_epi32((const int *)(super + 24 * part), first_six);
        __m256i spread = _mm256_shuffle_epi8(_mm256_permutevar8x32_epi32(dwords, place), words);
        _mm256_storeu_si256((__m256i *)(lanes + 8 * part), spread);
    }
}

// Returns the values (u - z) * s of 8 codes in the low bits of `codes`. They are computed for 4-bit
// codes and looked up for 3-bit ones (vpermps reads the low 3 bits, and table[u] = (u - z) * s).
AVX2_ALWAYS_INLINE __m256 super_values8(const int bits, __m256i codes, __m256 zero, __m256 scale,
                                        __m256 table) {
    if (bits == 3) {
        return _mm256_permutevar8x32_ps(table, codes);
    }
    __m256 u = _mm256_cvtepi32_ps(_mm256_and_si256(codes, _mm256_set1_epi32(15)));
    return _mm256_mul_ps(_mm256_sub_ps(u, zero), scale);
}

// Sets zero, scale and table (u - z) * s of group g for rows n0 .. n0 + nr - 1.
AVX2_ALWAYS_INLINE void group_setup(const KQuantMatrix *w, const bool fp16, const bool symmetric,
                                    int n0, const int nr, int g, __m256 *zero, __m256 *scale,
                                    __m256 *table) {
    const __m256 codes8 = _mm256_setr_ps(0, 1, 2, 3, 4, 5, 6, 7);
#pragma GCC unroll 4
    for (int r = 0; r < nr; r++) {
        size_t index = (size_t)(n0 + r) * (size_t)w->n_groups + (size_t)g;
        scale[r] = fp16 ? _mm256_cvtph_ps(_mm_set1_epi16((short)((const uint16_t *)w->scales)[index]))
                        : _mm256_set1_ps(((const float *)w->scales)[index]);
        zero[r] = _mm256_set1_ps((float)(symmetric ? w->zero_point : w->zeros[index]));
        table[r] = _mm256_mul_ps(_mm256_sub_ps(codes8, zero[r]), scale[r]);
    }
}

// Computes y for nr (up to 4) consecutive 4- or 3-bit rows from n0 in the 16-lane order, reading
// the superblocks whole (8 steps each) and the rest step by step. `fp16` and `symmetric` are constants of each
// instance (w->fp16_scales, w->zeros == NULL), as in avx512.c. One core of a Zen 5 CPU, 256x2048
// rows in L2: 4-bit 4.8 -> 18 G weights/s, 3-bit 4.8 -> 32 against the per-step loop (a16_rows).
// 3-bit codes are looked up (one vpermps) and 4-bit ones computed. Two vpermps and a blend, AVX2's
// 16-entry look-up, measured no faster than the 4 instructions of super_values8.
AVX2_ALWAYS_INLINE void a16_rows_super(const KQuantMatrix *w, const int bits, const bool fp16,
                                       const bool symmetric, int n0, const int nr, const float *x,
                                       float *y) {
    int k16 = w->cols - w->cols % 16;
    int steps = k16 / 16;
    int super_steps = kq_rows_super_cols(w) / 16;
    int whole_steps = (steps < super_steps ? steps : super_steps) / 8 * 8;
    __m256 lo[4], hi[4], zero[4], scale[4], table[4];
    const uint8_t *line[4];
#pragma GCC unroll 4
    for (int r = 0; r < nr; r++) {
        lo[r] = hi[r] = _mm256_setzero_ps();
        line[r] = w->codes + (size_t)(n0 + r) * w->stride;
    }

    // Groups of a matrix with several are multiples of 32 columns, so they start at even steps.
    int g = 0;
    int next_group = w->n_groups > 1 ? w->group / 16 : steps;
    group_setup(w, fp16, symmetric, n0, nr, 0, zero, scale, table);
    for (int j = 0; j < steps; j++) {
        if (j == next_group) {
            g++;
            next_group = g + 1 < w->n_groups ? (g + 1) * w->group / 16 : steps;
            group_setup(w, fp16, symmetric, n0, nr, g, zero, scale, table);
        }
        if (j < whole_steps && j % 8 == 0) {
            // A whole superblock: its 8 steps from one set of lanes per row.
            uint32_t words[4][16];
            const uint32_t *lanes[4];
#pragma GCC unroll 4
            for (int r = 0; r < nr; r++) {
                const uint8_t *super = line[r] + (size_t)(j / 8) * (size_t)(bits * 16);
                // The same superblock of the row nr rows below (see A16_PREFETCH in avx512.c).
                _mm_prefetch((const char *)super + bits * 16 - 1 + (size_t)nr * w->stride, _MM_HINT_T0);
                if (bits == 3) {
                    spread_words3(super, words[r]);
                    lanes[r] = words[r];
                } else {
                    lanes[r] = (const uint32_t *)super;
                }
            }
#pragma GCC unroll 8
            for (int t = 0; t < 8; t++) {
                if (t > 0 && t % 2 == 0 && j + t == next_group) {
                    g++;
                    next_group = g + 1 < w->n_groups ? (g + 1) * w->group / 16 : steps;
                    group_setup(w, fp16, symmetric, n0, nr, g, zero, scale, table);
                }
                __m256 x_lo = _mm256_loadu_ps(x + (size_t)(j + t) * 16);
                __m256 x_hi = _mm256_loadu_ps(x + (size_t)(j + t) * 16 + 8);
#pragma GCC unroll 4
                for (int r = 0; r < nr; r++) {
                    __m256i c_lo = _mm256_srli_epi32(_mm256_loadu_si256((const __m256i *)lanes[r]), bits * t);
                    __m256i c_hi = _mm256_srli_epi32(_mm256_loadu_si256((const __m256i *)(lanes[r] + 8)), bits * t);
                    lo[r] = _mm256_fmadd_ps(x_lo, super_values8(bits, c_lo, zero[r], scale[r], table[r]), lo[r]);
                    hi[r] = _mm256_fmadd_ps(x_hi, super_values8(bits, c_hi, zero[r], scale[r], table[r]), hi[r]);
                }
            }
            j += 7;
            continue;
        }
        __m256 x_lo = _mm256_loadu_ps(x + (size_t)j * 16);
        __m256 x_hi = _mm256_loadu_ps(x + (size_t)j * 16 + 8);
#pragma GCC unroll 4
        for (int r = 0; r < nr; r++) {
            lo[r] = _mm256_fmadd_ps(x_lo, dequant8(w, line[r], 2 * j, zero[r], scale[r]), lo[r]);
            hi[r] = _mm256_fmadd_ps(x_hi, dequant8(w, line[r], 2 * j + 1, zero[r], scale[r]), hi[r]);
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < nr; r++) {
        y[n0 + r] = a16_finish(w, n0 + r, x, k16, lo[r], hi[r]);
    }
}

AVX2_ALWAYS_INLINE void a16_range(const KQuantMatrix *w, const int bits, const bool fp16,
                                  const bool symmetric, int row0, int row1, const float *x,
                                  float *y) {
    int n = row0;
    for (; n + 4 <= row1; n += 4) {
        if (bits == 8) {
            a16_rows(w, n, 4, x, y);
        } else {
            a16_rows_super(w, bits, fp16, symmetric, n, 4, x, y);
        }
    }
    for (; n < row1; n++) {
        if (bits == 8) {
            a16_rows(w, n, 1, x, y);
        } else {
            a16_rows_super(w, bits, fp16, symmetric, n, 1, x, y);
        }
    }
}

#include "a16_instances.h"
A16_INSTANCES(4)
A16_INSTANCES(3)

void qgemv_a16_avx2(const KQuantMatrix *w, int row0, int row1, const float *x, float *y) {
    if (w->bits == 8) {
        a16_range(w, 8, false, false, row0, row1, x, y);
        return;
    }
    // 4- and 3-bit rows: one instance per container size and kind of scale and zero point.
    static void (*const instances[2][4])(const KQuantMatrix *, int, int, const float *, float *) = {
        {a16_range_4_00, a16_range_4_01, a16_range_4_10, a16_range_4_11},
        {a16_range_3_00, a16_range_3_01, a16_range_3_10, a16_range_3_11},
    };
    instances[w->bits == 4 ? 0 : 1][a16_kind(w)](w, row0, row1, x, y);
}

void dequantize_rows_avx2(const KQuantMatrix *w, int row0, int row1, float *out) {
    int k16 = w->cols - w->cols % 16;
    for (int n = row0; n < row1; n++) {
        const uint8_t *line = w->codes + (size_t)n * w->stride;
        float *dst = out + (size_t)(n - row0) * w->cols;
        for (int g = 0; g < w->n_groups; g++) {
            __m256 zero = _mm256_set1_ps((float)kq_zero(w, n, g));
            __m256 scale = _mm256_set1_ps(kq_scale(w, n, g));
            for (int j = g * w->group / 16; j < group_step_end(w, g, k16); j++) {
                _mm256_storeu_ps(dst + (size_t)j * 16, dequant8(w, line, 2 * j, zero, scale));
                _mm256_storeu_ps(dst + (size_t)j * 16 + 8, dequant8(w, line, 2 * j + 1, zero, scale));
            }
        }
        for (int k = k16; k < w->cols; k++) {
            dst[k] = dequant_one(w, n, k);
        }
    }
}

#endif // __x86_64__

#if defined(__x86_64__)
// Ten independent accumulators cover the latency of vfmadd.
double peak_fp32_avx2(long iterations, float *sink) {
    __m256 acc[10];
    for (int j = 0; j < 10; j++) {
        acc[j] = _mm256_setzero_ps();
    }
    volatile float source = 1e-7f;
    __m256 a = _mm256_set1_ps(source);
    for (long i = 0; i < iterations; i++) {
#pragma GCC unroll 10
        for (int j = 0; j < 10; j++) {
            acc[j] = _mm256_fmadd_ps(a, a, acc[j]);
        }
    }
    for (int j = 1; j < 10; j++) {
        acc[0] = _mm256_add_ps(acc[0], acc[j]);
    }
    *sink = _mm256_cvtss_f32(acc[0]);
    return (double)iterations * 10 * 8 * 2;
}
#endif // __x86_64__
