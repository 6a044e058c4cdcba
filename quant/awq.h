// awq.h: AWQ (Lin et al., "AWQ: Activation-aware Weight Quantization for LLM Compression and
// Acceleration", MLSys 2024): the scale search and the weight-clipping search, model-agnostic.
//
// Scale search (llm-awq auto_scale.py; llmc awq.py search_scale_subset, trans_version v2): the
// linears of a subset share one input X [n, cols] (for example q, k and v after the attention
// norm). For ratio = i / n_grid, i = 0..n_grid-1:
//   s = max(mean|X|^ratio, 1e-4) per input channel, then s /= sqrt(max(s) * min(s));
//   each linear's weights become Q(W * s) (round-to-nearest, symmetric, per group) and the input
//   X / s; the loss is the mean squared difference between the output of the module that the
//   subset feeds and that module's full-precision output.
// The scales of the lowest loss win; ratio 0 gives s = 1, plain RTN, so the chosen scales are
// never worse than no scaling on this objective (ties keep the earlier ratio). The caller folds s
// into the operation that produces X (calib.h's migrate_* functions).
//
// Here the module is a callback that receives effective weights Q(W * s) / s (columns divided by
// s) and applies them to the unscaled input: (X / s) Q(W s)^T = X (Q(W s) / s)^T, so X itself is
// never rescaled or copied.
//
// Clipping search (llm-awq auto_clip.py; llmc auto_clip.py, clip_version v1, symmetric): for each
// output row and weight group, the clipping threshold max|w| * (1 - i / n_grid), i = 0.. below
// max_shrink * n_grid, that minimizes the mean over sampled tokens of the squared error of that
// group's partial dot product x_g . w_g is kept; the weights are then clamped to it.
#ifndef QBIAS_QUANT_AWQ_H
#define QBIAS_QUANT_AWQ_H

#include <stddef.h>

// Computes the output of the inspected module for the subset's effective weights (one fp32 matrix
// [rows[i], cols] per linear, in the order of AwqScaleSearch.w). Writes n_out values to out.
// Returns 0, or -1 to abort the search.
typedef int (*AwqOutputFn)(void *ctx, const float *const *weights, float *out);

typedef struct {
    int n_layers;
    const float *const *w;     // [n_layers] fp32 weights [rows[i], cols]; not modified
    const int *rows;           // [n_layers]
    int cols;
    const float *act_mean_abs; // [cols] mean |x| over the calibration tokens
    int bits;                  // 2..8, symmetric
    int group_size;            // 0: one group per row
    int n_grid;                // 20 in llm-awq and llmc
    size_t n_out;              // values the module writes
    AwqOutputFn output;
    void *ctx;
} AwqScaleSearch;

// Writes the chosen scales to scales [cols]. losses [n_grid] (may be NULL) receives each ratio's
// loss and *best_index (may be NULL) the chosen ratio's index. Returns 0, or -1 when the callback
// failed.
int awq_search_scales(const AwqScaleSearch *search, float *scales, double *losses,
                      int *best_index);

// Writes the scales of ratio index i (0 <= i < n_grid) for the given activation means to
// scales [cols]; awq_search_scales tries these.
void awq_grid_scales(const float *act_mean_abs, int cols, int i, int n_grid, float *scales);

// Searches the clipping threshold of each row and group of w [rows, cols] on inputs x
// [n_tokens, cols], of which every (n_tokens / n_sample_tokens)-th token is used (llmc passes the
// calibration sequence length as n_sample_tokens). Writes the thresholds to max_val
// [rows, n_groups] (n_groups = ceil(cols / group)). max_shrink 0.5 with n_grid 20 tries the
// ratios 1, 0.95, ..., 0.55.
void awq_search_clip(const float *w, int rows, int cols, int bits, int group_size, const float *x,
                     int n_tokens, int n_sample_tokens, int n_grid, double max_shrink,
                     float *max_val);

// Clamps each row and group of w to [-max_val, max_val] (max_val as awq_search_clip writes it).
void awq_apply_clip(float *w, int rows, int cols, int group_size, const float *max_val);

#endif
