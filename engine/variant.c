// variant.c: quantized variants of a loaded model (model_make_variant in model.h).
#include <stdlib.h>
#include <string.h>

#include "../quant/rtn.h"
#include "model.h"
#include "util.h"

// Replaces *w with an fp32 copy quantized and dequantized by RTN.
static void quantize_weight_rtn(Weight *w, const QuantSpec *spec) {
    float *values = weight_to_f32(w);
    rtn_fake_quantize(values, values, w->rows, w->cols, spec->weight_bits, spec->group_size,
                      spec->symmetric);
    w->type = GGML_TYPE_F32;
    w->data = values;
    w->owned = values;
}

Model *model_make_variant(const Model *base, const QuantSpec *spec) {
    if (base->base) {
        err_set("cannot make a variant of the variant '%s'; start from the base model",
                base->variant);
        return NULL;
    }
    if (spec->method != QUANT_NONE && spec->method != QUANT_RTN) {
        err_set("quantization method of '%s' is not supported by the engine", spec->text);
        return NULL;
    }

    Model *m = xmalloc(sizeof *m);
    *m = *base;
    m->base = base;
    m->path = xstrdup(base->path);
    m->variant = xstrdup(spec->text);
    m->layers = xmalloc((size_t)base->config.n_layer * sizeof(Layer));
    memcpy(m->layers, base->layers, (size_t)base->config.n_layer * sizeof(Layer));
    for (int l = 0; l < m->config.n_layer; l++) {
        // The copies borrow the base model's data; only matrices quantized below are owned.
        Layer *layer = &m->layers[l];
        layer->attn_q.owned = layer->attn_k.owned = layer->attn_v.owned = NULL;
        layer->attn_output.owned = layer->ffn_gate.owned = NULL;
        layer->ffn_up.owned = layer->ffn_down.owned = NULL;
    }
    if (spec->method == QUANT_NONE) {
        return m;
    }

    for (int l = 0; l < m->config.n_layer; l++) {
        Layer *layer = &m->layers[l];
        Weight *weights[] = {&layer->attn_q,   &layer->attn_k, &layer->attn_v, &layer->attn_output,
                             &layer->ffn_gate, &layer->ffn_up, &layer->ffn_down};
        for (size_t i = 0; i < ARRAY_LEN(weights); i++) {
            quantize_weight_rtn(weights[i], spec);
        }
    }
    return m;
}
