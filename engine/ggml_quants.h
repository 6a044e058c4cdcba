// ggml_quants.h: dequantization of llama.cpp's quantized tensor types, so that GGUF files that
// researchers already have (Q8_0, Q4_0, Q4_K_M, Q6_K, ...) can be read.
//
// Block layouts and formulas follow ggml's reference dequantize_row_* functions (ggml-quants.c and
// ggml-common.h, llama.cpp c392e509); each struct below states its size and bits per weight. The
// arithmetic is float32 in the same association as ggml's, so the results equal gguf-py's
// reference dequantizer to float rounding.
#ifndef QBIAS_GGML_QUANTS_H
#define QBIAS_GGML_QUANTS_H

#include <stdbool.h>
#include <stdint.h>

#include "ggml_types.h"

// Returns true when ggml_dequantize() supports `type` (F32, F16, BF16 and the quantized types
// Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K).
bool ggml_can_dequantize(GGMLType type);

// Dequantizes n values stored as `type` at src into dst. n must be a multiple of the type's block
// size (the caller passes whole rows, which GGUF guarantees). Returns 0, or -1 for an unsupported
// type (no error message is set; the caller names the tensor).
int ggml_dequantize(GGMLType type, const void *src, float *dst, int64_t n);

#endif
