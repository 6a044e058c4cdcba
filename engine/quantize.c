// quantize.c: quantization of a model's block linears by recipe (see quantize.h).
#include "quantize.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../quant/format.h"
#include "../quant/rtn.h"
#include "util.h"

void model_runtime_quant(const Model *m, RuntimeQuant *out) {
    memset(out, 0, sizeof *out);
    QuantRecipe recipe;
    char error[16];
    if (m->variant && quant_recipe_parse(m->variant, &recipe, error, sizeof error) == 0) {
        out->kv_bits = recipe.kv_bits;
    }
}

// ----------------------------------------------------------------------------
// One matrix

static QFormat recipe_format(const QuantRecipe *r) {
    return (QFormat){.code_bits = r->weight_bits,
                     .group = r->group_size,
                     .symmetric = r->symmetric,
                     .fp16_scales = r->fp16_scales,
                     .int8_acts = r->act_bits == 8};
}

void weight_grid_init(WeightGrid *grid, int rows, int cols, int group_size) {
    grid->rows = rows;
    grid->cols = cols;
    grid->group = group_size > 0 && group_size < cols ? group_size : cols;
    grid->n_groups = (cols + grid->group - 1) / grid->group;
    grid->scales = xmalloc((size_t)rows * (size_t)grid->n_groups * sizeof(float));
    grid->zeros = xcalloc((size_t)rows * (size_t)grid->n_groups, sizeof(int));
}

void weight_grid_free(WeightGrid *grid) {
    free(grid->scales);
    free(grid->zeros);
    grid->scales = NULL;
    grid->zeros = NULL;
}

float *quantize_begin_weight(Weight *w) {
    float *values = weight_to_f32(w);
    free(w->owned);
    w->type = GGML_TYPE_F32;
    w->packed = NULL;
    w->data = values;
    w->owned = values;
    return values;
}

void quantize_round_rtn(float *w, const QuantRecipe *recipe, WeightGrid *grid) {
    int *q = xmalloc((size_t)grid->group * sizeof(int));
    for (int r = 0; r < grid->rows; r++) {
        for (int g = 0; g < grid->n_groups; g++) {
            int c0 = g * grid->group;
            int n = grid->cols - c0 < grid->group ? grid->cols - c0 : grid->group;
            float *values = w + (size_t)r * grid->cols + c0;
            int zero = 0;
            float scale = rtn_quantize_group(values, n, recipe->weight_bits, recipe->symmetric, q,
                                             &zero);
            for (int i = 0; i < n; i++) {
                values[i] = (float)(q[i] - zero) * scale;
            }
            grid->scales[(size_t)r * grid->n_groups + g] = scale;
            grid->zeros[(size_t)r * grid->n_groups + g] = zero;
        }
    }
    free(q);
}

// Packs fp32 values [rows, cols] that sit on `grid` into a new matrix of format f. The codes are
// recovered as round(value / scale) + zero, exact because value = (q - zero) * scale.
static QMatrix *pack_on_grid(const float *values, const WeightGrid *grid, const QFormat *f) {
    QMatrix *m = qmatrix_new(grid->rows, grid->cols, f);
    if (!m) {
        return NULL;
    }
    int max_code = (1 << f->code_bits) - 1;
    // Symmetric codes q in [-2^(b-1), 2^(b-1) - 1] are stored as u = q + 2^(b-1).
    int offset = f->symmetric ? m->view.zero_point : 0;
    for (int r = 0; r < grid->rows; r++) {
        for (int g = 0; g < grid->n_groups; g++) {
            size_t index = (size_t)r * grid->n_groups + g;
            float scale = grid->scales[index];
            int zero = grid->zeros[index];
            qmatrix_set_group(m, r, g, scale, zero);
            int c0 = g * grid->group;
            int n = grid->cols - c0 < grid->group ? grid->cols - c0 : grid->group;
            for (int i = 0; i < n; i++) {
                int code = (int)rintf(values[(size_t)r * grid->cols + c0 + i] / scale);
                code += zero + offset;
                code = code < 0 ? 0 : (code > max_code ? max_code : code);
                qmatrix_set_code(m, r, c0 + i, code);
            }
        }
    }
    return m;
}

int quantize_store_weight(Weight *w, const QuantRecipe *recipe, const WeightGrid *grid) {
    float *values = w->owned;
    QFormat format = recipe_format(recipe);
    w->act_bits = recipe->act_bits;
    if (recipe->fake_quant) {
        // Only the fp16 rounding of the scales changes fake-quantized values; it needs the
        // weight-only layout, whatever the activations.
        format.int8_acts = false;
        if (!recipe->fp16_scales || qformat_check(&format) != NULL) {
            return 0;
        }
    }
    QMatrix *packed = pack_on_grid(values, grid, &format);
    if (!packed) {
        return err_set("cannot allocate the packed %dx%d matrix '%s' for '%s'", w->rows, w->cols,
                       w->name ? w->name : "?", recipe->text);
    }
    if (recipe->fake_quant) {
        for (int r = 0; r < w->rows; r++) {
            qmatrix_dequantize_row(packed, r, values + (size_t)r * w->cols);
        }
        free(packed);
        return 0;
    }
    free(values);
    w->packed = packed;
    w->data = packed;
    w->owned = packed;
    return 0;
}

// ----------------------------------------------------------------------------
// Whole models

// Gives every layer writable copies of its two norm vectors.
// NOTE: the copies live in the same allocation as the variant's Layer array, after the layers,
// so that model_free, which frees m->layers, frees them too: the Model struct has no field for a
// variant's own norms yet.
static void own_norm_copies(Model *m) {
    int n_layer = m->config.n_layer, d = m->config.n_embd;
    size_t layers_bytes = (size_t)n_layer * sizeof(Layer);
    size_t norms_bytes = 2 * (size_t)n_layer * (size_t)d * sizeof(float);
    // A variant quantized before already has its copies there; reallocating would free the
    // memory its norm pointers point into.
    uintptr_t first = (uintptr_t)m->layers + layers_bytes;
    uintptr_t norm = (uintptr_t)m->layers[0].attn_norm;
    if (norm >= first && norm < first + norms_bytes) {
        return;
    }
    m->layers = xrealloc(m->layers, layers_bytes + norms_bytes);
    float *norms = (float *)((char *)m->layers + layers_bytes);
    for (int l = 0; l < n_layer; l++) {
        Layer *layer = &m->layers[l];
        float *attn = norms + (size_t)2 * l * d, *ffn = attn + d;
        memcpy(attn, layer->attn_norm, (size_t)d * sizeof(float));
        memcpy(ffn, layer->ffn_norm, (size_t)d * sizeof(float));
        layer->attn_norm = attn;
        layer->ffn_norm = ffn;
    }
}

static int quantize_rtn(Model *m, const QuantRecipe *recipe, QuantReport *report) {
    for (int l = 0; l < m->config.n_layer; l++) {
        Layer *layer = &m->layers[l];
        Weight *weights[] = {&layer->attn_q,   &layer->attn_k, &layer->attn_v, &layer->attn_output,
                             &layer->ffn_gate, &layer->ffn_up, &layer->ffn_down};
        for (size_t i = 0; i < ARRAY_LEN(weights); i++) {
            Weight *w = weights[i];
            if (w->rows == 0) {
                continue; // no gate matrix (GPT-2's MLP)
            }
            float *values = quantize_begin_weight(w);
            WeightGrid grid;
            weight_grid_init(&grid, w->rows, w->cols, recipe->group_size);
            quantize_round_rtn(values, recipe, &grid);
            int rc = quantize_store_weight(w, recipe, &grid);
            weight_grid_free(&grid);
            if (rc != 0) {
                return -1;
            }
            report->n_linears++;
        }
    }
    return 0;
}

// Rejects models whose blocks the calibration driver does not run: it implements the llama block
// (RMSNorm, RoPE, grouped-query attention, SwiGLU) with optional q/k/v biases (qwen2).
static int check_calibration_architecture(const Model *m) {
    const ModelConfig *c = &m->config;
    const char *problem = NULL;
    if (c->layer_norm) {
        problem = "LayerNorm";
    } else if (c->ffn != FFN_SILU_GLU) {
        problem = "a feed-forward block other than SwiGLU";
    } else if (c->attn_softcap > 0 || c->final_softcap > 0) {
        problem = "soft-capped scores";
    } else if (c->sliding_window > 0) {
        problem = "sliding-window attention";
    } else if (c->embed_scale != 1.0f || m->position_embd.rows > 0) {
        problem = "scaled or positional embeddings";
    }
    for (int l = 0; !problem && l < c->n_layer; l++) {
        const Layer *layer = &m->layers[l];
        if (layer->bo || layer->b_up || layer->b_down) {
            problem = "biases on the output or feed-forward projections";
        } else if (layer->post_attn_norm || layer->post_ffn_norm) {
            problem = "norms after the attention or feed-forward block";
        }
    }
    if (problem) {
        return err_set("calibrated quantization runs llama-style blocks (RMSNorm, RoPE, SwiGLU, "
                       "optional q/k/v biases); the %s model '%s' has %s. Use rtn for it",
                       c->arch_name, m->path, problem);
    }
    return 0;
}

static int check_recipe_format(const QuantRecipe *recipe) {
    if (recipe->algo == QUANT_ALGO_NONE || recipe->fake_quant) {
        return 0;
    }
    QFormat format = recipe_format(recipe);
    const char *problem = qformat_check(&format);
    if (problem) {
        return err_set("cannot pack '%s': %s; add -fake to the spec to simulate it in fp32",
                       recipe->text, problem);
    }
    return 0;
}

int model_quantize_weights(Model *variant, const QuantRecipe *recipe,
                           const CalibrationSet *calib, QuantReport *report) {
    QuantReport local;
    report = report ? report : &local;
    memset(report, 0, sizeof *report);
    if (!variant->base) {
        return err_set("quantize a variant made with model_make_variant, not the base model "
                       "'%s', whose weights and norms the variants share",
                       variant->path);
    }
    bool calibrated = recipe->algo == QUANT_ALGO_GPTQ || recipe->algo == QUANT_ALGO_AWQ ||
                      recipe->algo == QUANT_ALGO_SQ;
    if (calibrated && !calib) {
        return err_set("%s needs calibration data", recipe->text);
    }
    if (check_recipe_format(recipe) != 0 ||
        (calibrated && check_calibration_architecture(variant) != 0)) {
        return -1;
    }
    if (recipe->algo == QUANT_ALGO_AWQ || recipe->algo == QUANT_ALGO_SQ) {
        own_norm_copies(variant);
    }

    double start = now_seconds();
    int rc = 0;
    switch (recipe->algo) {
    case QUANT_ALGO_NONE:
        break;
    case QUANT_ALGO_RTN:
        rc = quantize_rtn(variant, recipe, report);
        break;
    case QUANT_ALGO_GPTQ:
        rc = calibrate_gptq(variant, recipe, calib, report);
        break;
    case QUANT_ALGO_AWQ:
        rc = calibrate_awq(variant, recipe, calib, report);
        break;
    case QUANT_ALGO_SQ:
        rc = calibrate_sq(variant, recipe, calib, report);
        break;
    }
    report->seconds = now_seconds() - start;
    if (rc != 0) {
        return err_prefix("%s", recipe->text);
    }
    if (calibrated) {
        log_info("%s: %d matrices quantized in %.1f s on %d calibration samples (%d tokens)",
                 recipe->text, report->n_linears, report->seconds, calib->n_samples,
                 calib->n_tokens);
    }
    return 0;
}

Model *model_make_quantized(const Model *base, const QuantRecipe *recipe,
                            const CalibrationSet *calib, QuantReport *report) {
    QuantSpec fp32;
    char error[256];
    if (quant_spec_parse("fp32", &fp32, error, sizeof error) != 0) {
        err_set("%s", error);
        return NULL;
    }
    Model *m = model_make_variant(base, &fp32);
    if (!m) {
        return NULL;
    }
    free(m->variant);
    m->variant = xstrdup(recipe->text);
    if (model_quantize_weights(m, recipe, calib, report) != 0) {
        model_free(m);
        return NULL;
    }
    return m;
}
