// quantize.c: quantization of a model's block linears by recipe (see quantize.h).
#include "quantize.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../quant/rtn.h"
#include "util.h"

void model_runtime_quant(const Model *m, RuntimeQuant *out) {
    memset(out, 0, sizeof *out);
    QuantRecipe recipe;
    char error[16];
    if (m->variant && quant_recipe_parse(m->variant, &recipe, error, sizeof error) == 0) {
        out->act_bits = recipe.act_bits;
        out->kv_bits = recipe.kv_bits;
    }
}

// Replaces *w by an owned fp32 copy of its values (which the quantizers then modify in place).
static void own_fp32_copy(Weight *w) {
    float *values = weight_to_f32(w);
    free(w->owned);
    w->type = GGML_TYPE_F32;
    w->data = values;
    w->owned = values;
}

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

static void quantize_rtn(Model *m, const QuantRecipe *recipe, QuantReport *report) {
    for (int l = 0; l < m->config.n_layer; l++) {
        Layer *layer = &m->layers[l];
        Weight *weights[] = {&layer->attn_q,   &layer->attn_k, &layer->attn_v, &layer->attn_output,
                             &layer->ffn_gate, &layer->ffn_up, &layer->ffn_down};
        for (size_t i = 0; i < ARRAY_LEN(weights); i++) {
            float *w = weights[i]->owned;
            rtn_fake_quantize(w, w, weights[i]->rows, weights[i]->cols, recipe->weight_bits,
                              recipe->group_size, recipe->symmetric);
            report->n_linears++;
        }
    }
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
    if (recipe->algo == QUANT_ALGO_NONE) {
        return 0;
    }

    double start = now_seconds();
    for (int l = 0; l < variant->config.n_layer; l++) {
        Layer *layer = &variant->layers[l];
        Weight *weights[] = {&layer->attn_q,   &layer->attn_k, &layer->attn_v, &layer->attn_output,
                             &layer->ffn_gate, &layer->ffn_up, &layer->ffn_down};
        for (size_t i = 0; i < ARRAY_LEN(weights); i++) {
            own_fp32_copy(weights[i]);
        }
    }
    if (recipe->algo == QUANT_ALGO_AWQ || recipe->algo == QUANT_ALGO_SQ) {
        own_norm_copies(variant);
    }

    int rc = 0;
    switch (recipe->algo) {
    case QUANT_ALGO_RTN:
        quantize_rtn(variant, recipe, report);
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
    case QUANT_ALGO_NONE:
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
