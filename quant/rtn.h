// rtn.h: round-to-nearest (RTN) weight quantization, the baseline of every quantization study.
//
// A weight matrix [rows, cols] is split into groups of `group_size` consecutive columns of one row
// (group_size 0: the whole row). When cols is not a multiple of group_size, the last group of each
// row is shorter; a row shorter than group_size is a single group. A matrix is never quantized
// per-tensor.
//
// Symmetric (as AWQ's and llmc's pseudo_quantize_tensor): scale = max(|w|, 1e-5) / (2^(b-1) - 1),
//   q = round(w / scale) in [-(2^(b-1) - 1), 2^(b-1) - 1], w' = q * scale.
// Asymmetric: scale = max(max(w) - min(w), 1e-5) / (2^b - 1), zero = clamp(-round(min(w) / scale),
//   0, 2^b - 1), q = clamp(round(w / scale) + zero, 0, 2^b - 1), w' = (q - zero) * scale.
// round() is round-half-to-even, as torch.round.
#ifndef QBIAS_QUANT_RTN_H
#define QBIAS_QUANT_RTN_H

#include <stdbool.h>

// Quantizes w [rows, cols] and writes the dequantized values ("fake quantization") to out
// [rows, cols]; out may equal w.
void rtn_fake_quantize(const float *w, float *out, int rows, int cols, int bits, int group_size,
                       bool symmetric);

// Quantizes one group of n values: writes the integer codes to q (may be NULL) and returns the
// scale; *zero receives the zero point (0 when symmetric).
float rtn_quantize_group(const float *w, int n, int bits, bool symmetric, int *q, int *zero);

#endif
