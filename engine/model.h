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

#include <cjson/cJSON.h>

#include "ggml_types.h"
#include "../quant/format.h"
#include "../quant/spec.h"
#include "gguf.h"
#include "tokenizer.h"

typedef enum {
    ARCH_LLAMA = 0, // Llama 1-3, Mistral: RMSNorm, RoPE, grouped-query attention, SwiGLU
    ARCH_QWEN2,     // as llama, with q/k/v biases and neox RoPE
    ARCH_PHI3,      // as llama, fused qkv and gate/up matrices, neox RoPE, sliding window
    ARCH_GEMMA2,    // GeGLU, post-attention/FFN norms, logit soft-caps, alternating sliding window
    ARCH_GPT2,      // LayerNorm, learned positions, fused qkv, GELU MLP, biases everywhere
} ModelArch;

// Which elements of a head RoPE rotates together.
typedef enum {
    ROPE_NORMAL, // adjacent pairs (2i, 2i+1): GGUF "llama" layout (llama.cpp LLAMA_ROPE_TYPE_NORM)
    ROPE_NEOX,   // halves (i, i + rope_dim/2): GGUF qwen2/phi3/gemma2 and Hugging Face rotate_half
    ROPE_NONE,   // no rotary embedding (GPT-2's learned positions)
} RopeType;

typedef enum {
    FFN_SILU_GLU, // down(silu(gate(h)) * up(h))
    FFN_GELU_GLU, // down(gelu(gate(h)) * up(h)), gelu in its tanh approximation
    FFN_GELU,     // down(gelu(up(h) + b_up)) + b_down, GPT-2's MLP
} FfnType;

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
    RopeType rope_type;
    float norm_eps;         // RMSNorm (or LayerNorm) epsilon
    bool layer_norm;        // LayerNorm with bias (GPT-2) instead of RMSNorm
    FfnType ffn;
    float attn_scale;       // multiplier of q . k (1/sqrt(head_dim) unless the architecture differs)
    float attn_softcap;     // 0, or c in s = c * tanh(s / c) applied to attention scores (gemma2)
    float final_softcap;    // 0, or the same cap applied to the output logits (gemma2)
    int sliding_window;     // 0, or W: key j is hidden from query i when i - j >= W
    bool window_even_layers; // the window applies to layers 0, 2, 4, ... only (gemma2)
    float embed_scale;      // token embeddings are multiplied by this (gemma2: sqrt(n_embd))
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

// A transformer block. Fused matrices in a file (phi3's and gpt2's attn_qkv, phi3's ffn_up holding
// gate and up) are split into views of their row ranges, so every architecture has the same fields.
// Bias and extra-norm vectors are NULL where the architecture has none.
typedef struct {
    const float *attn_norm;   // [n_embd]
    const float *attn_norm_b; // [n_embd] LayerNorm bias
    Weight attn_q;            // [n_head * head_dim, n_embd]
    Weight attn_k;            // [n_head_kv * head_dim, n_embd]
    Weight attn_v;            // [n_head_kv * head_dim, n_embd]
    const float *bq, *bk, *bv; // biases of q, k, v
    Weight attn_output;       // [n_embd, n_head * head_dim]
    const float *bo;          // [n_embd]
    const float *post_attn_norm; // [n_embd] RMSNorm of the attention output (gemma2)
    const float *ffn_norm;    // [n_embd]
    const float *ffn_norm_b;  // [n_embd] LayerNorm bias
    Weight ffn_gate;          // [n_ff, n_embd]; rows == 0 for FFN_GELU
    Weight ffn_up;            // [n_ff, n_embd]
    const float *b_up;        // [n_ff]
    Weight ffn_down;          // [n_embd, n_ff]
    const float *b_down;      // [n_embd]
    const float *post_ffn_norm; // [n_embd] RMSNorm of the FFN output (gemma2)
} Layer;

typedef struct Model {
    char *path;
    char *variant;           // "fp32" for the model as stored, else the quantization spec
    ModelConfig config;
    GGUFFile *file;          // owned by the base model
    Tokenizer *tokenizer;    // owned by the base model
    Weight token_embd;       // [n_vocab, n_embd]
    Weight output;           // [n_vocab, n_embd]; same data as token_embd when tied
    Weight position_embd;    // [n_ctx_train, n_embd] learned positions (gpt2); rows == 0 otherwise
    const float *output_norm; // [n_embd]
    const float *output_norm_b; // [n_embd] LayerNorm bias, or NULL
    const float *rope_freq_factors; // [rope_dim / 2] or NULL (Llama 3.1 rope scaling)
    Layer *layers;           // [n_layer]
    float **owned_vectors;   // norm and bias vectors converted to fp32 (base model only)
    int n_owned_vectors;
    void *checkpoint;        // a Hugging Face model's SafeTensorsSet (base model only), or NULL
    GGUFFile *overlay;       // a saved variant of a Hugging Face model: the file its block tensors
                             // come from (base model only), or NULL
    char *unsupported;       // what the loader found but ignores (for `qbias info`), or NULL
    const struct Model *base; // NULL for a model loaded from a file; else the model it was made from
} Model;

// Fills the architecture rules of a configuration built by hand (tests, benchmarks) with
// llama's: RMSNorm, normal RoPE, SwiGLU, scale 1/sqrt(head_dim), no caps or window. Call it after
// setting the sizes; it changes only fields that are still zero.
void model_config_set_llama_rules(ModelConfig *c);

// Hands a vector to a model built by hand, which frees it with the model.
void model_own_vector(Model *m, float *vector);

// Loads a Hugging Face model folder (config.json, model.safetensors or an index with shards,
// tokenizer.json or tokenizer.model files). Returns NULL with an error naming the folder and the
// unsupported or missing part. Free with model_free().
Model *model_load_hf(const char *folder);

// Writes a model (a quantized variant included) as a GGUF file that model_load reads back: the
// source file's metadata, the key qbias.quant.recipe = m->variant, each member of quant_metadata
// (strings, numbers, bools; may be NULL) as qbias.quant.<name>, and every tensor as the model
// holds it, packed matrices as GGML_TYPE_QBIAS_PACKED. A model from a Hugging Face folder is
// written as its block tensors and the folder's path, which must stay in place for the file to
// load. Written atomically. Returns 0, or -1 with an error.
int model_save_gguf(const Model *m, const char *path, const struct cJSON *quant_metadata);

// Loads a model from a GGUF file or a Hugging Face folder.
Model *model_open(const char *path);

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
