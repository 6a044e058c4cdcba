// quantize.h: applies a quantization recipe (quant/spec_methods.h) to a model's block linears.
//
// Quantized weights are stored dequantized in fp32 ("fake quantization"), as model_make_variant
// stores RTN; the packed formats replace that storage later. Embeddings, the output head and the
// final norm stay in full precision, as the reference study keeps them.
#ifndef QBIAS_QUANTIZE_H
#define QBIAS_QUANTIZE_H

#include "../quant/spec_methods.h"
#include "calib_data.h"
#include "calibrate.h"
#include "model.h"

// What model_forward quantizes at run time for a model, from its recipe (the variant id).
typedef struct {
    int act_bits; // 0, or the bits of per-token activation quantization before every block linear
    int kv_bits;  // 0, or the bits of per-head per-token KV-cache quantization
} RuntimeQuant;

// Reads the run-time settings from m->variant. Variant ids that are not recipes ("fp32" and
// anything quant_recipe_parse rejects) quantize nothing at run time.
void model_runtime_quant(const Model *m, RuntimeQuant *out);

// Quantizes the block linears of `variant`, a variant made with model_make_variant from a base
// model and not yet quantized, with the recipe's method. The variant gets owned fp32 copies of its
// seven block matrices per layer and, for AWQ and SmoothQuant, which fold scales into them, of its
// block norms. GPTQ, AWQ and SmoothQuant need `calib`; fp32 and RTN ignore it. `report` may be
// NULL. The variant's id is not changed. Returns 0, or -1 with an error.
int model_quantize_weights(Model *variant, const QuantRecipe *recipe,
                           const CalibrationSet *calib, QuantReport *report);

// Makes a variant of `base` quantized by the recipe, with the recipe's canonical text as its id.
// Returns NULL with an error. Free with model_free() before the base model.
Model *model_make_quantized(const Model *base, const QuantRecipe *recipe,
                            const CalibrationSet *calib, QuantReport *report);

#endif
