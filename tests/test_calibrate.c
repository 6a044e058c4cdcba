// test_calibrate.c: quantization recipes, calibration text sampling, and the block pieces the
// calibration driver runs, against model_forward on stories260K.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../engine/calib_data.h"
#include "../engine/calibrate.h"
#include "../engine/forward.h"
#include "../engine/quantize.h"
#include "../engine/util.h"
#include "../quant/spec_methods.h"
#include "quant_helpers.h"
#include "test.h"

// ----------------------------------------------------------------------------
// Recipes

TEST(recipe_parses_canonical_forms) {
    static const char *cases[][2] = {
        {"fp32", "fp32"},
        {"fp32+kv8", "fp32+kv8"},
        {"rtn:w4g128", "rtn:w4g128"},
        {"rtn:w8ca8", "rtn:w8ca8"},
        {"rtn:w3g64-asym+kv4", "rtn:w3g64-asym+kv4"},
        {"gptq:w4g128", "gptq:w4g128"},
        {"gptq:w8g128-asym", "gptq:w8g128-asym"},
        {"awq:w3g128", "awq:w3g128"},
        {"awq:w4c+kv8", "awq:w4c+kv8"},
        {"sq:w8a8", "sq:w8a8"},
        {"sq:w4a8", "sq:w4a8"},
        {"sq:w4a8-fake", "sq:w4a8-fake"},
        {"gptq:w4g128-f16-fake", "gptq:w4g128-f16-fake"},
        {"rtn:w8ca8-asym-f16+kv8", "rtn:w8ca8-asym-f16+kv8"},
        {"awq:w3g128-fake", "awq:w3g128-fake"},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        QuantRecipe r;
        char error[1024];
        int rc = quant_recipe_parse(cases[i][0], &r, error, sizeof error);
        CHECK_MSG(rc == 0, "'%s' rejected: %s", cases[i][0], error);
        CHECK_STR(r.text, cases[i][1]);
    }
}

TEST(recipe_fields_and_study_defaults) {
    QuantRecipe r;
    char error[1024];
    REQUIRE(quant_recipe_parse("gptq:w4g128", &r, error, sizeof error) == 0);
    CHECK_EQ_INT(r.algo, QUANT_ALGO_GPTQ);
    CHECK_EQ_INT(r.weight_bits, 4);
    CHECK_EQ_INT(r.group_size, 128);
    CHECK(r.symmetric);
    CHECK_NEAR(r.gptq.percdamp, 0.01, 0);
    CHECK_EQ_INT(r.gptq.block_size, 128);
    CHECK(r.gptq.act_order);
    CHECK(r.gptq.static_groups);
    CHECK_EQ_INT(r.act_bits, 0);
    CHECK_EQ_INT(r.kv_bits, 0);

    REQUIRE(quant_recipe_parse("awq:w3g128", &r, error, sizeof error) == 0);
    CHECK_EQ_INT(r.awq.n_grid, 20);
    CHECK(r.awq.clip);
    CHECK_NEAR(r.awq.max_shrink, 0.5, 0);

    REQUIRE(quant_recipe_parse("gptq:w4g128-f16-fake", &r, error, sizeof error) == 0);
    CHECK(r.fp16_scales);
    CHECK(r.fake_quant);

    REQUIRE(quant_recipe_parse("sq:w4a8+kv4", &r, error, sizeof error) == 0);
    CHECK_EQ_INT(r.algo, QUANT_ALGO_SQ);
    CHECK_EQ_INT(r.weight_bits, 4);
    CHECK_EQ_INT(r.group_size, 0);
    CHECK_EQ_INT(r.act_bits, 8);
    CHECK_EQ_INT(r.kv_bits, 4);
    CHECK_NEAR(r.sq.alpha, 0.5, 0);
    CHECK(r.sq.smooth);
}

TEST(recipe_rejects_invalid_forms) {
    static const char *bad[] = {"",           "gptq",          "gptq:w4",       "gptq:w9g128",
                                "gptq:w4g0",  "gptq:w4g128a8", "awq:w4g128-asym", "sq:w8",
                                "sq:w8g128a8", "sq:w8a3",      "sq:w8a9",       "fp32+kv2",
                                "rtn:w4g128+kv", "fp32+kv8x",  "hqq:w4g128",    "GPTQ:w4g128",
                                "rtn:w4g128-asymx", "rtn:w4g128a4", "gptq:w4g128-fake-f16",
                                "sq:w8a8-asym"};
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        QuantRecipe r;
        char error[1024] = "";
        CHECK_MSG(quant_recipe_parse(bad[i], &r, error, sizeof error) == -1, "'%s' was accepted",
                  bad[i]);
        CHECK_MSG(strstr(error, "Accepted forms") != NULL, "error for '%s' lacks the forms: %s",
                  bad[i], error);
    }
}

// ----------------------------------------------------------------------------
// Calibration text

static const char *write_text(const char *name, const char *text) {
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", test_tmp_dir(), name);
    REQUIRE_OK(file_write_atomic(path, text, strlen(text)));
    return path;
}

// A plain-text file of n lines of short stories.
static const char *write_stories(int n_lines) {
    StrBuf sb;
    sb_init(&sb);
    for (int i = 0; i < n_lines; i++) {
        sb_printf(&sb, "Once upon a time, there was a little %s named %s. %s liked to play in "
                  "the park with a big red ball.\n",
                  i % 2 ? "girl" : "boy", i % 3 ? "Lily" : "Tom", i % 3 ? "She" : "He");
    }
    const char *path = write_text("stories.txt", sb.data);
    sb_free(&sb);
    return path;
}

static CalibrationSet *load_set(const Model *m, const char *path, CalibSampling sampling, int n,
                                int len, uint64_t seed) {
    CalibOptions o = {.path = path, .n_samples = n, .seq_len = len, .seed = seed,
                      .sampling = sampling};
    CalibrationSet *set = calib_set_load(m->tokenizer, m->config.n_ctx_train, NULL, &o);
    REQUIRE_MSG(set != NULL, "%s", err_msg());
    return set;
}

static bool same_tokens(const CalibrationSet *a, const CalibrationSet *b) {
    return a->n_tokens == b->n_tokens &&
           memcmp(a->tokens, b->tokens, (size_t)a->n_tokens * sizeof(int)) == 0;
}

TEST(calib_options_follow_study) {
    CalibOptions o;
    calib_options_default(QUANT_ALGO_GPTQ, &o);
    CHECK_EQ_INT(o.n_samples, 128);
    CHECK_EQ_INT(o.seq_len, 2048);
    CHECK_EQ_INT(o.sampling, CALIB_SAMPLING_WINDOWS);
    CHECK_EQ_INT(o.seed, 42);
    calib_options_default(QUANT_ALGO_AWQ, &o);
    CHECK_EQ_INT(o.n_samples, 128);
    CHECK_EQ_INT(o.seq_len, 512);
    CHECK_EQ_INT(o.sampling, CALIB_SAMPLING_PACKED);
    calib_options_default(QUANT_ALGO_SQ, &o);
    CHECK_EQ_INT(o.n_samples, 512);
    CHECK_EQ_INT(o.seq_len, 512);
    CHECK_EQ_INT(o.sampling, CALIB_SAMPLING_TRUNCATED);
}

TEST(calib_windows_deterministic_per_seed) {
    Model *m = qtest_load_stories();
    const char *path = write_stories(200);
    CalibrationSet *a = load_set(m, path, CALIB_SAMPLING_WINDOWS, 8, 64, 42);
    CalibrationSet *b = load_set(m, path, CALIB_SAMPLING_WINDOWS, 8, 64, 42);
    CalibrationSet *c = load_set(m, path, CALIB_SAMPLING_WINDOWS, 8, 64, 43);
    CHECK_EQ_INT(a->n_samples, 8);
    CHECK_EQ_INT(a->n_tokens, 8 * 64);
    for (int i = 0; i < a->n_samples; i++) {
        CHECK_EQ_INT(a->offsets[i + 1] - a->offsets[i], 64);
    }
    CHECK(same_tokens(a, b));
    CHECK(!same_tokens(a, c));
    CHECK(strlen(a->sha256) == 64);
    calib_set_free(a);
    calib_set_free(b);
    calib_set_free(c);
    model_free(m);
}

TEST(calib_packed_cuts_whole_samples) {
    Model *m = qtest_load_stories();
    const char *path = write_stories(300);
    CalibrationSet *set = load_set(m, path, CALIB_SAMPLING_PACKED, 64, 128, 42);
    // 64 documents of about 30 tokens each, packed: fewer samples than documents.
    CHECK(set->n_samples >= 1);
    CHECK(set->n_samples < 64);
    for (int i = 0; i < set->n_samples; i++) {
        CHECK_EQ_INT(set->offsets[i + 1] - set->offsets[i], 128);
    }
    // Each document starts with BOS, so BOS occurs inside the packed samples.
    int bos = tokenizer_bos_id(m->tokenizer), n_bos = 0;
    for (int t = 0; t < set->n_tokens; t++) {
        n_bos += set->tokens[t] == bos;
    }
    CHECK(n_bos >= set->n_tokens / 64);
    calib_set_free(set);
    model_free(m);
}

TEST(calib_truncated_one_document_per_sample) {
    Model *m = qtest_load_stories();
    const char *path = write_stories(50);
    CalibrationSet *set = load_set(m, path, CALIB_SAMPLING_TRUNCATED, 20, 16, 42);
    CHECK_EQ_INT(set->n_samples, 20);
    int bos = tokenizer_bos_id(m->tokenizer);
    for (int i = 0; i < set->n_samples; i++) {
        CHECK_EQ_INT(set->offsets[i + 1] - set->offsets[i], 16);
        CHECK_EQ_INT(set->tokens[set->offsets[i]], bos);
    }
    calib_set_free(set);

    // More samples than documents: scaled down to the documents there are.
    set = load_set(m, path, CALIB_SAMPLING_TRUNCATED, 80, 512, 42);
    CHECK_EQ_INT(set->n_samples, 50);
    CHECK(set->max_len < 64);
    calib_set_free(set);
    model_free(m);
}

TEST(calib_short_text_scaled_down) {
    Model *m = qtest_load_stories();
    const char *path = write_text("short.txt", "Tom had a red ball.\n");
    CalibrationSet *set = load_set(m, path, CALIB_SAMPLING_WINDOWS, 4, 256, 42);
    CHECK_EQ_INT(set->n_samples, 4);
    CHECK(set->max_len > 0);
    CHECK(set->max_len < 256);
    calib_set_free(set);

    set = load_set(m, path, CALIB_SAMPLING_PACKED, 4, 256, 42);
    CHECK_EQ_INT(set->n_samples, 1);
    CHECK(set->n_tokens < 256);
    calib_set_free(set);
    model_free(m);
}

TEST(calib_seq_len_limited_to_context) {
    Model *m = qtest_load_stories();
    const char *path = write_stories(400);
    CalibrationSet *set = load_set(m, path, CALIB_SAMPLING_WINDOWS, 2, 2048, 42);
    CHECK_EQ_INT(set->options.seq_len, m->config.n_ctx_train);
    CHECK_EQ_INT(set->max_len, m->config.n_ctx_train);
    calib_set_free(set);
    model_free(m);
}

TEST(calib_jsonl_text_field) {
    Model *m = qtest_load_stories();
    const char *path = write_text("docs.jsonl", "{\"text\": \"Tom went to the park.\"}\n\n"
                                                "{\"text\": \"Lily saw a cat.\", \"id\": 2}\n");
    CalibrationSet *set = load_set(m, path, CALIB_SAMPLING_TRUNCATED, 5, 64, 1);
    CHECK_EQ_INT(set->n_samples, 2);
    calib_set_free(set);

    path = write_text("bad.jsonl", "{\"text\": \"fine\"}\n{\"body\": \"no text\"}\n");
    CalibOptions o = {.path = path, .n_samples = 2, .seq_len = 16, .seed = 1,
                      .sampling = CALIB_SAMPLING_TRUNCATED};
    CHECK(calib_set_load(m->tokenizer, 512, NULL, &o) == NULL);
    CHECK_MSG(strstr(err_msg(), "bad.jsonl:2") != NULL, "message lacks the line: %s", err_msg());
    model_free(m);
}

TEST(calib_rejects_wikitext2_test) {
    Model *m = qtest_load_stories();
    CalibOptions o = {.path = test_shared_path("data/wikitext-2-raw/wiki.test.raw"),
                      .n_samples = 2, .seq_len = 16, .seed = 1,
                      .sampling = CALIB_SAMPLING_WINDOWS};
    CHECK(calib_set_load(m->tokenizer, 512, NULL, &o) == NULL);
    CHECK_MSG(strstr(err_msg(), "WikiText-2 test") != NULL, "unexpected message: %s", err_msg());

    // The same text under another name is recognized by its SHA-256.
    char *text = NULL;
    size_t len = 0;
    REQUIRE_OK(file_read_all(o.path, &text, &len));
    char path[512];
    snprintf(path, sizeof path, "%s/renamed.txt", test_tmp_dir());
    REQUIRE_OK(file_write_atomic(path, text, len));
    free(text);
    o.path = path;
    CHECK(calib_set_load(m->tokenizer, 512, NULL, &o) == NULL);
    model_free(m);
}

TEST(calib_missing_file_error) {
    Model *m = qtest_load_stories();
    CalibOptions o = {.path = "/nonexistent/calib.txt", .n_samples = 2, .seq_len = 16,
                      .sampling = CALIB_SAMPLING_WINDOWS};
    CHECK(calib_set_load(m->tokenizer, 512, NULL, &o) == NULL);
    CHECK_MSG(strstr(err_msg(), "/nonexistent/calib.txt") != NULL, "message: %s", err_msg());
    o.n_samples = 0;
    CHECK(calib_set_load(m->tokenizer, 512, NULL, &o) == NULL);
    model_free(m);
}

TEST(calib_default_c4_subset) {
    Model *m = qtest_load_stories();
    Resolver *r = resolver_new(NULL);
    CalibOptions o;
    calib_options_default(QUANT_ALGO_AWQ, &o);
    o.n_samples = 16;
    o.seq_len = 128;
    CalibrationSet *set = calib_set_load(m->tokenizer, 512, r, &o);
    REQUIRE_MSG(set != NULL, "%s", err_msg());
    CHECK_STR(set->sha256, "495eeec67b113def07cf59a9fecb12003b7cc9a5bcfd877b4ec7640e57bf15b4");
    CHECK(set->n_samples >= 2);
    calib_set_free(set);
    resolver_free(r);
    model_free(m);
}

// ----------------------------------------------------------------------------
// Block pieces against model_forward

static void add_bias(float *y, const float *bias, int n, int width) {
    for (int t = 0; bias && t < n; t++) {
        for (int i = 0; i < width; i++) {
            y[(size_t)t * width + i] += bias[i];
        }
    }
}

// Logits of one sequence computed with the block pieces of forward.h (F32 models).
static float *logits_from_blocks(const Model *m, const int *tokens, int n) {
    const ModelConfig *c = &m->config;
    int d = c->n_embd, q_dim = c->n_head * c->head_dim, kv_dim = c->n_head_kv * c->head_dim;
    float *x = xmalloc((size_t)n * d * sizeof(float)), *h = xmalloc((size_t)n * d * sizeof(float));
    float *q = xmalloc((size_t)n * q_dim * sizeof(float));
    float *k = xmalloc((size_t)n * kv_dim * sizeof(float));
    float *v = xmalloc((size_t)n * kv_dim * sizeof(float));
    float *att = xmalloc((size_t)n * q_dim * sizeof(float));
    float *gate = xmalloc((size_t)n * c->n_ff * sizeof(float));
    float *up = xmalloc((size_t)n * c->n_ff * sizeof(float));
    float *cos_t = xmalloc((size_t)n * c->rope_dim / 2 * sizeof(float));
    float *sin_t = xmalloc((size_t)n * c->rope_dim / 2 * sizeof(float));
    rope_table(m, n, cos_t, sin_t);
    for (int t = 0; t < n; t++) {
        weight_row_to_f32(&m->token_embd, tokens[t], x + (size_t)t * d);
    }
    for (int l = 0; l < c->n_layer; l++) {
        const Layer *L = &m->layers[l];
        block_rmsnorm(m, L->attn_norm, x, n, h);
        block_linear(L->attn_q.data, q_dim, d, h, n, q);
        block_linear(L->attn_k.data, kv_dim, d, h, n, k);
        block_linear(L->attn_v.data, kv_dim, d, h, n, v);
        add_bias(q, L->bq, n, q_dim);
        add_bias(k, L->bk, n, kv_dim);
        add_bias(v, L->bv, n, kv_dim);
        block_attention(m, cos_t, sin_t, q, k, v, n, att);
        block_linear(L->attn_output.data, d, q_dim, att, n, h);
        for (size_t i = 0; i < (size_t)n * d; i++) {
            x[i] += h[i];
        }
        block_rmsnorm(m, L->ffn_norm, x, n, h);
        block_linear(L->ffn_gate.data, c->n_ff, d, h, n, gate);
        block_linear(L->ffn_up.data, c->n_ff, d, h, n, up);
        block_swiglu(gate, up, (size_t)n * c->n_ff);
        block_linear(L->ffn_down.data, d, c->n_ff, gate, n, h);
        for (size_t i = 0; i < (size_t)n * d; i++) {
            x[i] += h[i];
        }
    }
    block_rmsnorm(m, m->output_norm, x, n, h);
    float *logits = xmalloc((size_t)n * c->n_vocab * sizeof(float));
    model_logits(m, h, n, logits);
    free(x);
    free(h);
    free(q);
    free(k);
    free(v);
    free(att);
    free(gate);
    free(up);
    free(cos_t);
    free(sin_t);
    return logits;
}

static void check_block_pieces(const char *model_path) {
    Model *m = qtest_load_model(model_path);
    int n = QTEST_N_STORY;
    float *a = logits_from_blocks(m, qtest_story_tokens, n);
    float *b = qtest_logits(m, qtest_story_tokens, n);
    double max_diff = 0;
    for (size_t i = 0; i < (size_t)n * m->config.n_vocab; i++) {
        max_diff = fmax(max_diff, fabs(a[i] - b[i]));
    }
    // Only summation order differs (BLAS sgemm against the 16-lane kernel).
    CHECK_MSG(max_diff < 1e-4, "%s: block pieces differ from model_forward by %g", model_path,
              max_diff);
    free(a);
    free(b);
    model_free(m);
}

TEST(block_pieces_match_model_forward) {
    check_block_pieces("models/stories260K/stories260K.gguf");
    // q/k/v biases and neox RoPE.
    check_block_pieces("reference/tiny-models/qwen2-tiny/qwen2-tiny.gguf");
}

TEST(collect_inputs_shapes_and_first_block) {
    Model *m = qtest_load_stories();
    int lengths[] = {12, 10};
    CalibrationSet *cs = calib_set_from_tokens(qtest_story_tokens, lengths, 2);
    const ModelConfig *c = &m->config;
    int n = 0, dim = 0;

    float *x = calib_collect_inputs(m, cs, 0, BLOCK_INPUT_QKV, &n, &dim);
    REQUIRE_MSG(x != NULL, "%s", err_msg());
    CHECK_EQ_INT(n, 22);
    CHECK_EQ_INT(dim, c->n_embd);
    // Block 0's q/k/v input is the normalized embedding.
    float *e = xmalloc((size_t)c->n_embd * sizeof(float));
    float *expected = xmalloc((size_t)c->n_embd * sizeof(float));
    weight_row_to_f32(&m->token_embd, qtest_story_tokens[13], e);
    block_rmsnorm(m, m->layers[0].attn_norm, e, 1, expected);
    for (int j = 0; j < c->n_embd; j++) {
        CHECK_NEAR(x[(size_t)13 * dim + j], expected[j], 1e-6);
    }
    free(x);
    free(e);
    free(expected);

    x = calib_collect_inputs(m, cs, 4, BLOCK_INPUT_DOWN, &n, &dim);
    REQUIRE_MSG(x != NULL, "%s", err_msg());
    CHECK_EQ_INT(dim, c->n_ff);
    free(x);
    x = calib_collect_inputs(m, cs, 2, BLOCK_INPUT_O, &n, &dim);
    CHECK_EQ_INT(dim, c->n_head * c->head_dim);
    free(x);
    CHECK(calib_collect_inputs(m, cs, 5, BLOCK_INPUT_O, &n, &dim) == NULL);
    calib_set_free(cs);
    model_free(m);
}

// Each sample is its own sequence: the second sample's inputs do not depend on the first.
TEST(collect_inputs_samples_independent) {
    Model *m = qtest_load_stories();
    int lengths2[] = {12, 10}, lengths1[] = {10};
    CalibrationSet *both = calib_set_from_tokens(qtest_story_tokens, lengths2, 2);
    CalibrationSet *second = calib_set_from_tokens(qtest_story_tokens + 12, lengths1, 1);
    int n = 0, dim = 0, n2 = 0, dim2 = 0;
    float *a = calib_collect_inputs(m, both, 3, BLOCK_INPUT_GATE_UP, &n, &dim);
    float *b = calib_collect_inputs(m, second, 3, BLOCK_INPUT_GATE_UP, &n2, &dim2);
    REQUIRE(a && b);
    double max_diff = 0;
    for (size_t i = 0; i < (size_t)10 * dim; i++) {
        max_diff = fmax(max_diff, fabs(a[(size_t)12 * dim + i] - b[i]));
    }
    CHECK_MSG(max_diff < 1e-5, "second sample changed by %g with the first in the chunk",
              max_diff);
    free(a);
    free(b);
    calib_set_free(both);
    calib_set_free(second);
    model_free(m);
}

TEST(runtime_quant_from_variant_id) {
    Model *m = qtest_load_stories();
    RuntimeQuant rq;
    model_runtime_quant(m, &rq);
    CHECK_EQ_INT(rq.kv_bits, 0);
    QuantRecipe r = qtest_recipe("rtn:w8ca8+kv4");
    Model *v = model_make_quantized(m, &r, NULL, NULL);
    REQUIRE_MSG(v != NULL, "%s", err_msg());
    CHECK_STR(v->variant, "rtn:w8ca8+kv4");
    model_runtime_quant(v, &rq);
    CHECK_EQ_INT(rq.kv_bits, 4);
    // Activation quantization is set on each block matrix.
    CHECK_EQ_INT(v->layers[2].ffn_down.act_bits, 8);
    CHECK_EQ_INT(m->layers[2].ffn_down.act_bits, 0);
    model_free(v);
    model_free(m);
}

TEST(calibrated_methods_need_calibration) {
    Model *m = qtest_load_stories();
    QuantRecipe r;
    char error[1024];
    REQUIRE(quant_recipe_parse("gptq:w4g128", &r, error, sizeof error) == 0);
    CHECK(model_make_quantized(m, &r, NULL, NULL) == NULL);
    CHECK_MSG(strstr(err_msg(), "calibration") != NULL, "message: %s", err_msg());
    // The base model itself is never quantized in place.
    int lengths[] = {12};
    CalibrationSet *cs = calib_set_from_tokens(qtest_story_tokens, lengths, 1);
    CHECK(model_quantize_weights(m, &r, cs, NULL) == -1);
    calib_set_free(cs);
    model_free(m);
}

static double max_logit_change(const Model *a, const Model *b) {
    float *x = qtest_logits(a, qtest_story_tokens, QTEST_N_STORY);
    float *y = qtest_logits(b, qtest_story_tokens, QTEST_N_STORY);
    double max_diff = 0;
    for (size_t k = 0; k < (size_t)QTEST_N_STORY * a->config.n_vocab; k++) {
        REQUIRE(isfinite(y[k]));
        max_diff = fmax(max_diff, fabs(x[k] - y[k]));
    }
    free(x);
    free(y);
    return max_diff;
}

// The calibrated methods run on qwen2 blocks (q/k/v biases, neox RoPE): 8 bits move the logits
// far less than 4 bits.
TEST(calibrated_methods_on_qwen2) {
    Model *m = qtest_load_model("reference/tiny-models/qwen2-tiny/qwen2-tiny.gguf");
    CalibrationSet *cs = qtest_c4_calibration(m, CALIB_SAMPLING_PACKED, 8, 64, 42);
    const char *pairs[][2] = {{"gptq:w8c", "gptq:w4c"}, {"awq:w8c", "awq:w4c"},
                              {"sq:w8a8", "sq:w4a8"}};
    for (size_t i = 0; i < ARRAY_LEN(pairs); i++) {
        double change[2];
        for (int k = 0; k < 2; k++) {
            QuantRecipe r = qtest_recipe(pairs[i][k]);
            QuantReport report;
            Model *v = model_make_quantized(m, &r, cs, &report);
            REQUIRE_MSG(v != NULL, "%s: %s", pairs[i][k], err_msg());
            CHECK_EQ_INT(report.n_linears, 7 * m->config.n_layer);
            change[k] = max_logit_change(m, v);
            model_free(v);
        }
        printf("  qwen2-tiny max |logit change|: %s %.4g, %s %.4g\n", pairs[i][0], change[0],
               pairs[i][1], change[1]);
        CHECK(change[0] > 0);
        CHECK_MSG(change[0] < change[1] / 4, "%s moves the logits by %g, %s by %g", pairs[i][0],
                  change[0], pairs[i][1], change[1]);
    }
    calib_set_free(cs);
    model_free(m);
}

// Blocks the driver does not implement are rejected with the reason; RTN still works on them.
TEST(calibrated_methods_reject_other_blocks) {
    Model *m = qtest_load_model("reference/tiny-models/gemma2-tiny/gemma2-tiny.gguf");
    int lengths[] = {12};
    CalibrationSet *cs = calib_set_from_tokens(qtest_story_tokens, lengths, 1);
    QuantRecipe r = qtest_recipe("gptq:w4c");
    CHECK(model_make_quantized(m, &r, cs, NULL) == NULL);
    CHECK_MSG(strstr(err_msg(), "gemma2") != NULL, "message lacks the architecture: %s",
              err_msg());
    QuantRecipe rtn = qtest_recipe("rtn:w4c");
    Model *v = model_make_quantized(m, &rtn, NULL, NULL);
    CHECK_MSG(v != NULL, "%s", err_msg());
    model_free(v);
    calib_set_free(cs);
    model_free(m);
}

// RTN through quantize_store_weight packs the same codes and scales as model_make_variant.
TEST(rtn_recipe_matches_rtn_variant) {
    Model *m = qtest_load_stories();
    const char *specs[] = {"rtn:w4g32", "rtn:w3g32-asym", "rtn:w8ca8", "rtn:w4c-f16",
                           "rtn:w4g32-fake"};
    for (size_t i = 0; i < ARRAY_LEN(specs); i++) {
        QuantRecipe r = qtest_recipe(specs[i]);
        QuantSpec spec;
        char error[1024];
        REQUIRE_MSG(quant_spec_parse(specs[i], &spec, error, sizeof error) == 0, "%s", error);
        Model *a = model_make_quantized(m, &r, NULL, NULL);
        Model *b = model_make_variant(m, &spec);
        REQUIRE_MSG(a != NULL, "%s", err_msg());
        REQUIRE_MSG(b != NULL, "%s", err_msg());
        for (int l = 0; l < m->config.n_layer; l++) {
            const Weight *wa = &a->layers[l].ffn_down, *wb = &b->layers[l].ffn_down;
            CHECK_EQ_INT(wa->packed != NULL, wb->packed != NULL);
            float *va = weight_to_f32(wa), *vb = weight_to_f32(wb);
            CHECK_MSG(memcmp(va, vb, (size_t)wa->rows * wa->cols * sizeof(float)) == 0,
                      "%s block %d: dequantized weights differ", specs[i], l);
            free(va);
            free(vb);
        }
        float *x = qtest_logits(a, qtest_story_tokens, QTEST_N_STORY);
        float *y = qtest_logits(b, qtest_story_tokens, QTEST_N_STORY);
        CHECK(memcmp(x, y, (size_t)QTEST_N_STORY * m->config.n_vocab * sizeof(float)) == 0);
        free(x);
        free(y);
        model_free(a);
        model_free(b);
    }
    model_free(m);
}
