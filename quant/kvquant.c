// kvquant.c: KV-cache quantization helpers (see kvquant.h).
#include "kvquant.h"

#include <math.h>
#include <stddef.h>

// Smallest range used for a scale, so that a constant vector gets codes 0 instead of a division
// by zero (the same floor as rtn.c).
#define KV_MIN_RANGE 1e-5f

// Computes the grid of one head vector: offset = min(x), scale = range / (2^bits - 1).
static void head_grid(const float *x, int n, int bits, float *scale, float *offset) {
    float lo = n > 0 ? x[0] : 0.0f, hi = lo;
    for (int i = 1; i < n; i++) {
        lo = fminf(lo, x[i]);
        hi = fmaxf(hi, x[i]);
    }
    *scale = fmaxf(hi - lo, KV_MIN_RANGE) / (float)((1 << bits) - 1);
    *offset = lo;
}

static float head_code(float x, float scale, float offset, int bits) {
    float q_max = (float)((1 << bits) - 1);
    float q = rintf((x - offset) / scale);
    return q < 0.0f ? 0.0f : (q > q_max ? q_max : q);
}

void kv_quantize_head(const float *x, int n, int bits, uint8_t *codes, float *scale,
                      float *offset) {
    head_grid(x, n, bits, scale, offset);
    for (int i = 0; i < n; i++) {
        codes[i] = (uint8_t)head_code(x[i], *scale, *offset, bits);
    }
}

void kv_dequantize_head(const uint8_t *codes, int n, float scale, float offset, float *out) {
    for (int i = 0; i < n; i++) {
        out[i] = offset + (float)codes[i] * scale;
    }
}

void kv_fake_quantize_row(float *row, int n_heads, int head_dim, int bits) {
    for (int h = 0; h < n_heads; h++) {
        float *head = row + (size_t)h * (size_t)head_dim;
        float scale, offset;
        head_grid(head, head_dim, bits, &scale, &offset);
        for (int i = 0; i < head_dim; i++) {
            head[i] = offset + head_code(head[i], scale, offset, bits) * scale;
        }
    }
}
