// test_awq.c: AWQ's scale grid, scale search and clipping search on synthetic and stories260K
// activations, the output-preserving scale folds, and AWQ-quantized model variants.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../engine/calib_data.h"
#include "../engine/calibrate.h"
#include "../engine/forward.h"
#include "../engine/quantize.h"
#include "../engine/util.h"
#include "../quant/awq.h"
#include "../quant/calib.h"
#include "../quant/rtn.h"
#include "quant_helpers.h"
#include "test.h"

// ----------------------------------------------------------------------------
// The scale grid

TEST(awq_grid_scales_normalized) {
    const int cols = 40;
    float act[40], s[40];
    unsigned seed = 3;
    for (int j = 0; j < cols; j++) {
        act[j] = fabsf(qtest_uniform(&seed)) * (j % 9 == 0 ? 20.0f : 1.0f);
    }
    act[5] = 0.0f; // a channel that is always zero
    awq_grid_scales(act, cols, 0, 20, s);
    for (int j = 0; j < cols; j++) {
        CHECK(s[j] == 1.0f);
    }
    for (int i = 1; i < 20; i++) {
        awq_grid_scales(act, cols, i, 20, s);
        float lo = INFINITY, hi = 0;
        for (int j = 0; j < cols; j++) {
            lo = fminf(lo, s[j]);
            hi = fmaxf(hi, s[j]);
        }
        CHECK_NEAR(lo * hi, 1.0, 1e-5);
        // Larger mean activations get larger scales.
        CHECK(s[9] > s[1]);
        // The zero channel is clamped to 1e-4 before normalization: the smallest scale.
        CHECK(s[5] == lo);
    }
}

// ----------------------------------------------------------------------------
// The scale search on the linear outputs X W^T of a subset

typedef struct {
    const float *x; // [n, cols]
    int n, cols;
    int n_layers;
    const int *rows;
} LinearModule;

static int linear_module_output(void *ctx, const float *const *weights, float *out) {
    const LinearModule *lm = ctx;
    float *dst = out;
    for (int l = 0; l < lm->n_layers; l++) {
        block_linear(weights[l], lm->rows[l], lm->cols, lm->x, lm->n, dst);
        dst += (size_t)lm->n * lm->rows[l];
    }
    return 0;
}

static double module_loss(const LinearModule *lm, const float *const *reference_w,
                          const float *const *candidate_w, size_t n_out) {
    float *a = xmalloc(n_out * sizeof(float)), *b = xmalloc(n_out * sizeof(float));
    linear_module_output((void *)lm, reference_w, a);
    linear_module_output((void *)lm, candidate_w, b);
    double sum = 0;
    for (size_t i = 0; i < n_out; i++) {
        sum += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
    }
    free(a);
    free(b);
    return sum / n_out;
}

// Effective weights Q(W s) / s, computed here independently of awq.c.
static float *effective(const float *w, int rows, int cols, const float *s, int bits, int group) {
    float *e = xmalloc((size_t)rows * cols * sizeof(float));
    for (int r = 0; r < rows; r++) {
        for (int j = 0; j < cols; j++) {
            e[(size_t)r * cols + j] = w[(size_t)r * cols + j] * s[j];
        }
    }
    rtn_fake_quantize(e, e, rows, cols, bits, group, true);
    for (int r = 0; r < rows; r++) {
        for (int j = 0; j < cols; j++) {
            e[(size_t)r * cols + j] /= s[j];
        }
    }
    return e;
}

// Runs the search for gate and up of one stories260K block and checks it against its objective.
static void check_search_on_block(const Model *m, const CalibrationSet *cs, int layer, int bits,
                                  int group) {
    int n = 0, cols = 0;
    float *x = calib_collect_inputs(m, cs, layer, BLOCK_INPUT_GATE_UP, &n, &cols);
    REQUIRE_MSG(x != NULL, "%s", err_msg());
    const Layer *L = &m->layers[layer];
    float *gate = weight_to_f32(&L->ffn_gate), *up = weight_to_f32(&L->ffn_up);
    const float *w[] = {gate, up};
    int rows[] = {L->ffn_gate.rows, L->ffn_up.rows};
    LinearModule lm = {.x = x, .n = n, .cols = cols, .n_layers = 2, .rows = rows};

    ActStats stats;
    act_stats_init(&stats, cols);
    act_stats_add(&stats, x, n);
    float *mean_abs = xmalloc((size_t)cols * sizeof(float));
    act_stats_mean_abs(&stats, mean_abs);
    act_stats_free(&stats);

    size_t n_out = (size_t)n * (rows[0] + rows[1]);
    AwqScaleSearch search = {.n_layers = 2, .w = w, .rows = rows, .cols = cols,
                             .act_mean_abs = mean_abs, .bits = bits, .group_size = group,
                             .n_grid = 20, .n_out = n_out, .output = linear_module_output,
                             .ctx = &lm};
    float *scales = xmalloc((size_t)cols * sizeof(float));
    double losses[20];
    int best = -1;
    REQUIRE_OK(awq_search_scales(&search, scales, losses, &best));
    REQUIRE(best >= 0);
    REQUIRE(best < 20);
    for (int i = 0; i < 20; i++) {
        CHECK_MSG(losses[best] <= losses[i], "block %d w%d: ratio %d has loss %g below the "
                  "chosen ratio %d's %g", layer, bits, i, losses[i], best, losses[best]);
    }

    // The objective recomputed here: the chosen scales against no scaling (plain RTN).
    float *ones = xmalloc((size_t)cols * sizeof(float));
    for (int j = 0; j < cols; j++) {
        ones[j] = 1.0f;
    }
    float *e_best[] = {effective(gate, rows[0], cols, scales, bits, group),
                       effective(up, rows[1], cols, scales, bits, group)};
    float *e_rtn[] = {effective(gate, rows[0], cols, ones, bits, group),
                      effective(up, rows[1], cols, ones, bits, group)};
    double loss_best = module_loss(&lm, w, (const float *const *)e_best, n_out);
    double loss_rtn = module_loss(&lm, w, (const float *const *)e_rtn, n_out);
    CHECK_NEAR(loss_rtn, losses[0], 1e-6 * losses[0]);
    CHECK_NEAR(loss_best, losses[best], 1e-6 * losses[best]);
    CHECK_MSG(loss_best <= loss_rtn, "block %d w%d: chosen scales lose %g, no scaling %g", layer,
              bits, loss_best, loss_rtn);
    printf("  block %d w%d g%d: ratio %d/20, loss %.4g vs RTN %.4g\n", layer, bits, group, best,
           loss_best, loss_rtn);

    for (int l = 0; l < 2; l++) {
        free(e_best[l]);
        free(e_rtn[l]);
    }
    free(ones);
    free(scales);
    free(mean_abs);
    free(gate);
    free(up);
    free(x);
}

TEST(awq_scales_never_worse_than_none) {
    Model *m = qtest_load_stories();
    CalibrationSet *cs = qtest_c4_calibration(m, CALIB_SAMPLING_PACKED, 16, 128, 42);
    check_search_on_block(m, cs, 0, 3, 32);
    check_search_on_block(m, cs, 2, 4, 32);
    check_search_on_block(m, cs, 4, 4, 0);
    calib_set_free(cs);
    model_free(m);
}

// Inputs with outlier channels: the salient weights get protected and the loss drops.
TEST(awq_scales_help_with_outlier_channels) {
    const int n = 512, cols = 64, rows = 48;
    float *x = xmalloc((size_t)n * cols * sizeof(float));
    float *w = xmalloc((size_t)rows * cols * sizeof(float));
    unsigned seed = 7;
    for (int t = 0; t < n; t++) {
        for (int j = 0; j < cols; j++) {
            x[(size_t)t * cols + j] = qtest_uniform(&seed) * (j % 16 == 3 ? 30.0f : 1.0f);
        }
    }
    for (int i = 0; i < rows * cols; i++) {
        w[i] = qtest_uniform(&seed);
    }
    const float *ws[] = {w};
    int rs[] = {rows};
    LinearModule lm = {.x = x, .n = n, .cols = cols, .n_layers = 1, .rows = rs};
    ActStats stats;
    act_stats_init(&stats, cols);
    act_stats_add(&stats, x, n);
    float mean_abs[64], scales[64];
    act_stats_mean_abs(&stats, mean_abs);
    act_stats_free(&stats);
    AwqScaleSearch search = {.n_layers = 1, .w = ws, .rows = rs, .cols = cols,
                             .act_mean_abs = mean_abs, .bits = 3, .group_size = 32, .n_grid = 20,
                             .n_out = (size_t)n * rows, .output = linear_module_output,
                             .ctx = &lm};
    double losses[20];
    int best = 0;
    REQUIRE_OK(awq_search_scales(&search, scales, losses, &best));
    CHECK(best > 0);
    CHECK_MSG(losses[best] < 0.9 * losses[0], "loss %g vs no scaling %g", losses[best],
              losses[0]);
    CHECK(scales[3] > scales[4]);
    free(x);
    free(w);
}

// A failing module aborts the search with its error.
static int failing_output(void *ctx, const float *const *weights, float *out) {
    (void)ctx;
    (void)weights;
    (void)out;
    return -1;
}

TEST(awq_search_propagates_callback_failure) {
    float w[4] = {1, 2, 3, 4}, act[2] = {1, 1}, scales[2];
    const float *ws[] = {w};
    int rows[] = {2};
    AwqScaleSearch search = {.n_layers = 1, .w = ws, .rows = rows, .cols = 2,
                             .act_mean_abs = act, .bits = 4, .n_grid = 20, .n_out = 4,
                             .output = failing_output};
    CHECK_EQ_INT(awq_search_scales(&search, scales, NULL, NULL), -1);
}

// ----------------------------------------------------------------------------
// Clipping

// Squared error of one row's group partial dot products over the sampled tokens.
static double group_error(const float *w, const float *q, const float *x, int n, int stride,
                          int cols, int c0, int len) {
    double err = 0;
    int count = 0;
    for (int t = 0; t < n; t += stride) {
        double a = 0, b = 0;
        for (int k = 0; k < len; k++) {
            a += (double)x[(size_t)t * cols + c0 + k] * w[c0 + k];
            b += (double)x[(size_t)t * cols + c0 + k] * q[c0 + k];
        }
        err += (a - b) * (a - b);
        count++;
    }
    return err / count;
}

TEST(awq_clip_never_worse_than_none) {
    Model *m = qtest_load_stories();
    CalibrationSet *cs = qtest_c4_calibration(m, CALIB_SAMPLING_PACKED, 16, 128, 42);
    int n = 0, cols = 0;
    float *x = calib_collect_inputs(m, cs, 1, BLOCK_INPUT_DOWN, &n, &cols);
    REQUIRE_MSG(x != NULL, "%s", err_msg());
    const Weight *down = &m->layers[1].ffn_down;
    int rows = down->rows, group = 64, n_groups = (cols + group - 1) / group;
    float *w = weight_to_f32(down);
    float *max_val = xmalloc((size_t)rows * n_groups * sizeof(float));
    awq_search_clip(w, rows, cols, 3, group, x, n, 128, 20, 0.5, max_val);

    float *clipped = xmalloc((size_t)rows * cols * sizeof(float));
    float *q_clip = xmalloc((size_t)rows * cols * sizeof(float));
    float *q_plain = xmalloc((size_t)rows * cols * sizeof(float));
    memcpy(clipped, w, (size_t)rows * cols * sizeof(float));
    awq_apply_clip(clipped, rows, cols, group, max_val);
    rtn_fake_quantize(clipped, q_clip, rows, cols, 3, group, true);
    rtn_fake_quantize(w, q_plain, rows, cols, 3, group, true);
    int stride = n / 128, n_clipped = 0;
    for (int r = 0; r < rows; r++) {
        for (int g = 0; g < n_groups; g++) {
            int c0 = g * group, len = cols - c0 < group ? cols - c0 : group;
            float org = 0;
            for (int k = 0; k < len; k++) {
                org = fmaxf(org, fabsf(w[(size_t)r * cols + c0 + k]));
            }
            float limit = max_val[(size_t)r * n_groups + g];
            CHECK(limit <= org);
            CHECK(limit >= 0.55f * org * (1 - 1e-6f));
            n_clipped += limit < org;
            double e_clip = group_error(w + (size_t)r * cols, q_clip + (size_t)r * cols, x, n,
                                        stride, cols, c0, len);
            double e_plain = group_error(w + (size_t)r * cols, q_plain + (size_t)r * cols, x, n,
                                         stride, cols, c0, len);
            CHECK_MSG(e_clip <= e_plain * (1 + 1e-5) + 1e-12,
                      "row %d group %d: clipped error %g above unclipped %g", r, g, e_clip,
                      e_plain);
        }
    }
    // At 3 bits clipping pays off for some groups.
    CHECK(n_clipped > 0);
    free(x);
    free(w);
    free(max_val);
    free(clipped);
    free(q_clip);
    free(q_plain);
    calib_set_free(cs);
    model_free(m);
}

// ----------------------------------------------------------------------------
// Scale folding preserves the full-precision function

// A variant of base with owned fp32 copies of its matrices and norms (freed by free_copies).
static Model *writable_copy(const Model *base, float **norms) {
    QuantSpec spec;
    char error[256];
    REQUIRE(quant_spec_parse("fp32", &spec, error, sizeof error) == 0);
    Model *v = model_make_variant(base, &spec);
    REQUIRE(v != NULL);
    int d = base->config.n_embd;
    *norms = xmalloc((size_t)2 * base->config.n_layer * d * sizeof(float));
    for (int l = 0; l < base->config.n_layer; l++) {
        Layer *L = &v->layers[l];
        Weight *all[] = {&L->attn_q,   &L->attn_k, &L->attn_v,  &L->attn_output,
                         &L->ffn_gate, &L->ffn_up, &L->ffn_down};
        for (size_t i = 0; i < ARRAY_LEN(all); i++) {
            float *copy = weight_to_f32(all[i]);
            all[i]->type = GGML_TYPE_F32;
            all[i]->data = copy;
            all[i]->owned = copy;
        }
        float *attn = *norms + (size_t)2 * l * d, *ffn = attn + d;
        memcpy(attn, L->attn_norm, (size_t)d * sizeof(float));
        memcpy(ffn, L->ffn_norm, (size_t)d * sizeof(float));
        L->attn_norm = attn;
        L->ffn_norm = ffn;
    }
    return v;
}

static void fill_scales(float *s, int n, unsigned seed) {
    for (int j = 0; j < n; j++) {
        s[j] = exp2f(2.0f * qtest_uniform(&seed)); // 0.25 .. 4
    }
}

// Folds random scales the way the AWQ driver does and checks that the logits do not move.
static void check_folds_preserve_logits(const char *model_path, const int *tokens, int n) {
    Model *base = qtest_load_model(model_path);
    float *norms = NULL;
    Model *v = writable_copy(base, &norms);
    const ModelConfig *c = &base->config;
    int d = c->n_embd, q_dim = c->n_head * c->head_dim, kv_dim = c->n_head_kv * c->head_dim;
    float *s = xmalloc((size_t)(c->n_ff > q_dim ? c->n_ff : q_dim) * sizeof(float));
    for (int l = 0; l < c->n_layer; l++) {
        Layer *L = &v->layers[l];
        fill_scales(s, d, 100 + l);
        migrate_divide_vector((float *)L->attn_norm, d, s);
        migrate_scale_columns(L->attn_q.owned, q_dim, d, s);
        migrate_scale_columns(L->attn_k.owned, kv_dim, d, s);
        migrate_scale_columns(L->attn_v.owned, kv_dim, d, s);
        if (kv_dim == q_dim) {
            fill_scales(s, q_dim, 200 + l);
            migrate_divide_rows(L->attn_v.owned, kv_dim, d, s);
            migrate_scale_columns(L->attn_output.owned, d, q_dim, s);
        }
        fill_scales(s, d, 300 + l);
        migrate_divide_vector((float *)L->ffn_norm, d, s);
        migrate_scale_columns(L->ffn_gate.owned, c->n_ff, d, s);
        migrate_scale_columns(L->ffn_up.owned, c->n_ff, d, s);
        fill_scales(s, c->n_ff, 400 + l);
        migrate_divide_rows(L->ffn_up.owned, c->n_ff, d, s);
        migrate_scale_columns(L->ffn_down.owned, d, c->n_ff, s);
    }
    float *a = qtest_logits(base, tokens, n), *b = qtest_logits(v, tokens, n);
    double max_diff = 0, max_abs = 0;
    for (size_t i = 0; i < (size_t)n * c->n_vocab; i++) {
        max_diff = fmax(max_diff, fabs(a[i] - b[i]));
        max_abs = fmax(max_abs, fabs(a[i]));
    }
    CHECK_MSG(max_diff < 1e-4 * fmax(1.0, max_abs), "%s: folded scales moved logits by %g",
              model_path, max_diff);
    free(a);
    free(b);
    free(s);
    model_free(v);
    free(norms);
    model_free(base);
}

TEST(awq_scale_folds_preserve_function) {
    static const int tokens[] = {1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315};
    check_folds_preserve_logits("models/stories260K/stories260K.gguf", tokens, 12);
    // No grouped-query attention here, so the v -> o fold is exercised too.
    check_folds_preserve_logits("models/llama-2-tiny-random-gguf/llama-2-tiny-random.gguf",
                                tokens, 12);
}

// ----------------------------------------------------------------------------
// AWQ variants

TEST(awq_model_closer_to_fp32_than_rtn) {
    Model *m = qtest_load_stories();
    CalibrationSet *cs = qtest_c4_calibration(m, CALIB_SAMPLING_PACKED, 24, 128, 42);
    const char *pairs[][2] = {{"awq:w3g32", "rtn:w3g32"}, {"awq:w4g32", "rtn:w4g32"}};
    for (size_t i = 0; i < ARRAY_LEN(pairs); i++) {
        QuantRecipe ra = qtest_recipe(pairs[i][0]), rr = qtest_recipe(pairs[i][1]);
        QuantReport report;
        Model *a = model_make_quantized(m, &ra, cs, &report);
        REQUIRE_MSG(a != NULL, "%s", err_msg());
        Model *r = model_make_quantized(m, &rr, NULL, NULL);
        REQUIRE_MSG(r != NULL, "%s", err_msg());
        CHECK_EQ_INT(report.n_linears, 7 * m->config.n_layer);
        // Grouped-query attention: no v -> o fold, three searches per block.
        CHECK_EQ_INT(report.n_scale_searches, 3 * m->config.n_layer);
        double kl_a = qtest_kl_from_base(m, a), kl_r = qtest_kl_from_base(m, r);
        printf("  KL from fp32: %s %.4f, %s %.4f\n", pairs[i][0], kl_a, pairs[i][1], kl_r);
        CHECK_MSG(kl_a < kl_r, "%s KL %g is not below %s KL %g", pairs[i][0], kl_a, pairs[i][1],
                  kl_r);
        // The variant owns scaled norms; the base model's stay as loaded.
        CHECK(a->layers[0].attn_norm != m->layers[0].attn_norm);
        model_free(a);
        model_free(r);
    }
    calib_set_free(cs);
    model_free(m);
}

TEST(awq_leaves_base_model_unchanged) {
    Model *m = qtest_load_stories();
    const ModelConfig *c = &m->config;
    size_t norm_bytes = (size_t)c->n_embd * sizeof(float);
    float *norm_before = xmalloc(norm_bytes);
    memcpy(norm_before, m->layers[2].ffn_norm, norm_bytes);
    float *up_before = weight_to_f32(&m->layers[2].ffn_up);

    CalibrationSet *cs = qtest_c4_calibration(m, CALIB_SAMPLING_PACKED, 8, 128, 42);
    QuantRecipe r = qtest_recipe("awq:w4g32");
    Model *a = model_make_quantized(m, &r, cs, NULL);
    REQUIRE_MSG(a != NULL, "%s", err_msg());
    CHECK(memcmp(norm_before, m->layers[2].ffn_norm, norm_bytes) == 0);
    float *up_after = weight_to_f32(&m->layers[2].ffn_up);
    CHECK(memcmp(up_before, up_after, weight_nbytes(&m->layers[2].ffn_up)) == 0);
    // Every quantized row sits on a 4-bit grid of its groups: requantizing changes nothing.
    const Weight *q = &a->layers[2].ffn_up;
    REQUIRE(q->packed != NULL);
    float *values = weight_to_f32(q);
    float *requant = xmalloc((size_t)q->rows * q->cols * sizeof(float));
    rtn_fake_quantize(values, requant, q->rows, q->cols, 4, 32, true);
    double max_diff = 0;
    for (size_t i = 0; i < (size_t)q->rows * q->cols; i++) {
        max_diff = fmax(max_diff, fabs(requant[i] - values[i]));
    }
    CHECK_MSG(max_diff <= 1e-6, "requantizing AWQ's output moved a weight by %g", max_diff);

    free(values);
    free(requant);
    free(up_after);
    free(up_before);
    free(norm_before);
    model_free(a);
    calib_set_free(cs);
    model_free(m);
}

// llama-2-tiny-random: F16 matrices and no grouped-query attention (four searches per block).
TEST(awq_f16_model_without_gqa) {
    Model *m = qtest_load_model("models/llama-2-tiny-random-gguf/llama-2-tiny-random.gguf");
    CalibrationSet *cs = qtest_c4_calibration(m, CALIB_SAMPLING_PACKED, 8, 64, 42);
    QuantRecipe r = qtest_recipe("awq:w4c");
    QuantReport report;
    Model *a = model_make_quantized(m, &r, cs, &report);
    REQUIRE_MSG(a != NULL, "%s", err_msg());
    CHECK_EQ_INT(report.n_scale_searches, 4);
    CHECK_EQ_INT(report.n_linears, 7);
    CHECK(a->layers[0].attn_v.packed != NULL);
    static const int tokens[] = {1, 450, 4996, 17354, 1701, 29916};
    float *logits = qtest_logits(a, tokens, 6);
    for (size_t i = 0; i < 6 * (size_t)m->config.n_vocab; i++) {
        REQUIRE(isfinite(logits[i]));
    }
    free(logits);
    model_free(a);
    calib_set_free(cs);
    model_free(m);
}

TEST(awq_deterministic) {
    Model *m = qtest_load_stories();
    CalibrationSet *cs = qtest_c4_calibration(m, CALIB_SAMPLING_PACKED, 8, 128, 42);
    QuantRecipe r = qtest_recipe("awq:w3g32");
    Model *a = model_make_quantized(m, &r, cs, NULL);
    Model *b = model_make_quantized(m, &r, cs, NULL);
    REQUIRE(a != NULL);
    REQUIRE(b != NULL);
    for (int l = 0; l < m->config.n_layer; l++) {
        const Weight *wa = &a->layers[l].ffn_down, *wb = &b->layers[l].ffn_down;
        float *va = weight_to_f32(wa), *vb = weight_to_f32(wb);
        CHECK(memcmp(va, vb, (size_t)wa->rows * wa->cols * sizeof(float)) == 0);
        free(va);
        free(vb);
        CHECK(memcmp(a->layers[l].attn_norm, b->layers[l].attn_norm,
                     (size_t)m->config.n_embd * sizeof(float)) == 0);
    }
    model_free(a);
    model_free(b);
    calib_set_free(cs);
    model_free(m);
}

// Quantizing a variant a second time reuses its own norm copies.
TEST(awq_quantize_variant_twice) {
    Model *m = qtest_load_stories();
    CalibrationSet *cs = qtest_c4_calibration(m, CALIB_SAMPLING_PACKED, 4, 64, 42);
    QuantRecipe r = qtest_recipe("awq:w4g32");
    Model *a = model_make_quantized(m, &r, cs, NULL);
    REQUIRE_MSG(a != NULL, "%s", err_msg());
    const float *norm = a->layers[3].attn_norm;
    REQUIRE_OK(model_quantize_weights(a, &r, cs, NULL));
    CHECK(a->layers[3].attn_norm == norm);
    CHECK(a->layers[3].attn_norm != m->layers[3].attn_norm);
    float *logits = qtest_logits(a, qtest_story_tokens, QTEST_N_STORY);
    for (size_t i = 0; i < (size_t)QTEST_N_STORY * m->config.n_vocab; i++) {
        REQUIRE(isfinite(logits[i]));
    }
    free(logits);
    model_free(a);
    calib_set_free(cs);
    model_free(m);
}
