// ggml_quants.c: dequantization of llama.cpp's block formats (see ggml_quants.h).
#include "ggml_quants.h"

#include <assert.h>
#include <string.h>

#include "../kernels/half.h"

// Each block struct is laid out exactly as in ggml-common.h; the static asserts pin the sizes that
// the GGUF reader's type table also uses.

typedef struct {
    uint16_t d;      // fp16 scale
    uint8_t qs[16];  // 32 4-bit values: low nibbles are values 0..15, high nibbles 16..31
} BlockQ4_0;         // 4.5 bits per weight
static_assert(sizeof(BlockQ4_0) == 18, "Q4_0 block size");

typedef struct {
    uint16_t d, m;   // fp16 scale and minimum
    uint8_t qs[16];
} BlockQ4_1;         // 5 bits per weight
static_assert(sizeof(BlockQ4_1) == 20, "Q4_1 block size");

typedef struct {
    uint16_t d;
    uint8_t qh[4];   // fifth bits of the 32 values
    uint8_t qs[16];
} BlockQ5_0;         // 5.5 bits per weight
static_assert(sizeof(BlockQ5_0) == 22, "Q5_0 block size");

typedef struct {
    uint16_t d, m;
    uint8_t qh[4];
    uint8_t qs[16];
} BlockQ5_1;         // 6 bits per weight
static_assert(sizeof(BlockQ5_1) == 24, "Q5_1 block size");

typedef struct {
    uint16_t d;
    int8_t qs[32];
} BlockQ8_0;         // 8.5 bits per weight
static_assert(sizeof(BlockQ8_0) == 34, "Q8_0 block size");

#define QK_K 256

typedef struct {
    uint8_t scales[16]; // 4-bit scale (low) and 4-bit min (high) of each 16-value group
    uint8_t qs[64];     // 2-bit values
    uint16_t d, dmin;   // fp16 super-block scales of the scales and mins
} BlockQ2_K;            // 2.625 bits per weight
static_assert(sizeof(BlockQ2_K) == 84, "Q2_K block size");

typedef struct {
    uint8_t hmask[32];  // third bits
    uint8_t qs[64];     // low 2 bits
    uint8_t scales[12]; // 16 6-bit scales, packed
    uint16_t d;
} BlockQ3_K;            // 3.4375 bits per weight
static_assert(sizeof(BlockQ3_K) == 110, "Q3_K block size");

typedef struct {
    uint16_t d, dmin;
    uint8_t scales[12]; // 8 6-bit scales and 8 6-bit mins, packed
    uint8_t qs[128];
} BlockQ4_K;            // 4.5 bits per weight
static_assert(sizeof(BlockQ4_K) == 144, "Q4_K block size");

typedef struct {
    uint16_t d, dmin;
    uint8_t scales[12];
    uint8_t qh[32];     // fifth bits
    uint8_t qs[128];
} BlockQ5_K;            // 5.5 bits per weight
static_assert(sizeof(BlockQ5_K) == 176, "Q5_K block size");

typedef struct {
    uint8_t ql[128];    // low 4 bits
    uint8_t qh[64];     // high 2 bits
    int8_t scales[16];  // 8-bit scale of each 16-value group
    uint16_t d;
} BlockQ6_K;            // 6.5625 bits per weight
static_assert(sizeof(BlockQ6_K) == 210, "Q6_K block size");

static void dequantize_q4_0(const BlockQ4_0 *x, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, y += 32) {
        float d = fp16_to_fp32(x[i].d);
        for (int j = 0; j < 16; j++) {
            y[j] = (float)((x[i].qs[j] & 0x0f) - 8) * d;
            y[j + 16] = (float)((x[i].qs[j] >> 4) - 8) * d;
        }
    }
}

static void dequantize_q4_1(const BlockQ4_1 *x, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, y += 32) {
        float d = fp16_to_fp32(x[i].d), m = fp16_to_fp32(x[i].m);
        for (int j = 0; j < 16; j++) {
            y[j] = (float)(x[i].qs[j] & 0x0f) * d + m;
            y[j + 16] = (float)(x[i].qs[j] >> 4) * d + m;
        }
    }
}

// The fifth bit of value j (0..31) of a Q5 block.
static int q5_high_bit(const uint8_t *qh, int j) {
    uint32_t bits;
    memcpy(&bits, qh, 4);
    return (int)((bits >> j) & 1) << 4;
}

static void dequantize_q5_0(const BlockQ5_0 *x, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, y += 32) {
        float d = fp16_to_fp32(x[i].d);
        for (int j = 0; j < 16; j++) {
            y[j] = (float)(((x[i].qs[j] & 0x0f) | q5_high_bit(x[i].qh, j)) - 16) * d;
            y[j + 16] = (float)(((x[i].qs[j] >> 4) | q5_high_bit(x[i].qh, j + 16)) - 16) * d;
        }
    }
}

static void dequantize_q5_1(const BlockQ5_1 *x, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, y += 32) {
        float d = fp16_to_fp32(x[i].d), m = fp16_to_fp32(x[i].m);
        for (int j = 0; j < 16; j++) {
            y[j] = (float)((x[i].qs[j] & 0x0f) | q5_high_bit(x[i].qh, j)) * d + m;
            y[j + 16] = (float)((x[i].qs[j] >> 4) | q5_high_bit(x[i].qh, j + 16)) * d + m;
        }
    }
}

static void dequantize_q8_0(const BlockQ8_0 *x, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, y += 32) {
        float d = fp16_to_fp32(x[i].d);
        for (int j = 0; j < 32; j++) {
            y[j] = (float)x[i].qs[j] * d;
        }
    }
}

static void dequantize_q2_k(const BlockQ2_K *x, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++) {
        float d = fp16_to_fp32(x[i].d), dmin = fp16_to_fp32(x[i].dmin);
        const uint8_t *q = x[i].qs;
        int is = 0;
        // Two halves of 128 values; each 32 bytes of qs hold four 2-bit planes.
        for (int half = 0; half < 2; half++, q += 32) {
            for (int shift = 0; shift < 8; shift += 2) {
                for (int part = 0; part < 2; part++) {
                    uint8_t sc = x[i].scales[is++];
                    float dl = d * (float)(sc & 0x0f), ml = dmin * (float)(sc >> 4);
                    for (int l = 0; l < 16; l++) {
                        *y++ = dl * (float)((q[l + 16 * part] >> shift) & 3) - ml;
                    }
                }
            }
        }
    }
}

// Unpacks Q3_K's 16 6-bit scales (12 bytes) into signed values (stored value minus 32).
static void q3_k_scales(const uint8_t *packed, int8_t *scales) {
    for (int j = 0; j < 16; j++) {
        int low = j < 8 ? packed[j] & 0x0f : packed[j - 8] >> 4;
        int high = (packed[8 + j % 4] >> (2 * (j / 4))) & 3;
        scales[j] = (int8_t)((low | (high << 4)) - 32);
    }
}

static void dequantize_q3_k(const BlockQ3_K *x, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++) {
        float d_all = fp16_to_fp32(x[i].d);
        int8_t scales[16];
        q3_k_scales(x[i].scales, scales);
        const uint8_t *q = x[i].qs;
        uint8_t mask = 1;
        int is = 0;
        for (int half = 0; half < 2; half++, q += 32) {
            for (int shift = 0; shift < 8; shift += 2, mask <<= 1) {
                for (int part = 0; part < 2; part++) {
                    float dl = d_all * (float)scales[is++];
                    for (int l = 0; l < 16; l++) {
                        int k = l + 16 * part;
                        int value = ((q[k] >> shift) & 3) - ((x[i].hmask[k] & mask) ? 0 : 4);
                        *y++ = dl * (float)value;
                    }
                }
            }
        }
    }
}

// Returns the 6-bit scale and min of group j (0..7) of a Q4_K or Q5_K super-block.
static void k4_scale_min(int j, const uint8_t *q, uint8_t *scale, uint8_t *min) {
    if (j < 4) {
        *scale = q[j] & 63;
        *min = q[j + 4] & 63;
    } else {
        *scale = (uint8_t)((q[j + 4] & 0x0f) | ((q[j - 4] >> 6) << 4));
        *min = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

static void dequantize_q4_k(const BlockQ4_K *x, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++) {
        float d = fp16_to_fp32(x[i].d), dmin = fp16_to_fp32(x[i].dmin);
        const uint8_t *q = x[i].qs;
        for (int group = 0; group < 8; group += 2, q += 32) {
            uint8_t sc, m;
            k4_scale_min(group, x[i].scales, &sc, &m);
            float d1 = d * (float)sc, m1 = dmin * (float)m;
            k4_scale_min(group + 1, x[i].scales, &sc, &m);
            float d2 = d * (float)sc, m2 = dmin * (float)m;
            for (int l = 0; l < 32; l++) {
                *y++ = d1 * (float)(q[l] & 0x0f) - m1;
            }
            for (int l = 0; l < 32; l++) {
                *y++ = d2 * (float)(q[l] >> 4) - m2;
            }
        }
    }
}

static void dequantize_q5_k(const BlockQ5_K *x, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++) {
        float d = fp16_to_fp32(x[i].d), dmin = fp16_to_fp32(x[i].dmin);
        const uint8_t *ql = x[i].qs, *qh = x[i].qh;
        uint8_t u1 = 1, u2 = 2;
        for (int group = 0; group < 8; group += 2, ql += 32, u1 <<= 2, u2 <<= 2) {
            uint8_t sc, m;
            k4_scale_min(group, x[i].scales, &sc, &m);
            float d1 = d * (float)sc, m1 = dmin * (float)m;
            k4_scale_min(group + 1, x[i].scales, &sc, &m);
            float d2 = d * (float)sc, m2 = dmin * (float)m;
            for (int l = 0; l < 32; l++) {
                *y++ = d1 * (float)((ql[l] & 0x0f) + ((qh[l] & u1) ? 16 : 0)) - m1;
            }
            for (int l = 0; l < 32; l++) {
                *y++ = d2 * (float)((ql[l] >> 4) + ((qh[l] & u2) ? 16 : 0)) - m2;
            }
        }
    }
}

static void dequantize_q6_k(const BlockQ6_K *x, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++) {
        float d = fp16_to_fp32(x[i].d);
        const uint8_t *ql = x[i].ql, *qh = x[i].qh;
        const int8_t *sc = x[i].scales;
        // Two halves of 128 values: 64 bytes of ql, 32 of qh and 8 scales each.
        for (int half = 0; half < 2; half++, y += 128, ql += 64, qh += 32, sc += 8) {
            for (int l = 0; l < 32; l++) {
                int is = l / 16;
                int q1 = ((ql[l] & 0x0f) | (((qh[l] >> 0) & 3) << 4)) - 32;
                int q2 = ((ql[l + 32] & 0x0f) | (((qh[l] >> 2) & 3) << 4)) - 32;
                int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                y[l] = d * (float)sc[is] * (float)q1;
                y[l + 32] = d * (float)sc[is + 2] * (float)q2;
                y[l + 64] = d * (float)sc[is + 4] * (float)q3;
                y[l + 96] = d * (float)sc[is + 6] * (float)q4;
            }
        }
    }
}

bool ggml_can_dequantize(GGMLType type) {
    switch (type) {
    case GGML_TYPE_F32: case GGML_TYPE_F16: case GGML_TYPE_BF16:
    case GGML_TYPE_Q4_0: case GGML_TYPE_Q4_1: case GGML_TYPE_Q5_0: case GGML_TYPE_Q5_1:
    case GGML_TYPE_Q8_0: case GGML_TYPE_Q2_K: case GGML_TYPE_Q3_K: case GGML_TYPE_Q4_K:
    case GGML_TYPE_Q5_K: case GGML_TYPE_Q6_K:
        return true;
    default:
        return false;
    }
}

int ggml_dequantize(GGMLType type, const void *src, float *dst, int64_t n) {
    if (!ggml_can_dequantize(type)) {
        return -1;
    }
    const GGMLTypeInfo *info = ggml_type_info(type);
    assert(n % info->block_size == 0);
    int64_t nb = n / info->block_size;
    switch (type) {
    case GGML_TYPE_F32:
        memcpy(dst, src, (size_t)n * sizeof(float));
        break;
    case GGML_TYPE_F16:
        for (int64_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, (const uint8_t *)src + 2 * i, 2);
            dst[i] = fp16_to_fp32(h);
        }
        break;
    case GGML_TYPE_BF16:
        for (int64_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, (const uint8_t *)src + 2 * i, 2);
            dst[i] = bf16_to_fp32(h);
        }
        break;
    case GGML_TYPE_Q4_0: dequantize_q4_0(src, dst, nb); break;
    case GGML_TYPE_Q4_1: dequantize_q4_1(src, dst, nb); break;
    case GGML_TYPE_Q5_0: dequantize_q5_0(src, dst, nb); break;
    case GGML_TYPE_Q5_1: dequantize_q5_1(src, dst, nb); break;
    case GGML_TYPE_Q8_0: dequantize_q8_0(src, dst, nb); break;
    case GGML_TYPE_Q2_K: dequantize_q2_k(src, dst, nb); break;
    case GGML_TYPE_Q3_K: dequantize_q3_k(src, dst, nb); break;
    case GGML_TYPE_Q4_K: dequantize_q4_k(src, dst, nb); break;
    case GGML_TYPE_Q5_K: dequantize_q5_k(src, dst, nb); break;
    case GGML_TYPE_Q6_K: dequantize_q6_k(src, dst, nb); break;
    default: return -1;
    }
    return 0;
}
