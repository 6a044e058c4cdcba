// smoothquant.h: SmoothQuant (Xiao et al., "SmoothQuant: Accurate and Efficient Post-Training
// Quantization for Large Language Models", ICML 2023), model-agnostic parts.
//
// For the linears that share one input X (q, k, v after the attention norm; gate and up after the
// feed-forward norm), the smoothing factor of input channel j is
//   s_j = max(max|X_j|^alpha / max|W_j|^(1 - alpha), 1e-5),
// where max|W_j| is the largest |w| in column j over all those linears (at least 1e-5), as
// smoothquant's smooth_ln_fcs_llama_like. The caller divides the norm weight by s and multiplies
// the weight columns by s (calib.h's migrate_* functions); then the weights are quantized per
// output channel, and the activations per token at run time (Weight.act_bits, engine/linear.c). llmc, which the reference study ran,
// computes max|X|^alpha / max|W|^alpha, the same factors at the study's alpha 0.5.
#ifndef QBIAS_QUANT_SMOOTHQUANT_H
#define QBIAS_QUANT_SMOOTHQUANT_H

// Writes the smoothing factors to s [cols]. act_abs_max [cols] is max |x| per input channel over
// the calibration tokens; w[i] are the n_layers weight matrices [rows[i], cols].
void sq_smoothing_factors(const float *act_abs_max, const float *const *w, const int *rows,
                          int n_layers, int cols, double alpha, float *s);

#endif
