// rtn.c: round-to-nearest weight quantization (definitions in rtn.h).
#include "rtn.h"

#include <math.h>
#include <stdlib.h>

// Smallest range used for a scale, as AWQ's reference pseudo_quantize_tensor clamps it, so an
// all-zero group gets codes 0 instead of a division by zero.
#define RTN_MIN_RANGE 1e-5f

static float clampf(float x, float lo, float hi) {
    return x < lo ? lo : (x > hi ? hi : x);
}

float rtn_quantize_group(const float *w, int n, int bits, bool symmetric, int *q, int *zero) {
    if (symmetric) {
        float max_abs = 0.0f;
        for (int i = 0; i < n; i++) {
            max_abs = fmaxf(max_abs, fabsf(w[i]));
        }
        float q_max = (float)((1 << (bits - 1)) - 1);
        float scale = fmaxf(max_abs, RTN_MIN_RANGE) / q_max;
        // The lower bound -(q_max + 1) is the reference's; |w| <= max_abs keeps codes above it.
        for (int i = 0; q && i < n; i++) {
            q[i] = (int)clampf(rintf(w[i] / scale), -q_max - 1.0f, q_max);
        }
        *zero = 0;
        return scale;
    }

    float lo = w[0], hi = w[0];
    for (int i = 1; i < n; i++) {
        lo = fminf(lo, w[i]);
        hi = fmaxf(hi, w[i]);
    }
    float q_max = (float)((1 << bits) - 1);
    float scale = fmaxf(hi - lo, RTN_MIN_RANGE) / q_max;
    float z = clampf(-rintf(lo / scale), 0.0f, q_max);
    for (int i = 0; q && i < n; i++) {
        q[i] = (int)clampf(rintf(w[i] / scale) + z, 0.0f, q_max);
    }
    *zero = (int)z;
    return scale;
}

void rtn_fake_quantize(const float *w, float *out, int rows, int cols, int bits, int group_size,
                       bool symmetric) {
    int group = group_size > 0 && group_size < cols ? group_size : cols;
    int *q = malloc((size_t)group * sizeof(int));
    if (!q) {
        abort();
    }
    for (long r = 0; r < rows; r++) {
        for (int c0 = 0; c0 < cols; c0 += group) {
            int n = cols - c0 < group ? cols - c0 : group;
            const float *src = w + r * cols + c0;
            float *dst = out + r * cols + c0;
            int zero = 0;
            float scale = rtn_quantize_group(src, n, bits, symmetric, q, &zero);
            for (int i = 0; i < n; i++) {
                dst[i] = (float)(q[i] - zero) * scale;
            }
        }
    }
    free(q);
}
