// kvquant.h: KV-cache quantization, int8 or int4 per head and per token.
//
// Each head's key (or value) vector of one token is one group with its own scale and zero point:
// asymmetric min-max round-to-nearest (rtn.h's asymmetric formula), so a head whose values sit
// off zero keeps its resolution. Keys are quantized after RoPE, the values the attention reads.
// The reference study did not quantize the KV cache; this is an extension.
#ifndef QBIAS_QUANT_KVQUANT_H
#define QBIAS_QUANT_KVQUANT_H

#include <stdint.h>

// Quantizes one head vector x [n] to codes [n] (0..2^bits - 1), one code per byte, and writes
// its scale and zero point: x' = (code - zero) * scale.
void kv_quantize_head(const float *x, int n, int bits, uint8_t *codes, float *scale, int *zero);

// Writes the dequantized head vector out [n].
void kv_dequantize_head(const uint8_t *codes, int n, float scale, int zero, float *out);

// Quantizes and dequantizes one token's keys or values row [n_heads * head_dim] in place, head
// by head.
void kv_fake_quantize_row(float *row, int n_heads, int head_dim, int bits);

#endif
