// test_bench.c: `qbias bench` argument handling and output (correctness only: timings vary with
// the machine and its load, so no test checks a speed).
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../engine/bench.h"
#include "../engine/forward.h"
#include "../engine/quantize.h"
#include "../engine/util.h"
#include "test.h"

// Runs bench_main with the arguments, stdout going to a file; returns the exit status and the
// output in *out (caller frees). The file's folder is cleared on the first call only (each test
// runs in its own process), so that files a test writes there between calls stay.
static int run_bench(const char *const *args, int n_args, char **out) {
    char *argv[32];
    argv[0] = "bench";
    for (int i = 0; i < n_args; i++) {
        argv[i + 1] = (char *)args[i];
    }
    static char *folder = NULL;
    if (!folder) {
        folder = xstrdup(test_tmp_dir());
    }
    char *path = path_join(folder, "bench.out");
    fflush(stdout);
    int saved = dup(1);
    REQUIRE(freopen(path, "w", stdout) != NULL);
    int rc = bench_main(n_args + 1, argv);
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    size_t len = 0;
    REQUIRE_OK(file_read_all(path, out, &len));
    free(path);
    return rc;
}

static const char *const quick[] = {"--threads", "1", "--seconds", "0.01", "--shapes", "40x172,16x64",
                                    "--models",  "tiny", "--prefill", "20", "--decode", "3",
                                    "--gemm-rows", "5"};

TEST(bench_json_lists_every_format) {
    const char *args[ARRAY_LEN(quick) + 3];
    memcpy(args, quick, sizeof quick);
    args[ARRAY_LEN(quick)] = "--json";
    args[ARRAY_LEN(quick) + 1] = "--kernels";
    args[ARRAY_LEN(quick) + 2] = "scalar";
    char *out = NULL;
    REQUIRE(run_bench(args, (int)ARRAY_LEN(args), &out) == 0);
    cJSON *root = cJSON_Parse(out);
    REQUIRE_MSG(root != NULL, "bench --json printed invalid JSON: %.200s", out);

    const cJSON *machine = cJSON_GetObjectItem(root, "machine");
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(machine, "kernels")), "scalar");
    CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(machine, "read_bandwidth_gb_s")) > 0);
    CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(machine, "peak_int8_gops")) > 0);
    CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(machine, "peak_fp32_gflops")) > 0);

    // Two shapes and two models' worth of rows, one per format.
    const cJSON *kernels = cJSON_GetObjectItem(root, "kernels");
    CHECK_EQ_INT(cJSON_GetArraySize(kernels), 2 * 6);
    const cJSON *item;
    cJSON_ArrayForEach(item, kernels) {
        double gemv = cJSON_GetNumberValue(cJSON_GetObjectItem(item, "gemv_gb_s"));
        double bandwidth = cJSON_GetNumberValue(cJSON_GetObjectItem(item, "bandwidth_gb_s"));
        CHECK(gemv > 0);
        CHECK(bandwidth > 0);
        // The ratio is against the bandwidth measured between the product's rounds.
        CHECK_NEAR(cJSON_GetNumberValue(cJSON_GetObjectItem(item, "gemv_of_bandwidth")),
                   gemv / bandwidth, 1e-9);
        CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(item, "gemm_gops")) > 0);
    }
    const cJSON *first = cJSON_GetArrayItem(kernels, 0);
    CHECK_EQ_INT(cJSON_GetNumberValue(cJSON_GetObjectItem(first, "rows")), 40);
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(first, "format")), "f32");
    CHECK_NEAR(cJSON_GetNumberValue(cJSON_GetObjectItem(first, "bits_per_weight")), 32, 1e-9);
    // w4a8 with fp16 scales, G = 128: 172 columns pad to 192 and 40 rows to 48 (tiles of 16).
    const cJSON *w4a8 = cJSON_GetArrayItem(kernels, 2);
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(w4a8, "format")), "w4a8");
    CHECK_NEAR(cJSON_GetNumberValue(cJSON_GetObjectItem(w4a8, "bits_per_weight")),
               (48.0 * 192 / 2 + 48 * 2 * 2) * 8 / (40.0 * 172), 1e-9);

    const cJSON *models = cJSON_GetObjectItem(root, "models");
    CHECK_EQ_INT(cJSON_GetArraySize(models), 6);
    cJSON_ArrayForEach(item, models) {
        CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(item, "model")), "tiny");
        CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(item, "head")), "f32");
        CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(item, "prefill_tok_s")) > 0);
        CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(item, "decode_tok_s")) > 0);
        double roofline = cJSON_GetNumberValue(cJSON_GetObjectItem(item, "roofline_tok_s"));
        CHECK(roofline > 0);
        double read_gb = cJSON_GetNumberValue(cJSON_GetObjectItem(item, "read_per_token_gb"));
        CHECK_NEAR(roofline,
                   cJSON_GetNumberValue(cJSON_GetObjectItem(item, "bandwidth_gb_s")) / read_gb,
                   1e-6 * roofline);
    }
    cJSON_Delete(root);
    free(out);
}

TEST(bench_table_with_quantized_head) {
    const char *args[ARRAY_LEN(quick) + 3];
    memcpy(args, quick, sizeof quick);
    args[5] = "none";
    args[ARRAY_LEN(quick)] = "--quantize-head";
    args[ARRAY_LEN(quick) + 1] = "--formats";
    args[ARRAY_LEN(quick) + 2] = "w4a8,w3a16";
    char *out = NULL;
    REQUIRE(run_bench(args, (int)ARRAY_LEN(args), &out) == 0);
    CHECK(strstr(out, "read bandwidth") != NULL);
    CHECK(strstr(out, "output head in the measured format") != NULL);
    CHECK(strstr(out, "tiny           w4a8") != NULL);
    CHECK(strstr(out, "tiny           w3a16") != NULL);
    CHECK(strstr(out, "w8a8") == NULL);
    free(out);
}

TEST(bench_rejects_invalid_arguments) {
    static const char *const cases[][2] = {
        {"--formats", "w5a8"}, {"--models", "gpt-5"},  {"--shapes", "12x"}, {"--group", "48"},
        {"--threads", "0"},    {"--seconds", "-1"},    {"--kernels", "sse9"}, {"--bogus", "1"},
        {"--formats", ""},     {"--formats", "w4a8,,w8a8"}, {"--models", "tiny,"},
        {"--fp32-scales", "1"},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        char *out = NULL;
        CHECK_MSG(run_bench(cases[i], 2, &out) == 2, "%s %s was accepted", cases[i][0],
                  cases[i][1]);
        free(out);
    }
}

// The written model loads as a llama model of the requested shape with the copied tokenizer, and
// a packed variant of it runs.
TEST(bench_writes_loadable_gguf) {
    char *path = path_join(test_tmp_dir(), "tiny.gguf");
    const char *args[] = {"--threads", "1", "--seconds", "0.01", "--shapes", "none",
                          "--models", "tiny", "--formats", "w4a8", "--prefill", "4",
                          "--decode", "2", "--write-gguf", path, "--tokenizer-from",
                          test_shared_path("models/stories260K/stories260K.gguf")};
    char *out = NULL;
    REQUIRE(run_bench(args, (int)ARRAY_LEN(args), &out) == 0);
    free(out);

    Model *m = model_load(path);
    REQUIRE_MSG(m != NULL, "%s", err_msg());
    CHECK_EQ_INT(m->config.n_embd, 64);
    CHECK_EQ_INT(m->config.n_layer, 2);
    CHECK_EQ_INT(m->config.n_head, 4);
    CHECK_EQ_INT(m->config.n_head_kv, 2);
    CHECK_EQ_INT(m->config.head_dim, 16);
    CHECK_EQ_INT(m->config.n_ff, 172);
    CHECK_EQ_INT(m->config.n_vocab, 512);
    CHECK(m->config.tied_output);
    CHECK_EQ_INT(m->layers[1].ffn_down.type, GGML_TYPE_F16);

    QuantSpec spec;
    char error[256];
    REQUIRE(quant_spec_parse("rtn:w4g32a8", &spec, error, sizeof error) == 0);
    Model *v = model_make_variant(m, &spec);
    REQUIRE_MSG(v != NULL, "%s", err_msg());
    int tokens[3] = {1, 2, 3}, pos[3] = {0, 1, 2}, seq[3] = {0, 0, 0};
    Batch batch = {.n_tokens = 3, .tokens = tokens, .pos = pos, .seq = seq};
    KVCache *kv = kv_cache_new(&v->config, 1, 3);
    float hidden[3 * 64], logits[512];
    REQUIRE_OK(model_forward(v, kv, &batch, hidden));
    model_logits(v, hidden + 2 * 64, 1, logits);
    for (int i = 0; i < 512; i++) {
        CHECK(isfinite(logits[i]));
    }
    kv_cache_free(kv);
    model_free(v);
    model_free(m);

    const char *missing[] = {"--models", "tiny", "--write-gguf", path};
    CHECK(run_bench(missing, (int)ARRAY_LEN(missing), &out) == 2);
    free(out);
    free(path);
}

// --model times a real model: the file as loaded for f32 and its RTN variant for each packed
// format, which reads fewer bytes per token.
TEST(bench_times_a_model_file) {
    const char *model = test_shared_path("models/stories260K/stories260K.gguf");
    const char *args[] = {"--threads", "1",  "--seconds", "0.01",        "--shapes", "none",
                          "--model",   model, "--formats", "f32,w4a8,w3a16", "--prefill", "8",
                          "--decode",  "2",  "--json"};
    char *out = NULL;
    REQUIRE(run_bench(args, (int)ARRAY_LEN(args), &out) == 0);
    cJSON *root = cJSON_Parse(out);
    REQUIRE_MSG(root != NULL, "bench --json printed invalid JSON: %.200s", out);
    const cJSON *models = cJSON_GetObjectItem(root, "models");
    REQUIRE(cJSON_GetArraySize(models) == 3);

    const char *formats[] = {"f32", "w4a8", "w3a16"};
    double read[3];
    for (int i = 0; i < 3; i++) {
        const cJSON *item = cJSON_GetArrayItem(models, i);
        CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(item, "model")), model);
        CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(item, "format")), formats[i]);
        CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(item, "head")), "f32");
        CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(item, "prefill_tok_s")) > 0);
        CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(item, "decode_tok_s")) > 0);
        read[i] = cJSON_GetNumberValue(cJSON_GetObjectItem(item, "read_per_token_gb"));
    }
    // stories260K: 5 layers of 7 matrices (0.23 M weights in all) and a separate 512 x 64 head.
    CHECK(read[0] > 0);
    CHECK_MSG(read[1] < 0.5 * read[0], "w4a8 reads %g GB per token, fp32 %g", read[1], read[0]);
    CHECK_MSG(read[2] < read[1], "w3a16 reads %g GB per token, w4a8 %g", read[2], read[1]);
    cJSON_Delete(root);
    free(out);
}

// --model cannot be combined with the random models' options, and a model that cannot be
// opened, or is already quantized, is an error that names it.
TEST(bench_model_file_errors) {
    const char *model = test_shared_path("models/stories260K/stories260K.gguf");
    const char *combined[][4] = {
        {"--model", model, "--models", "tiny"},
        {"--model", model, "--quantize-head", "--json"},
        {"--model", model, "--write-gguf", "x.gguf"},
    };
    for (size_t i = 0; i < ARRAY_LEN(combined); i++) {
        char *out = NULL;
        CHECK_MSG(run_bench(combined[i], 4, &out) == 2, "%s %s was accepted", combined[i][2],
                  combined[i][3]);
        free(out);
    }

    char *missing = path_join(test_tmp_dir(), "no-such-model.gguf");
    const char *args[] = {"--threads", "1", "--seconds", "0.01", "--shapes", "none", "--model", missing};
    char *out = NULL;
    CHECK(run_bench(args, (int)ARRAY_LEN(args), &out) == 1);
    free(out);
    CHECK_MSG(strstr(err_msg(), "no-such-model.gguf") != NULL, "error '%s' lacks the path", err_msg());

    // A saved variant contains packed matrices that bench would have to pack again.
    Model *base = model_load(model);
    REQUIRE(base != NULL);
    QuantRecipe recipe;
    char error[256];
    REQUIRE(quant_recipe_parse("rtn:w4g128", &recipe, error, sizeof error) == 0);
    Model *variant = model_make_quantized(base, &recipe, NULL, NULL);
    REQUIRE_MSG(variant != NULL, "%s", err_msg());
    char *saved = path_join(test_tmp_dir(), "w4.gguf");
    REQUIRE_OK(model_save_gguf(variant, saved, NULL));
    args[7] = saved;
    CHECK(run_bench(args, (int)ARRAY_LEN(args), &out) == 1);
    free(out);
    CHECK_MSG(strstr(err_msg(), "rtn:w4g128") != NULL, "error '%s' lacks the recipe", err_msg());
    model_free(variant);
    model_free(base);
    free(saved);
    free(missing);
}
