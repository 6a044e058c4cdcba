// variants.c: builds variants from recipes, with calibration and a cache (see variants.h).
#include "variants.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "quantize.h"
#include "util.h"

void variant_options_default(VariantOptions *o) {
    memset(o, 0, sizeof *o);
    o->calib_seed = 42;
}

bool recipe_needs_calibration(const QuantRecipe *recipe) {
    return recipe->algo == QUANT_ALGO_GPTQ || recipe->algo == QUANT_ALGO_AWQ ||
           recipe->algo == QUANT_ALGO_SQ;
}

CalibOptions variant_calib_options(const QuantRecipe *recipe, const VariantOptions *o) {
    CalibOptions c;
    calib_options_default(recipe->algo, &c);
    c.path = o->calib_path;
    if (o->calib_samples > 0) {
        c.n_samples = o->calib_samples;
    }
    if (o->calib_seq_len > 0) {
        c.seq_len = o->calib_seq_len;
    }
    c.seed = o->calib_seed;
    return c;
}

// NOTE: quantize.c repeats this check (check_recipe_format) when it packs, after calibration; this
// copy exists so that the commands can fail before any work.
int variant_check_recipe(const QuantRecipe *recipe) {
    if (recipe->algo == QUANT_ALGO_NONE || recipe->fake_quant) {
        return 0;
    }
    QFormat format = {.code_bits = recipe->weight_bits,
                      .group = recipe->group_size,
                      .symmetric = recipe->symmetric,
                      .fp16_scales = recipe->fp16_scales,
                      .int8_acts = recipe->act_bits == 8};
    const char *problem = qformat_check(&format);
    if (problem) {
        return err_set("cannot pack '%s': %s; add -fake to the spec to simulate it in fp32",
                       recipe->text, problem);
    }
    return 0;
}

// Rejects a calibration request whose stored activations cannot fit in this machine's memory,
// before any text is sampled. The driver (calibrate.c) keeps fp32 values for every calibration
// token while it works on a block: the block input, plus the attention output and residual for
// GPTQ, and the input of every linear for AWQ.
// NOTE: this is an estimate from those arrays; the weights and chunk buffers come on top.
static int check_calibration_memory(const Model *base, const QuantRecipe *recipe,
                                    const CalibOptions *c) {
    const ModelConfig *config = &base->config;
    int seq_len = c->seq_len;
    if (config->n_ctx_train > 0 && seq_len > config->n_ctx_train) {
        seq_len = config->n_ctx_train;
    }
    double d = config->n_embd, q_dim = (double)config->n_head * config->head_dim;
    double floats = d;
    if (recipe->algo == QUANT_ALGO_GPTQ) {
        floats += q_dim + d;
    } else if (recipe->algo == QUANT_ALGO_AWQ) {
        floats += 2 * d + q_dim + config->n_ff;
    }
    double bytes = (double)c->n_samples * seq_len * floats * sizeof(float);

    long pages = sysconf(_SC_PHYS_PAGES), page_size = sysconf(_SC_PAGE_SIZE);
    if (pages <= 0 || page_size <= 0) {
        return 0;
    }
    double memory = (double)pages * (double)page_size;
    if (bytes > memory) {
        return err_set("%s: calibrating on %d samples of %d tokens keeps about %.1f GB of "
                       "activations (an estimate), more than the %.1f GB of memory of this "
                       "machine; lower --calib-samples or --calib-seqlen",
                       recipe->text, c->n_samples, seq_len, bytes / 1e9, memory / 1e9);
    }
    return 0;
}

// The cache key of a calibrated variant: every input that determines its weights. The method
// settings are listed because the recipe text does not hold them and code can change them.
static void cache_key(const QuantRecipe *recipe, const VariantOptions *o,
                      const CalibrationSet *calib, char key[65]) {
    const GptqSettings *g = &recipe->gptq;
    const AwqSettings *a = &recipe->awq;
    char *text = xasprintf("qbias %s\nmodel %s\nrecipe %s\n"
                           "gptq %.17g %d %d %d\nawq %d %d %d %.17g\nsq %.17g %d\n"
                           "calibration %s\nsampling %s %d x %d seed %llu\n",
                           QBIAS_VERSION, o->model_hash, recipe->text, g->percdamp, g->block_size,
                           g->act_order, g->static_groups, a->n_grid, a->clip, a->clip_grid,
                           a->max_shrink, recipe->sq.alpha, recipe->sq.smooth, calib->sha256,
                           calib_sampling_name(calib->options.sampling), calib->options.n_samples,
                           calib->options.seq_len, (unsigned long long)calib->options.seed);
    sha256_bytes(text, strlen(text), key);
    free(text);
}

// The metadata a saved variant carries: how it was made.
static cJSON *quant_metadata(const QuantRecipe *recipe, const CalibrationSet *calib) {
    cJSON *meta = cJSON_CreateObject();
    cJSON_AddStringToObject(meta, "method", quant_algo_name(recipe->algo));
    cJSON_AddNumberToObject(meta, "weight_bits", recipe->weight_bits);
    cJSON_AddNumberToObject(meta, "group_size", recipe->group_size);
    cJSON_AddBoolToObject(meta, "symmetric", recipe->symmetric);
    cJSON_AddNumberToObject(meta, "act_bits", recipe->act_bits);
    cJSON_AddNumberToObject(meta, "kv_bits", recipe->kv_bits);
    if (recipe->algo == QUANT_ALGO_GPTQ) {
        cJSON_AddNumberToObject(meta, "gptq_percdamp", recipe->gptq.percdamp);
        cJSON_AddNumberToObject(meta, "gptq_block_size", recipe->gptq.block_size);
        cJSON_AddBoolToObject(meta, "gptq_act_order", recipe->gptq.act_order);
        cJSON_AddBoolToObject(meta, "gptq_static_groups", recipe->gptq.static_groups);
    } else if (recipe->algo == QUANT_ALGO_AWQ) {
        cJSON_AddNumberToObject(meta, "awq_n_grid", recipe->awq.n_grid);
        cJSON_AddBoolToObject(meta, "awq_clip", recipe->awq.clip);
    } else if (recipe->algo == QUANT_ALGO_SQ) {
        cJSON_AddNumberToObject(meta, "sq_alpha", recipe->sq.alpha);
    }
    if (calib) {
        const char *slash = strrchr(calib->source, '/');
        cJSON_AddStringToObject(meta, "calibration_file", slash ? slash + 1 : calib->source);
        cJSON_AddStringToObject(meta, "calibration_sha256", calib->sha256);
        cJSON_AddStringToObject(meta, "calibration_sampling",
                                calib_sampling_name(calib->options.sampling));
        cJSON_AddNumberToObject(meta, "calibration_samples", calib->n_samples);
        cJSON_AddNumberToObject(meta, "calibration_seq_len", calib->options.seq_len);
        cJSON_AddNumberToObject(meta, "calibration_tokens", calib->n_tokens);
        cJSON_AddNumberToObject(meta, "calibration_seed", (double)calib->options.seed);
    }
    return meta;
}

// Loads a cached variant, checking that it is the recipe it should be. Returns NULL when absent
// or unusable, after logging a warning with the reason, so that the caller quantizes again.
static Model *load_cached(const char *path, const QuantRecipe *recipe) {
    if (!file_exists(path)) {
        return NULL;
    }
    Model *m = model_load(path);
    if (!m) {
        log_warn("ignoring a damaged cached variant and quantizing again: %s", err_msg());
        return NULL;
    }
    if (strcmp(m->variant, recipe->text) != 0) {
        log_warn("ignoring the cached variant %s: it contains %s, not %s", path, m->variant,
                 recipe->text);
        model_free(m);
        return NULL;
    }
    log_info("%s: loaded from the cache %s", recipe->text, path);
    return m;
}

Model *variant_build(const Model *base, const QuantRecipe *recipe, const VariantOptions *o,
                     QuantReport *report, cJSON **metadata) {
    if (metadata) {
        *metadata = NULL;
    }
    bool stored = strcmp(base->variant, recipe->text) == 0;
    if (!stored && strcmp(base->variant, "fp32") != 0) {
        // A saved variant cannot be turned back into full precision or into another recipe.
        err_set("%s holds the quantized variant %s, which cannot give %s: score it as stored "
                "with --quant %s, or run %s on the original model",
                base->path, base->variant, recipe->text, base->variant, recipe->text);
        return NULL;
    }
    if (stored || !recipe_needs_calibration(recipe)) {
        QuantRecipe as_stored;
        char error[256];
        if (stored && quant_recipe_parse("fp32", &as_stored, error, sizeof error) != 0) {
            err_set("%s", error);
            return NULL;
        }
        Model *m = model_make_quantized(base, stored ? &as_stored : recipe, NULL, report);
        if (m && stored) {
            free(m->variant);
            m->variant = xstrdup(base->variant);
        }
        if (m && metadata) {
            *metadata = quant_metadata(recipe, NULL);
        }
        return m;
    }

    CalibOptions copts = variant_calib_options(recipe, o);
    if (variant_check_recipe(recipe) != 0 || check_calibration_memory(base, recipe, &copts) != 0) {
        return NULL;
    }
    CalibrationSet *calib = calib_set_load(base->tokenizer, base->config.n_ctx_train, o->resolver,
                                           &copts);
    if (!calib) {
        err_prefix("%s: cannot load the calibration text", recipe->text);
        return NULL;
    }

    char *cache_path = NULL;
    if (o->cache_dir && o->model_hash) {
        char key[65];
        cache_key(recipe, o, calib, key);
        char *dir = path_join(o->cache_dir, "quantized");
        cache_path = xasprintf("%s/%s.gguf", dir, key);
        if (dir_create(dir) != 0) {
            log_warn("not caching %s: %s", recipe->text, err_msg());
            free(cache_path);
            cache_path = NULL;
        }
        free(dir);
        Model *cached = cache_path ? load_cached(cache_path, recipe) : NULL;
        if (cached) {
            if (report) {
                memset(report, 0, sizeof *report);
            }
            if (metadata) {
                *metadata = quant_metadata(recipe, calib);
            }
            free(cache_path);
            calib_set_free(calib);
            return cached;
        }
    }

    log_info("%s: calibrating on %d samples (%d tokens) of %s", recipe->text, calib->n_samples,
             calib->n_tokens, calib->source);
    Model *m = model_make_quantized(base, recipe, calib, report);
    cJSON *meta = m ? quant_metadata(recipe, calib) : NULL;
    if (m && cache_path) {
        if (model_save_gguf(m, cache_path, meta) == 0) {
            log_info("%s: saved to the cache %s", recipe->text, cache_path);
        } else {
            log_warn("could not cache %s: %s", recipe->text, err_msg());
        }
    }
    if (metadata) {
        *metadata = meta;
    } else {
        cJSON_Delete(meta);
    }
    free(cache_path);
    calib_set_free(calib);
    return m;
}
