// kvquant.c: KV-cache quantization helpers (see kvquant.h).
#include "kvquant.h"

#include <stdlib.h>

#include "rtn.h"

void kv_quantize_head(const float *x, int n, int bits, uint8_t *codes, float *scale, int *zero) {
    int *q = malloc((size_t)(n > 0 ? n : 1) * sizeof(int));
    if (!q) {
        abort();
    }
    *scale = rtn_quantize_group(x, n, bits, false, q, zero);
    for (int i = 0; i < n; i++) {
        codes[i] = (uint8_t)q[i];
    }
    free(q);
}

void kv_dequantize_head(const uint8_t *codes, int n, float scale, int zero, float *out) {
    for (int i = 0; i < n; i++) {
        out[i] = (float)((int)codes[i] - zero) * scale;
    }
}

void kv_fake_quantize_row(float *row, int n_heads, int head_dim, int bits) {
    // One group per head: RTN's per-row layout over the [n_heads, head_dim] view of the row.
    rtn_fake_quantize(row, row, n_heads, head_dim, bits, 0, false);
}
