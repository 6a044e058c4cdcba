// variant.c: quantized variants of a loaded model (model_make_variant in model.h).
//
// A variant's transformer-block matrices are quantized by round-to-nearest and either packed
// (quant/format.h), so the forward pass runs the integer kernels on them, or, for specs with
// "-fake", stored dequantized in fp32 as the reference study simulated quantization. Both hold the
// same codes and scales: with fp32 activations the two give the same products bit for bit (the
// weight-only kernels equal the fp32 kernel on dequantized weights), and with int8 activations
// they differ by float rounding only.
#include <stdlib.h>
#include <string.h>

#include "../quant/rtn.h"
#include "model.h"
#include "util.h"

static QFormat spec_format(const QuantSpec *spec) {
    return (QFormat){.code_bits = spec->weight_bits,
                     .group = spec->group_size,
                     .symmetric = spec->symmetric,
                     .fp16_scales = spec->fp16_scales,
                     .int8_acts = spec->act_bits == 8};
}

// Packs *w by RTN into the spec's format. Returns 0, or -1 with an error.
static int pack_weight_rtn(Weight *w, const QuantSpec *spec) {
    QFormat format = spec_format(spec);
    QMatrix *packed = qmatrix_new(w->rows, w->cols, &format);
    if (!packed) {
        return err_set("cannot allocate the packed %dx%d matrix '%s' for '%s'", w->rows, w->cols,
                       w->name, spec->text);
    }
    float *values = weight_to_f32(w);
    // Rows write disjoint bytes in both layouts, so they can be packed in parallel.
#pragma omp parallel for schedule(static)
    for (int r = 0; r < w->rows; r++) {
        qmatrix_quantize_row_rtn(packed, r, values + (size_t)r * (size_t)w->cols);
    }
    free(values);
    w->packed = packed;
    w->data = packed;
    w->owned = packed;
    return 0;
}

// Replaces *w with an fp32 copy quantized and dequantized by RTN.
static void fake_quantize_weight_rtn(Weight *w, const QuantSpec *spec) {
    float *values = weight_to_f32(w);
    if (spec->fp16_scales) {
        // rtn.c keeps fp32 scales; the packed matrix rounds them to fp16 as the real format does.
        QFormat format = spec_format(spec);
        format.int8_acts = false;
        QMatrix *packed = qmatrix_new(w->rows, w->cols, &format);
        if (!packed) {
            abort();
        }
        for (int r = 0; r < w->rows; r++) {
            float *row = values + (size_t)r * (size_t)w->cols;
            qmatrix_quantize_row_rtn(packed, r, row);
            qmatrix_dequantize_row(packed, r, row);
        }
        free(packed);
    } else {
        rtn_fake_quantize(values, values, w->rows, w->cols, spec->weight_bits, spec->group_size,
                          spec->symmetric);
    }
    w->type = GGML_TYPE_F32;
    w->data = values;
    w->owned = values;
    w->act_bits = spec->act_bits;
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
    if (spec->method == QUANT_RTN && !spec->fake_quant) {
        QFormat format = spec_format(spec);
        const char *problem = qformat_check(&format);
        if (problem) {
            err_set("cannot pack '%s': %s; add -fake to the spec to simulate it in fp32", spec->text,
                    problem);
            return NULL;
        }
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
            if (weights[i]->rows == 0) {
                continue; // a matrix the architecture does not have (gpt2's ffn_gate)
            }
            if (spec->fake_quant) {
                fake_quantize_weight_rtn(weights[i], spec);
            } else if (pack_weight_rtn(weights[i], spec) < 0) {
                model_free(m);
                return NULL;
            }
        }
    }
    return m;
}
