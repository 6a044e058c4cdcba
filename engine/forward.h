// forward.h: the transformer forward pass over a batch of tokens, with a key/value cache.
//
// A batch may mix several sequences (each token names its sequence slot and position), so many
// short sentences share one matrix multiplication per weight. Each token attends to the cached
// positions of its own sequence, including the tokens before it in the same batch.
#ifndef QBIAS_FORWARD_H
#define QBIAS_FORWARD_H

#include "model.h"

typedef struct {
    int n_layer;
    int n_seq;          // sequence slots
    int n_ctx;          // positions per slot
    int kv_dim;         // n_head_kv * head_dim
    float *k;           // [n_layer][n_seq][n_ctx][kv_dim]
    float *v;           // [n_layer][n_seq][n_ctx][kv_dim]
    int *n_cached;      // [n_seq] positions stored per slot
} KVCache;

// Allocates a cache for n_seq sequences of up to n_ctx positions. Returns NULL with an error when
// the size overflows or exceeds what the machine can allocate.
KVCache *kv_cache_new(const ModelConfig *c, int n_seq, int n_ctx);
void kv_cache_free(KVCache *kv);
// Forgets the positions of one sequence slot (or every slot when seq < 0).
void kv_cache_clear(KVCache *kv, int seq);

typedef struct {
    int n_tokens;
    const int *tokens;  // [n_tokens] token ids
    const int *pos;     // [n_tokens] positions; a sequence's positions continue its cache
    const int *seq;     // [n_tokens] sequence slots
} Batch;

// Runs the model over a batch, appending each token's keys and values to the cache, and writes the
// final normalized hidden state of every token to hidden_out [n_tokens, n_embd].
// Returns -1 with an error on an invalid token id, position or slot.
// A variant whose recipe quantizes the KV cache ("+kv8", "+kv4") stores each token's keys (after
// RoPE) and values quantized per head (model_runtime_quant in quantize.h).
int model_forward(const Model *m, KVCache *kv, const Batch *b, float *hidden_out);

// Computes logits [n, n_vocab] = hidden [n, n_embd] x output^T.
void model_logits(const Model *m, const float *hidden, int n, float *logits);

// Multiplies activations by a weight matrix: y [n, w->rows] = x [n, w->cols] x W^T.
void linear_forward(const Weight *w, const float *x, int n, float *y);

// ----------------------------------------------------------------------------
// Pieces of one transformer block over whole sequences at positions 0..n-1 without a cache, for
// calibration, which runs the model block by block. They cover the llama block (RMSNorm, RoPE of
// either layout, SwiGLU); the caller adds q/k/v biases. Matrix products use BLAS sgemm, which is
// faster than the order-fixed kernels of model_forward; results agree with model_forward to
// float rounding, not bit for bit.

// Writes cos and sin of the RoPE angles of positions 0..n_pos-1 to cos_table and sin_table
// [n_pos, rope_dim / 2], as model_forward computes them.
void rope_table(const Model *m, int n_pos, float *cos_table, float *sin_table);

// out [n, n_embd] = rmsnorm(x) * weight, row by row (x may equal out).
void block_rmsnorm(const Model *m, const float *weight, const float *x, int n, float *out);

// Causal self-attention of one sequence of n tokens at positions 0..n-1. Rotates q
// [n, n_head * head_dim] and k [n, n_head_kv * head_dim] in place (RoPE, from tables of at least n
// positions) and writes the attention output [n, n_head * head_dim], the input of attn_output.
void block_attention(const Model *m, const float *rope_cos, const float *rope_sin, float *q,
                     float *k, const float *v, int n, float *out);

// Adds bias [n] to every row of y [n_rows, n]; a NULL bias adds nothing.
void block_add_bias(float *y, const float *bias, int n_rows, int n);

// gate[i] = silu(gate[i]) * up[i] for i < count: the feed-forward activation, the input of
// ffn_down.
void block_swiglu(float *gate, const float *up, size_t count);

// y [n, rows] = x [n, cols] w^T for an fp32 matrix w [rows, cols], with BLAS sgemm.
void block_linear(const float *w, int rows, int cols, const float *x, int n, float *y);

#endif
