// model_hf.c: loads a Hugging Face model folder (config.json, safetensors, tokenizer files) into
// the same Model layout as a GGUF file.
//
// Supported model_type values: llama and mistral (LlamaForCausalLM, MistralForCausalLM) and qwen2
// (Qwen2ForCausalLM). Hugging Face's q_proj/k_proj rows are in the rotate_half order, which pairs
// element i with i + head_dim/2 (ROPE_NEOX); llama.cpp's converter permutes them into adjacent
// pairs for GGUF "llama" files instead. Reading the rows as stored with neox rotation gives the
// same result without copying the weights. Tensors stay in their file precision (F32, F16, BF16),
// memory-mapped.
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../kernels/half.h"
#include "model.h"
#include "safetensors.h"
#include "util.h"

typedef struct {
    const char *folder;
    const cJSON *config;
    const SafeTensorsSet *set;
    bool *used; // per file and tensor: bound by the loader (for the list of unused tensors)
} HfLoader;

static int config_int(const HfLoader *h, const char *key, bool required, int fallback, int *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(h->config, key);
    if (!v || cJSON_IsNull(v)) {
        if (required) {
            return err_set("%s/config.json: '%s' is missing", h->folder, key);
        }
        *out = fallback;
        return 0;
    }
    if (!cJSON_IsNumber(v) || v->valuedouble < 1 || v->valuedouble > (1 << 30) ||
        floor(v->valuedouble) != v->valuedouble) {
        return err_set("%s/config.json: '%s' must be a whole number from 1 to 2^30", h->folder, key);
    }
    *out = (int)v->valuedouble;
    return 0;
}

static double config_number(const HfLoader *h, const char *key, double fallback) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(h->config, key);
    return cJSON_IsNumber(v) ? v->valuedouble : fallback;
}

// Computes Llama 3.1's per-frequency divisors from rope_scaling, as transformers'
// _compute_llama3_parameters scales inv_freq: unchanged above the high-frequency wavelength limit,
// divided by `factor` below the low-frequency one, interpolated between.
static float *llama3_rope_factors(const ModelConfig *c, const cJSON *scaling, const char *folder) {
    const cJSON *factor = cJSON_GetObjectItemCaseSensitive(scaling, "factor");
    const cJSON *low = cJSON_GetObjectItemCaseSensitive(scaling, "low_freq_factor");
    const cJSON *high = cJSON_GetObjectItemCaseSensitive(scaling, "high_freq_factor");
    const cJSON *original = cJSON_GetObjectItemCaseSensitive(scaling, "original_max_position_embeddings");
    if (!cJSON_IsNumber(factor) || !cJSON_IsNumber(low) || !cJSON_IsNumber(high) ||
        !cJSON_IsNumber(original) || high->valuedouble <= low->valuedouble) {
        err_set("%s/config.json: rope_scaling of type llama3 needs factor, low_freq_factor < "
                "high_freq_factor and original_max_position_embeddings",
                folder);
        return NULL;
    }
    double low_wavelen = original->valuedouble / low->valuedouble;
    double high_wavelen = original->valuedouble / high->valuedouble;
    float *factors = xmalloc((size_t)(c->rope_dim / 2) * sizeof(float));
    for (int i = 0; i < c->rope_dim / 2; i++) {
        double inv_freq = pow((double)c->rope_freq_base, -2.0 * i / c->rope_dim);
        double wavelen = 2.0 * M_PI / inv_freq;
        double scaled = inv_freq;
        if (wavelen > low_wavelen) {
            scaled = inv_freq / factor->valuedouble;
        } else if (wavelen >= high_wavelen) {
            double smooth = (original->valuedouble / wavelen - low->valuedouble) /
                            (high->valuedouble - low->valuedouble);
            scaled = (1.0 - smooth) * inv_freq / factor->valuedouble + smooth * inv_freq;
        }
        factors[i] = (float)(inv_freq / scaled);
    }
    return factors;
}

static int read_hf_config(const HfLoader *h, Model *m) {
    ModelConfig *c = &m->config;
    memset(c, 0, sizeof *c);
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(h->config, "model_type");
    if (!cJSON_IsString(type)) {
        return err_set("%s/config.json: 'model_type' is missing", h->folder);
    }
    snprintf(c->arch_name, sizeof c->arch_name, "%s", type->valuestring);
    if (strcmp(type->valuestring, "llama") == 0 || strcmp(type->valuestring, "mistral") == 0) {
        c->arch = ARCH_LLAMA;
    } else if (strcmp(type->valuestring, "qwen2") == 0) {
        c->arch = ARCH_QWEN2;
    } else {
        return err_set("%s/config.json: model_type '%s' is not supported in Hugging Face layout "
                       "(supported: llama, mistral, qwen2); convert it to GGUF with llama.cpp's "
                       "convert_hf_to_gguf.py, which qbias reads for phi3, gemma2 and gpt2 too",
                       h->folder, type->valuestring);
    }
    if (cJSON_GetObjectItemCaseSensitive(h->config, "quantization_config")) {
        return err_set("%s/config.json has a quantization_config: the checkpoint is already "
                       "quantized (GPTQ/AWQ/bitsandbytes layouts), which qbias does not read; use "
                       "the unquantized model and qbias's own quantizers",
                       h->folder);
    }
    if (config_int(h, "hidden_size", true, 0, &c->n_embd) != 0 ||
        config_int(h, "num_hidden_layers", true, 0, &c->n_layer) != 0 ||
        config_int(h, "intermediate_size", true, 0, &c->n_ff) != 0 ||
        config_int(h, "num_attention_heads", true, 0, &c->n_head) != 0 ||
        config_int(h, "num_key_value_heads", false, c->n_head, &c->n_head_kv) != 0 ||
        config_int(h, "max_position_embeddings", true, 0, &c->n_ctx_train) != 0) {
        return -1;
    }
    if (c->n_head % c->n_head_kv != 0) {
        return err_set("%s/config.json: %d attention heads are not a multiple of %d key/value heads",
                       h->folder, c->n_head, c->n_head_kv);
    }
    if (config_int(h, "head_dim", false, c->n_embd / c->n_head, &c->head_dim) != 0) {
        return -1;
    }
    c->rope_dim = c->head_dim;
    c->rope_freq_base = (float)config_number(h, "rope_theta", 10000.0);
    c->rope_type = ROPE_NEOX;
    c->norm_eps = (float)config_number(h, "rms_norm_eps", 1e-6);
    c->ffn = FFN_SILU_GLU;
    model_config_set_llama_rules(c);

    const cJSON *act = cJSON_GetObjectItemCaseSensitive(h->config, "hidden_act");
    if (cJSON_IsString(act) && strcmp(act->valuestring, "silu") != 0) {
        return err_set("%s/config.json: hidden_act '%s' is not supported for %s (silu)", h->folder,
                       act->valuestring, c->arch_name);
    }
    const cJSON *window = cJSON_GetObjectItemCaseSensitive(h->config, "sliding_window");
    const cJSON *use_window = cJSON_GetObjectItemCaseSensitive(h->config, "use_sliding_window");
    bool window_on = c->arch == ARCH_QWEN2 ? cJSON_IsTrue(use_window) : cJSON_IsNumber(window);
    if (window_on) {
        if (!cJSON_IsNumber(window) || window->valuedouble < 1) {
            return err_set("%s/config.json: use_sliding_window is set without a sliding_window",
                           h->folder);
        }
        // NOTE: Qwen2 applies the window only from max_window_layers on; qbias applies it to all.
        if (c->arch == ARCH_QWEN2) {
            return err_set("%s/config.json: Qwen2's use_sliding_window is not supported", h->folder);
        }
        c->sliding_window = (int)window->valuedouble;
    }

    const cJSON *scaling = cJSON_GetObjectItemCaseSensitive(h->config, "rope_scaling");
    if (scaling && !cJSON_IsNull(scaling)) {
        const cJSON *rope_type = cJSON_GetObjectItemCaseSensitive(scaling, "rope_type");
        if (!cJSON_IsString(rope_type)) {
            rope_type = cJSON_GetObjectItemCaseSensitive(scaling, "type");
        }
        if (!cJSON_IsString(rope_type) || strcmp(rope_type->valuestring, "llama3") != 0) {
            return err_set("%s/config.json: rope_scaling type '%s' is not supported (llama3)",
                           h->folder, cJSON_IsString(rope_type) ? rope_type->valuestring : "?");
        }
        float *factors = llama3_rope_factors(c, scaling, h->folder);
        if (!factors) {
            return -1;
        }
        model_own_vector(m, factors);
        m->rope_freq_factors = factors;
    }
    return 0;
}

// Marks a tensor as used, for the list of tensors qbias ignores.
static void mark_used(HfLoader *h, const SafeTensor *t) {
    int offset = 0;
    for (int f = 0; f < h->set->n_files; f++) {
        const SafeTensorsFile *file = h->set->files[f];
        if (t >= file->tensors && t < file->tensors + file->n_tensors) {
            h->used[offset + (int)(t - file->tensors)] = true;
            return;
        }
        offset += file->n_tensors;
    }
}

static int bind_hf_weight(HfLoader *h, const char *name, int rows, int cols, bool required,
                          Weight *w) {
    const SafeTensor *t = safetensors_find(h->set, name);
    if (!t) {
        return required ? err_set("%s: tensor '%s' is missing from the checkpoint", h->folder, name)
                        : 0;
    }
    if (t->n_dims != 2 || t->shape[0] != rows || t->shape[1] != cols) {
        return err_set("%s: tensor '%s' has shape [%lld, %lld], expected [%d, %d]", h->folder, name,
                       (long long)t->shape[0], t->n_dims > 1 ? (long long)t->shape[1] : 0LL, rows,
                       cols);
    }
    GGMLType type = t->dtype == ST_F32    ? GGML_TYPE_F32
                    : t->dtype == ST_F16  ? GGML_TYPE_F16
                    : t->dtype == ST_BF16 ? GGML_TYPE_BF16
                                          : GGML_TYPE_COUNT;
    if (type == GGML_TYPE_COUNT) {
        return err_set("%s: tensor '%s' has dtype %s; qbias reads F32, F16 and BF16 checkpoints",
                       h->folder, name, safetensors_dtype_name(t->dtype));
    }
    memset(w, 0, sizeof *w);
    w->name = t->name;
    w->rows = rows;
    w->cols = cols;
    w->type = type;
    w->data = t->data;
    mark_used(h, t);
    return 1;
}

static int load_hf_vector(HfLoader *h, Model *m, const char *name, int n, bool required,
                          const float **out) {
    *out = NULL;
    const SafeTensor *t = safetensors_find(h->set, name);
    if (!t) {
        return required ? err_set("%s: tensor '%s' is missing from the checkpoint", h->folder, name)
                        : 0;
    }
    if (t->n_dims != 1 || t->shape[0] != n) {
        return err_set("%s: tensor '%s' must be a vector of %d values", h->folder, name, n);
    }
    float *values = xmalloc((size_t)n * sizeof(float));
    const uint8_t *src = t->data;
    for (int i = 0; i < n; i++) {
        if (t->dtype == ST_F32) {
            memcpy(&values[i], src + 4 * i, 4);
        } else if (t->dtype == ST_F16 || t->dtype == ST_BF16) {
            uint16_t bits;
            memcpy(&bits, src + 2 * i, 2);
            values[i] = t->dtype == ST_F16 ? fp16_to_fp32(bits) : bf16_to_fp32(bits);
        } else {
            free(values);
            return err_set("%s: tensor '%s' has dtype %s; expected F32, F16 or BF16", h->folder,
                           name, safetensors_dtype_name(t->dtype));
        }
    }
    model_own_vector(m, values);
    mark_used(h, t);
    *out = values;
    return 1;
}

static int bind_hf_layer(HfLoader *h, Model *m, int l) {
    const ModelConfig *c = &m->config;
    Layer *layer = &m->layers[l];
    int q_dim = c->n_head * c->head_dim, kv_dim = c->n_head_kv * c->head_dim;
    char name[160];
#define HF_TENSOR(suffix) (snprintf(name, sizeof name, "model.layers.%d.%s", l, suffix), name)
    if (load_hf_vector(h, m, HF_TENSOR("input_layernorm.weight"), c->n_embd, true,
                       &layer->attn_norm) < 0 ||
        load_hf_vector(h, m, HF_TENSOR("post_attention_layernorm.weight"), c->n_embd, true,
                       &layer->ffn_norm) < 0 ||
        bind_hf_weight(h, HF_TENSOR("self_attn.q_proj.weight"), q_dim, c->n_embd, true,
                       &layer->attn_q) < 0 ||
        bind_hf_weight(h, HF_TENSOR("self_attn.k_proj.weight"), kv_dim, c->n_embd, true,
                       &layer->attn_k) < 0 ||
        bind_hf_weight(h, HF_TENSOR("self_attn.v_proj.weight"), kv_dim, c->n_embd, true,
                       &layer->attn_v) < 0 ||
        bind_hf_weight(h, HF_TENSOR("self_attn.o_proj.weight"), c->n_embd, q_dim, true,
                       &layer->attn_output) < 0 ||
        load_hf_vector(h, m, HF_TENSOR("self_attn.q_proj.bias"), q_dim, c->arch == ARCH_QWEN2,
                       &layer->bq) < 0 ||
        load_hf_vector(h, m, HF_TENSOR("self_attn.k_proj.bias"), kv_dim, c->arch == ARCH_QWEN2,
                       &layer->bk) < 0 ||
        load_hf_vector(h, m, HF_TENSOR("self_attn.v_proj.bias"), kv_dim, c->arch == ARCH_QWEN2,
                       &layer->bv) < 0 ||
        load_hf_vector(h, m, HF_TENSOR("self_attn.o_proj.bias"), c->n_embd, false, &layer->bo) < 0 ||
        bind_hf_weight(h, HF_TENSOR("mlp.gate_proj.weight"), c->n_ff, c->n_embd, true,
                       &layer->ffn_gate) < 0 ||
        bind_hf_weight(h, HF_TENSOR("mlp.up_proj.weight"), c->n_ff, c->n_embd, true,
                       &layer->ffn_up) < 0 ||
        bind_hf_weight(h, HF_TENSOR("mlp.down_proj.weight"), c->n_embd, c->n_ff, true,
                       &layer->ffn_down) < 0) {
        return -1;
    }
#undef HF_TENSOR
    return 0;
}

static int bind_hf_tensors(HfLoader *h, Model *m) {
    ModelConfig *c = &m->config;
    const SafeTensor *embd = safetensors_find(h->set, "model.embed_tokens.weight");
    if (!embd || embd->n_dims != 2 || embd->shape[1] != c->n_embd || embd->shape[0] > (1 << 24)) {
        return err_set("%s: tensor 'model.embed_tokens.weight' is missing or not [vocab, %d]",
                       h->folder, c->n_embd);
    }
    c->n_vocab = (int)embd->shape[0];
    if (bind_hf_weight(h, "model.embed_tokens.weight", c->n_vocab, c->n_embd, true,
                       &m->token_embd) < 0) {
        return -1;
    }

    // transformers ties the head by default unless the config says otherwise; Llama and Qwen2
    // configs say so explicitly. A separate lm_head is used whenever the checkpoint has one.
    int rc = bind_hf_weight(h, "lm_head.weight", c->n_vocab, c->n_embd, false, &m->output);
    if (rc < 0) {
        return -1;
    }
    c->tied_output = rc == 0;
    if (c->tied_output) {
        const cJSON *tie = cJSON_GetObjectItemCaseSensitive(h->config, "tie_word_embeddings");
        if (cJSON_IsFalse(tie)) {
            return err_set("%s: config.json sets tie_word_embeddings false but the checkpoint has "
                           "no lm_head.weight",
                           h->folder);
        }
        m->output = m->token_embd;
    }
    if (load_hf_vector(h, m, "model.norm.weight", c->n_embd, true, &m->output_norm) < 0) {
        return -1;
    }
    m->layers = xcalloc((size_t)c->n_layer, sizeof(Layer));
    for (int l = 0; l < c->n_layer; l++) {
        if (bind_hf_layer(h, m, l) < 0) {
            return -1;
        }
    }
    return 0;
}

// Warns about checkpoint tensors the loader did not use (rotary tables are expected and skipped).
static void report_unused(const HfLoader *h, Model *m) {
    int offset = 0, unused = 0;
    StrBuf names;
    sb_init(&names);
    for (int f = 0; f < h->set->n_files; f++) {
        const SafeTensorsFile *file = h->set->files[f];
        for (int i = 0; i < file->n_tensors; i++) {
            const char *name = file->tensors[i].name;
            if (!h->used[offset + i] && !strstr(name, "rotary_emb.inv_freq")) {
                if (unused < 5) {
                    sb_printf(&names, "%s%s", unused ? ", " : "", name);
                }
                unused++;
            }
        }
        offset += file->n_tensors;
    }
    if (unused > 0) {
        m->unsupported = xasprintf("%d checkpoint tensors are not used by qbias (%s%s)", unused,
                                   names.data, unused > 5 ? ", ..." : "");
        log_warn("%s: %s", h->folder, m->unsupported);
    }
    sb_free(&names);
}

Model *model_load_hf(const char *folder) {
    char *config_path = path_join(folder, "config.json");
    char *text = NULL;
    size_t len = 0;
    if (file_read_all(config_path, &text, &len) != 0) {
        free(config_path);
        err_prefix("%s is not a Hugging Face model folder", folder);
        return NULL;
    }
    cJSON *config = cJSON_Parse(text);
    free(text);
    free(config_path);
    if (!cJSON_IsObject(config)) {
        err_set("%s/config.json is not a JSON object", folder);
        cJSON_Delete(config);
        return NULL;
    }

    Model *m = xcalloc(1, sizeof *m);
    m->path = xstrdup(folder);
    m->variant = xstrdup("fp32");
    SafeTensorsSet *set = safetensors_open_folder(folder);
    m->checkpoint = set;
    HfLoader h = {.folder = folder, .config = config, .set = set};
    int rc = set ? read_hf_config(&h, m) : -1;
    if (rc == 0) {
        int total = 0;
        for (int f = 0; f < set->n_files; f++) {
            total += set->files[f]->n_tensors;
        }
        h.used = xcalloc((size_t)total + 1, sizeof(bool));
        rc = bind_hf_tensors(&h, m);
    }
    if (rc == 0) {
        report_unused(&h, m);
        m->tokenizer = tokenizer_load_hf(folder);
        if (!m->tokenizer) {
            rc = err_prefix("cannot load the tokenizer");
        } else if (tokenizer_vocab_size(m->tokenizer) > m->config.n_vocab) {
            rc = err_set("%s: the tokenizer has %d tokens but the embeddings have only %d rows",
                         folder, tokenizer_vocab_size(m->tokenizer), m->config.n_vocab);
        }
    }
    free(h.used);
    cJSON_Delete(config);
    if (rc != 0) {
        model_free(m);
        return NULL;
    }
    return m;
}
