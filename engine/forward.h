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
int model_forward(const Model *m, KVCache *kv, const Batch *b, float *hidden_out);

// Computes logits [n, n_vocab] = hidden [n, n_embd] x output^T.
void model_logits(const Model *m, const float *hidden, int n, float *logits);

// Multiplies activations by a weight matrix: y [n, w->rows] = x [n, w->cols] x W^T.
void linear_forward(const Weight *w, const float *x, int n, float *y);

#endif
