// bert.c: the BERT sequence classifier (see bert.h for the forward pass).
#include "bert.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../kernels/half.h"
#include "../kernels/kernels.h"
#include "safetensors.h"
#include "tokenizer.h"
#include "util.h"

typedef enum { ACT_GELU_ERF, ACT_GELU_TANH, ACT_RELU } Activation;

typedef struct {
    int rows, cols;   // [outputs, inputs]
    float *w;         // [rows, cols]
    float *b;         // [rows]
} Dense;

typedef struct {
    Dense query, key, value, attn_out, intermediate, output;
    float *attn_ln_w, *attn_ln_b;  // [hidden]
    float *out_ln_w, *out_ln_b;    // [hidden]
} BertLayer;

struct BertClassifier {
    int vocab, hidden, n_layers, n_heads, intermediate, max_positions, type_vocab, n_labels;
    float ln_eps;
    Activation act;
    bool multi_label;
    char **labels;
    float *word;       // [vocab, hidden]
    float *position;   // [max_positions, hidden]
    float *token_type; // [type_vocab, hidden]
    float *emb_ln_w, *emb_ln_b;
    BertLayer *layers;
    Dense pooler, classifier;
};

// ----------------------------------------------------------------------------
// Loading

static int config_int(const cJSON *config, const char *path, const char *key, int min, int *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(config, key);
    if (!cJSON_IsNumber(v) || v->valuedouble < min || v->valuedouble > 1e9 ||
        floor(v->valuedouble) != v->valuedouble) {
        return err_set("%s: '%s' is missing or not a whole number >= %d", path, key, min);
    }
    *out = (int)v->valuedouble;
    return 0;
}

// Copies a tensor of the expected shape into a new fp32 array.
static float *load_tensor(const SafeTensorsSet *set, const char *folder, const char *name,
                          int64_t dim0, int64_t dim1) {
    const SafeTensor *t = safetensors_find(set, name);
    if (!t) {
        err_set("%s: tensor '%s' is missing from the checkpoint", folder, name);
        return NULL;
    }
    int expected_dims = dim1 > 0 ? 2 : 1;
    if (t->n_dims != expected_dims || t->shape[0] != dim0 || (dim1 > 0 && t->shape[1] != dim1)) {
        err_set("%s: tensor '%s' has shape [%lld%s%lld], expected [%lld%s%lld]", folder, name,
                (long long)t->shape[0], t->n_dims > 1 ? ", " : "",
                t->n_dims > 1 ? (long long)t->shape[1] : 0LL, (long long)dim0,
                dim1 > 0 ? ", " : "", dim1 > 0 ? (long long)dim1 : 0LL);
        return NULL;
    }
    size_t n = (size_t)dim0 * (size_t)(dim1 > 0 ? dim1 : 1);
    float *out = xmalloc(n * sizeof(float));
    const uint8_t *src = t->data;
    for (size_t i = 0; i < n; i++) {
        if (t->dtype == ST_F32) {
            memcpy(&out[i], src + 4 * i, 4);
        } else if (t->dtype == ST_F16 || t->dtype == ST_BF16) {
            uint16_t h;
            memcpy(&h, src + 2 * i, 2);
            out[i] = t->dtype == ST_F16 ? fp16_to_fp32(h) : bf16_to_fp32(h);
        } else {
            free(out);
            err_set("%s: tensor '%s' has dtype %s; BERT weights must be F32, F16 or BF16", folder,
                    name, safetensors_dtype_name(t->dtype));
            return NULL;
        }
    }
    return out;
}

static int load_dense(const SafeTensorsSet *set, const char *folder, const char *prefix, int rows,
                      int cols, Dense *d) {
    char name[256];
    d->rows = rows;
    d->cols = cols;
    snprintf(name, sizeof name, "%s.weight", prefix);
    d->w = load_tensor(set, folder, name, rows, cols);
    snprintf(name, sizeof name, "%s.bias", prefix);
    d->b = d->w ? load_tensor(set, folder, name, rows, 0) : NULL;
    return d->w && d->b ? 0 : -1;
}

static int load_norm(const SafeTensorsSet *set, const char *folder, const char *prefix, int n,
                     float **w, float **b) {
    char name[256];
    snprintf(name, sizeof name, "%s.weight", prefix);
    *w = load_tensor(set, folder, name, n, 0);
    snprintf(name, sizeof name, "%s.bias", prefix);
    *b = *w ? load_tensor(set, folder, name, n, 0) : NULL;
    return *w && *b ? 0 : -1;
}

static int read_config(BertClassifier *b, const char *folder) {
    char *path = path_join(folder, "config.json");
    char *text = NULL;
    size_t len = 0;
    if (file_read_all(path, &text, &len) != 0) {
        free(path);
        return -1;
    }
    cJSON *config = cJSON_Parse(text);
    free(text);
    int rc = 0;
    if (!cJSON_IsObject(config)) {
        rc = err_set("%s is not a JSON object", path);
    }
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(config, "model_type");
    if (rc == 0 && (!cJSON_IsString(type) || strcmp(type->valuestring, "bert") != 0)) {
        rc = err_set("%s: model_type is not \"bert\"; qbias's classifier reads BERT models", path);
    }
    if (rc == 0 && (config_int(config, path, "vocab_size", 1, &b->vocab) != 0 ||
                    config_int(config, path, "hidden_size", 1, &b->hidden) != 0 ||
                    config_int(config, path, "num_hidden_layers", 1, &b->n_layers) != 0 ||
                    config_int(config, path, "num_attention_heads", 1, &b->n_heads) != 0 ||
                    config_int(config, path, "intermediate_size", 1, &b->intermediate) != 0 ||
                    config_int(config, path, "max_position_embeddings", 1, &b->max_positions) != 0 ||
                    config_int(config, path, "type_vocab_size", 1, &b->type_vocab) != 0)) {
        rc = -1;
    }
    if (rc == 0 && b->hidden % b->n_heads != 0) {
        rc = err_set("%s: hidden_size %d is not a multiple of num_attention_heads %d", path,
                     b->hidden, b->n_heads);
    }

    const cJSON *eps = cJSON_GetObjectItemCaseSensitive(config, "layer_norm_eps");
    b->ln_eps = cJSON_IsNumber(eps) ? (float)eps->valuedouble : 1e-12f;
    const cJSON *act = cJSON_GetObjectItemCaseSensitive(config, "hidden_act");
    const char *act_name = cJSON_IsString(act) ? act->valuestring : "gelu";
    if (strcmp(act_name, "gelu") == 0) {
        b->act = ACT_GELU_ERF;
    } else if (strcmp(act_name, "gelu_new") == 0 || strcmp(act_name, "gelu_pytorch_tanh") == 0) {
        b->act = ACT_GELU_TANH;
    } else if (strcmp(act_name, "relu") == 0) {
        b->act = ACT_RELU;
    } else if (rc == 0) {
        rc = err_set("%s: hidden_act '%s' is not supported (gelu, gelu_new, gelu_pytorch_tanh, "
                     "relu)",
                     path, act_name);
    }
    const cJSON *position_type = cJSON_GetObjectItemCaseSensitive(config, "position_embedding_type");
    if (rc == 0 && cJSON_IsString(position_type) &&
        strcmp(position_type->valuestring, "absolute") != 0) {
        rc = err_set("%s: position_embedding_type '%s' is not supported (absolute)", path,
                     position_type->valuestring);
    }

    // Labels: id2label gives their count and names; problem_type chooses sigmoid or softmax.
    const cJSON *id2label = cJSON_GetObjectItemCaseSensitive(config, "id2label");
    b->n_labels = cJSON_IsObject(id2label) ? cJSON_GetArraySize(id2label) : 0;
    if (rc == 0 && b->n_labels < 1) {
        rc = err_set("%s: id2label is missing or empty, so the number of labels is unknown", path);
    }
    b->labels = xcalloc((size_t)b->n_labels + 1, sizeof(char *));
    for (int i = 0; rc == 0 && i < b->n_labels; i++) {
        char key[16];
        snprintf(key, sizeof key, "%d", i);
        const cJSON *label = cJSON_GetObjectItemCaseSensitive(id2label, key);
        if (!cJSON_IsString(label)) {
            rc = err_set("%s: id2label has no string for id %d", path, i);
            break;
        }
        b->labels[i] = xstrdup(label->valuestring);
    }
    const cJSON *problem = cJSON_GetObjectItemCaseSensitive(config, "problem_type");
    b->multi_label = cJSON_IsString(problem) &&
                     strcmp(problem->valuestring, "multi_label_classification") == 0;
    cJSON_Delete(config);
    free(path);
    return rc;
}

static int load_weights(BertClassifier *b, const char *folder, const SafeTensorsSet *set) {
    int h = b->hidden;
    char prefix[128];
    b->word = load_tensor(set, folder, "bert.embeddings.word_embeddings.weight", b->vocab, h);
    b->position = b->word ? load_tensor(set, folder, "bert.embeddings.position_embeddings.weight",
                                        b->max_positions, h)
                          : NULL;
    b->token_type = b->position ? load_tensor(set, folder,
                                              "bert.embeddings.token_type_embeddings.weight",
                                              b->type_vocab, h)
                                : NULL;
    if (!b->token_type ||
        load_norm(set, folder, "bert.embeddings.LayerNorm", h, &b->emb_ln_w, &b->emb_ln_b) != 0) {
        return -1;
    }
    b->layers = xcalloc((size_t)b->n_layers, sizeof(BertLayer));
    for (int l = 0; l < b->n_layers; l++) {
        BertLayer *L = &b->layers[l];
        struct {
            const char *suffix;
            int rows, cols;
            Dense *dense;
        } denses[] = {
            {"attention.self.query", h, h, &L->query},
            {"attention.self.key", h, h, &L->key},
            {"attention.self.value", h, h, &L->value},
            {"attention.output.dense", h, h, &L->attn_out},
            {"intermediate.dense", b->intermediate, h, &L->intermediate},
            {"output.dense", h, b->intermediate, &L->output},
        };
        for (size_t k = 0; k < ARRAY_LEN(denses); k++) {
            snprintf(prefix, sizeof prefix, "bert.encoder.layer.%d.%s", l, denses[k].suffix);
            if (load_dense(set, folder, prefix, denses[k].rows, denses[k].cols, denses[k].dense) != 0) {
                return -1;
            }
        }
        snprintf(prefix, sizeof prefix, "bert.encoder.layer.%d.attention.output.LayerNorm", l);
        if (load_norm(set, folder, prefix, h, &L->attn_ln_w, &L->attn_ln_b) != 0) {
            return -1;
        }
        snprintf(prefix, sizeof prefix, "bert.encoder.layer.%d.output.LayerNorm", l);
        if (load_norm(set, folder, prefix, h, &L->out_ln_w, &L->out_ln_b) != 0) {
            return -1;
        }
    }
    if (load_dense(set, folder, "bert.pooler.dense", h, h, &b->pooler) != 0 ||
        load_dense(set, folder, "classifier", b->n_labels, h, &b->classifier) != 0) {
        return -1;
    }
    return 0;
}

BertClassifier *bert_load(const char *folder) {
    BertClassifier *b = xcalloc(1, sizeof *b);
    if (read_config(b, folder) != 0) {
        bert_free(b);
        return NULL;
    }
    SafeTensorsSet *set = safetensors_open_folder(folder);
    if (!set) {
        bert_free(b);
        return NULL;
    }
    int rc = load_weights(b, folder, set);
    safetensors_set_close(set);
    if (rc != 0) {
        bert_free(b);
        return NULL;
    }
    return b;
}

static void dense_free(Dense *d) {
    free(d->w);
    free(d->b);
}

void bert_free(BertClassifier *b) {
    if (!b) {
        return;
    }
    for (int i = 0; b->labels && i < b->n_labels; i++) {
        free(b->labels[i]);
    }
    free(b->labels);
    free(b->word);
    free(b->position);
    free(b->token_type);
    free(b->emb_ln_w);
    free(b->emb_ln_b);
    for (int l = 0; b->layers && l < b->n_layers; l++) {
        BertLayer *L = &b->layers[l];
        dense_free(&L->query);
        dense_free(&L->key);
        dense_free(&L->value);
        dense_free(&L->attn_out);
        dense_free(&L->intermediate);
        dense_free(&L->output);
        free(L->attn_ln_w);
        free(L->attn_ln_b);
        free(L->out_ln_w);
        free(L->out_ln_b);
    }
    free(b->layers);
    dense_free(&b->pooler);
    dense_free(&b->classifier);
    free(b);
}

int bert_num_labels(const BertClassifier *b) {
    return b->n_labels;
}

const char *bert_label(const BertClassifier *b, int i) {
    return i >= 0 && i < b->n_labels ? b->labels[i] : NULL;
}

bool bert_multi_label(const BertClassifier *b) {
    return b->multi_label;
}

int bert_max_tokens(const BertClassifier *b) {
    return b->max_positions;
}

// ----------------------------------------------------------------------------
// Forward pass

// y [n, d->rows] = x [n, d->cols] W^T + b
static void dense_forward(const Dense *d, const float *x, int n, float *y) {
    gemm_f32(x, d->w, y, n, d->rows, d->cols, d->rows);
    for (int t = 0; t < n; t++) {
        for (int i = 0; i < d->rows; i++) {
            y[(size_t)t * d->rows + i] += d->b[i];
        }
    }
}

// Normalizes each row of x [n, h] in place: (x - mean) / sqrt(var + eps) * w + b, with the mean
// and the biased variance in double.
static void layer_norm(float *x, int n, int h, const float *w, const float *b, float eps) {
    for (int t = 0; t < n; t++) {
        float *row = x + (size_t)t * h;
        double mean = 0, var = 0;
        for (int i = 0; i < h; i++) {
            mean += row[i];
        }
        mean /= h;
        for (int i = 0; i < h; i++) {
            var += (row[i] - mean) * (row[i] - mean);
        }
        var /= h;
        float inv = (float)(1.0 / sqrt(var + (double)eps));
        for (int i = 0; i < h; i++) {
            row[i] = (float)(row[i] - mean) * inv * w[i] + b[i];
        }
    }
}

static float activate(Activation act, float x) {
    switch (act) {
    case ACT_GELU_ERF:
        return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f));
    case ACT_GELU_TANH:
        return 0.5f * x * (1.0f + tanhf(0.79788456080286536f * (x + 0.044715f * x * x * x)));
    case ACT_RELU:
        return x > 0 ? x : 0;
    }
    return x;
}

// Bidirectional multi-head attention of q, k, v [n, hidden] into out [n, hidden].
static void self_attention(const BertClassifier *b, const float *q, const float *k, const float *v,
                           int n, float *out, float *scores) {
    int h = b->hidden, head_dim = b->hidden / b->n_heads;
    float scale = 1.0f / sqrtf((float)head_dim);
    for (int t = 0; t < n; t++) {
        for (int head = 0; head < b->n_heads; head++) {
            const float *qh = q + (size_t)t * h + (size_t)head * head_dim;
            float max = -INFINITY;
            for (int j = 0; j < n; j++) {
                const float *kj = k + (size_t)j * h + (size_t)head * head_dim;
                float dot = 0;
                for (int d = 0; d < head_dim; d++) {
                    dot += qh[d] * kj[d];
                }
                scores[j] = dot * scale;
                max = scores[j] > max ? scores[j] : max;
            }
            double sum = 0;
            for (int j = 0; j < n; j++) {
                scores[j] = expf(scores[j] - max);
                sum += scores[j];
            }
            float *oh = out + (size_t)t * h + (size_t)head * head_dim;
            memset(oh, 0, (size_t)head_dim * sizeof(float));
            for (int j = 0; j < n; j++) {
                float weight = (float)(scores[j] / sum);
                const float *vj = v + (size_t)j * h + (size_t)head * head_dim;
                for (int d = 0; d < head_dim; d++) {
                    oh[d] += weight * vj[d];
                }
            }
        }
    }
}

int bert_classify_text(const BertClassifier *b, const Tokenizer *tok, const char *text,
                       float *logits, float *scores) {
    int *ids = NULL, n = 0;
    if (tokenizer_encode(tok, text, strlen(text), true, false, &ids, &n) != 0) {
        return -1;
    }
    // Keep [CLS] and the final [SEP]; drop word pieces beyond the position limit.
    if (n > b->max_positions) {
        ids[b->max_positions - 1] = ids[n - 1];
        n = b->max_positions;
    }
    int rc = bert_classify(b, ids, n, logits, scores);
    free(ids);
    return rc;
}

int bert_classify(const BertClassifier *b, const int *ids, int n, float *logits, float *scores) {
    if (n < 1 || n > b->max_positions) {
        return err_set("BERT input has %d tokens; expected 1..%d ([CLS] ... [SEP], truncated)", n,
                       b->max_positions);
    }
    for (int t = 0; t < n; t++) {
        if (ids[t] < 0 || ids[t] >= b->vocab) {
            return err_set("BERT token id %d at position %d is outside the vocabulary (0..%d)",
                           ids[t], t, b->vocab - 1);
        }
    }
    int h = b->hidden;
    size_t rows = (size_t)n;
    float *x = xmalloc(rows * h * sizeof(float));
    float *q = xmalloc(rows * h * sizeof(float));
    float *k = xmalloc(rows * h * sizeof(float));
    float *v = xmalloc(rows * h * sizeof(float));
    float *a = xmalloc(rows * h * sizeof(float));
    float *tmp = xmalloc(rows * h * sizeof(float));
    float *mid = xmalloc(rows * (size_t)b->intermediate * sizeof(float));
    float *att_scores = xmalloc(rows * sizeof(float));

    // Embeddings: word + position + token type 0, then LayerNorm.
    for (int t = 0; t < n; t++) {
        for (int i = 0; i < h; i++) {
            x[(size_t)t * h + i] = b->word[(size_t)ids[t] * h + i] + b->position[(size_t)t * h + i] +
                                   b->token_type[i];
        }
    }
    layer_norm(x, n, h, b->emb_ln_w, b->emb_ln_b, b->ln_eps);

    for (int l = 0; l < b->n_layers; l++) {
        const BertLayer *L = &b->layers[l];
        dense_forward(&L->query, x, n, q);
        dense_forward(&L->key, x, n, k);
        dense_forward(&L->value, x, n, v);
        self_attention(b, q, k, v, n, a, att_scores);
        dense_forward(&L->attn_out, a, n, tmp);
        for (size_t i = 0; i < rows * h; i++) {
            tmp[i] += x[i];
        }
        layer_norm(tmp, n, h, L->attn_ln_w, L->attn_ln_b, b->ln_eps); // h1

        dense_forward(&L->intermediate, tmp, n, mid);
        for (size_t i = 0; i < rows * (size_t)b->intermediate; i++) {
            mid[i] = activate(b->act, mid[i]);
        }
        dense_forward(&L->output, mid, n, x);
        for (size_t i = 0; i < rows * h; i++) {
            x[i] += tmp[i];
        }
        layer_norm(x, n, h, L->out_ln_w, L->out_ln_b, b->ln_eps);
    }

    // Pooler on the [CLS] position, then the classifier head.
    float *pooled = xmalloc((size_t)h * sizeof(float));
    dense_forward(&b->pooler, x, 1, pooled);
    for (int i = 0; i < h; i++) {
        pooled[i] = tanhf(pooled[i]);
    }
    dense_forward(&b->classifier, pooled, 1, logits);
    if (scores) {
        if (b->multi_label) {
            for (int i = 0; i < b->n_labels; i++) {
                scores[i] = 1.0f / (1.0f + expf(-logits[i]));
            }
        } else {
            float max = logits[0];
            for (int i = 1; i < b->n_labels; i++) {
                max = logits[i] > max ? logits[i] : max;
            }
            double sum = 0;
            for (int i = 0; i < b->n_labels; i++) {
                sum += exp((double)logits[i] - max);
            }
            for (int i = 0; i < b->n_labels; i++) {
                scores[i] = (float)(exp((double)logits[i] - max) / sum);
            }
        }
    }

    free(pooled);
    free(x);
    free(q);
    free(k);
    free(v);
    free(a);
    free(tmp);
    free(mid);
    free(att_scores);
    return 0;
}
