// test_smoothquant.c: SmoothQuant's factors, per-token activation quantization, SmoothQuant
// variants on stories260K, and KV-cache quantization.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../engine/calib_data.h"
#include "../engine/forward.h"
#include "../engine/quantize.h"
#include "../engine/util.h"
#include "../quant/kvquant.h"
#include "../quant/rtn.h"
#include "../quant/smoothquant.h"
#include "quant_helpers.h"
#include "test.h"

// ----------------------------------------------------------------------------
// Factors

TEST(sq_factors_formula) {
    // Two linears share 3 input channels; column maxima over both: 0.5, 2, 0.
    float w1[] = {0.5f, -1.0f, 0.0f, -0.25f, 2.0f, 0.0f};
    float w2[] = {0.1f, 0.2f, 0.0f};
    const float *w[] = {w1, w2};
    int rows[] = {2, 1};
    float act[] = {8.0f, 0.5f, 3.0f}, s[3];
    sq_smoothing_factors(act, w, rows, 2, 3, 0.5, s);
    CHECK_NEAR(s[0], sqrt(8.0 / 0.5), 1e-6);
    CHECK_NEAR(s[1], sqrt(0.5 / 2.0), 1e-6);
    // A zero weight column counts as 1e-5.
    CHECK_NEAR(s[2], sqrt(3.0 / 1e-5), 1e-3);

    sq_smoothing_factors(act, w, rows, 2, 3, 0.8, s);
    CHECK_NEAR(s[0], pow(8.0, 0.8) / pow(0.5, 0.2), 1e-5);
    // A channel that is zero on every token gets the floor 1e-5.
    act[1] = 0.0f;
    sq_smoothing_factors(act, w, rows, 2, 3, 0.5, s);
    CHECK_NEAR(s[1], 1e-5, 1e-12);
}

// ----------------------------------------------------------------------------
// SmoothQuant variants

// SmoothQuant's study sampling (truncated documents) from the default C4 subset.
static CalibrationSet *c4_calibration(const Model *m, int n_samples, int seq_len) {
    return qtest_c4_calibration(m, CALIB_SAMPLING_TRUNCATED, n_samples, seq_len, 42);
}

static double max_logit_change(const Model *a, const Model *b) {
    float *x = qtest_logits(a, qtest_story_tokens, QTEST_N_STORY);
    float *y = qtest_logits(b, qtest_story_tokens, QTEST_N_STORY);
    double max_diff = 0;
    for (size_t i = 0; i < (size_t)QTEST_N_STORY * a->config.n_vocab; i++) {
        max_diff = fmax(max_diff, fabs(x[i] - y[i]));
    }
    free(x);
    free(y);
    return max_diff;
}

static bool same_weight_values(const Weight *a, const Weight *b) {
    float *x = weight_to_f32(a), *y = weight_to_f32(b);
    bool same = a->rows == b->rows && a->cols == b->cols &&
                memcmp(x, y, (size_t)a->rows * a->cols * sizeof(float)) == 0;
    free(x);
    free(y);
    return same;
}

// With every smoothing factor 1, SmoothQuant is plain W8A8: per-channel RTN weights and
// per-token activations, packed for the int8 kernels or simulated in fp32 (-fake).
TEST(sq_unit_factors_equal_plain_w8a8) {
    Model *m = qtest_load_stories();
    CalibrationSet *cs = c4_calibration(m, 16, 128);
    const char *pairs[][2] = {{"sq:w8a8", "rtn:w8ca8"}, {"sq:w8a8-fake", "rtn:w8ca8-fake"}};
    for (size_t i = 0; i < ARRAY_LEN(pairs); i++) {
        QuantRecipe sq = qtest_recipe(pairs[i][0]);
        sq.sq.smooth = false;
        QuantRecipe plain = qtest_recipe(pairs[i][1]);
        Model *a = model_make_quantized(m, &sq, cs, NULL);
        Model *b = model_make_quantized(m, &plain, NULL, NULL);
        REQUIRE_MSG(a != NULL, "%s", err_msg());
        REQUIRE_MSG(b != NULL, "%s", err_msg());
        for (int l = 0; l < m->config.n_layer; l++) {
            CHECK(same_weight_values(&a->layers[l].attn_q, &b->layers[l].attn_q));
            CHECK(same_weight_values(&a->layers[l].ffn_down, &b->layers[l].ffn_down));
        }
        CHECK_MSG(max_logit_change(a, b) == 0, "%s without smoothing differs from %s",
                  pairs[i][0], pairs[i][1]);

        // The smoothed recipe changes the weights and the result.
        QuantRecipe smoothed = qtest_recipe(pairs[i][0]);
        Model *c = model_make_quantized(m, &smoothed, cs, NULL);
        REQUIRE_MSG(c != NULL, "%s", err_msg());
        CHECK(max_logit_change(c, b) > 0);
        CHECK(memcmp(c->layers[0].attn_norm, m->layers[0].attn_norm,
                     (size_t)m->config.n_embd * sizeof(float)) != 0);
        model_free(a);
        model_free(b);
        model_free(c);
    }
    calib_set_free(cs);
    model_free(m);
}

// Smoothing alone preserves the function, so W8A8 stays close to fp32, and lower
// weight bits move the logits more.
TEST(sq_w8a8_closer_than_w4a8) {
    Model *m = qtest_load_stories();
    CalibrationSet *cs = c4_calibration(m, 16, 128);
    QuantRecipe r8 = qtest_recipe("sq:w8a8"), r4 = qtest_recipe("sq:w4a8");
    QuantReport report;
    Model *a = model_make_quantized(m, &r8, cs, &report);
    REQUIRE_MSG(a != NULL, "%s", err_msg());
    CHECK_EQ_INT(report.n_linears, 7 * m->config.n_layer);
    Model *b = model_make_quantized(m, &r4, cs, NULL);
    REQUIRE_MSG(b != NULL, "%s", err_msg());
    double d8 = max_logit_change(m, a), d4 = max_logit_change(m, b);
    printf("  max |logit change|: sq:w8a8 %.4g, sq:w4a8 %.4g\n", d8, d4);
    CHECK(d8 > 0);
    CHECK(d8 < d4 / 5);
    // Weights are packed per output channel for the int8-activation kernels.
    const Weight *w = &a->layers[1].ffn_gate;
    REQUIRE(w->packed != NULL);
    CHECK(w->packed->format.int8_acts);
    CHECK_EQ_INT(w->packed->format.group, 0);
    CHECK_EQ_INT(w->act_bits, 8);
    model_free(a);
    model_free(b);
    calib_set_free(cs);
    model_free(m);
}

// Per-token 8-bit activations move the logits, less than 4-bit weights do.
TEST(activation_bits_change_variant) {
    Model *m = qtest_load_stories();
    QuantRecipe w8 = qtest_recipe("rtn:w8c"), w8a8 = qtest_recipe("rtn:w8ca8"), w4 = qtest_recipe("rtn:w4c");
    Model *a = model_make_quantized(m, &w8, NULL, NULL);
    Model *b = model_make_quantized(m, &w8a8, NULL, NULL);
    Model *c = model_make_quantized(m, &w4, NULL, NULL);
    REQUIRE(a != NULL);
    REQUIRE(b != NULL);
    REQUIRE(c != NULL);
    double d_act = max_logit_change(a, b), d_w4 = max_logit_change(a, c);
    CHECK(d_act > 0);
    CHECK(d_act < d_w4);
    model_free(a);
    model_free(b);
    model_free(c);
    model_free(m);
}

// ----------------------------------------------------------------------------
// KV-cache quantization

TEST(kv_head_roundtrip_half_step) {
    float x[64], y[64];
    uint8_t codes[64];
    unsigned seed = 9;
    for (int i = 0; i < 64; i++) {
        x[i] = 3.0f + 2.0f * qtest_uniform(&seed); // all positive: the offset must cover them
    }
    for (int bits = 4; bits <= 8; bits += 4) {
        float scale, offset;
        kv_quantize_head(x, 64, bits, codes, &scale, &offset);
        kv_dequantize_head(codes, 64, scale, offset, y);
        float lo = x[0], hi = x[0];
        for (int i = 0; i < 64; i++) {
            lo = fminf(lo, x[i]);
            hi = fmaxf(hi, x[i]);
        }
        CHECK_NEAR(scale, (hi - lo) / (float)((1 << bits) - 1), 1e-6);
        CHECK(offset == lo);
        for (int i = 0; i < 64; i++) {
            CHECK(codes[i] <= (1 << bits) - 1);
            CHECK_MSG(fabsf(x[i] - y[i]) <= scale / 2 * 1.001f, "bits %d value %d: %g vs %g",
                      bits, i, x[i], y[i]);
        }
    }
}

TEST(kv_row_quantized_per_head) {
    // Two heads of very different ranges: each keeps its own resolution.
    float row[16], copy[16];
    for (int i = 0; i < 8; i++) {
        row[i] = 100.0f * (float)(i - 4);
        row[8 + i] = 0.01f * (float)(i - 4);
    }
    memcpy(copy, row, sizeof row);
    kv_fake_quantize_row(row, 2, 8, 4);
    for (int i = 8; i < 16; i++) {
        CHECK_NEAR(row[i], copy[i], 0.07f / 15.0f / 2.0f * 1.001f);
    }
}

TEST(kv_cache_bits_change_logits) {
    Model *m = qtest_load_stories();
    QuantRecipe kv8 = qtest_recipe("fp32+kv8"), kv4 = qtest_recipe("fp32+kv4");
    Model *a = model_make_quantized(m, &kv8, NULL, NULL);
    Model *b = model_make_quantized(m, &kv4, NULL, NULL);
    REQUIRE(a != NULL);
    REQUIRE(b != NULL);
    // The weights are shared with the base model: only the cache is quantized.
    CHECK(a->layers[0].attn_q.data == m->layers[0].attn_q.data);
    double d8 = max_logit_change(m, a), d4 = max_logit_change(m, b);
    printf("  max |logit change|: kv8 %.4g, kv4 %.4g\n", d8, d4);
    CHECK(d8 > 0);
    CHECK(d8 < d4);

    // Token-by-token decoding reads the same quantized cache as one batch.
    int n = QTEST_N_STORY;
    const ModelConfig *c = &m->config;
    float *batch = qtest_logits(a, qtest_story_tokens, n);
    KVCache *kv = kv_cache_new(c, 1, n);
    float *hidden = xmalloc((size_t)c->n_embd * sizeof(float));
    float *step = xmalloc((size_t)c->n_vocab * sizeof(float));
    double max_diff = 0;
    for (int i = 0; i < n; i++) {
        int seq = 0;
        Batch bt = {.n_tokens = 1, .tokens = qtest_story_tokens + i, .pos = &i, .seq = &seq};
        REQUIRE_OK(model_forward(a, kv, &bt, hidden));
        model_logits(a, hidden, 1, step);
        for (int v = 0; v < c->n_vocab; v++) {
            max_diff = fmax(max_diff, fabs(step[v] - batch[(size_t)i * c->n_vocab + v]));
        }
    }
    CHECK_MSG(max_diff < 1e-4, "decoding differs from the batch by %g", max_diff);
    free(batch);
    free(hidden);
    free(step);
    kv_cache_free(kv);
    model_free(a);
    model_free(b);
    model_free(m);
}
