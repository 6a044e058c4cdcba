// kvquant.h: KV-cache quantization, int8 or int4 per head and per token.
//
// Each head's key (or value) vector of one token is one group: asymmetric min-max rounding with
// a float offset, x' = min + code * scale, scale = (max - min) / (2^bits - 1), so the range of
// every head vector is covered even when all its values have one sign. Keys are quantized after
// RoPE, the values the attention reads. The reference study did not quantize the KV cache; this
// is an extension.
#ifndef QBIAS_QUANT_KVQUANT_H
#define QBIAS_QUANT_KVQUANT_H

#include <stdint.h>

// Quantizes one head vector x [n] to codes [n] (0..2^bits - 1), one code per byte, and writes
// its scale and offset: x' = offset + code * scale.
void kv_quantize_head(const float *x, int n, int bits, uint8_t *codes, float *scale,
                      float *offset);

// Writes the dequantized head vector out [n].
void kv_dequantize_head(const uint8_t *codes, int n, float scale, float offset, float *out);

// Quantizes and dequantizes one token's keys or values row [n_heads * head_dim] in place, head
// by head.
void kv_fake_quantize_row(float *row, int n_heads, int head_dim, int bits);

#endif
