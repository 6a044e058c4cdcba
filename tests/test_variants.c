// test_variants.c: variants built from recipes (engine/variants.h), saved as GGUF files by
// model_save_gguf and loaded back, and the cache of calibrated variants. Runs on stories260K.
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../engine/gguf.h"
#include "../engine/quantize.h"
#include "../engine/score.h"
#include "../engine/util.h"
#include "../engine/variants.h"
#include "quant_helpers.h"
#include "test.h"

#define N_SENTENCES 3

static const char *const SENTENCES[N_SENTENCES] = {
    "Once upon a time, there was a little girl named Lily.",
    "The dog ran to the park and played with a red ball.",
    "Tom was sad because his toy was broken, so his mom helped him fix it.",
};

static Model *load_stories(void) {
    Model *m = model_load(test_shared_path("models/stories260K/stories260K.gguf"));
    REQUIRE_MSG(m != NULL, "%s", err_msg());
    return m;
}

// Log-probabilities of the three sentences, which must match bit for bit between a variant and
// its saved copy.
static void score(const Model *m, double out[N_SENTENCES]) {
    ScoreRequest requests[N_SENTENCES];
    ScoreResult results[N_SENTENCES];
    for (int i = 0; i < N_SENTENCES; i++) {
        requests[i] = (ScoreRequest){.context = "", .continuation = SENTENCES[i]};
    }
    ScoreOptions options = {0};
    REQUIRE_MSG(score_requests(m, requests, N_SENTENCES, &options, results) == 0, "%s", err_msg());
    for (int i = 0; i < N_SENTENCES; i++) {
        out[i] = results[i].logprob;
        score_result_free(&results[i]);
    }
}

// A small calibration set from the C4 subset, so that the calibrated methods run in seconds.
static CalibrationSet *small_calibration(const Model *m, QuantAlgo algo) {
    CalibOptions options;
    calib_options_default(algo, &options);
    options.path = test_shared_path("data/c4-validation-subset/c4_validation_2k.jsonl");
    options.n_samples = 8;
    options.seq_len = 128;
    CalibrationSet *calib = calib_set_load(m->tokenizer, m->config.n_ctx_train, NULL, &options);
    REQUIRE_MSG(calib != NULL, "%s", err_msg());
    return calib;
}

// Saves `variant`, loads the file and checks that it is the same variant: its id, its packed or
// fp32 storage, and its scores, bit for bit.
static void check_round_trip(const Model *variant, const QuantRecipe *recipe,
                             const CalibrationSet *calib) {
    char *path = xasprintf("%s/variant.gguf", test_tmp_dir());
    cJSON *meta = cJSON_CreateObject();
    cJSON_AddStringToObject(meta, "method", quant_algo_name(recipe->algo));
    cJSON_AddNumberToObject(meta, "weight_bits", recipe->weight_bits);
    if (calib) {
        cJSON_AddStringToObject(meta, "calibration_sha256", calib->sha256);
    }
    REQUIRE_MSG(model_save_gguf(variant, path, meta) == 0, "%s: %s", recipe->text, err_msg());
    cJSON_Delete(meta);

    Model *loaded = model_load(path);
    REQUIRE_MSG(loaded != NULL, "%s: %s", recipe->text, err_msg());
    CHECK_MSG(strcmp(loaded->variant, recipe->text) == 0, "loaded %s as %s", recipe->text,
              loaded->variant);
    const Weight *a = &variant->layers[1].ffn_down, *b = &loaded->layers[1].ffn_down;
    CHECK_MSG((a->packed != NULL) == (b->packed != NULL), "%s: storage changed", recipe->text);
    CHECK_EQ_INT(b->act_bits, a->act_bits);
    CHECK(variant->layers[0].attn_q.act_bits == loaded->layers[0].attn_q.act_bits);

    double before[N_SENTENCES], after[N_SENTENCES];
    score(variant, before);
    score(loaded, after);
    for (int i = 0; i < N_SENTENCES; i++) {
        CHECK_MSG(before[i] == after[i], "%s sentence %d: %.17g before saving, %.17g after",
                  recipe->text, i, before[i], after[i]);
    }

    // The saved file is scored as stored under its own recipe, and refuses any other.
    QuantRecipe fp32 = qtest_recipe("fp32");
    VariantOptions o;
    variant_options_default(&o);
    Model *same = variant_build(loaded, recipe, &o, NULL, NULL);
    REQUIRE_MSG(same != NULL, "%s", err_msg());
    CHECK(strcmp(same->variant, recipe->text) == 0);
    double again[N_SENTENCES];
    score(same, again);
    CHECK(again[0] == before[0]);
    model_free(same);
    if (recipe->algo != QUANT_ALGO_NONE) {
        CHECK(variant_build(loaded, &fp32, &o, NULL, NULL) == NULL);
        CHECK_MSG(strstr(err_msg(), "score it as stored") != NULL, "%s", err_msg());
    }

    model_free(loaded);
    free(path);
}

TEST(variant_save_round_trips_rtn_and_fake_quant) {
    Model *base = load_stories();
    const char *texts[] = {"fp32", "rtn:w4g32", "rtn:w8ca8", "rtn:w3g32-asym-f16",
                           "rtn:w4g32a8-fake", "rtn:w8g32+kv8"};
    for (size_t i = 0; i < ARRAY_LEN(texts); i++) {
        QuantRecipe recipe = qtest_recipe(texts[i]);
        Model *v = model_make_quantized(base, &recipe, NULL, NULL);
        REQUIRE_MSG(v != NULL, "%s: %s", texts[i], err_msg());
        check_round_trip(v, &recipe, NULL);
        model_free(v);
    }
    model_free(base);
}

TEST(variant_save_round_trips_calibrated_methods) {
    Model *base = load_stories();
    const char *texts[] = {"gptq:w4g32", "awq:w4g32", "sq:w8a8", "sq:w4a8-fake"};
    for (size_t i = 0; i < ARRAY_LEN(texts); i++) {
        QuantRecipe recipe = qtest_recipe(texts[i]);
        CalibrationSet *calib = small_calibration(base, recipe.algo);
        Model *v = model_make_quantized(base, &recipe, calib, NULL);
        REQUIRE_MSG(v != NULL, "%s: %s", texts[i], err_msg());
        // AWQ and SmoothQuant fold scales into the norms, which the file must carry.
        check_round_trip(v, &recipe, calib);
        model_free(v);
        calib_set_free(calib);
    }
    model_free(base);
}

// The metadata of a saved file: the recipe, qbias's version, the calibration hash, the source's
// keys (tokenizer, hyper-parameters), and packed tensors with their shape keys.
TEST(variant_save_writes_documented_metadata) {
    Model *base = load_stories();
    QuantRecipe recipe = qtest_recipe("gptq:w4g32");
    CalibrationSet *calib = small_calibration(base, recipe.algo);
    char *path = xasprintf("%s/gptq.gguf", test_tmp_dir());
    char hash[65];
    REQUIRE_OK(sha256_path(base->path, hash));
    VariantOptions o;
    variant_options_default(&o);
    o.calib_path = calib->source;
    o.calib_samples = 8;
    o.calib_seq_len = 128;
    cJSON *meta = NULL;
    Model *v = variant_build(base, &recipe, &o, NULL, &meta);
    REQUIRE_MSG(v != NULL, "%s", err_msg());
    REQUIRE(meta != NULL);
    REQUIRE_OK(model_save_gguf(v, path, meta));

    GGUFFile *f = gguf_open(path);
    REQUIRE_MSG(f != NULL, "%s", err_msg());
    char *text = NULL;
    REQUIRE(gguf_get_string(f, "qbias.quant.recipe", &text) == 1);
    CHECK(strcmp(text, "gptq:w4g32") == 0);
    free(text);
    REQUIRE(gguf_get_string(f, "qbias.version", &text) == 1);
    CHECK(strcmp(text, QBIAS_VERSION) == 0);
    free(text);
    REQUIRE(gguf_get_string(f, "qbias.quant.calibration_sha256", &text) == 1);
    CHECK(strcmp(text, calib->sha256) == 0);
    free(text);
    REQUIRE(gguf_get_string(f, "qbias.quant.method", &text) == 1);
    CHECK(strcmp(text, "gptq") == 0);
    free(text);
    REQUIRE(gguf_get_string(f, "general.architecture", &text) == 1);
    CHECK(strcmp(text, "llama") == 0);
    free(text);
    const GGUFTensor *t = gguf_find_tensor(f, "blk.0.attn_q.weight");
    REQUIRE(t != NULL);
    CHECK_EQ_INT(t->type, GGML_TYPE_QBIAS_PACKED);
    const GGUFArray *a = NULL;
    REQUIRE(gguf_get_array(f, "qbias.packed.blk.0.attn_q.weight", &a) == 1);
    CHECK_EQ_INT(gguf_array_get_int(a, 0), base->config.n_embd);
    CHECK_EQ_INT(gguf_array_get_int(a, 2), 4);
    CHECK_EQ_INT(gguf_array_get_int(a, 3), 32);
    // Embeddings and norms stay as the source stores them.
    t = gguf_find_tensor(f, "token_embd.weight");
    REQUIRE(t != NULL);
    CHECK_EQ_INT(t->type, base->token_embd.type);
    gguf_close(f);

    cJSON_Delete(meta);
    model_free(v);
    calib_set_free(calib);
    free(path);
    model_free(base);
}

// Options for 8 x 128 calibration tokens of the C4 subset, cached in `cache` under `model_hash`.
static VariantOptions cached_small_calibration(const char *cache, const char *model_hash) {
    VariantOptions o;
    variant_options_default(&o);
    o.calib_path = test_shared_path("data/c4-validation-subset/c4_validation_2k.jsonl");
    o.calib_samples = 8;
    o.calib_seq_len = 128;
    o.cache_dir = cache;
    o.model_hash = model_hash;
    return o;
}

// A calibrated variant is saved in the cache under its content key and loaded from there the
// next time, with the same scores. Other calibration settings make another key.
TEST(variant_cache_reuses_calibrated_variants) {
    Model *base = load_stories();
    char hash[65];
    REQUIRE_OK(sha256_path(base->path, hash));
    char *cache = xasprintf("%s/cache", test_tmp_dir());
    VariantOptions o = cached_small_calibration(cache, hash);
    QuantRecipe recipe = qtest_recipe("gptq:w3g32");

    QuantReport report;
    Model *first = variant_build(base, &recipe, &o, &report, NULL);
    REQUIRE_MSG(first != NULL, "%s", err_msg());
    CHECK_EQ_INT(report.n_linears, 7 * base->config.n_layer);
    Model *second = variant_build(base, &recipe, &o, &report, NULL);
    REQUIRE_MSG(second != NULL, "%s", err_msg());
    // Loaded, not quantized: nothing was counted, and the model is read from its own file.
    CHECK_EQ_INT(report.n_linears, 0);
    CHECK(second->base == NULL);
    CHECK(second->file != NULL);
    CHECK(strcmp(second->variant, "gptq:w3g32") == 0);
    double a[N_SENTENCES], b[N_SENTENCES];
    score(first, a);
    score(second, b);
    for (int i = 0; i < N_SENTENCES; i++) {
        CHECK_MSG(a[i] == b[i], "sentence %d: %.17g quantized, %.17g from the cache", i, a[i], b[i]);
    }
    model_free(second);

    // Another seed draws other samples: a new key, quantized again.
    o.calib_seed = 7;
    Model *third = variant_build(base, &recipe, &o, &report, NULL);
    REQUIRE_MSG(third != NULL, "%s", err_msg());
    CHECK_EQ_INT(report.n_linears, 7 * base->config.n_layer);
    model_free(third);

    // A damaged cache entry is ignored with a warning and replaced.
    char *dir = path_join(cache, "quantized");
    char *listing = xasprintf("for f in '%s'/*.gguf; do head -c 1000 \"$f\" > \"$f.tmp\" && "
                              "mv \"$f.tmp\" \"$f\"; done", dir);
    REQUIRE(system(listing) == 0);
    o.calib_seed = 42;
    Model *fourth = variant_build(base, &recipe, &o, &report, NULL);
    REQUIRE_MSG(fourth != NULL, "%s", err_msg());
    CHECK_EQ_INT(report.n_linears, 7 * base->config.n_layer);
    double c[N_SENTENCES];
    score(fourth, c);
    CHECK(c[0] == a[0]);
    model_free(fourth);

    model_free(first);
    free(listing);
    free(dir);
    free(cache);
    model_free(base);
}

// The recipe text does not hold the method settings that code can change (sq.smooth, sq.alpha,
// the GPTQ damping, the AWQ grid), so a cache key made from the text alone returns the variant of
// other settings.
TEST(variant_cache_key_includes_method_settings) {
    Model *base = load_stories();
    char hash[65];
    REQUIRE_OK(sha256_path(base->path, hash));
    char *cache = path_join(test_tmp_dir(), "cache");
    VariantOptions o = cached_small_calibration(cache, hash);

    QuantRecipe smoothed = qtest_recipe("sq:w8a8");
    QuantRecipe plain = smoothed;
    plain.sq.smooth = false;
    QuantReport report;
    Model *first = variant_build(base, &smoothed, &o, &report, NULL);
    REQUIRE_MSG(first != NULL, "%s", err_msg());
    Model *second = variant_build(base, &plain, &o, &report, NULL);
    REQUIRE_MSG(second != NULL, "%s", err_msg());
    CHECK_MSG(report.n_linears == 7 * base->config.n_layer,
              "sq.smooth = false was loaded from the cache entry of sq.smooth = true");

    // Without smoothing the block norms stay as the base stores them.
    const float *norm = second->layers[0].attn_norm, *base_norm = base->layers[0].attn_norm;
    CHECK(memcmp(norm, base_norm, (size_t)base->config.n_embd * sizeof(float)) == 0);
    model_free(second);
    model_free(first);
    free(cache);
    model_free(base);
}

// A damaged packed tensor is an error naming the file and the tensor, not a crash.
TEST(variant_load_rejects_inconsistent_packed_tensors) {
    Model *base = load_stories();
    QuantRecipe recipe = qtest_recipe("rtn:w4g32");
    Model *v = model_make_quantized(base, &recipe, NULL, NULL);
    REQUIRE_MSG(v != NULL, "%s", err_msg());
    char *path = xasprintf("%s/rtn.gguf", test_tmp_dir());
    REQUIRE_OK(model_save_gguf(v, path, NULL));

    // Rewrite the file with one packed tensor's shape key changed to 3 bits.
    GGUFFile *f = gguf_open(path);
    REQUIRE_MSG(f != NULL, "%s", err_msg());
    GGUFWriter *w = gguf_writer_new();
    for (uint64_t i = 0; i < f->n_kv; i++) {
        const char *key = f->kv[i].key;
        if (strcmp(key, "general.alignment") != 0 &&
            strcmp(key, "qbias.packed.blk.1.ffn_up.weight") != 0) {
            gguf_writer_copy_key(w, f, key);
        }
    }
    const GGUFArray *a = NULL;
    REQUIRE(gguf_get_array(f, "qbias.packed.blk.1.ffn_up.weight", &a) == 1);
    int32_t shape[8];
    for (int i = 0; i < 8; i++) {
        shape[i] = (int32_t)gguf_array_get_int(a, (uint64_t)i);
    }
    shape[2] = 3;
    gguf_writer_set_array(w, "qbias.packed.blk.1.ffn_up.weight", GGUF_TYPE_INT32, shape, 8);
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        const GGUFTensor *t = &f->tensors[i];
        gguf_writer_add_tensor(w, t->name, t->type, (int)t->n_dims, t->ne, t->data);
    }
    char *bad = xasprintf("%s/bad.gguf", test_tmp_dir());
    REQUIRE_OK(gguf_writer_write(w, bad));
    gguf_writer_free(w);
    gguf_close(f);

    CHECK(model_load(bad) == NULL);
    CHECK_MSG(strstr(err_msg(), "blk.1.ffn_up.weight") && strstr(err_msg(), "bad.gguf"), "%s",
              err_msg());

    free(bad);
    free(path);
    model_free(v);
    model_free(base);
}

// Every architecture saves and loads back with the same scores: fused q/k/v (phi3, gpt2) and
// gate/up (phi3) are written as separate tensors, biases and extra norms (gemma2) are kept, and a
// llama.cpp K-quant source keeps its block types for the tensors qbias leaves alone.
TEST(variant_save_round_trips_every_architecture) {
    const char *models[] = {
        "reference/tiny-models/llama3-tiny/llama3-tiny.gguf",
        "reference/tiny-models/qwen2-tiny/qwen2-tiny.gguf",
        "reference/tiny-models/phi3-tiny/phi3-tiny.gguf",
        "reference/tiny-models/gemma2-tiny/gemma2-tiny.gguf",
        "reference/tiny-models/gpt2-tiny/gpt2-tiny.gguf",
        "reference/tiny-models/qwen2-kquant-tiny/qwen2-kquant-tiny-Q4_K_M.gguf",
    };
    for (size_t i = 0; i < ARRAY_LEN(models); i++) {
        Model *base = model_load(test_shared_path(models[i]));
        REQUIRE_MSG(base != NULL, "%s: %s", models[i], err_msg());
        const char *recipes[] = {"fp32", "rtn:w8c"};
        for (size_t r = 0; r < ARRAY_LEN(recipes); r++) {
            QuantRecipe recipe = qtest_recipe(recipes[r]);
            Model *v = model_make_quantized(base, &recipe, NULL, NULL);
            REQUIRE_MSG(v != NULL, "%s %s: %s", models[i], recipes[r], err_msg());
            check_round_trip(v, &recipe, NULL);
            model_free(v);
        }
        model_free(base);
    }
}

// A variant of a Hugging Face folder is saved as its blocks plus the folder's path, and loads back
// with the same scores.
TEST(variant_save_round_trips_hf_folders) {
    const char *folders[] = {"reference/tiny-models/llama3-tiny/hf",
                             "reference/tiny-models/qwen2-tiny/hf"};
    for (size_t i = 0; i < ARRAY_LEN(folders); i++) {
        char *folder = xstrdup(test_shared_path(folders[i]));
        Model *base = model_open(folder);
        REQUIRE_MSG(base != NULL, "%s: %s", folders[i], err_msg());
        const char *recipes[] = {"fp32", "rtn:w8c", "gptq:w4c"};
        for (size_t r = 0; r < ARRAY_LEN(recipes); r++) {
            QuantRecipe recipe = qtest_recipe(recipes[r]);
            CalibrationSet *calib = recipe.algo == QUANT_ALGO_GPTQ
                                        ? small_calibration(base, recipe.algo)
                                        : NULL;
            Model *v = model_make_quantized(base, &recipe, calib, NULL);
            REQUIRE_MSG(v != NULL, "%s %s: %s", folders[i], recipes[r], err_msg());
            check_round_trip(v, &recipe, calib);
            model_free(v);
            calib_set_free(calib);
        }

        // The file names the folder and contains no embeddings.
        QuantRecipe recipe = qtest_recipe("rtn:w8c");
        Model *v = model_make_quantized(base, &recipe, NULL, NULL);
        REQUIRE(v != NULL);
        char *path = xasprintf("%s/hf-variant.gguf", test_tmp_dir());
        REQUIRE_OK(model_save_gguf(v, path, NULL));
        GGUFFile *f = gguf_open(path);
        REQUIRE_MSG(f != NULL, "%s", err_msg());
        char *stored = NULL;
        REQUIRE(gguf_get_string(f, "qbias.source.hf_folder", &stored) == 1);
        char *absolute = realpath(folder, NULL);
        REQUIRE(absolute != NULL);
        CHECK_MSG(strcmp(stored, absolute) == 0, "%s vs %s", stored, absolute);
        CHECK(gguf_find_tensor(f, "token_embd.weight") == NULL);
        free(stored);
        free(absolute);
        gguf_close(f);

        // Saving the loaded file again keeps the folder it came from.
        Model *loaded = model_load(path);
        REQUIRE_MSG(loaded != NULL, "%s", err_msg());
        char *again = xasprintf("%s/hf-variant-again.gguf", test_tmp_dir());
        REQUIRE_OK(model_save_gguf(loaded, again, NULL));
        Model *reloaded = model_load(again);
        REQUIRE_MSG(reloaded != NULL, "%s", err_msg());
        double a[N_SENTENCES], b[N_SENTENCES];
        score(loaded, a);
        score(reloaded, b);
        CHECK(a[0] == b[0]);
        model_free(reloaded);
        model_free(loaded);
        free(again);
        free(path);
        model_free(v);
        model_free(base);
        free(folder);
    }
}

// A saved Hugging Face variant whose folder is gone is an error naming both.
TEST(variant_load_reports_missing_hf_folder) {
    const char *dir = test_tmp_dir();
    char *copy = xasprintf("%s/llama3-tiny", dir);
    char *command = xasprintf("cp -r '%s' '%s'",
                              test_shared_path("reference/tiny-models/llama3-tiny/hf"), copy);
    REQUIRE(system(command) == 0);
    Model *base = model_open(copy);
    REQUIRE_MSG(base != NULL, "%s", err_msg());
    QuantRecipe recipe = qtest_recipe("rtn:w8c");
    Model *v = model_make_quantized(base, &recipe, NULL, NULL);
    REQUIRE(v != NULL);
    char *path = xasprintf("%s/variant.gguf", dir);
    REQUIRE_OK(model_save_gguf(v, path, NULL));
    model_free(v);
    model_free(base);

    char *remove = xasprintf("rm -r '%s'", copy);
    REQUIRE(system(remove) == 0);
    CHECK(model_load(path) == NULL);
    CHECK_MSG(strstr(err_msg(), "variant.gguf") && strstr(err_msg(), "llama3-tiny") &&
                  strstr(err_msg(), "restore the folder"),
              "%s", err_msg());
    free(remove);
    free(path);
    free(command);
    free(copy);
}
