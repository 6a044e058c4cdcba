// smoothquant.c: SmoothQuant's factors and per-token activation quantization (see smoothquant.h).
#include "smoothquant.h"

#include <math.h>
#include <stdlib.h>


// Lower bound of max|W_j| and of s_j (smoothquant's smooth.py clamps both with min=1e-5).
#define SQ_MIN_VALUE 1e-5f

void sq_smoothing_factors(const float *act_abs_max, const float *const *w, const int *rows,
                          int n_layers, int cols, double alpha, float *s) {
    float *w_max = calloc((size_t)cols, sizeof(float));
    if (!w_max) {
        abort();
    }
    for (int l = 0; l < n_layers; l++) {
        for (int r = 0; r < rows[l]; r++) {
            const float *row = w[l] + (size_t)r * (size_t)cols;
            for (int j = 0; j < cols; j++) {
                w_max[j] = fmaxf(w_max[j], fabsf(row[j]));
            }
        }
    }
    for (int j = 0; j < cols; j++) {
        double wm = fmax((double)w_max[j], (double)SQ_MIN_VALUE);
        double value = pow((double)act_abs_max[j], alpha) / pow(wm, 1.0 - alpha);
        s[j] = (float)fmax(value, (double)SQ_MIN_VALUE);
    }
    free(w_max);
}
