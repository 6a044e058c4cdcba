// scalar.c: the reference implementation of every kernel, in portable C.
//
// fmaf() gives the same single rounding as the SIMD fused multiply-add, which is what makes the
// SIMD paths bit-identical to this file.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "half.h"
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

// ----------------------------------------------------------------------------
// Packed integer weights (layouts in kernels.h)

int kq_code(const KQuantMatrix *w, int row, int col) {
    if (w->layout == KQ_TILES) {
        const uint8_t *tile = w->codes + (size_t)(row / KQ_TILE_ROWS) * w->stride;
        int r = row % KQ_TILE_ROWS;
        if (w->bits == 8) {
            return tile[(size_t)(col / 4) * 64 + 4 * r + col % 4];
        }
        int j = col % 8;
        uint8_t byte = tile[(size_t)(col / 8) * 64 + 4 * r + j % 4];
        return j < 4 ? byte & 15 : byte >> 4;
    }

    const uint8_t *line = w->codes + (size_t)row * w->stride;
    int i = col % KQ_BLOCK_COLS;
    if (w->bits == 8) {
        return line[col];
    }

    // 4- and 3-bit rows: superblocks of 128 columns (16 * bits bytes), then 32-column blocks.
    int super_cols = kq_rows_super_cols(w);
    if (col < super_cols) {
        int c = col % KQ_SUPER_COLS, t = c / 16; // lane c % 16, step t
        const uint8_t *super = line + (size_t)(col / KQ_SUPER_COLS) * (size_t)(w->bits * 16);
        if (w->bits == 4) {
            // Nibble t of uint32 c % 16 is byte 4 (c % 16) + t / 2, the high half for odd t.
            uint8_t byte = super[4 * (c % 16) + t / 2];
            return t % 2 ? byte >> 4 : byte & 15;
        }
        // Bits 3t .. 3t + 2 of the 24-bit word at byte 3 (c % 16).
        const uint8_t *word = super + 3 * (c % 16);
        uint32_t word24 = (uint32_t)word[0] | (uint32_t)word[1] << 8 | (uint32_t)word[2] << 16;
        return (int)(word24 >> (3 * t)) & 7;
    }
    const uint8_t *block = line + (size_t)super_cols / KQ_BLOCK_COLS * (size_t)(w->bits * 4) +
                           (size_t)((col - super_cols) / KQ_BLOCK_COLS) * (size_t)(w->bits * 4);
    if (w->bits == 4) {
        return i < 16 ? block[i % 16] & 15 : block[i % 16] >> 4;
    }
    int low = (block[i % 8] >> (2 * (i / 8))) & 3;
    int high = (block[8 + i / 8] >> (i % 8)) & 1;
    return low | high << 2;
}

// Index of (row, group) in the scale and zero arrays.
static size_t kq_group_index(const KQuantMatrix *w, int row, int group) {
    if (w->layout == KQ_TILES) {
        return ((size_t)(row / KQ_TILE_ROWS) * (size_t)w->n_groups + (size_t)group) * KQ_TILE_ROWS +
               (size_t)(row % KQ_TILE_ROWS);
    }
    return (size_t)row * (size_t)w->n_groups + (size_t)group;
}

float kq_scale(const KQuantMatrix *w, int row, int group) {
    size_t index = kq_group_index(w, row, group);
    if (w->fp16_scales) {
        return fp16_to_fp32(((const uint16_t *)w->scales)[index]);
    }
    return ((const float *)w->scales)[index];
}

int kq_zero(const KQuantMatrix *w, int row, int group) {
    return w->zeros ? w->zeros[kq_group_index(w, row, group)] : w->zero_point;
}

// First column past group g: groups end every w->group columns, the last at cols_padded.
static int group_end(const KQuantMatrix *w, int g) {
    return g == w->n_groups - 1 ? w->cols_padded : (g + 1) * w->group;
}

void quantize_acts_scalar(const float *x, int cols, int group, KActs *a) {
    for (int i = 0; i < a->m; i++) {
        const float *row = x + (size_t)i * cols;
        int8_t *q = a->q + (size_t)i * a->cols_padded;
        float max_abs = 0.0f;
        for (int k = 0; k < cols; k++) {
            max_abs = fmaxf(max_abs, fabsf(row[k]));
        }
        float scale = max_abs / 127.0f;
        a->scale[i] = scale;
        for (int k = 0; k < cols; k++) {
            // |x| <= max_abs makes |x / scale| <= 127 up to rounding; the clamp covers that.
            float v = scale > 0.0f ? rintf(row[k] / scale) : 0.0f;
            q[k] = (int8_t)fminf(fmaxf(v, -127.0f), 127.0f);
        }
        memset(q + cols, 0, (size_t)(a->cols_padded - cols));
        for (int g = 0; g < a->n_groups; g++) {
            int end = g == a->n_groups - 1 ? a->cols_padded : (g + 1) * group;
            int32_t sum = 0;
            for (int k = g * group; k < end; k++) {
                sum += q[k];
            }
            a->group_sum[(size_t)i * a->n_groups + g] = sum;
        }
    }
}

void qgemm_a8_scalar(const KQuantMatrix *w, int tile0, int tile1, const KActs *a, float *y,
                     int ldy) {
    int row_end = tile1 * KQ_TILE_ROWS < w->rows ? tile1 * KQ_TILE_ROWS : w->rows;
    for (int n = tile0 * KQ_TILE_ROWS; n < row_end; n++) {
        for (int i = 0; i < a->m; i++) {
            const int8_t *q = a->q + (size_t)i * a->cols_padded;
            float acc = 0.0f;
            for (int g = 0; g < w->n_groups; g++) {
                int32_t sum = 0;
                for (int k = g * w->group; k < group_end(w, g); k++) {
                    sum += kq_code(w, n, k) * q[k];
                }
                sum -= kq_zero(w, n, g) * a->group_sum[(size_t)i * a->n_groups + g];
                acc = fmaf((float)sum, kq_scale(w, n, g), acc);
            }
            y[(size_t)i * ldy + n] = acc * a->scale[i];
        }
    }
}

void dequantize_rows_scalar(const KQuantMatrix *w, int row0, int row1, float *out) {
    for (int n = row0; n < row1; n++) {
        float *dst = out + (size_t)(n - row0) * w->cols;
        for (int g = 0; g < w->n_groups; g++) {
            float scale = kq_scale(w, n, g);
            int zero = kq_zero(w, n, g);
            int end = group_end(w, g) < w->cols ? group_end(w, g) : w->cols;
            for (int k = g * w->group; k < end; k++) {
                dst[k] = (float)(kq_code(w, n, k) - zero) * scale;
            }
        }
    }
}

void qgemv_a16_scalar(const KQuantMatrix *w, int row0, int row1, const float *x, float *y) {
    float *row = malloc((size_t)w->cols * sizeof(float));
    if (!row) {
        abort();
    }
    for (int n = row0; n < row1; n++) {
        dequantize_rows_scalar(w, n, n + 1, row);
        y[n] = dot_f32_16lane(x, row, w->cols);
    }
    free(row);
}

// ----------------------------------------------------------------------------
// Throughput loops

// Eight independent chains, so the loop measures throughput rather than latency.
double peak_int8_scalar(long iterations, int32_t *sink) {
    int32_t acc[8] = {0};
    volatile uint8_t u_source = 3;
    volatile int8_t q_source = -2;
    uint8_t u = u_source;
    int8_t q = q_source;
    for (long i = 0; i < iterations; i++) {
        for (int j = 0; j < 8; j++) {
            acc[j] += u * q;
        }
    }
    *sink = acc[0] + acc[7];
    return (double)iterations * 8 * 2;
}

double peak_fp32_scalar(long iterations, float *sink) {
    float acc[8] = {0};
    volatile float a_source = 1e-7f;
    float a = a_source;
    for (long i = 0; i < iterations; i++) {
        for (int j = 0; j < 8; j++) {
            acc[j] = fmaf(a, a, acc[j]);
        }
    }
    *sink = acc[0] + acc[7];
    return (double)iterations * 8 * 2;
}
