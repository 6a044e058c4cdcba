// test_quant.c: quantization spec strings, RTN properties, and quantized model variants.
#include <stdlib.h>
#include <string.h>

#include "../engine/forward.h"
#include "../engine/util.h"
#include "../quant/rtn.h"
#include "../quant/spec.h"
#include "test.h"

TEST(spec_parses_canonical_forms) {
    static const char *cases[][2] = {
        {"fp32", "fp32"},           {"rtn:w8g128", "rtn:w8g128"}, {"rtn:w4g32", "rtn:w4g32"},
        {"rtn:w4c", "rtn:w4c"},     {"rtn:w3g128-asym", "rtn:w3g128-asym"},
        {"rtn:w2g64", "rtn:w2g64"},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        QuantSpec spec;
        char error[512];
        int rc = quant_spec_parse(cases[i][0], &spec, error, sizeof error);
        CHECK_MSG(rc == 0, "'%s' rejected: %s", cases[i][0], error);
        CHECK_STR(spec.text, cases[i][1]);
    }

    QuantSpec spec;
    char error[512];
    REQUIRE(quant_spec_parse("rtn:w4g32", &spec, error, sizeof error) == 0);
    CHECK_EQ_INT(spec.method, QUANT_RTN);
    CHECK_EQ_INT(spec.weight_bits, 4);
    CHECK_EQ_INT(spec.group_size, 32);
    CHECK(spec.symmetric);
    REQUIRE(quant_spec_parse("rtn:w8c-asym", &spec, error, sizeof error) == 0);
    CHECK_EQ_INT(spec.group_size, 0);
    CHECK(!spec.symmetric);
}

TEST(spec_rejects_invalid_forms) {
    static const char *bad[] = {"", "fp16", "rtn", "rtn:", "rtn:w4", "rtn:w9g128", "rtn:w1g128",
                                "rtn:w4g0", "rtn:w4g128x", "gptx:w4g128", "rtn:4g128",
                                "rtn:w4g128-sym", "RTN:w4g128"};
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        QuantSpec spec;
        char error[512] = "";
        CHECK_MSG(quant_spec_parse(bad[i], &spec, error, sizeof error) == -1, "'%s' was accepted",
                  bad[i]);
        CHECK_MSG(strstr(error, "Accepted forms") != NULL, "error for '%s' lacks the forms: %s",
                  bad[i], error);
    }
}

static void fill_gaussianish(float *x, int n, unsigned seed) {
    srand(seed);
    for (int i = 0; i < n; i++) {
        // Sum of uniforms: roughly normal, with occasional large values like real weights.
        float s = 0;
        for (int j = 0; j < 4; j++) {
            s += (float)rand() / (float)RAND_MAX - 0.5f;
        }
        x[i] = s * (i % 37 == 0 ? 8.0f : 1.0f);
    }
}

// Checks |w - w'| <= scale / 2 for every weight, recomputing each group's scale.
static void check_half_step(const float *w, const float *wq, int rows, int cols, int bits,
                            int group, bool symmetric) {
    int g = group > 0 && group < cols ? group : cols;
    for (int r = 0; r < rows; r++) {
        for (int c0 = 0; c0 < cols; c0 += g) {
            int n = cols - c0 < g ? cols - c0 : g;
            int zero;
            float scale = rtn_quantize_group(w + (long)r * cols + c0, n, bits, symmetric, NULL, &zero);
            for (int i = 0; i < n; i++) {
                long idx = (long)r * cols + c0 + i;
                float err = fabsf(w[idx] - wq[idx]);
                CHECK_MSG(err <= scale * 0.5f * (1 + 1e-5f), "bits %d group %d row %d col %d: error "
                          "%g > half step %g", bits, group, r, c0 + i, err, scale * 0.5f);
            }
        }
    }
}

TEST(rtn_error_at_most_half_step) {
    // 172 columns with groups of 128: the last group of each row has 44 columns.
    const int rows = 8, col_cases[] = {64, 172, 256};
    const int bit_cases[] = {8, 4, 3, 2}, group_cases[] = {128, 32, 0};
    for (size_t ci = 0; ci < ARRAY_LEN(col_cases); ci++) {
        int cols = col_cases[ci];
        float *w = xmalloc((size_t)rows * cols * sizeof(float));
        float *wq = xmalloc((size_t)rows * cols * sizeof(float));
        fill_gaussianish(w, rows * cols, (unsigned)cols);
        for (size_t bi = 0; bi < ARRAY_LEN(bit_cases); bi++) {
            for (size_t gi = 0; gi < ARRAY_LEN(group_cases); gi++) {
                for (int sym = 0; sym <= 1; sym++) {
                    rtn_fake_quantize(w, wq, rows, cols, bit_cases[bi], group_cases[gi], sym);
                    check_half_step(w, wq, rows, cols, bit_cases[bi], group_cases[gi], sym);
                }
            }
        }
        free(w);
        free(wq);
    }
}

// The short last group gets its own scale: small values after 128 large ones keep a small error.
TEST(rtn_short_last_group_has_own_scale) {
    float w[172], wq[172];
    for (int i = 0; i < 172; i++) {
        w[i] = i < 128 ? 10.0f * (i % 2 ? 1 : -1) : 0.001f * (float)(i - 128);
    }
    rtn_fake_quantize(w, wq, 1, 172, 4, 128, true);
    // Last group: max |w| = 0.043, scale = 0.043 / 7; its values quantize with error <= 0.0031.
    for (int i = 128; i < 172; i++) {
        CHECK_MSG(fabsf(w[i] - wq[i]) <= 0.043f / 7.0f / 2.0f + 1e-7f, "col %d: %g vs %g", i, w[i],
                  wq[i]);
    }
    // Per-tensor quantization would have rounded every value of the last group to 0.
    int nonzero = 0;
    for (int i = 128; i < 172; i++) {
        nonzero += wq[i] != 0.0f;
    }
    CHECK(nonzero > 30);
}

TEST(rtn_is_idempotent) {
    const int rows = 4, cols = 172;
    float w[4 * 172], once[4 * 172], twice[4 * 172];
    fill_gaussianish(w, rows * cols, 3);
    for (int bits = 2; bits <= 8; bits++) {
        for (int sym = 0; sym <= 1; sym++) {
            rtn_fake_quantize(w, once, rows, cols, bits, 128, sym);
            rtn_fake_quantize(once, twice, rows, cols, bits, 128, sym);
            double max_diff = 0;
            for (int i = 0; i < rows * cols; i++) {
                max_diff = fmax(max_diff, fabs(once[i] - twice[i]));
            }
            // Re-deriving the scale from dequantized values can move it by float rounding only.
            CHECK_MSG(max_diff <= 1e-6, "bits %d sym %d: requantizing moved a weight by %g", bits,
                      sym, max_diff);
        }
    }
}

TEST(rtn_zero_group_stays_zero) {
    float w[32] = {0}, wq[32];
    rtn_fake_quantize(w, wq, 1, 32, 4, 32, true);
    for (int i = 0; i < 32; i++) {
        CHECK(wq[i] == 0.0f);
    }
    rtn_fake_quantize(w, wq, 1, 32, 4, 32, false);
    for (int i = 0; i < 32; i++) {
        CHECK(wq[i] == 0.0f);
    }
}

static Model *load_stories(void) {
    Model *m = model_load(test_shared_path("models/stories260K/stories260K.gguf"));
    REQUIRE_MSG(m != NULL, "model_load failed: %s", err_msg());
    return m;
}

static Model *make_variant(const Model *base, const char *text) {
    QuantSpec spec;
    char error[512];
    REQUIRE_MSG(quant_spec_parse(text, &spec, error, sizeof error) == 0, "%s", error);
    Model *v = model_make_variant(base, &spec);
    REQUIRE_MSG(v != NULL, "%s", err_msg());
    return v;
}

TEST(variant_keeps_embeddings_norms_head) {
    Model *base = load_stories();
    Model *v = make_variant(base, "rtn:w4g128");
    const ModelConfig *c = &base->config;

    // Shared, not copied: the same bytes of the file mapping.
    CHECK(v->token_embd.data == base->token_embd.data);
    CHECK(v->output.data == base->output.data);
    CHECK(v->output_norm == base->output_norm);
    for (int l = 0; l < c->n_layer; l++) {
        CHECK(v->layers[l].attn_norm == base->layers[l].attn_norm);
        CHECK(v->layers[l].ffn_norm == base->layers[l].ffn_norm);
        CHECK(v->layers[l].attn_q.data != base->layers[l].attn_q.data);
        CHECK(v->layers[l].ffn_down.data != base->layers[l].ffn_down.data);
    }
    CHECK(memcmp(v->token_embd.data, base->token_embd.data, weight_nbytes(&base->token_embd)) == 0);
    CHECK_STR(v->variant, "rtn:w4g128");
    model_free(v);
    model_free(base);
}

// Maximum |logit difference| between a variant and the base over a real token sequence.
static double logit_change(const Model *base, const Model *v) {
    static const int tokens[] = {1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315};
    int n = (int)ARRAY_LEN(tokens);
    const ModelConfig *c = &base->config;
    double max_diff = 0;
    float *hidden = xmalloc((size_t)n * c->n_embd * sizeof(float));
    float *a = xmalloc((size_t)n * c->n_vocab * sizeof(float));
    float *b = xmalloc((size_t)n * c->n_vocab * sizeof(float));
    int pos[12], seq[12] = {0};
    for (int i = 0; i < n; i++) {
        pos[i] = i;
    }
    Batch batch = {.n_tokens = n, .tokens = tokens, .pos = pos, .seq = seq};
    const Model *models[2] = {base, v};
    float *outs[2] = {a, b};
    for (int k = 0; k < 2; k++) {
        KVCache *kv = kv_cache_new(c, 1, n);
        REQUIRE_OK(model_forward(models[k], kv, &batch, hidden));
        model_logits(models[k], hidden, n, outs[k]);
        kv_cache_free(kv);
    }
    for (size_t i = 0; i < (size_t)n * c->n_vocab; i++) {
        max_diff = fmax(max_diff, fabs(a[i] - b[i]));
    }
    free(hidden);
    free(a);
    free(b);
    return max_diff;
}

TEST(variant_w8_changes_logits_less_than_w4) {
    Model *base = load_stories();
    Model *fp = make_variant(base, "fp32");
    Model *w8 = make_variant(base, "rtn:w8g128");
    Model *w4 = make_variant(base, "rtn:w4g128");
    double d_fp = logit_change(base, fp), d8 = logit_change(base, w8), d4 = logit_change(base, w4);
    CHECK_MSG(d_fp == 0, "the fp32 variant changed logits by %g", d_fp);
    CHECK_MSG(d8 > 0, "8-bit RTN did not change any logit");
    CHECK_MSG(d8 < d4, "8-bit change %g is not below 4-bit change %g", d8, d4);
    printf("  max |logit change|: w8g128 %.4g, w4g128 %.4g\n", d8, d4);
    model_free(w4);
    model_free(w8);
    model_free(fp);
    model_free(base);
}
