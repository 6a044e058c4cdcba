// neon.c: ARM NEON kernels with the Armv8.2 dot-product extension (compiled with
// -march=armv8.2-a+dotprod on aarch64; selected at run time on CPUs with it, such as Apple M1 and
// later, AWS Graviton 2 and later, Cortex-A76 and later).
//
// gemm_f32 and the weight-only kernels keep the 16 lanes of the 16-lane order (kernels.h) in four
// float32x4 registers per output; gemm_f32 runs 2 x 2 output tiles over the cache blocks of
// blocked.h when it has 4 or more activation rows. The int8 kernel keeps a 16-row tile in four int32x4 registers
// (rows 0-3, 4-7, 8-11, 12-15). sdot multiplies signed bytes only, so 8-bit codes u enter as
// u - 128 (u ^ 0x80), and adding 128 * group_sum back keeps the int32 group sums exact.
#if defined(__aarch64__)
#include <arm_neon.h>
#include <math.h>
#include <string.h>
#include <sys/auxv.h>

#include "blocked.h"
#include "kernels.h"

#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1 << 20) // Linux arch/arm64/include/uapi/asm/hwcap.h
#endif

#define ALWAYS_INLINE static inline __attribute__((always_inline))

bool neon_has_dotprod(void) {
    return (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0;
}

// Adds lanes v[0] (0-3), v[1] (4-7), v[2] (8-11), v[3] (12-15) in the tree order l += l + 8,
// l += l + 4, l += l + 2, l += l + 1.
ALWAYS_INLINE float reduce_16lane(const float32x4_t v[4]) {
    float32x4_t s4 = vaddq_f32(vaddq_f32(v[0], v[2]), vaddq_f32(v[1], v[3]));
    float32x2_t s2 = vadd_f32(vget_low_f32(s4), vget_high_f32(s4));
    return vget_lane_f32(s2, 0) + vget_lane_f32(s2, 1);
}

// ----------------------------------------------------------------------------
// fp32

// nr consecutive output rows w[0..nr) for one activation row x, sharing the loads of x.
ALWAYS_INLINE void f32_rows(const float *x, const float *w, float *y, int k, const int nr) {
    int k16 = k - k % 16;
    float32x4_t acc[4][4];
#pragma GCC unroll 4
    for (int r = 0; r < nr; r++) {
#pragma GCC unroll 4
        for (int q = 0; q < 4; q++) {
            acc[r][q] = vdupq_n_f32(0.0f);
        }
    }
    for (int k0 = 0; k0 < k16; k0 += 16) {
        float32x4_t xv[4];
#pragma GCC unroll 4
        for (int q = 0; q < 4; q++) {
            xv[q] = vld1q_f32(x + k0 + 4 * q);
        }
#pragma GCC unroll 4
        for (int r = 0; r < nr; r++) {
#pragma GCC unroll 4
            for (int q = 0; q < 4; q++) {
                acc[r][q] = vfmaq_f32(acc[r][q], xv[q], vld1q_f32(w + (size_t)r * k + k0 + 4 * q));
            }
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < nr; r++) {
        float sum = reduce_16lane(acc[r]);
        for (int i = k16; i < k; i++) {
            sum = fmaf(x[i], w[(size_t)r * k + i], sum);
        }
        y[r] = sum;
    }
}

// Computes one tile of mr x nr outputs (at most 2 x 2) as GemmTileFn (blocked.h) describes. The
// 16 floats of an output's accumulators are its four float32x4 registers in order.
ALWAYS_INLINE void tile_chunk(const int mr, const int nr, const float *x, const float *w, int k,
                              int k0, int kc, float *acc, int acc_stride, bool first, bool last,
                              float *y, int ldy) {
    int k16 = k - k % 16;
    float32x4_t a[2][2][4];
#pragma GCC unroll 2
    for (int i = 0; i < mr; i++) {
#pragma GCC unroll 2
        for (int j = 0; j < nr; j++) {
            const float *saved = acc + ((size_t)i * acc_stride + (size_t)j) * 16;
#pragma GCC unroll 4
            for (int q = 0; q < 4; q++) {
                a[i][j][q] = first ? vdupq_n_f32(0.0f) : vld1q_f32(saved + 4 * q);
            }
        }
    }
    for (int kk = k0; kk < k0 + kc; kk += 16) {
        float32x4_t wv[2][4];
#pragma GCC unroll 2
        for (int j = 0; j < nr; j++) {
#pragma GCC unroll 4
            for (int q = 0; q < 4; q++) {
                wv[j][q] = vld1q_f32(w + (size_t)j * (size_t)k + (size_t)kk + 4 * q);
            }
        }
#pragma GCC unroll 2
        for (int i = 0; i < mr; i++) {
#pragma GCC unroll 4
            for (int q = 0; q < 4; q++) {
                float32x4_t xv = vld1q_f32(x + (size_t)i * (size_t)k + (size_t)kk + 4 * q);
#pragma GCC unroll 2
                for (int j = 0; j < nr; j++) {
                    a[i][j][q] = vfmaq_f32(a[i][j][q], xv, wv[j][q]);
                }
            }
        }
    }
#pragma GCC unroll 2
    for (int i = 0; i < mr; i++) {
#pragma GCC unroll 2
        for (int j = 0; j < nr; j++) {
            if (last) {
                float sum = reduce_16lane(a[i][j]);
                const float *xi = x + (size_t)i * (size_t)k, *wj = w + (size_t)j * (size_t)k;
                for (int t = k16; t < k; t++) {
                    sum = fmaf(xi[t], wj[t], sum);
                }
                y[(size_t)i * ldy + j] = sum;
            } else {
                float *saved = acc + ((size_t)i * acc_stride + (size_t)j) * 16;
#pragma GCC unroll 4
                for (int q = 0; q < 4; q++) {
                    vst1q_f32(saved + 4 * q, a[i][j][q]);
                }
            }
        }
    }
}

GEMM_TILE_FN(tile_2x2_chunk, tile_chunk, 2, 2)
GEMM_TILE_FN(tile_1x1_chunk, tile_chunk, 1, 1)

// Blocks of 32 x 32 outputs and 512-column chunks (192 KB in all), within the L2 of most cores
// with the dot-product extension (Cortex-A76 can be built with 128 KB).
// NOTE: not timed on ARM hardware; the tests check only that the results are bit-identical.
static const GemmBlocking neon_blocking = {
    .mb = 32, .nb = 32, .kc = 512,
    .mr = 2, .nr = 2, .tile = tile_2x2_chunk,
    .tile_one = tile_1x1_chunk,
};

void gemm_f32_neon(const float *x, const float *w, float *y, int m, int n, int k, int ldy) {
    // Fewer than 4 rows read each weight once, from memory, whatever the blocking.
    if (m >= 4) {
        gemm_f32_blocked(&neon_blocking, x, w, y, m, n, k, ldy);
        return;
    }
    for (int i = 0; i < m; i++) {
        int j = 0;
        for (; j + 4 <= n; j += 4) {
            f32_rows(x + (size_t)i * k, w + (size_t)j * k, y + (size_t)i * ldy + j, k, 4);
        }
        for (; j < n; j++) {
            f32_rows(x + (size_t)i * k, w + (size_t)j * k, y + (size_t)i * ldy + j, k, 1);
        }
    }
}

// ----------------------------------------------------------------------------
// Packed integer weights (layouts and orders in kernels.h)

// Scales of rows 4h .. 4h + 3 of one group of a 16-row tile, as fp32.
ALWAYS_INLINE float32x4_t tile_scales4(const KQuantMatrix *w, size_t index) {
    if (w->fp16_scales) {
        return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16((const uint16_t *)w->scales + index)));
    }
    return vld1q_f32((const float *)w->scales + index);
}

// One 16-row tile times nm tokens from token i0.
ALWAYS_INLINE void a8_tile(const KQuantMatrix *w, int tile, const KActs *a, int i0, const int nm,
                           float *y, int ldy) {
    const uint8x16_t nibble = vdupq_n_u8(15), sign = vdupq_n_u8(0x80);
    const uint8_t *tile_codes = w->codes + (size_t)tile * w->stride;
    float32x4_t facc[4][4];
#pragma GCC unroll 4
    for (int mm = 0; mm < nm; mm++) {
#pragma GCC unroll 4
        for (int h = 0; h < 4; h++) {
            facc[mm][h] = vdupq_n_f32(0.0f);
        }
    }

    for (int g = 0; g < w->n_groups; g++) {
        int k_begin = g * w->group;
        int k_end = g == w->n_groups - 1 ? w->cols_padded : (g + 1) * w->group;
        size_t index = ((size_t)tile * w->n_groups + g) * KQ_TILE_ROWS;
        int32x4_t acc[4][4];

        // acc starts at (c - z) * group_sum, where c = 128 undoes the sign flip of 8-bit codes.
        int offset = w->bits == 8 ? 128 : 0;
#pragma GCC unroll 4
        for (int h = 0; h < 4; h++) {
            int32x4_t zeros;
            if (w->zeros) {
                uint8_t z[4];
                memcpy(z, w->zeros + index + 4 * h, 4);
                zeros = (int32x4_t){z[0], z[1], z[2], z[3]};
            } else {
                zeros = vdupq_n_s32(w->zero_point);
            }
            int32x4_t factor = vsubq_s32(vdupq_n_s32(offset), zeros);
#pragma GCC unroll 4
            for (int mm = 0; mm < nm; mm++) {
                int32_t sum = a->group_sum[(size_t)(i0 + mm) * a->n_groups + g];
                acc[mm][h] = vmulq_s32(factor, vdupq_n_s32(sum));
            }
        }

        for (int k = k_begin; k < k_end; k += 8) {
            int8x16_t w0[4], w1[4];
#pragma GCC unroll 4
            for (int h = 0; h < 4; h++) {
                if (w->bits == 8) {
                    w0[h] = vreinterpretq_s8_u8(veorq_u8(vld1q_u8(tile_codes + (size_t)(k / 4) * 64 + 16 * h), sign));
                    w1[h] = vreinterpretq_s8_u8(veorq_u8(vld1q_u8(tile_codes + (size_t)(k / 4 + 1) * 64 + 16 * h), sign));
                } else {
                    uint8x16_t v = vld1q_u8(tile_codes + (size_t)(k / 8) * 64 + 16 * h);
                    w0[h] = vreinterpretq_s8_u8(vandq_u8(v, nibble));
                    w1[h] = vreinterpretq_s8_u8(vshrq_n_u8(v, 4));
                }
            }
#pragma GCC unroll 4
            for (int mm = 0; mm < nm; mm++) {
                const int8_t *q = a->q + (size_t)(i0 + mm) * a->cols_padded + k;
                int32_t q0, q1;
                memcpy(&q0, q, 4);
                memcpy(&q1, q + 4, 4);
                int8x16_t a0 = vreinterpretq_s8_s32(vdupq_n_s32(q0));
                int8x16_t a1 = vreinterpretq_s8_s32(vdupq_n_s32(q1));
#pragma GCC unroll 4
                for (int h = 0; h < 4; h++) {
                    acc[mm][h] = vdotq_s32(acc[mm][h], w0[h], a0);
                    acc[mm][h] = vdotq_s32(acc[mm][h], w1[h], a1);
                }
            }
        }

#pragma GCC unroll 4
        for (int h = 0; h < 4; h++) {
            float32x4_t scales = tile_scales4(w, index + 4 * h);
#pragma GCC unroll 4
            for (int mm = 0; mm < nm; mm++) {
                facc[mm][h] = vfmaq_f32(facc[mm][h], vcvtq_f32_s32(acc[mm][h]), scales);
            }
        }
    }

#pragma GCC unroll 4
    for (int mm = 0; mm < nm; mm++) {
        float out[16];
        float32x4_t scale = vdupq_n_f32(a->scale[i0 + mm]);
#pragma GCC unroll 4
        for (int h = 0; h < 4; h++) {
            vst1q_f32(out + 4 * h, vmulq_f32(facc[mm][h], scale));
        }
        int valid = w->rows - tile * KQ_TILE_ROWS;
        memcpy(y + (size_t)(i0 + mm) * ldy + (size_t)tile * KQ_TILE_ROWS, out,
               (size_t)(valid < 16 ? valid : 16) * sizeof(float));
    }
}

void qgemm_a8_neon(const KQuantMatrix *w, int tile0, int tile1, const KActs *a, float *y, int ldy) {
    int m4 = a->m - a->m % 4;
    for (int t = tile0; t < tile1; t++) {
        for (int i = 0; i < m4; i += 4) {
            a8_tile(w, t, a, i, 4, y, ldy);
        }
        for (int i = m4; i < a->m; i++) {
            a8_tile(w, t, a, i, 1, y, ldy);
        }
    }
}

// Codes of the 4 columns [4 * e, 4 * e + 4) of a KQ_ROWS row, as uint32 lanes.
ALWAYS_INLINE uint32x4_t row_codes4(const KQuantMatrix *w, const uint8_t *line, int e) {
    int j = e / 4;    // 16-column step
    int part = e % 4; // lanes 4 * part .. 4 * part + 3 of the step
    int half = j % 2;
    uint8_t bytes[4];
    if (w->bits == 8) {
        memcpy(bytes, line + (size_t)e * 4, 4);
        return (uint32x4_t){bytes[0], bytes[1], bytes[2], bytes[3]};
    }
    int super_steps = kq_rows_super_cols(w) / 16;
    if (j < super_steps) {
        // Lanes 4 * part .. 4 * part + 3 of a 128-column superblock, step j % 8 (kernels.h).
        const uint8_t *super = line + (size_t)(j / 8) * (size_t)(w->bits * 16);
        uint32x4_t v;
        if (w->bits == 4) {
            v = vreinterpretq_u32_u8(vld1q_u8(super + 16 * part));
        } else {
            // Four 24-bit words (12 bytes, copied so that nothing past the superblock is read),
            // one per lane.
            uint8_t words[16] = {0};
            memcpy(words, super + 12 * part, 12);
            const uint8x16_t spread = {0, 1, 2, 255, 3, 4, 5, 255, 6, 7, 8, 255, 9, 10, 11, 255};
            v = vreinterpretq_u32_u8(vqtbl1q_u8(vld1q_u8(words), spread));
        }
        uint32x4_t shifted = vshlq_u32(v, vdupq_n_s32(-w->bits * (j % 8)));
        return vandq_u32(shifted, vdupq_n_u32((1u << w->bits) - 1));
    }

    // 32-column blocks (bits * 4 bytes) follow the superblocks. super_steps is even, so j % 2 is
    // the half of the block.
    const uint8_t *block = line + (size_t)super_steps * (size_t)(w->bits * 2) +
                           (size_t)((j - super_steps) / 2) * (size_t)(w->bits * 4);
    if (w->bits == 4) {
        memcpy(bytes, block + 4 * part, 4);
        uint32x4_t v = {bytes[0], bytes[1], bytes[2], bytes[3]};
        return half ? vshrq_n_u32(v, 4) : vandq_u32(v, vdupq_n_u32(15));
    }
    // 3-bit: bytes 0-7 hold two bits of columns i, i + 8, i + 16, i + 24; bytes 8-11 the third.
    memcpy(bytes, block + 4 * (part % 2), 4);
    uint32x4_t crumbs = {bytes[0], bytes[1], bytes[2], bytes[3]};
    int shift = 2 * (2 * half + part / 2);
    uint32x4_t low = vandq_u32(vshlq_u32(crumbs, vdupq_n_s32(-shift)), vdupq_n_u32(3));
    uint32_t high_bits;
    memcpy(&high_bits, block + 8, 4);
    uint32x4_t bits = vdupq_n_u32(high_bits >> (16 * half + 4 * part));
    const int32x4_t lane_shifts = {0, -1, -2, -3};
    uint32x4_t high = vandq_u32(vshlq_u32(bits, lane_shifts), vdupq_n_u32(1));
    return vorrq_u32(low, vshlq_n_u32(high, 2));
}

// (u - z) * s for 4 columns, equal to the scalar (float)(u - z) * s (u - z converts exactly).
ALWAYS_INLINE float32x4_t dequant4(const KQuantMatrix *w, const uint8_t *line, int e,
                                   float32x4_t zero, float32x4_t scale) {
    float32x4_t u = vcvtq_f32_u32(row_codes4(w, line, e));
    return vmulq_f32(vsubq_f32(u, zero), scale);
}

static float dequant_one(const KQuantMatrix *w, int n, int k) {
    int g = k / w->group < w->n_groups ? k / w->group : w->n_groups - 1;
    return (float)(kq_code(w, n, k) - kq_zero(w, n, g)) * kq_scale(w, n, g);
}

// Last 16-column step of group g (exclusive), clipped to k16.
static int group_step_end(const KQuantMatrix *w, int g, int k16) {
    return (g + 1) * w->group < k16 ? (g + 1) * w->group / 16 : k16 / 16;
}

ALWAYS_INLINE void a16_rows(const KQuantMatrix *w, int n0, const int nr, const float *x, float *y) {
    int k16 = w->cols - w->cols % 16;
    float32x4_t acc[4][4];
    const uint8_t *line[4];
#pragma GCC unroll 4
    for (int r = 0; r < nr; r++) {
#pragma GCC unroll 4
        for (int q = 0; q < 4; q++) {
            acc[r][q] = vdupq_n_f32(0.0f);
        }
        line[r] = w->codes + (size_t)(n0 + r) * w->stride;
    }
    for (int g = 0; g < w->n_groups; g++) {
        float32x4_t zero[4], scale[4];
#pragma GCC unroll 4
        for (int r = 0; r < nr; r++) {
            zero[r] = vdupq_n_f32((float)kq_zero(w, n0 + r, g));
            scale[r] = vdupq_n_f32(kq_scale(w, n0 + r, g));
        }
        for (int j = g * w->group / 16; j < group_step_end(w, g, k16); j++) {
            float32x4_t xv[4];
#pragma GCC unroll 4
            for (int q = 0; q < 4; q++) {
                xv[q] = vld1q_f32(x + (size_t)j * 16 + 4 * q);
            }
#pragma GCC unroll 4
            for (int r = 0; r < nr; r++) {
#pragma GCC unroll 4
                for (int q = 0; q < 4; q++) {
                    acc[r][q] = vfmaq_f32(acc[r][q], xv[q],
                                          dequant4(w, line[r], 4 * j + q, zero[r], scale[r]));
                }
            }
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < nr; r++) {
        float sum = reduce_16lane(acc[r]);
        for (int k = k16; k < w->cols; k++) {
            sum = fmaf(x[k], dequant_one(w, n0 + r, k), sum);
        }
        y[n0 + r] = sum;
    }
}

void qgemv_a16_neon(const KQuantMatrix *w, int row0, int row1, const float *x, float *y) {
    int n = row0;
    for (; n + 4 <= row1; n += 4) {
        a16_rows(w, n, 4, x, y);
    }
    for (; n < row1; n++) {
        a16_rows(w, n, 1, x, y);
    }
}

void dequantize_rows_neon(const KQuantMatrix *w, int row0, int row1, float *out) {
    int k16 = w->cols - w->cols % 16;
    for (int n = row0; n < row1; n++) {
        const uint8_t *line = w->codes + (size_t)n * w->stride;
        float *dst = out + (size_t)(n - row0) * w->cols;
        for (int g = 0; g < w->n_groups; g++) {
            float32x4_t zero = vdupq_n_f32((float)kq_zero(w, n, g));
            float32x4_t scale = vdupq_n_f32(kq_scale(w, n, g));
            for (int j = g * w->group / 16; j < group_step_end(w, g, k16); j++) {
                for (int q = 0; q < 4; q++) {
                    vst1q_f32(dst + (size_t)j * 16 + 4 * q, dequant4(w, line, 4 * j + q, zero, scale));
                }
            }
        }
        for (int k = k16; k < w->cols; k++) {
            dst[k] = dequant_one(w, n, k);
        }
    }
}

// ----------------------------------------------------------------------------
// Throughput loops

// Eight independent accumulators cover the latency of sdot and fmla on current cores.
double peak_int8_neon(long iterations, int32_t *sink) {
    int32x4_t acc[8];
    for (int j = 0; j < 8; j++) {
        acc[j] = vdupq_n_s32(0);
    }
    volatile int source = 0x01020304;
    int8x16_t u = vreinterpretq_s8_s32(vdupq_n_s32(source));
    int8x16_t q = vreinterpretq_s8_s32(vdupq_n_s32(source + 1));
    for (long i = 0; i < iterations; i++) {
#pragma GCC unroll 8
        for (int j = 0; j < 8; j++) {
            acc[j] = vdotq_s32(acc[j], u, q);
        }
    }
    for (int j = 1; j < 8; j++) {
        acc[0] = vaddq_s32(acc[0], acc[j]);
    }
    *sink = vaddvq_s32(acc[0]);
    return (double)iterations * 8 * 16 * 2;
}

double peak_fp32_neon(long iterations, float *sink) {
    float32x4_t acc[8];
    for (int j = 0; j < 8; j++) {
        acc[j] = vdupq_n_f32(0.0f);
    }
    volatile float source = 1e-7f;
    float32x4_t a = vdupq_n_f32(source);
    for (long i = 0; i < iterations; i++) {
#pragma GCC unroll 8
        for (int j = 0; j < 8; j++) {
            acc[j] = vfmaq_f32(acc[j], a, a);
        }
    }
    for (int j = 1; j < 8; j++) {
        acc[0] = vaddq_f32(acc[0], acc[j]);
    }
    *sink = vaddvq_f32(acc[0]);
    return (double)iterations * 8 * 4 * 2;
}

#endif // __aarch64__
