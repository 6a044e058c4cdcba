// model_save.c: writes a model, quantized variants included, as a GGUF file that model_load reads
// back (the file layout is in docs/formats.md).
//
// The metadata of the source GGUF file (architecture, hyper-parameters, tokenizer, chat template)
// is copied, and qbias.* keys record the quantization. Matrices are written in the model's storage
// types: in their stored type (F32, F16, BF16, llama.cpp block types), as F32 for fake-quantized
// ones, and as GGML_TYPE_QBIAS_PACKED for packed ones. Fused tensors of the source (phi3's and
// gpt2's attn_qkv, phi3's gate/up) are written as separate q, k, v, gate and up tensors, which
// model_load reads too. A model loaded from a Hugging Face folder is written as its blocks only,
// with the folder's absolute path in qbias.source.hf_folder. model_load takes the rest from there.
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "util.h"

typedef struct {
    GGUFWriter *w;
} SaveContext;

static void add_vector(SaveContext *s, char *name, const float *v, int n) {
    if (!v) {
        free(name);
        return;
    }
    int64_t ne[1] = {n};
    gguf_writer_add_tensor(s->w, name, GGML_TYPE_F32, 1, ne, v);
    free(name);
}

static void add_weight(SaveContext *s, char *name, const Weight *w) {
    if (w->rows == 0) {
        free(name);
        return;
    }
    if (w->packed) {
        const void *data = NULL;
        size_t nbytes = 0;
        qmatrix_payload(w->packed, &data, &nbytes);
        int64_t ne[1] = {(int64_t)nbytes};
        gguf_writer_add_tensor(s->w, name, GGML_TYPE_QBIAS_PACKED, 1, ne, data);
        const QFormat *f = &w->packed->format;
        int32_t shape[8] = {w->rows,     w->cols,        f->code_bits, f->group,
                            f->symmetric, f->fp16_scales, f->int8_acts, w->act_bits};
        char *key = xasprintf("qbias.packed.%s", name);
        gguf_writer_set_array(s->w, key, GGUF_TYPE_INT32, shape, 8);
        free(key);
        free(name);
        return;
    }
    int64_t ne[2] = {w->cols, w->rows};
    gguf_writer_add_tensor(s->w, name, w->type, 2, ne, w->data);
    free(name);
}

static void add_layer(SaveContext *s, const Model *m, int l) {
    const Layer *L = &m->layers[l];
    const ModelConfig *c = &m->config;
    int q_dim = c->n_head * c->head_dim, kv_dim = c->n_head_kv * c->head_dim;
#define NAME(suffix) xasprintf("blk.%d.%s", l, suffix)
    add_vector(s, NAME("attn_norm.weight"), L->attn_norm, c->n_embd);
    add_vector(s, NAME("attn_norm.bias"), L->attn_norm_b, c->n_embd);
    add_weight(s, NAME("attn_q.weight"), &L->attn_q);
    add_weight(s, NAME("attn_k.weight"), &L->attn_k);
    add_weight(s, NAME("attn_v.weight"), &L->attn_v);
    add_vector(s, NAME("attn_q.bias"), L->bq, q_dim);
    add_vector(s, NAME("attn_k.bias"), L->bk, kv_dim);
    add_vector(s, NAME("attn_v.bias"), L->bv, kv_dim);
    add_weight(s, NAME("attn_output.weight"), &L->attn_output);
    add_vector(s, NAME("attn_output.bias"), L->bo, c->n_embd);
    add_vector(s, NAME("post_attention_norm.weight"), L->post_attn_norm, c->n_embd);
    add_vector(s, NAME("ffn_norm.weight"), L->ffn_norm, c->n_embd);
    add_vector(s, NAME("ffn_norm.bias"), L->ffn_norm_b, c->n_embd);
    add_weight(s, NAME("ffn_gate.weight"), &L->ffn_gate);
    add_weight(s, NAME("ffn_up.weight"), &L->ffn_up);
    add_vector(s, NAME("ffn_up.bias"), L->b_up, c->n_ff);
    add_weight(s, NAME("ffn_down.weight"), &L->ffn_down);
    add_vector(s, NAME("ffn_down.bias"), L->b_down, c->n_embd);
    add_vector(s, NAME("post_ffw_norm.weight"), L->post_ffn_norm, c->n_embd);
#undef NAME
}

// Returns the absolute path of the Hugging Face folder a model comes from (newly allocated), or
// NULL with an error.
static char *hf_folder_of(const Model *root) {
    if (root->overlay) {
        char *folder = NULL;
        if (gguf_get_string(root->overlay, "qbias.source.hf_folder", &folder) == 1) {
            return folder;
        }
        err_set("%s: the key qbias.source.hf_folder is missing", root->overlay->path);
        return NULL;
    }
    char *absolute = realpath(root->path, NULL);
    if (!absolute) {
        err_set("cannot resolve the path of %s: %s", root->path, strerror(errno));
    }
    return absolute;
}

int model_save_gguf(const Model *m, const char *path, const cJSON *quant_metadata) {
    const Model *root = m->base ? m->base : m;
    const GGUFFile *source = root->file;
    SaveContext s = {.w = gguf_writer_new()};
    char *hf_folder = NULL;
    if (source) {
        for (uint64_t i = 0; i < source->n_kv; i++) {
            const char *key = source->kv[i].key;
            // The writer chooses its own alignment; qbias keys of a re-saved file are replaced.
            if (strcmp(key, "general.alignment") != 0 && strncmp(key, "qbias.", 6) != 0) {
                gguf_writer_copy_key(s.w, source, key);
            }
        }
    } else {
        // A Hugging Face model has no GGUF metadata to copy (its tokenizer in GGUF form would need
        // llama.cpp's converter), so the file keeps the blocks and names the folder for the rest.
        hf_folder = hf_folder_of(root);
        if (!hf_folder) {
            gguf_writer_free(s.w);
            return -1;
        }
        gguf_writer_set_string(s.w, "general.architecture", m->config.arch_name);
        gguf_writer_set_string(s.w, "qbias.source.hf_folder", hf_folder);
    }
    gguf_writer_set_string(s.w, "qbias.version", QBIAS_VERSION);
    gguf_writer_set_u32(s.w, "qbias.packed_layout", QMATRIX_LAYOUT_VERSION);
    gguf_writer_set_string(s.w, "qbias.quant.recipe", m->variant);
    const cJSON *item;
    cJSON_ArrayForEach(item, quant_metadata) {
        char *key = xasprintf("qbias.quant.%s", item->string);
        if (cJSON_IsString(item)) {
            gguf_writer_set_string(s.w, key, item->valuestring);
        } else if (cJSON_IsNumber(item)) {
            gguf_writer_set_f64(s.w, key, item->valuedouble);
        } else if (cJSON_IsBool(item)) {
            gguf_writer_set_bool(s.w, key, cJSON_IsTrue(item));
        }
        free(key);
    }

    const ModelConfig *c = &m->config;
    for (int l = 0; l < c->n_layer; l++) {
        add_layer(&s, m, l);
    }
    if (hf_folder) {
        int rc = gguf_writer_write(s.w, path);
        gguf_writer_free(s.w);
        free(hf_folder);
        return rc;
    }

    add_weight(&s, xstrdup("token_embd.weight"), &m->token_embd);
    if (!c->tied_output) {
        add_weight(&s, xstrdup("output.weight"), &m->output);
    }
    if (m->position_embd.rows) {
        add_weight(&s, xstrdup("position_embd.weight"), &m->position_embd);
    }
    add_vector(&s, xstrdup("output_norm.weight"), m->output_norm, c->n_embd);
    add_vector(&s, xstrdup("output_norm.bias"), m->output_norm_b, c->n_embd);
    add_vector(&s, xstrdup("rope_freqs.weight"), m->rope_freq_factors, c->rope_dim / 2);

    int rc = gguf_writer_write(s.w, path);
    gguf_writer_free(s.w);
    return rc;
}
