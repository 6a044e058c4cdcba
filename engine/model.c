// model.c: maps a GGUF file's metadata and tensors onto the internal model layout (model.h).
#include "model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../kernels/half.h"
#include "util.h"

// ----------------------------------------------------------------------------
// Weight helpers

size_t weight_nbytes(const Weight *w) {
    if (w->packed) {
        return w->packed->nbytes;
    }
    const GGMLTypeInfo *info = ggml_type_info(w->type);
    return (size_t)w->rows * (size_t)w->cols / info->block_size * info->type_size;
}

void weight_row_to_f32(const Weight *w, int row, float *out) {
    if (w->packed) {
        qmatrix_dequantize_row(w->packed, row, out);
        return;
    }
    size_t offset = (size_t)row * (size_t)w->cols;
    switch (w->type) {
    case GGML_TYPE_F32:
        memcpy(out, (const float *)w->data + offset, (size_t)w->cols * sizeof(float));
        break;
    case GGML_TYPE_F16: {
        const uint16_t *src = (const uint16_t *)w->data + offset;
        for (int i = 0; i < w->cols; i++) {
            out[i] = fp16_to_fp32(src[i]);
        }
        break;
    }
    case GGML_TYPE_BF16: {
        const uint16_t *src = (const uint16_t *)w->data + offset;
        for (int i = 0; i < w->cols; i++) {
            out[i] = bf16_to_fp32(src[i]);
        }
        break;
    }
    default:
        // model_load accepts only the three types above.
        abort();
    }
}

float *weight_to_f32(const Weight *w) {
    float *out = xmalloc((size_t)w->rows * (size_t)w->cols * sizeof(float));
    for (int r = 0; r < w->rows; r++) {
        weight_row_to_f32(w, r, out + (size_t)r * (size_t)w->cols);
    }
    return out;
}

// ----------------------------------------------------------------------------
// Metadata

// Reads an integer key "<arch>.<suffix>" into *out. Returns 1 if present, 0 if absent (and
// `required` is false), -1 with an error otherwise.
static int read_arch_int(const GGUFFile *f, const char *arch, const char *suffix, bool required,
                         int64_t min, int64_t max, int *out) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    int64_t value = 0;
    int found = gguf_get_int(f, key, &value);
    if (found < 0) {
        return -1;
    }
    if (found == 0) {
        if (required) {
            return err_set("%s: required metadata key '%s' is missing", f->path, key);
        }
        return 0;
    }
    if (value < min || value > max) {
        return err_set("%s: metadata key '%s' is %lld, expected %lld..%lld", f->path, key,
                       (long long)value, (long long)min, (long long)max);
    }
    *out = (int)value;
    return 1;
}

static int read_arch_float(const GGUFFile *f, const char *arch, const char *suffix, float *out) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    double value = 0;
    int found = gguf_get_float(f, key, &value);
    if (found == 1) {
        if (!isfinite(value) || value <= 0) {
            return err_set("%s: metadata key '%s' is %g, expected a positive number", f->path, key,
                           value);
        }
        *out = (float)value;
    }
    return found;
}

static int read_config(const GGUFFile *f, ModelConfig *c) {
    memset(c, 0, sizeof *c);
    char *arch = NULL;
    int found = gguf_get_string(f, "general.architecture", &arch);
    if (found <= 0) {
        return found < 0 ? -1
                         : err_set("%s: metadata key 'general.architecture' is missing; this does "
                                   "not look like a model file (a vocabulary-only GGUF?)",
                                   f->path);
    }
    snprintf(c->arch_name, sizeof c->arch_name, "%s", arch);
    if (strcmp(arch, "llama") != 0) {
        err_set("%s: architecture '%s' is not supported (supported: llama)", f->path, arch);
        free(arch);
        return -1;
    }
    free(arch);
    c->arch = ARCH_LLAMA;
    const char *a = c->arch_name;

    // Limits are sanity bounds against corrupt files, far above any released model.
    if (read_arch_int(f, a, "embedding_length", true, 1, 1 << 20, &c->n_embd) < 0 ||
        read_arch_int(f, a, "block_count", true, 1, 4096, &c->n_layer) < 0 ||
        read_arch_int(f, a, "feed_forward_length", true, 1, 1 << 22, &c->n_ff) < 0 ||
        read_arch_int(f, a, "attention.head_count", true, 1, 1 << 16, &c->n_head) < 0 ||
        read_arch_int(f, a, "context_length", true, 1, 1 << 30, &c->n_ctx_train) < 0) {
        return -1;
    }

    c->n_head_kv = c->n_head;
    int rc = read_arch_int(f, a, "attention.head_count_kv", false, 1, c->n_head, &c->n_head_kv);
    if (rc < 0) {
        return -1;
    }
    c->head_count_kv_default = rc == 0;
    if (c->n_head % c->n_head_kv != 0) {
        return err_set("%s: %d query heads are not a multiple of %d key/value heads", f->path,
                       c->n_head, c->n_head_kv);
    }

    // llama.cpp's default head size is n_embd / n_head; attention.key_length overrides it.
    c->head_dim = c->n_embd / c->n_head;
    if (read_arch_int(f, a, "attention.key_length", false, 1, 1 << 16, &c->head_dim) < 0) {
        return -1;
    }
    int value_length = c->head_dim;
    if (read_arch_int(f, a, "attention.value_length", false, 1, 1 << 16, &value_length) < 0) {
        return -1;
    }
    if (value_length != c->head_dim) {
        return err_set("%s: key length %d differs from value length %d; qbias supports equal "
                       "lengths only",
                       f->path, c->head_dim, value_length);
    }

    c->rope_dim = c->head_dim;
    rc = read_arch_int(f, a, "rope.dimension_count", false, 2, c->head_dim, &c->rope_dim);
    if (rc < 0) {
        return -1;
    }
    c->rope_dim_default = rc == 0;
    if (c->rope_dim % 2 != 0) {
        return err_set("%s: rope.dimension_count %d is odd; RoPE rotates pairs", f->path,
                       c->rope_dim);
    }

    // llama.cpp's default RoPE base is 10000 (the value of the original Llama paper).
    c->rope_freq_base = 10000.0f;
    rc = read_arch_float(f, a, "rope.freq_base", &c->rope_freq_base);
    if (rc < 0) {
        return -1;
    }
    c->rope_freq_base_default = rc == 0;

    rc = read_arch_float(f, a, "attention.layer_norm_rms_epsilon", &c->norm_eps);
    if (rc <= 0) {
        return rc < 0 ? -1
                      : err_set("%s: required metadata key '%s.attention.layer_norm_rms_epsilon' "
                                "is missing",
                                f->path, a);
    }

    // Features qbias does not implement yet must be rejected, not silently ignored.
    char key[128];
    snprintf(key, sizeof key, "%s.rope.scaling.type", a);
    char *scaling = NULL;
    if (gguf_get_string(f, key, &scaling) == 1) {
        bool ok = strcmp(scaling, "none") == 0;
        if (!ok) {
            err_set("%s: RoPE scaling type '%s' is not supported yet", f->path, scaling);
        }
        free(scaling);
        if (!ok) {
            return -1;
        }
    }
    return 0;
}

// ----------------------------------------------------------------------------
// Tensors

static int bind_weight(const GGUFFile *f, const char *name, int rows, int cols, bool required,
                       Weight *w) {
    const GGUFTensor *t = gguf_find_tensor(f, name);
    if (!t) {
        if (required) {
            return err_set("%s: tensor '%s' is missing", f->path, name);
        }
        return 0;
    }
    if (t->n_dims != 2 || t->ne[0] != cols || t->ne[1] != rows) {
        return err_set("%s: tensor '%s' has shape [%lld, %lld, %lld, %lld] (ggml order), expected "
                       "[%d, %d]",
                       f->path, name, (long long)t->ne[0], (long long)t->ne[1], (long long)t->ne[2],
                       (long long)t->ne[3], cols, rows);
    }
    if (t->type != GGML_TYPE_F32 && t->type != GGML_TYPE_F16 && t->type != GGML_TYPE_BF16) {
        return err_set("%s: tensor '%s' has type %s; qbias reads F32, F16 and BF16 tensors "
                       "(convert the model with llama.cpp's convert_hf_to_gguf.py --outtype f16, "
                       "or start from the unquantized file)",
                       f->path, name, ggml_type_name(t->type));
    }
    w->name = t->name;
    w->rows = rows;
    w->cols = cols;
    w->type = t->type;
    w->data = t->data;
    w->owned = NULL;
    return 1;
}

// Reads a 1-D vector of n values (a norm weight) and converts it to fp32 into `dst`.
static int bind_vector(const GGUFFile *f, const char *name, int n, float *dst) {
    const GGUFTensor *t = gguf_find_tensor(f, name);
    if (!t) {
        return err_set("%s: tensor '%s' is missing", f->path, name);
    }
    if (t->n_dims != 1 || t->ne[0] != n) {
        return err_set("%s: tensor '%s' has %lld elements in %u dimensions, expected a vector of %d",
                       f->path, name, (long long)gguf_tensor_nelements(t), t->n_dims, n);
    }
    if (t->type != GGML_TYPE_F32 && t->type != GGML_TYPE_F16 && t->type != GGML_TYPE_BF16) {
        return err_set("%s: tensor '%s' has type %s, expected F32, F16 or BF16", f->path, name,
                       ggml_type_name(t->type));
    }
    // A vector is a one-row matrix for the conversion helper.
    Weight w = {.name = t->name, .rows = 1, .cols = n, .type = t->type, .data = t->data};
    weight_row_to_f32(&w, 0, dst);
    return 0;
}

static int bind_layer(Model *m, int index, float *norms) {
    const ModelConfig *c = &m->config;
    const GGUFFile *f = m->file;
    Layer *layer = &m->layers[index];
    int q_dim = c->n_head * c->head_dim;
    int kv_dim = c->n_head_kv * c->head_dim;
    char name[96];

#define LAYER_TENSOR(suffix) (snprintf(name, sizeof name, "blk.%d.%s", index, suffix), name)
    float *attn_norm = norms;
    float *ffn_norm = norms + c->n_embd;
    if (bind_vector(f, LAYER_TENSOR("attn_norm.weight"), c->n_embd, attn_norm) < 0 ||
        bind_vector(f, LAYER_TENSOR("ffn_norm.weight"), c->n_embd, ffn_norm) < 0 ||
        bind_weight(f, LAYER_TENSOR("attn_q.weight"), q_dim, c->n_embd, true, &layer->attn_q) < 0 ||
        bind_weight(f, LAYER_TENSOR("attn_k.weight"), kv_dim, c->n_embd, true, &layer->attn_k) < 0 ||
        bind_weight(f, LAYER_TENSOR("attn_v.weight"), kv_dim, c->n_embd, true, &layer->attn_v) < 0 ||
        bind_weight(f, LAYER_TENSOR("attn_output.weight"), c->n_embd, q_dim, true,
                    &layer->attn_output) < 0 ||
        bind_weight(f, LAYER_TENSOR("ffn_gate.weight"), c->n_ff, c->n_embd, true,
                    &layer->ffn_gate) < 0 ||
        bind_weight(f, LAYER_TENSOR("ffn_up.weight"), c->n_ff, c->n_embd, true, &layer->ffn_up) < 0 ||
        bind_weight(f, LAYER_TENSOR("ffn_down.weight"), c->n_embd, c->n_ff, true,
                    &layer->ffn_down) < 0) {
        return -1;
    }
#undef LAYER_TENSOR

    // Tensors qbias does not use (biases, for example) would change the model's output if ignored.
    static const char *unsupported[] = {"attn_q.bias", "attn_k.bias", "attn_v.bias",
                                        "attn_output.bias", "ffn_gate_inp.weight"};
    for (size_t i = 0; i < ARRAY_LEN(unsupported); i++) {
        snprintf(name, sizeof name, "blk.%d.%s", index, unsupported[i]);
        if (gguf_find_tensor(f, name)) {
            return err_set("%s: tensor '%s' is not supported by qbias's llama architecture", f->path,
                           name);
        }
    }
    layer->attn_norm = attn_norm;
    layer->ffn_norm = ffn_norm;
    return 0;
}

static int bind_tensors(Model *m) {
    ModelConfig *c = &m->config;
    const GGUFFile *f = m->file;

    const GGUFTensor *embd = gguf_find_tensor(f, "token_embd.weight");
    if (!embd) {
        return err_set("%s: tensor 'token_embd.weight' is missing", f->path);
    }
    if (embd->n_dims != 2 || embd->ne[1] > (1 << 24)) {
        return err_set("%s: tensor 'token_embd.weight' has an invalid shape", f->path);
    }
    c->n_vocab = (int)embd->ne[1];
    if (bind_weight(f, "token_embd.weight", c->n_vocab, c->n_embd, true, &m->token_embd) < 0) {
        return -1;
    }
    int rc = bind_weight(f, "output.weight", c->n_vocab, c->n_embd, false, &m->output);
    if (rc < 0) {
        return -1;
    }
    c->tied_output = rc == 0;
    if (c->tied_output) {
        m->output = m->token_embd;
    }

    // Norm vectors: output norm, then two per layer, all converted to fp32 once (they are small).
    size_t n_floats = (size_t)c->n_embd * (1 + 2 * (size_t)c->n_layer);
    m->owned_floats = xmalloc(n_floats * sizeof(float));
    if (bind_vector(f, "output_norm.weight", c->n_embd, m->owned_floats) < 0) {
        return -1;
    }
    m->output_norm = m->owned_floats;

    m->layers = xcalloc((size_t)c->n_layer, sizeof(Layer));
    for (int l = 0; l < c->n_layer; l++) {
        float *norms = m->owned_floats + (size_t)c->n_embd * (1 + 2 * (size_t)l);
        if (bind_layer(m, l, norms) < 0) {
            return -1;
        }
    }

    // Llama 3.1 RoPE scaling is stored as per-frequency divisors (llama.cpp's rope_freqs tensor).
    const GGUFTensor *freqs = gguf_find_tensor(f, "rope_freqs.weight");
    if (freqs) {
        if (freqs->type != GGML_TYPE_F32 || freqs->n_dims != 1 || freqs->ne[0] != c->rope_dim / 2) {
            return err_set("%s: tensor 'rope_freqs.weight' must be F32 with %d elements", f->path,
                           c->rope_dim / 2);
        }
        m->rope_freq_factors = freqs->data;
    }
    return 0;
}

Model *model_load(const char *path) {
    GGUFFile *f = gguf_open(path);
    if (!f) {
        return NULL;
    }
    Model *m = xcalloc(1, sizeof *m);
    m->path = xstrdup(path);
    m->variant = xstrdup("fp32");
    m->file = f;
    if (read_config(f, &m->config) < 0 || bind_tensors(m) < 0) {
        model_free(m);
        return NULL;
    }

    m->tokenizer = tokenizer_load_gguf(f);
    if (!m->tokenizer) {
        err_prefix("%s: cannot load the tokenizer", path);
        model_free(m);
        return NULL;
    }
    if (tokenizer_vocab_size(m->tokenizer) != m->config.n_vocab) {
        err_set("%s: the tokenizer has %d tokens but token_embd.weight has %d rows", path,
                tokenizer_vocab_size(m->tokenizer), m->config.n_vocab);
        model_free(m);
        return NULL;
    }
    return m;
}

void model_free(Model *m) {
    if (!m) {
        return;
    }
    if (m->layers) {
        for (int l = 0; l < m->config.n_layer; l++) {
            Weight *weights[] = {&m->layers[l].attn_q,   &m->layers[l].attn_k,
                                 &m->layers[l].attn_v,   &m->layers[l].attn_output,
                                 &m->layers[l].ffn_gate, &m->layers[l].ffn_up,
                                 &m->layers[l].ffn_down};
            for (size_t i = 0; i < ARRAY_LEN(weights); i++) {
                free(weights[i]->owned);
            }
        }
        free(m->layers);
    }
    if (!m->base) {
        tokenizer_free(m->tokenizer);
        gguf_close(m->file);
        free(m->owned_floats);
    }
    free(m->path);
    free(m->variant);
    free(m);
}
