// quantize.h: applies a quantization recipe (quant/spec_methods.h) to a model's block linears.
//
// Quantized matrices are packed in the formats of quant/format.h, so the forward pass runs the
// integer kernels on them, or, for recipes with "-fake", stored dequantized in fp32 as the
// reference study simulated W3 and W4A8. Embeddings, the output head and the norms outside the
// blocks stay in full precision, as the study keeps them.
#ifndef QBIAS_QUANTIZE_H
#define QBIAS_QUANTIZE_H

#include "../quant/spec_methods.h"
#include "calib_data.h"
#include "calibrate.h"
#include "model.h"

// What model_forward quantizes at run time for a model beyond its weights, from its recipe (the
// variant id). Activation quantization is a property of each Weight (act_bits).
typedef struct {
    int kv_bits;  // 0, or the bits of per-head per-token KV-cache quantization
} RuntimeQuant;

// Reads the run-time settings from m->variant. Variant ids that are not recipes ("fp32" and
// anything quant_recipe_parse rejects) quantize nothing at run time.
// NOTE: the setting lives in the variant id because Model has no field for it.
void model_runtime_quant(const Model *m, RuntimeQuant *out);

// Quantizes the block linears of `variant`, a variant made with model_make_variant("fp32") from a
// base model, with the recipe's method. The variant gets its own copy of each block matrix (packed,
// or fp32 with -fake) and, for AWQ and SmoothQuant, which fold scales into them, of its block
// norms. GPTQ, AWQ and SmoothQuant need `calib` and run on the llama block (RMSNorm, RoPE, SwiGLU)
// with optional q/k/v biases (qwen2); fp32 and RTN ignore `calib` and take any architecture.
// `report` may be NULL. The variant's id is not changed. Returns 0, or -1 with an error.
int model_quantize_weights(Model *variant, const QuantRecipe *recipe,
                           const CalibrationSet *calib, QuantReport *report);

// ----------------------------------------------------------------------------
// Steps for one matrix, which the calibrated methods (calibrate.c) run block by block

// The grid a quantized matrix sits on: w = (q - zero) * scale for each row and group of `group`
// consecutive columns (the last group of a row may be shorter).
typedef struct {
    int rows, cols, group, n_groups;
    float *scales; // [rows, n_groups]
    int *zeros;    // [rows, n_groups]; 0 when symmetric
} WeightGrid;

void weight_grid_init(WeightGrid *grid, int rows, int cols, int group_size);
void weight_grid_free(WeightGrid *grid);

// Replaces *w by an owned fp32 copy of its values (converted from F16, BF16 or a packed format)
// and returns the copy, which the quantizers then modify in place.
float *quantize_begin_weight(Weight *w);

// Rounds w [rows, cols] in place to the recipe's grid by round-to-nearest (quant/rtn.h) and
// records the grid.
void quantize_round_rtn(float *w, const QuantRecipe *recipe, WeightGrid *grid);

// Finishes a matrix begun with quantize_begin_weight whose values now sit on `grid`: packs it in
// the recipe's format, or keeps the fp32 values with -fake (rounding the scales to fp16 with
// -f16), and sets the per-token activation bits. Returns 0, or -1 with an error.
int quantize_store_weight(Weight *w, const QuantRecipe *recipe, const WeightGrid *grid);

// Makes a variant of `base` quantized by the recipe, with the recipe's canonical text as its id.
// Returns NULL with an error. Free with model_free() before the base model.
Model *model_make_quantized(const Model *base, const QuantRecipe *recipe,
                            const CalibrationSet *calib, QuantReport *report);

#endif
