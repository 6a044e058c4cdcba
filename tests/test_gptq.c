// test_gptq.c: GPTQ properties on synthetic and real (stories260K) activations, the Hessian
// accumulator, and GPTQ-quantized model variants.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../engine/calib_data.h"
#include "../engine/calibrate.h"
#include "../engine/forward.h"
#include "../engine/quantize.h"
#include "../engine/util.h"
#include "../kernels/half.h"
#include "../quant/calib.h"
#include "../quant/gptq.h"
#include "../quant/rtn.h"
#include "quant_helpers.h"
#include "test.h"

static void fill(float *x, size_t n, unsigned seed) {
    for (size_t i = 0; i < n; i++) {
        x[i] = qtest_uniform(&seed);
    }
}

// Correlated inputs X [n, cols]: a few shared factors plus noise, some channels scaled up.
static float *correlated_inputs(int n, int cols, unsigned seed) {
    float *x = xmalloc((size_t)n * cols * sizeof(float));
    float factors[4];
    for (int t = 0; t < n; t++) {
        for (int f = 0; f < 4; f++) {
            factors[f] = qtest_uniform(&seed);
        }
        for (int j = 0; j < cols; j++) {
            float v = factors[j % 4] + 0.3f * qtest_uniform(&seed);
            x[(size_t)t * cols + j] = v * (j % 7 == 0 ? 4.0f : 1.0f);
        }
    }
    return x;
}

static double *hessian_of(const float *x, int n, int cols) {
    HessianAcc acc;
    hessian_init(&acc, cols);
    hessian_add(&acc, x, n);
    double *h = xmalloc((size_t)cols * cols * sizeof(double));
    hessian_finish(&acc, h);
    hessian_free(&acc);
    return h;
}

// ||X W^T - X Q^T||_F^2.
static double output_error(const float *w, const float *q, int rows, int cols, const float *x,
                           int n) {
    double err = 0;
    for (int t = 0; t < n; t++) {
        const float *xt = x + (size_t)t * cols;
        for (int r = 0; r < rows; r++) {
            double a = 0, b = 0;
            for (int j = 0; j < cols; j++) {
                a += (double)xt[j] * w[(size_t)r * cols + j];
                b += (double)xt[j] * q[(size_t)r * cols + j];
            }
            err += (a - b) * (a - b);
        }
    }
    return err;
}

static GptqParams study_params(int bits, int group) {
    GptqParams p = {.bits = bits, .group_size = group, .symmetric = true, .percdamp = 0.01,
                    .block_size = 128, .act_order = true, .static_groups = true};
    return p;
}

static double max_abs_diff(const float *a, const float *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        m = fmax(m, fabs((double)a[i] - (double)b[i]));
    }
    return m;
}

// ----------------------------------------------------------------------------
// Hessian accumulator

TEST(hessian_matches_direct_sum) {
    const int n = 2500, cols = 24; // more rows than one fp32 chunk
    float *x = correlated_inputs(n, cols, 5);
    double *h = hessian_of(x, n, cols);
    double *direct = xcalloc((size_t)cols * cols, sizeof(double));
    for (int i = 0; i < cols; i++) {
        for (int j = 0; j < cols; j++) {
            for (int t = 0; t < n; t++) {
                direct[(size_t)i * cols + j] +=
                    (double)x[(size_t)t * cols + i] * x[(size_t)t * cols + j];
            }
            direct[(size_t)i * cols + j] *= 2.0 / n;
        }
    }
    for (int i = 0; i < cols; i++) {
        for (int j = 0; j < cols; j++) {
            // fp32 chunk sums: error relative to the magnitudes summed, sqrt(H_ii H_jj).
            double scale = sqrt(direct[(size_t)i * cols + i] * direct[(size_t)j * cols + j]);
            CHECK_NEAR(h[(size_t)i * cols + j], direct[(size_t)i * cols + j], 1e-6 * scale);
            CHECK(h[(size_t)i * cols + j] == h[(size_t)j * cols + i]);
        }
    }
    free(direct);
    free(x);
    free(h);
}

// ----------------------------------------------------------------------------
// Properties of gptq_quantize

// With a diagonal Hessian no column's error can be compensated: GPTQ is RTN on the same grid.
TEST(gptq_diagonal_hessian_equals_rtn) {
    const int rows = 16, cols = 96;
    float *w = xmalloc((size_t)rows * cols * sizeof(float));
    float *q = xmalloc((size_t)rows * cols * sizeof(float));
    float *rtn = xmalloc((size_t)rows * cols * sizeof(float));
    double *h = xcalloc((size_t)cols * cols, sizeof(double));
    for (int j = 0; j < cols; j++) {
        h[(size_t)j * cols + j] = 1.0 + (j % 5); // distinct values, so act-order permutes
    }
    fill(w, (size_t)rows * cols, 11);
    const int bit_cases[] = {2, 3, 4, 8}, group_cases[] = {0, 32, 40};
    for (size_t b = 0; b < ARRAY_LEN(bit_cases); b++) {
        for (size_t g = 0; g < ARRAY_LEN(group_cases); g++) {
            for (int sym = 0; sym <= 1; sym++) {
                for (int order = 0; order <= 1; order++) {
                    GptqParams p = study_params(bit_cases[b], group_cases[g]);
                    p.symmetric = sym;
                    p.act_order = order;
                    p.block_size = 16;
                    memcpy(q, w, (size_t)rows * cols * sizeof(float));
                    GptqResult res;
                    REQUIRE(gptq_quantize(q, rows, cols, h, &p, NULL, NULL, NULL, &res) == GPTQ_OK);
                    rtn_fake_quantize(w, rtn, rows, cols, p.bits, p.group_size, p.symmetric);
                    double diff = max_abs_diff(q, rtn, (size_t)rows * cols);
                    CHECK_MSG(diff == 0, "bits %d group %d sym %d order %d: differs from RTN by %g",
                              p.bits, p.group_size, sym, order, diff);
                }
            }
        }
    }
    free(w);
    free(q);
    free(rtn);
    free(h);
}

TEST(gptq_beats_rtn_on_correlated_inputs) {
    const int rows = 32, cols = 256, n = 1024;
    float *x = correlated_inputs(n, cols, 3);
    double *h = hessian_of(x, n, cols);
    float *w = xmalloc((size_t)rows * cols * sizeof(float));
    float *q = xmalloc((size_t)rows * cols * sizeof(float));
    float *rtn = xmalloc((size_t)rows * cols * sizeof(float));
    fill(w, (size_t)rows * cols, 17);
    for (int bits = 2; bits <= 4; bits++) {
        GptqParams p = study_params(bits, 128);
        memcpy(q, w, (size_t)rows * cols * sizeof(float));
        GptqResult res;
        REQUIRE(gptq_quantize(q, rows, cols, h, &p, NULL, NULL, NULL, &res) == GPTQ_OK);
        rtn_fake_quantize(w, rtn, rows, cols, bits, 128, true);
        double e_gptq = output_error(w, q, rows, cols, x, n);
        double e_rtn = output_error(w, rtn, rows, cols, x, n);
        CHECK_MSG(e_gptq < 0.8 * e_rtn, "bits %d: GPTQ error %g, RTN %g", bits, e_gptq, e_rtn);
        CHECK(res.loss > 0);
        CHECK_NEAR(res.damp, 0.01, 1e-12);
        CHECK_EQ_INT(res.n_dead, 0);
    }
    free(x);
    free(h);
    free(w);
    free(q);
    free(rtn);
}

// Every output value sits on its group's grid: (value / scale) is an integer code in range.
TEST(gptq_output_on_returned_grid) {
    const int rows = 8, cols = 200, n = 600, group = 64;
    float *x = correlated_inputs(n, cols, 9);
    double *h = hessian_of(x, n, cols);
    float *w = xmalloc((size_t)rows * cols * sizeof(float));
    fill(w, (size_t)rows * cols, 21);
    int n_groups = gptq_group_count(cols, group);
    CHECK_EQ_INT(n_groups, 4);
    float *scales = xmalloc((size_t)rows * n_groups * sizeof(float));
    int *zeros = xmalloc((size_t)rows * n_groups * sizeof(int));
    for (int sym = 0; sym <= 1; sym++) {
        float *q = xmalloc((size_t)rows * cols * sizeof(float));
        memcpy(q, w, (size_t)rows * cols * sizeof(float));
        GptqParams p = study_params(3, group);
        p.symmetric = sym;
        GptqResult res;
        REQUIRE(gptq_quantize(q, rows, cols, h, &p, scales, zeros, NULL, &res) == GPTQ_OK);
        int lo = sym ? -4 : 0, hi = sym ? 3 : 7;
        for (int r = 0; r < rows; r++) {
            for (int j = 0; j < cols; j++) {
                float s = scales[(size_t)r * n_groups + j / group];
                int z = zeros[(size_t)r * n_groups + j / group];
                double code = q[(size_t)r * cols + j] / s + z;
                CHECK_MSG(fabs(code - rint(code)) < 1e-3, "row %d col %d: code %g", r, j, code);
                CHECK(rint(code) >= lo);
                CHECK(rint(code) <= hi);
            }
        }
        // Static groups: the scales are those of the original weights.
        int zero;
        float expected = rtn_quantize_group(w + 64, 64, 3, sym, NULL, &zero);
        CHECK_NEAR(scales[1], expected, 0);
        free(q);
    }
    free(scales);
    free(zeros);
    free(x);
    free(h);
    free(w);
}

// Weights already on the grid are a fixed point: every column rounds to itself, so no error is
// spread and GPTQ returns them unchanged.
TEST(gptq_idempotent_on_grid) {
    const int rows = 12, cols = 160, n = 500;
    float *x = correlated_inputs(n, cols, 13);
    double *h = hessian_of(x, n, cols);
    float *w = xmalloc((size_t)rows * cols * sizeof(float));
    float *q = xmalloc((size_t)rows * cols * sizeof(float));
    fill(w, (size_t)rows * cols, 31);
    for (int bits = 2; bits <= 8; bits += 2) {
        rtn_fake_quantize(w, w, rows, cols, bits, 32, true);
        memcpy(q, w, (size_t)rows * cols * sizeof(float));
        GptqParams p = study_params(bits, 32);
        GptqResult res;
        REQUIRE(gptq_quantize(q, rows, cols, h, &p, NULL, NULL, NULL, &res) == GPTQ_OK);
        double diff = max_abs_diff(w, q, (size_t)rows * cols);
        CHECK_MSG(diff <= 1e-6, "bits %d: requantizing moved a weight by %g", bits, diff);
        CHECK_NEAR(res.loss, 0, 1e-9);
    }
    free(x);
    free(h);
    free(w);
    free(q);
}

// Lazy batches reorganize the same updates: the batch size changes rounding only.
TEST(gptq_block_size_changes_rounding_only) {
    const int rows = 24, cols = 192, n = 800;
    float *x = correlated_inputs(n, cols, 41);
    double *h = hessian_of(x, n, cols);
    float *w = xmalloc((size_t)rows * cols * sizeof(float));
    fill(w, (size_t)rows * cols, 43);
    const int blocks[] = {1, 7, 64, 128, 192};
    float *ref = NULL;
    double ref_err = 0;
    for (size_t b = 0; b < ARRAY_LEN(blocks); b++) {
        float *q = xmalloc((size_t)rows * cols * sizeof(float));
        memcpy(q, w, (size_t)rows * cols * sizeof(float));
        GptqParams p = study_params(4, 64);
        p.block_size = blocks[b];
        GptqResult res;
        REQUIRE(gptq_quantize(q, rows, cols, h, &p, NULL, NULL, NULL, &res) == GPTQ_OK);
        double err = output_error(w, q, rows, cols, x, n);
        if (!ref) {
            ref = q;
            ref_err = err;
            continue;
        }
        int differ = 0;
        for (size_t i = 0; i < (size_t)rows * cols; i++) {
            differ += q[i] != ref[i];
        }
        // A float-rounding difference may flip a weight that sits at a rounding boundary.
        CHECK_MSG(differ <= rows * cols / 200, "block %d: %d of %d weights differ from block 1",
                  blocks[b], differ, rows * cols);
        CHECK_NEAR(err, ref_err, 0.02 * ref_err);
        free(q);
    }
    free(ref);
    free(x);
    free(h);
    free(w);
}

// A dead input (zero on every token) has H[j][j] = 0: its weights become 0, the rest is
// quantized as usual.
TEST(gptq_dead_columns_zeroed) {
    const int rows = 16, cols = 64, n = 400;
    float *x = correlated_inputs(n, cols, 51);
    const int dead[] = {0, 9, 63};
    for (int t = 0; t < n; t++) {
        for (size_t k = 0; k < ARRAY_LEN(dead); k++) {
            x[(size_t)t * cols + dead[k]] = 0.0f;
        }
    }
    double *h = hessian_of(x, n, cols);
    float *w = xmalloc((size_t)rows * cols * sizeof(float));
    float *q = xmalloc((size_t)rows * cols * sizeof(float));
    float *rtn = xmalloc((size_t)rows * cols * sizeof(float));
    fill(w, (size_t)rows * cols, 53);
    memcpy(q, w, (size_t)rows * cols * sizeof(float));
    GptqParams p = study_params(3, 32);
    GptqResult res;
    REQUIRE(gptq_quantize(q, rows, cols, h, &p, NULL, NULL, NULL, &res) == GPTQ_OK);
    CHECK_EQ_INT(res.n_dead, 3);
    for (int r = 0; r < rows; r++) {
        for (size_t k = 0; k < ARRAY_LEN(dead); k++) {
            CHECK(q[(size_t)r * cols + dead[k]] == 0.0f);
        }
        for (int j = 0; j < cols; j++) {
            CHECK(isfinite(q[(size_t)r * cols + j]));
        }
    }
    rtn_fake_quantize(w, rtn, rows, cols, 3, 32, true);
    CHECK(output_error(w, q, rows, cols, x, n) < output_error(w, rtn, rows, cols, x, n));

    // No calibration token at all: every input is dead and every weight becomes 0.
    double *zero_h = xcalloc((size_t)cols * cols, sizeof(double));
    memcpy(q, w, (size_t)rows * cols * sizeof(float));
    REQUIRE(gptq_quantize(q, rows, cols, zero_h, &p, NULL, NULL, NULL, &res) == GPTQ_OK);
    CHECK_EQ_INT(res.n_dead, cols);
    int nonzero = 0;
    for (size_t i = 0; i < (size_t)rows * cols; i++) {
        nonzero += q[i] != 0.0f;
    }
    CHECK_EQ_INT(nonzero, 0);
    free(zero_h);
    free(x);
    free(h);
    free(w);
    free(q);
    free(rtn);
}

// A Hessian with a negative eigenvalue: the damping is raised until the factorization succeeds.
TEST(gptq_non_positive_definite_hessian_retried) {
    const int rows = 4, cols = 2;
    // Eigenvalues 1 +- 1.03: the damped matrix is positive definite once damp > 0.03.
    double h[] = {1.0, 1.03, 1.03, 1.0};
    float w[] = {0.5f, -0.25f, 0.3f, 0.9f, -0.7f, 0.1f, 0.2f, 0.2f};
    float q[8];
    memcpy(q, w, sizeof w);
    GptqParams p = study_params(4, 0);
    GptqResult res;
    REQUIRE(gptq_quantize(q, rows, cols, h, &p, NULL, NULL, NULL, &res) == GPTQ_OK);
    CHECK(res.n_retries > 0);
    CHECK(res.damp > 0.03);
    CHECK(res.damp < 0.03 + GPTQ_DAMP_INCREMENT + 1e-12);
    CHECK(!res.compensation_failed);
    for (int i = 0; i < 8; i++) {
        CHECK(isfinite(q[i]));
    }

    // Eigenvalue 1 - 3 = -2 needs damping above 2: impossible below 1, so plain rounding.
    double hopeless[] = {1.0, 3.0, 3.0, 1.0};
    float rtn[8];
    memcpy(q, w, sizeof w);
    REQUIRE(gptq_quantize(q, rows, cols, hopeless, &p, NULL, NULL, NULL, &res) == GPTQ_OK);
    CHECK(res.compensation_failed);
    rtn_fake_quantize(w, rtn, rows, cols, 4, 0, true);
    CHECK(max_abs_diff(q, rtn, 8) == 0);
}

TEST(gptq_rejects_nonfinite_input) {
    double h[] = {1.0, 0.0, 0.0, 1.0};
    float w[] = {0.5f, NAN, 0.3f, 0.9f};
    GptqParams p = study_params(4, 0);
    GptqResult res;
    CHECK_EQ_INT(gptq_quantize(w, 2, 2, h, &p, NULL, NULL, NULL, &res), GPTQ_NONFINITE_WEIGHT);
    w[1] = 0.1f;
    h[3] = INFINITY;
    CHECK_EQ_INT(gptq_quantize(w, 2, 2, h, &p, NULL, NULL, NULL, &res), GPTQ_NONFINITE_HESSIAN);
    h[3] = 1.0;
    p.bits = 9;
    CHECK_EQ_INT(gptq_quantize(w, 2, 2, h, &p, NULL, NULL, NULL, &res), GPTQ_INVALID_PARAMS);
    CHECK(w[1] == 0.1f);
}

// ----------------------------------------------------------------------------
// Real activations of stories260K, through the calibration driver

// Calibration samples from the default C4 subset. Packed sampling reads only the documents it
// needs, which keeps the tests fast; windows sampling tokenizes the whole file.
static CalibrationSet *stories_calibration(const Model *m, int n_samples, int seq_len,
                                           uint64_t seed) {
    return qtest_c4_calibration(m, CALIB_SAMPLING_PACKED, n_samples, seq_len, seed);
}

TEST(gptq_beats_rtn_on_stories_activations) {
    Model *m = qtest_load_stories();
    CalibrationSet *cs = stories_calibration(m, 16, 128, 42);
    struct {
        BlockInput input;
        const char *name;
    } linears[] = {{BLOCK_INPUT_QKV, "attn_q"}, {BLOCK_INPUT_QKV, "attn_v"},
                   {BLOCK_INPUT_O, "attn_output"}, {BLOCK_INPUT_GATE_UP, "ffn_up"},
                   {BLOCK_INPUT_DOWN, "ffn_down"}};
    const int layers[] = {0, 2, 4}, bit_cases[] = {3, 4}, group_cases[] = {32, 0};
    for (size_t li = 0; li < ARRAY_LEN(layers); li++) {
        const Layer *L = &m->layers[layers[li]];
        const Weight *weights[] = {&L->attn_q, &L->attn_v, &L->attn_output, &L->ffn_up,
                                   &L->ffn_down};
        for (size_t k = 0; k < ARRAY_LEN(linears); k++) {
            int n = 0, dim = 0;
            float *x = calib_collect_inputs(m, cs, layers[li], linears[k].input, &n, &dim);
            REQUIRE_MSG(x != NULL, "%s", err_msg());
            REQUIRE(dim == weights[k]->cols);
            double *h = hessian_of(x, n, dim);
            int rows = weights[k]->rows;
            float *w = weight_to_f32(weights[k]);
            float *q = xmalloc((size_t)rows * dim * sizeof(float));
            float *rtn = xmalloc((size_t)rows * dim * sizeof(float));
            for (size_t b = 0; b < ARRAY_LEN(bit_cases); b++) {
                for (size_t g = 0; g < ARRAY_LEN(group_cases); g++) {
                    GptqParams p = study_params(bit_cases[b], group_cases[g]);
                    memcpy(q, w, (size_t)rows * dim * sizeof(float));
                    GptqResult res;
                    REQUIRE(gptq_quantize(q, rows, dim, h, &p, NULL, NULL, NULL, &res) == GPTQ_OK);
                    rtn_fake_quantize(w, rtn, rows, dim, p.bits, p.group_size, true);
                    double e_gptq = output_error(w, q, rows, dim, x, n);
                    double e_rtn = output_error(w, rtn, rows, dim, x, n);
                    CHECK_MSG(e_gptq < e_rtn, "block %d %s w%d g%d: GPTQ %g >= RTN %g",
                              layers[li], linears[k].name, p.bits, p.group_size, e_gptq, e_rtn);
                }
            }
            free(x);
            free(h);
            free(w);
            free(q);
            free(rtn);
        }
    }
    calib_set_free(cs);
    model_free(m);
}

TEST(gptq_model_closer_to_fp32_than_rtn) {
    Model *m = qtest_load_stories();
    CalibrationSet *cs = stories_calibration(m, 32, 256, 42);
    const char *pairs[][2] = {{"gptq:w3g32", "rtn:w3g32"},
                              {"gptq:w4g32", "rtn:w4g32"},
                              {"gptq:w4c", "rtn:w4c"}};
    for (size_t i = 0; i < ARRAY_LEN(pairs); i++) {
        QuantRecipe rg = qtest_recipe(pairs[i][0]), rr = qtest_recipe(pairs[i][1]);
        QuantReport report;
        Model *g = model_make_quantized(m, &rg, cs, &report);
        REQUIRE_MSG(g != NULL, "%s", err_msg());
        Model *r = model_make_quantized(m, &rr, NULL, NULL);
        REQUIRE_MSG(r != NULL, "%s", err_msg());
        CHECK_EQ_INT(report.n_linears, 7 * m->config.n_layer);
        CHECK_EQ_INT(report.n_compensation_failed, 0);
        double kl_g = qtest_kl_from_base(m, g), kl_r = qtest_kl_from_base(m, r);
        printf("  KL from fp32: %s %.4f, %s %.4f\n", pairs[i][0], kl_g, pairs[i][1], kl_r);
        CHECK_MSG(kl_g < kl_r, "%s KL %g is not below %s KL %g", pairs[i][0], kl_g, pairs[i][1],
                  kl_r);
        // Norms and embeddings stay shared with the base model.
        CHECK(g->layers[0].attn_norm == m->layers[0].attn_norm);
        CHECK(g->token_embd.data == m->token_embd.data);
        model_free(g);
        model_free(r);
    }
    calib_set_free(cs);
    model_free(m);
}

static bool same_block_weights(const Model *a, const Model *b) {
    bool same = true;
    for (int l = 0; same && l < a->config.n_layer; l++) {
        const Layer *x = &a->layers[l], *y = &b->layers[l];
        const Weight *wx[] = {&x->attn_q, &x->attn_k, &x->attn_v, &x->attn_output,
                              &x->ffn_gate, &x->ffn_up, &x->ffn_down};
        const Weight *wy[] = {&y->attn_q, &y->attn_k, &y->attn_v, &y->attn_output,
                              &y->ffn_gate, &y->ffn_up, &y->ffn_down};
        for (size_t i = 0; same && i < ARRAY_LEN(wx); i++) {
            float *vx = weight_to_f32(wx[i]), *vy = weight_to_f32(wy[i]);
            same = memcmp(vx, vy, (size_t)wx[i]->rows * wx[i]->cols * sizeof(float)) == 0;
            free(vx);
            free(vy);
        }
    }
    return same;
}

TEST(gptq_deterministic_for_seed) {
    Model *m = qtest_load_stories();
    CalibrationSet *a = stories_calibration(m, 8, 128, 7);
    CalibrationSet *b = stories_calibration(m, 8, 128, 8);
    QuantRecipe r = qtest_recipe("gptq:w4g32");
    Model *v1 = model_make_quantized(m, &r, a, NULL);
    Model *v2 = model_make_quantized(m, &r, a, NULL);
    Model *v3 = model_make_quantized(m, &r, b, NULL);
    REQUIRE(v1 != NULL);
    REQUIRE(v2 != NULL);
    REQUIRE(v3 != NULL);
    CHECK(same_block_weights(v1, v2));
    CHECK(!same_block_weights(v1, v3));
    model_free(v1);
    model_free(v2);
    model_free(v3);
    calib_set_free(a);
    calib_set_free(b);
    model_free(m);
}

// ----------------------------------------------------------------------------
// Timing on the Qwen2.5-0.5B shape

// Returns an integer from the environment, or `fallback` when unset.
static int env_int(const char *name, int fallback) {
    const char *v = getenv(name);
    return v && *v ? atoi(v) : fallback;
}

// A model of Qwen2.5-0.5B's shape (hidden 896, feed-forward 4864, 14 query and 2 key/value heads
// of 64, vocabulary 151936, tied embeddings) with n_layer blocks of random BF16 weights. Qwen2's
// q/k/v biases are left out: they do not change the cost of calibration.
static Model *random_qwen05b_shape(int n_layer) {
    Model *m = xcalloc(1, sizeof *m);
    m->path = xstrdup("(random Qwen2.5-0.5B shape)");
    m->variant = xstrdup("fp32");
    ModelConfig *c = &m->config;
    snprintf(c->arch_name, sizeof c->arch_name, "llama");
    c->n_vocab = 151936;
    c->n_embd = 896;
    c->n_layer = n_layer;
    c->n_head = 14;
    c->n_head_kv = 2;
    c->head_dim = 64;
    c->n_ff = 4864;
    c->n_ctx_train = 32768;
    c->rope_dim = 64;
    c->rope_freq_base = 1000000.0f;
    c->norm_eps = 1e-6f;
    c->tied_output = true;
    model_config_set_llama_rules(c);

    unsigned seed = 1234;
    m->layers = xcalloc((size_t)n_layer, sizeof(Layer));
    float *norms = xmalloc((size_t)c->n_embd * (1 + 2 * (size_t)n_layer) * sizeof(float));
    for (size_t i = 0; i < (size_t)c->n_embd * (1 + 2 * (size_t)n_layer); i++) {
        norms[i] = 1.0f + 0.1f * qtest_uniform(&seed);
    }
    model_own_vector(m, norms);
    m->output_norm = norms;
    int q_dim = c->n_head * c->head_dim, kv_dim = c->n_head_kv * c->head_dim;
    for (int l = 0; l < n_layer; l++) {
        Layer *L = &m->layers[l];
        L->attn_norm = norms + (size_t)c->n_embd * (1 + 2 * l);
        L->ffn_norm = L->attn_norm + c->n_embd;
        struct {
            Weight *w;
            int rows, cols;
        } shapes[] = {{&L->attn_q, q_dim, c->n_embd},      {&L->attn_k, kv_dim, c->n_embd},
                      {&L->attn_v, kv_dim, c->n_embd},     {&L->attn_output, c->n_embd, q_dim},
                      {&L->ffn_gate, c->n_ff, c->n_embd},  {&L->ffn_up, c->n_ff, c->n_embd},
                      {&L->ffn_down, c->n_embd, c->n_ff}};
        for (size_t i = 0; i < ARRAY_LEN(shapes); i++) {
            Weight *w = shapes[i].w;
            size_t n = (size_t)shapes[i].rows * shapes[i].cols;
            uint16_t *data = xmalloc(n * sizeof(uint16_t));
            // Uniform with the standard deviation 0.02 of common initializations.
            for (size_t k = 0; k < n; k++) {
                data[k] = fp32_to_bf16(0.0346f * qtest_uniform(&seed));
            }
            w->name = "random";
            w->rows = shapes[i].rows;
            w->cols = shapes[i].cols;
            w->type = GGML_TYPE_BF16;
            w->data = data;
            w->owned = data;
        }
    }
    size_t n_embd_values = (size_t)c->n_vocab * c->n_embd;
    uint16_t *embd = xmalloc(n_embd_values * sizeof(uint16_t));
    for (size_t k = 0; k < n_embd_values; k++) {
        embd[k] = fp32_to_bf16(0.0346f * qtest_uniform(&seed));
    }
    Weight e = {.name = "token_embd", .rows = c->n_vocab, .cols = c->n_embd,
                .type = GGML_TYPE_BF16, .data = embd, .owned = NULL};
    m->token_embd = e;
    m->output = e;
    return m;
}

// Times a recipe on the Qwen2.5-0.5B shape. By default one block and 4 x 512 tokens, which keeps
// the suite fast; QBIAS_BENCH_LAYERS (24 for the whole model), QBIAS_BENCH_SAMPLES,
// QBIAS_BENCH_SEQ and QBIAS_BENCH_RECIPE select the full measurement.
TEST(quant_time_qwen05b_shape) {
    int n_layer = env_int("QBIAS_BENCH_LAYERS", 1);
    int n_samples = env_int("QBIAS_BENCH_SAMPLES", 4), seq_len = env_int("QBIAS_BENCH_SEQ", 512);
    const char *text = getenv("QBIAS_BENCH_RECIPE") ? getenv("QBIAS_BENCH_RECIPE") : "gptq:w4g128";
    REQUIRE(n_layer > 0);
    REQUIRE(n_samples > 0);
    REQUIRE(seq_len > 0);
    Model *base = random_qwen05b_shape(n_layer);

    int n_tokens = n_samples * seq_len;
    int *tokens = xmalloc((size_t)n_tokens * sizeof(int));
    int *lengths = xmalloc((size_t)n_samples * sizeof(int));
    unsigned seed = 99;
    for (int t = 0; t < n_tokens; t++) {
        tokens[t] = (int)((qtest_uniform(&seed) + 1.0f) * 0.5f * (base->config.n_vocab - 1));
    }
    for (int s = 0; s < n_samples; s++) {
        lengths[s] = seq_len;
    }
    CalibrationSet *cs = calib_set_from_tokens(tokens, lengths, n_samples);
    QuantRecipe r = qtest_recipe(text);
    QuantReport report;
    Model *v = model_make_quantized(base, &r, cs, &report);
    REQUIRE_MSG(v != NULL, "%s", err_msg());
    printf("  %s on the Qwen2.5-0.5B shape, %d block(s), %d x %d tokens: %.1f s (%.1f s per "
           "block)\n", text, n_layer, n_samples, seq_len, report.seconds,
           report.seconds / n_layer);
    CHECK_EQ_INT(report.n_linears, 7 * n_layer);
    CHECK_EQ_INT(report.n_compensation_failed, 0);

    // The result sits on the recipe's grid and is finite.
    if (r.algo == QUANT_ALGO_GPTQ || r.algo == QUANT_ALGO_AWQ) {
        const Weight *w = &v->layers[0].ffn_down;
        float *values = weight_to_f32(w);
        float *requant = xmalloc((size_t)w->rows * w->cols * sizeof(float));
        rtn_fake_quantize(values, requant, w->rows, w->cols, r.weight_bits, r.group_size, true);
        double max_diff = 0;
        for (size_t i = 0; i < (size_t)w->rows * w->cols; i++) {
            REQUIRE(isfinite(values[i]));
            max_diff = fmax(max_diff, fabs(requant[i] - values[i]));
        }
        // GPTQ's static groups may use code -8 next to a group maximum of 7 steps, which
        // requantizing from the values reads as a different scale: allow one step.
        CHECK(max_diff < 0.05);
        free(requant);
        free(values);
    }

    model_free(v);
    free((void *)base->token_embd.data);
    model_free(base);
    calib_set_free(cs);
    free(tokens);
    free(lengths);
}
