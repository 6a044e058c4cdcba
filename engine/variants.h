// variants.h: builds the model variant a recipe string names (quant/spec_methods.h), loading
// calibration text for GPTQ, AWQ and SmoothQuant and caching calibrated variants as GGUF files.
//
// Calibrated quantization of a large model takes minutes to hours, so a calibrated variant of a
// GGUF model is saved in the cache (<cache>/quantized/<key>.gguf) and loaded from there next time.
// The key is the SHA-256 of everything that determines the result: the model's hash, the recipe
// and its method settings, the calibration file's hash and sampling settings, and qbias's version.
#ifndef QBIAS_VARIANTS_H
#define QBIAS_VARIANTS_H

#include <stdbool.h>

#include "../quant/spec_methods.h"
#include "calib_data.h"
#include "calibrate.h"
#include "model.h"
#include "resolver.h"

typedef struct {
    const char *calib_path;   // --calib; NULL: the method's default (the C4 validation subset)
    int calib_samples;        // 0: the method's default (the study's)
    int calib_seq_len;        // 0: the method's default
    uint64_t calib_seed;      // the sampling seed (the study's 42 by default)
    const Resolver *resolver; // finds the default calibration text
    const char *cache_dir;    // where calibrated variants are kept; NULL: no cache
    const char *model_hash;   // SHA-256 of the base model (sha256_path), for the cache key
} VariantOptions;

// Fills the defaults: study calibration, seed 42, no cache.
void variant_options_default(VariantOptions *o);

// Returns the calibration settings a recipe uses under `o` (the method's defaults where o leaves
// them 0). Only meaningful for GPTQ, AWQ and SmoothQuant recipes.
CalibOptions variant_calib_options(const QuantRecipe *recipe, const VariantOptions *o);

// Returns true when the recipe needs calibration text.
bool recipe_needs_calibration(const QuantRecipe *recipe);

// Checks what the recipe text alone decides: a packed recipe needs a group that is a multiple of
// 32 (or one group per row). Callers run it before hashing the model or loading calibration
// text. Returns 0, or -1 with an error that suggests -fake.
int variant_check_recipe(const QuantRecipe *recipe);

// Builds the variant of `base` named by `recipe`. The base's own recipe ("fp32" for an
// unquantized model, or the recipe a file saved by qbias holds) shares the base's weights as
// stored; RTN quantizes directly; GPTQ, AWQ and SmoothQuant calibrate first, or load the cached
// result. When `metadata` is not NULL, it receives how the variant was made (method settings,
// calibration file hash and sampling) as the qbias.quant.* keys for model_save_gguf. Free it with
// cJSON_Delete. The returned model is freed with model_free() before `base`. `report` may be NULL.
// Returns NULL with an error (a recipe applied to an already-quantized file, a calibration
// problem, ...).
Model *variant_build(const Model *base, const QuantRecipe *recipe, const VariantOptions *o,
                     QuantReport *report, cJSON **metadata);

#endif
