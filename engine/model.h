// model.h: a decoder-only transformer loaded from a GGUF file, in one internal layout.
//
// Weight matrices stay in their file precision (F32, F16 or BF16, memory-mapped) and are converted
// to fp32 where they are used, so an 8B BF16 model needs its 16 GB once. A quantized variant
// (model_make_variant) shares the base model's file, tokenizer, embeddings, norms and output head,
// and owns only its transformer-block matrices, as the reference study quantizes only those.
#ifndef QBIAS_MODEL_H
#define QBIAS_MODEL_H

#include <stdbool.h>
#include <stdint.h>

#include "ggml_types.h"
#include "../quant/format.h"
#include "../quant/spec.h"
#include "gguf.h"
#include "tokenizer.h"

typedef enum {
    ARCH_LLAMA = 0,
} ModelArch;

typedef struct {
    ModelArch arch;
    char arch_name[32];     // general.architecture as stored, e.g. "llama"
    int n_vocab;
    int n_embd;             // width of the residual stream
    int n_layer;
    int n_head;             // query heads
    int n_head_kv;          // key/value heads (grouped-query attention when < n_head)
    int head_dim;           // per-head width of q, k and v
    int n_ff;               // hidden width of the feed-forward network
    int n_ctx_train;        // context length the model was trained with
    int rope_dim;           // leading dimensions of each head that RoPE rotates (<= head_dim)
    float rope_freq_base;
    float norm_eps;         // RMSNorm epsilon
    bool tied_output;       // output head shares token_embd
    // Flags for values taken from defaults because the GGUF key was absent (shown by `qbias info`).
    bool rope_freq_base_default;
    bool head_count_kv_default;
    bool rope_dim_default;
} ModelConfig;

// A weight matrix of shape [rows, cols] = [outputs, inputs], row-major, so y = W x.
typedef struct {
    const char *name;   // tensor name in the file (static storage of the model)
    int rows;
    int cols;
    GGMLType type;      // storage type of `data`: F32, F16 or BF16 (ignored when packed)
    const void *data;   // rows x cols elements of `type`, in the file mapping or in `owned`
    void *owned;        // non-NULL when this matrix owns its data (for example a quantized copy)
    const QMatrix *packed; // packed integer weights (quant/format.h), or NULL; then data == packed
    int act_bits;       // 8: activations are fake-quantized to per-token int8 before an fp32
                        // product (the simulated W8A8/W4A8 path); 0: fp32 activations
} Weight;

typedef struct {
    const float *attn_norm; // [n_embd]
    Weight attn_q;          // [n_head * head_dim, n_embd]
    Weight attn_k;          // [n_head_kv * head_dim, n_embd]
    Weight attn_v;          // [n_head_kv * head_dim, n_embd]
    Weight attn_output;     // [n_embd, n_head * head_dim]
    const float *ffn_norm;  // [n_embd]
    Weight ffn_gate;        // [n_ff, n_embd]
    Weight ffn_up;          // [n_ff, n_embd]
    Weight ffn_down;        // [n_embd, n_ff]
} Layer;

typedef struct Model {
    char *path;
    char *variant;           // "fp32" for the model as stored, else the quantization spec
    ModelConfig config;
    GGUFFile *file;          // owned by the base model
    Tokenizer *tokenizer;    // owned by the base model
    Weight token_embd;       // [n_vocab, n_embd]
    Weight output;           // [n_vocab, n_embd]; same data as token_embd when tied
    const float *output_norm; // [n_embd]
    const float *rope_freq_factors; // [head_dim / 2] or NULL (Llama 3.1 rope scaling)
    Layer *layers;           // [n_layer]
    float *owned_floats;     // norm vectors converted to fp32 (base model only)
    const struct Model *base; // NULL for a model loaded from a file; else the model it was made from
} Model;

// Loads a GGUF model. Returns NULL with an error naming the file and the problem (unsupported
// architecture, missing tensor, shape mismatch, unsupported tensor type...). Free with model_free().
Model *model_load(const char *path);

// Makes a variant of `base` with its transformer-block matrices quantized by `spec`. The
// embeddings, norms and output head stay full precision and are shared with `base`, as the
// reference study keeps them. spec "fp32" gives a variant that shares every weight. Returns NULL
// with an error for a spec the engine cannot apply.
// Quantized matrices are packed (quant/format.h), so a W4 variant takes about 0.53 bytes per
// quantized weight; specs with "-fake" store them dequantized in fp32 instead ("fake quantization",
// 4 bytes per weight), as the reference study simulated them.
Model *model_make_variant(const Model *base, const QuantSpec *spec);

// Frees a model. A variant must be freed before the base model it was made from.
void model_free(Model *m);

// Returns the number of bytes of one weight matrix as stored (a packed matrix: its allocation).
size_t weight_nbytes(const Weight *w);

// Converts row `row` of a weight matrix to fp32. `out` has w->cols elements.
void weight_row_to_f32(const Weight *w, int row, float *out);

// Converts a weight matrix to a newly allocated fp32 array [rows * cols]; the caller frees it.
float *weight_to_f32(const Weight *w);

#endif
