// model.c: maps a GGUF file's metadata and tensors onto the internal model layout (model.h).
#include "model.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../kernels/half.h"
#include "../quant/spec_methods.h"
#include "ggml_quants.h"
#include "safetensors.h"
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
    default: {
        // llama.cpp's block formats: the row starts at a whole number of blocks.
        const GGMLTypeInfo *info = ggml_type_info(w->type);
        size_t row_bytes = (size_t)w->cols / info->block_size * info->type_size;
        ggml_dequantize(w->type, (const uint8_t *)w->data + (size_t)row * row_bytes, out, w->cols);
        break;
    }
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

void model_config_set_llama_rules(ModelConfig *c) {
    if (c->attn_scale == 0.0f) {
        c->attn_scale = 1.0f / sqrtf((float)c->head_dim);
    }
    if (c->embed_scale == 0.0f) {
        c->embed_scale = 1.0f;
    }
}

void model_own_vector(Model *m, float *vector) {
    m->owned_vectors = xrealloc(m->owned_vectors, (size_t)(m->n_owned_vectors + 1) * sizeof(float *));
    m->owned_vectors[m->n_owned_vectors++] = vector;
}

// Sets the fields that differ between architectures, as llama.cpp c392e509 builds each graph.
static int set_architecture_rules(const GGUFFile *f, ModelConfig *c) {
    const char *a = c->arch_name;
    c->rope_type = ROPE_NORMAL;
    c->ffn = FFN_SILU_GLU;
    c->attn_scale = 1.0f / sqrtf((float)c->head_dim);
    c->embed_scale = 1.0f;

    switch (c->arch) {
    case ARCH_LLAMA:
        break;
    case ARCH_QWEN2:
        c->rope_type = ROPE_NEOX;
        break;
    case ARCH_PHI3:
        c->rope_type = ROPE_NEOX;
        if (read_arch_int(f, a, "attention.sliding_window", false, 1, 1 << 30,
                          &c->sliding_window) < 0) {
            return -1;
        }
        break;
    case ARCH_GEMMA2: {
        c->rope_type = ROPE_NEOX;
        c->ffn = FFN_GELU_GLU;
        c->embed_scale = sqrtf((float)c->n_embd);
        // llama.cpp scales queries by 1/sqrt(head_dim), except for the 27B model (46 layers),
        // whose query_pre_attn_scalar is n_embd / n_head.
        if (c->n_layer == 46) {
            c->attn_scale = 1.0f / sqrtf((float)(c->n_embd / c->n_head));
        }
        c->window_even_layers = true;
        if (read_arch_int(f, a, "attention.sliding_window", false, 1, 1 << 30,
                          &c->sliding_window) < 0 ||
            read_arch_float(f, a, "attn_logit_softcapping", &c->attn_softcap) < 0 ||
            read_arch_float(f, a, "final_logit_softcapping", &c->final_softcap) < 0) {
            return -1;
        }
        break;
    }
    case ARCH_GPT2:
        c->rope_type = ROPE_NONE;
        c->ffn = FFN_GELU;
        break;
    }
    return 0;
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
    static const struct {
        const char *name;
        ModelArch arch;
    } known[] = {{"llama", ARCH_LLAMA}, {"qwen2", ARCH_QWEN2}, {"phi3", ARCH_PHI3},
                 {"gemma2", ARCH_GEMMA2}, {"gpt2", ARCH_GPT2}};
    size_t k = 0;
    while (k < ARRAY_LEN(known) && strcmp(known[k].name, arch) != 0) {
        k++;
    }
    if (k == ARRAY_LEN(known)) {
        err_set("%s: architecture '%s' is not supported (supported: llama, qwen2, phi3, gemma2, "
                "gpt2)",
                f->path, arch);
        free(arch);
        return -1;
    }
    free(arch);
    c->arch = known[k].arch;
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
    int key_length = 0;
    rc = read_arch_int(f, a, "attention.key_length", false, 1, 1 << 16, &key_length);
    if (rc < 0) {
        return -1;
    }
    if (rc == 1) {
        c->head_dim = key_length;
    } else if (c->n_embd % c->n_head != 0) {
        return err_set("%s: embedding_length %d is not a multiple of attention.head_count %d, and "
                       "no attention.key_length gives the head size",
                       f->path, c->n_embd, c->n_head);
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

    // GPT-2 uses LayerNorm; the others RMSNorm, each with its own epsilon key.
    c->layer_norm = c->arch == ARCH_GPT2;
    const char *eps_key = c->layer_norm ? "attention.layer_norm_epsilon"
                                        : "attention.layer_norm_rms_epsilon";
    rc = read_arch_float(f, a, eps_key, &c->norm_eps);
    if (rc <= 0) {
        return rc < 0 ? -1
                      : err_set("%s: required metadata key '%s.%s' is missing", f->path, a, eps_key);
    }
    if (set_architecture_rules(f, c) != 0) {
        return -1;
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

// Reads the file's packed layout version (quant/format.h) into *layout: the key
// qbias.packed_layout, or 1 when it is absent (files written before it existed, converted when
// loaded). Returns -1 with an error for a value this qbias cannot read.
static int packed_layout(const GGUFFile *f, int *layout) {
    int64_t value = 1;
    int found = gguf_get_int(f, "qbias.packed_layout", &value);
    if (found < 0) {
        return -1;
    }
    if (value > QMATRIX_LAYOUT_VERSION) {
        return err_set("%s: its key qbias.packed_layout is %lld, but this qbias reads packed "
                       "layouts 1 to %d; a newer qbias wrote it, so use that version or quantize "
                       "the model again",
                       f->path, (long long)value, QMATRIX_LAYOUT_VERSION);
    }
    if (value < 1) {
        return err_set("%s: its key qbias.packed_layout is %lld, which is invalid (layouts are "
                       "numbered 1 to %d); the file is damaged or was edited, so quantize the "
                       "model again",
                       f->path, (long long)value, QMATRIX_LAYOUT_VERSION);
    }
    *layout = (int)value;
    return 0;
}

// Reads a packed matrix written by model_save_gguf: the payload in the tensor, its shape and
// format in the key qbias.packed.<name>. The matrix is copied into an owned allocation.
static int bind_packed(const GGUFFile *f, const GGUFTensor *t, int rows, int cols, Weight *w) {
    char key[160];
    snprintf(key, sizeof key, "qbias.packed.%s", t->name);
    const GGUFArray *a = NULL;
    if (gguf_get_array(f, key, &a) != 1 || a->elem_type != GGUF_TYPE_INT32 || a->n != 8) {
        return err_set("%s: packed tensor '%s' has no valid key %s (8 int32 values)", f->path,
                       t->name, key);
    }

    int64_t v[8];
    for (int i = 0; i < 8; i++) {
        v[i] = gguf_array_get_int(a, (uint64_t)i);
    }
    if (v[0] != rows || v[1] != cols) {
        return err_set("%s: packed tensor '%s' is %lldx%lld, expected %dx%d; the file is "
                       "damaged, so quantize the model again",
                       f->path, t->name, (long long)v[0], (long long)v[1], rows, cols);
    }

    // The flags are 0 or 1, and the activation bits are 8 exactly for the int8-activation layout
    // (model_save_gguf writes both from one recipe). Any other value is damage, which would
    // otherwise read as a valid format.
    bool flags_valid = true;
    for (int i = 4; i <= 6; i++) {
        flags_valid = flags_valid && (v[i] == 0 || v[i] == 1);
    }
    if (!flags_valid || v[7] != (v[6] == 1 ? 8 : 0)) {
        return err_set("%s: packed tensor '%s' has invalid values in its key %s (symmetric %lld, "
                       "fp16 scales %lld, int8 layout %lld, activation bits %lld): the flags must "
                       "be 0 or 1 and the activation bits 8 with the int8 layout, else 0. The file "
                       "is damaged; quantize the model again",
                       f->path, t->name, key, (long long)v[4], (long long)v[5], (long long)v[6],
                       (long long)v[7]);
    }

    QFormat format = {.code_bits = (int)v[2], .group = (int)v[3], .symmetric = v[4] != 0,
                      .fp16_scales = v[5] != 0, .int8_acts = v[6] != 0};
    const char *bad = qformat_check(&format);
    if (bad) {
        return err_set("%s: packed tensor '%s' has an invalid format in its key %s (%s); the "
                       "file is damaged, so quantize the model again",
                       f->path, t->name, key, bad);
    }

    if (t->n_dims != 1) {
        return err_set("%s: packed tensor '%s' has %u dimensions, but packed tensors are stored "
                       "as one dimension of bytes; the file is damaged, so quantize the model "
                       "again",
                       f->path, t->name, t->n_dims);
    }
    int layout = 0;
    if (packed_layout(f, &layout) < 0) {
        return -1;
    }
    QMatrix *packed = qmatrix_from_payload(rows, cols, &format, t->data, t->nbytes, layout);
    if (!packed) {
        return err_set("%s: packed tensor '%s' has %zu bytes, which does not match the format in "
                       "its key %s (%d-bit codes, group %d); the file is damaged or the key was "
                       "edited, so quantize the model again",
                       f->path, t->name, t->nbytes, key, format.code_bits, format.group);
    }

    memset(w, 0, sizeof *w);
    w->name = t->name;
    w->rows = rows;
    w->cols = cols;
    w->type = GGML_TYPE_QBIAS_PACKED;
    w->packed = packed;
    w->data = packed;
    w->owned = packed;
    w->act_bits = (int)v[7];
    return 1;
}

// Binds the rows [row0, row0 + rows) of a 2-D tensor with `cols` columns as a weight matrix (a view
// of a fused tensor when row0 > 0 or rows is less than the tensor's). Returns 1 when bound, 0 when
// the tensor is absent and not required, -1 with an error.
static int bind_rows(const GGUFFile *f, const char *name, int row0, int rows, int total_rows,
                     int cols, bool required, Weight *w) {
    const GGUFTensor *t = gguf_find_tensor(f, name);
    if (!t) {
        return required ? err_set("%s: tensor '%s' is missing", f->path, name) : 0;
    }
    if (t->type == GGML_TYPE_QBIAS_PACKED && row0 == 0 && rows == total_rows) {
        return bind_packed(f, t, rows, cols, w);
    }
    if (t->n_dims != 2 || t->ne[0] != cols || t->ne[1] != total_rows) {
        return err_set("%s: tensor '%s' has shape [%lld, %lld, %lld, %lld] (ggml order), expected "
                       "[%d, %d]",
                       f->path, name, (long long)t->ne[0], (long long)t->ne[1], (long long)t->ne[2],
                       (long long)t->ne[3], cols, total_rows);
    }
    if (!ggml_can_dequantize(t->type)) {
        return err_set("%s: tensor '%s' has type %s, which qbias cannot read (it reads F32, F16, "
                       "BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 and Q2_K..Q6_K); convert the model "
                       "again with one of these types",
                       f->path, name, ggml_type_name(t->type));
    }
    const GGMLTypeInfo *info = ggml_type_info(t->type);
    size_t row_bytes = (size_t)cols / info->block_size * info->type_size;
    memset(w, 0, sizeof *w);
    w->name = t->name;
    w->rows = rows;
    w->cols = cols;
    w->type = t->type;
    w->data = (const uint8_t *)t->data + (size_t)row0 * row_bytes;
    return 1;
}

static int bind_weight(const GGUFFile *f, const char *name, int rows, int cols, bool required,
                       Weight *w) {
    return bind_rows(f, name, 0, rows, rows, cols, required, w);
}

// Converts a 1-D tensor of `total` values to a new fp32 vector owned by the model, and returns
// the slice [offset, offset + n) of it in *out (NULL when absent and not required).
static int load_vector_slice(Model *m, const char *name, int offset, int n, int total,
                             bool required, const float **out) {
    const GGUFFile *f = m->file;
    const GGUFTensor *t = gguf_find_tensor(f, name);
    assert(offset >= 0 && n >= 0 && offset + n <= total);
    *out = NULL;
    if (!t) {
        return required ? err_set("%s: tensor '%s' is missing", f->path, name) : 0;
    }
    if (t->n_dims != 1 || t->ne[0] != total) {
        return err_set("%s: tensor '%s' has %lld elements in %u dimensions, expected a vector of %d",
                       f->path, name, (long long)gguf_tensor_nelements(t), t->n_dims, total);
    }
    if (t->type != GGML_TYPE_F32 && t->type != GGML_TYPE_F16 && t->type != GGML_TYPE_BF16) {
        return err_set("%s: tensor '%s' has type %s, expected F32, F16 or BF16", f->path, name,
                       ggml_type_name(t->type));
    }
    float *values = xmalloc((size_t)total * sizeof(float));
    ggml_dequantize(t->type, t->data, values, total);
    model_own_vector(m, values);
    *out = values + offset;
    return 1;
}

static int load_vector(Model *m, const char *name, int n, bool required, const float **out) {
    return load_vector_slice(m, name, 0, n, n, required, out);
}

// Binds q, k, v (and their biases): separate tensors, or one fused attn_qkv whose rows are q, then
// k, then v (phi3, gpt2).
static int bind_attention(Model *m, int index, Layer *layer) {
    const ModelConfig *c = &m->config;
    const GGUFFile *f = m->file;
    int q_dim = c->n_head * c->head_dim, kv_dim = c->n_head_kv * c->head_dim;
    int fused = q_dim + 2 * kv_dim;
    char name[96];

    snprintf(name, sizeof name, "blk.%d.attn_qkv.weight", index);
    if (gguf_find_tensor(f, name)) {
        if (bind_rows(f, name, 0, q_dim, fused, c->n_embd, true, &layer->attn_q) < 0 ||
            bind_rows(f, name, q_dim, kv_dim, fused, c->n_embd, true, &layer->attn_k) < 0 ||
            bind_rows(f, name, q_dim + kv_dim, kv_dim, fused, c->n_embd, true, &layer->attn_v) < 0) {
            return -1;
        }
        snprintf(name, sizeof name, "blk.%d.attn_qkv.bias", index);
        if (load_vector_slice(m, name, 0, q_dim, fused, false, &layer->bq) < 0 ||
            load_vector_slice(m, name, q_dim, kv_dim, fused, false, &layer->bk) < 0 ||
            load_vector_slice(m, name, q_dim + kv_dim, kv_dim, fused, false, &layer->bv) < 0) {
            return -1;
        }
        return 0;
    }

    struct {
        const char *suffix;
        int rows;
        Weight *w;
        const float **bias;
    } parts[] = {{"attn_q", q_dim, &layer->attn_q, &layer->bq},
                 {"attn_k", kv_dim, &layer->attn_k, &layer->bk},
                 {"attn_v", kv_dim, &layer->attn_v, &layer->bv}};
    for (size_t i = 0; i < ARRAY_LEN(parts); i++) {
        snprintf(name, sizeof name, "blk.%d.%s.weight", index, parts[i].suffix);
        if (bind_weight(f, name, parts[i].rows, c->n_embd, true, parts[i].w) < 0) {
            return -1;
        }
        // Biases are optional for every architecture, as llama.cpp loads them (qwen2 has them).
        snprintf(name, sizeof name, "blk.%d.%s.bias", index, parts[i].suffix);
        if (load_vector(m, name, parts[i].rows, false, parts[i].bias) < 0) {
            return -1;
        }
    }
    return 0;
}

// Binds the feed-forward matrices: gate and up (separate, or phi3's fused ffn_up with gate rows
// first), or GPT-2's up/down MLP with biases.
static int bind_ffn(Model *m, int index, Layer *layer) {
    const ModelConfig *c = &m->config;
    const GGUFFile *f = m->file;
    char name[96];

    snprintf(name, sizeof name, "blk.%d.ffn_down.weight", index);
    if (bind_weight(f, name, c->n_embd, c->n_ff, true, &layer->ffn_down) < 0) {
        return -1;
    }
    snprintf(name, sizeof name, "blk.%d.ffn_down.bias", index);
    if (load_vector(m, name, c->n_embd, c->ffn == FFN_GELU, &layer->b_down) < 0) {
        return -1;
    }

    if (c->ffn == FFN_GELU) {
        snprintf(name, sizeof name, "blk.%d.ffn_up.weight", index);
        if (bind_weight(f, name, c->n_ff, c->n_embd, true, &layer->ffn_up) < 0) {
            return -1;
        }
        snprintf(name, sizeof name, "blk.%d.ffn_up.bias", index);
        return load_vector(m, name, c->n_ff, true, &layer->b_up) < 0 ? -1 : 0;
    }

    snprintf(name, sizeof name, "blk.%d.ffn_gate.weight", index);
    if (!gguf_find_tensor(f, name)) {
        snprintf(name, sizeof name, "blk.%d.ffn_up.weight", index);
        const GGUFTensor *t = gguf_find_tensor(f, name);
        if (t && t->n_dims == 2 && t->ne[1] == 2 * (int64_t)c->n_ff) {
            if (bind_rows(f, name, 0, c->n_ff, 2 * c->n_ff, c->n_embd, true, &layer->ffn_gate) < 0 ||
                bind_rows(f, name, c->n_ff, c->n_ff, 2 * c->n_ff, c->n_embd, true,
                          &layer->ffn_up) < 0) {
                return -1;
            }
            return 0;
        }
        snprintf(name, sizeof name, "blk.%d.ffn_gate.weight", index);
    }
    if (bind_weight(f, name, c->n_ff, c->n_embd, true, &layer->ffn_gate) < 0) {
        return -1;
    }
    snprintf(name, sizeof name, "blk.%d.ffn_up.weight", index);
    return bind_weight(f, name, c->n_ff, c->n_embd, true, &layer->ffn_up) < 0 ? -1 : 0;
}

static int bind_layer(Model *m, int index) {
    const ModelConfig *c = &m->config;
    const GGUFFile *f = m->file;
    Layer *layer = &m->layers[index];
    int q_dim = c->n_head * c->head_dim;
    char name[96];

#define LAYER_TENSOR(suffix) (snprintf(name, sizeof name, "blk.%d.%s", index, suffix), name)
    bool gemma = c->arch == ARCH_GEMMA2;
    if (load_vector(m, LAYER_TENSOR("attn_norm.weight"), c->n_embd, true, &layer->attn_norm) < 0 ||
        load_vector(m, LAYER_TENSOR("attn_norm.bias"), c->n_embd, c->layer_norm,
                    &layer->attn_norm_b) < 0 ||
        load_vector(m, LAYER_TENSOR("ffn_norm.weight"), c->n_embd, true, &layer->ffn_norm) < 0 ||
        load_vector(m, LAYER_TENSOR("ffn_norm.bias"), c->n_embd, c->layer_norm,
                    &layer->ffn_norm_b) < 0 ||
        load_vector(m, LAYER_TENSOR("post_attention_norm.weight"), c->n_embd, gemma,
                    &layer->post_attn_norm) < 0 ||
        load_vector(m, LAYER_TENSOR("post_ffw_norm.weight"), c->n_embd, gemma,
                    &layer->post_ffn_norm) < 0 ||
        bind_attention(m, index, layer) < 0 ||
        bind_weight(f, LAYER_TENSOR("attn_output.weight"), c->n_embd, q_dim, true,
                    &layer->attn_output) < 0 ||
        load_vector(m, LAYER_TENSOR("attn_output.bias"), c->n_embd, false, &layer->bo) < 0 ||
        bind_ffn(m, index, layer) < 0) {
        return -1;
    }

    // A mixture-of-experts router would change the model's output if ignored.
    if (gguf_find_tensor(f, LAYER_TENSOR("ffn_gate_inp.weight"))) {
        return err_set("%s: tensor '%s' belongs to a mixture-of-experts model, which qbias does "
                       "not support",
                       f->path, name);
    }
#undef LAYER_TENSOR
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
    if (c->arch == ARCH_GPT2 && bind_weight(f, "position_embd.weight", c->n_ctx_train, c->n_embd,
                                            true, &m->position_embd) < 0) {
        return -1;
    }

    // Norm and bias vectors are converted to fp32 once; they are small.
    if (load_vector(m, "output_norm.weight", c->n_embd, true, &m->output_norm) < 0 ||
        load_vector(m, "output_norm.bias", c->n_embd, c->layer_norm, &m->output_norm_b) < 0) {
        return -1;
    }

    m->layers = xcalloc((size_t)c->n_layer, sizeof(Layer));
    for (int l = 0; l < c->n_layer; l++) {
        if (bind_layer(m, l) < 0) {
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

// Returns the first field in which a packed matrix's format differs from the one `recipe`
// packs with (quantize.c's recipe_format), with both values, or NULL when they agree.
static const char *packed_format_mismatch(const Weight *w, const QuantRecipe *recipe,
                                          int *stored, int *expected) {
    const QFormat *f = &w->packed->format;
    struct {
        const char *field;
        int stored, expected;
    } fields[] = {
        {"code bits", f->code_bits, recipe->weight_bits},
        {"group", f->group, recipe->group_size},
        {"symmetric", f->symmetric, recipe->symmetric},
        {"fp16 scales", f->fp16_scales, recipe->fp16_scales},
        {"int8 layout", f->int8_acts, recipe->act_bits == 8},
        {"activation bits", w->act_bits, recipe->act_bits},
    };
    for (size_t i = 0; i < ARRAY_LEN(fields); i++) {
        if (fields[i].stored != fields[i].expected) {
            *stored = fields[i].stored;
            *expected = fields[i].expected;
            return fields[i].field;
        }
    }
    return NULL;
}

// Checks that the block matrices are stored as the file's recipe specifies: packed in the recipe's
// format, or in floating point for fp32 and -fake recipes. A mismatch means a damaged or edited
// file whose scores would be labelled with the wrong recipe, or whose codes would be read in the
// wrong layout. Then gives every fake-quantized matrix of an a8 recipe its activation bits, which
// nothing else records (packed matrices carry their own).
static int apply_recipe_activations(Model *m) {
    QuantRecipe recipe;
    char error[512];
    if (quant_recipe_parse(m->variant, &recipe, error, sizeof error) != 0) {
        return err_set("%s: its key qbias.quant.recipe holds an unknown recipe (%s); it was "
                       "written by another qbias version, so quantize the model again",
                       m->path, error);
    }
    bool packs = recipe.algo != QUANT_ALGO_NONE && !recipe.fake_quant;
    for (int l = 0; l < m->config.n_layer; l++) {
        Layer *layer = &m->layers[l];
        Weight *weights[] = {&layer->attn_q,   &layer->attn_k, &layer->attn_v, &layer->attn_output,
                             &layer->ffn_gate, &layer->ffn_up, &layer->ffn_down};
        for (size_t i = 0; i < ARRAY_LEN(weights); i++) {
            Weight *w = weights[i];
            if (w->rows == 0) {
                continue;
            }
            if ((w->packed != NULL) != packs) {
                return err_set("%s: tensor '%s' is stored as %s, but the recipe %s in the key "
                               "qbias.quant.recipe %s. The file is damaged or was edited; "
                               "quantize the model again",
                               m->path, w->name, ggml_type_name(w->type), m->variant,
                               packs ? "packs every block matrix"
                                     : "keeps block matrices in floating point");
            }
            int stored = 0, expected = 0;
            const char *field = w->packed ? packed_format_mismatch(w, &recipe, &stored, &expected)
                                          : NULL;
            if (field) {
                return err_set("%s: packed tensor '%s' has %s %d in its key qbias.packed.%s, but "
                               "the recipe %s in the key qbias.quant.recipe needs %d. The file is "
                               "damaged or was edited; quantize the model again",
                               m->path, w->name, field, stored, w->name, m->variant, expected);
            }
            if (!w->packed) {
                w->act_bits = recipe.act_bits;
            }
        }
    }
    return 0;
}

// Loads a saved variant of a Hugging Face model: the folder the file names supplies the
// configuration, tokenizer, embeddings and output head, and the file replaces every block's
// tensors. Takes ownership of f.
// NOTE: the folder is found by its path alone. Replacing its weights by another checkpoint of the
// same shapes goes unnoticed; the cache of calibrated variants is keyed by the folder's hash.
static Model *load_hf_overlay(GGUFFile *f, const char *folder) {
    Model *m = model_load_hf(folder);
    if (!m) {
        err_prefix("%s holds the quantized blocks of the Hugging Face model in %s, which cannot "
                   "be loaded; restore the folder or quantize the model again",
                   f->path, folder);
        gguf_close(f);
        return NULL;
    }
    free(m->path);
    m->path = xstrdup(f->path);
    char *recipe = NULL;
    if (gguf_get_string(f, "qbias.quant.recipe", &recipe) == 1) {
        free(m->variant);
        m->variant = recipe;
    }
    m->overlay = f;

    // bind_layer reads m->file; point it at the overlay while the blocks are rebound.
    m->file = f;
    int rc = 0;
    for (int l = 0; l < m->config.n_layer && rc == 0; l++) {
        Layer *layer = &m->layers[l];
        Weight *weights[] = {&layer->attn_q,   &layer->attn_k, &layer->attn_v, &layer->attn_output,
                             &layer->ffn_gate, &layer->ffn_up, &layer->ffn_down};
        for (size_t i = 0; i < ARRAY_LEN(weights); i++) {
            free(weights[i]->owned);
        }
        memset(layer, 0, sizeof *layer);
        rc = bind_layer(m, l);
    }
    m->file = NULL;
    if (rc != 0 || apply_recipe_activations(m) < 0) {
        model_free(m);
        return NULL;
    }
    return m;
}

Model *model_load(const char *path) {
    GGUFFile *f = gguf_open(path);
    if (!f) {
        return NULL;
    }
    if (f->n_tensors == 0) {
        err_set("%s has no tensors: it is a vocabulary-only file, which `qbias tokenize` can use "
                "but which cannot run",
                path);
        gguf_close(f);
        return NULL;
    }
    // Checked here as well as for each packed tensor, so that a file from a newer qbias is
    // rejected even when it contains no packed matrices (an fp32 or -fake variant).
    int layout = 0;
    if (packed_layout(f, &layout) < 0) {
        gguf_close(f);
        return NULL;
    }
    char *folder = NULL;
    if (gguf_get_string(f, "qbias.source.hf_folder", &folder) == 1) {
        Model *m = load_hf_overlay(f, folder);
        free(folder);
        return m;
    }

    Model *m = xcalloc(1, sizeof *m);
    m->path = xstrdup(path);
    // A file written by model_save_gguf names its quantization; the variant id is that recipe.
    char *recipe = NULL;
    m->variant = gguf_get_string(f, "qbias.quant.recipe", &recipe) == 1 ? recipe : xstrdup("fp32");
    m->file = f;
    if (read_config(f, &m->config) < 0 || bind_tensors(m) < 0) {
        model_free(m);
        return NULL;
    }
    if (apply_recipe_activations(m) < 0) {
        model_free(m);
        return NULL;
    }

    m->tokenizer = tokenizer_load_gguf(f);
    if (!m->tokenizer) {
        err_prefix("cannot load the tokenizer");
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

Model *model_open(const char *path) {
    return dir_exists(path) ? model_load_hf(path) : model_load(path);
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
        gguf_close(m->overlay);
        safetensors_set_close(m->checkpoint);
        free(m->unsupported);
        for (int i = 0; i < m->n_owned_vectors; i++) {
            free(m->owned_vectors[i]);
        }
        free(m->owned_vectors);
    }
    free(m->path);
    free(m->variant);
    free(m);
}
