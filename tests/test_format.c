// test_format.c: packed weight formats: code round trips, sizes, RTN packing that dequantizes to
// exactly quant/rtn.c's fake-quantized values, and quantized model variants running on packed
// weights (scores against the fake-quant path, batch and thread independence, memory).
#include <stdlib.h>
#include <string.h>

#include "../engine/forward.h"
#include "../engine/score.h"
#include "../engine/util.h"
#include "../quant/format.h"
#include "../quant/rtn.h"
#include "test.h"

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static const QFormat formats[] = {
    {8, 128, true, false, false}, {8, 32, false, true, true},  {4, 128, true, true, false},
    {4, 64, false, false, true},  {4, 0, true, false, true},   {3, 128, true, false, false},
    {3, 32, false, true, true},   {3, 0, false, false, false}, {2, 128, true, false, false},
    {5, 64, false, false, true},  {6, 0, true, true, false},   {7, 32, true, false, true},
};

// Every code written is read back by the kernels' accessor, whatever the layout and neighbors.
TEST(format_codes_round_trip) {
    const int shapes[][2] = {{1, 1}, {17, 172}, {33, 64}, {5, 300}};
    for (size_t fi = 0; fi < COUNT(formats); fi++) {
        const QFormat *f = &formats[fi];
        for (size_t s = 0; s < COUNT(shapes); s++) {
            int rows = shapes[s][0], cols = shapes[s][1];
            QMatrix *m = qmatrix_new(rows, cols, f);
            REQUIRE(m != NULL);
            int levels = 1 << f->code_bits;
            for (int r = 0; r < rows; r++) {
                for (int c = 0; c < cols; c++) {
                    qmatrix_set_code(m, r, c, (r * 7 + c * 13) % levels);
                }
            }
            int bad = 0;
            for (int r = 0; r < rows; r++) {
                for (int c = 0; c < cols; c++) {
                    bad += kq_code(&m->view, r, c) != (r * 7 + c * 13) % levels;
                }
            }
            CHECK_MSG(bad == 0, "W%d g%d %s: %d of %dx%d codes read back wrong", f->code_bits,
                      f->group, f->int8_acts ? "tiles" : "rows", bad, rows, cols);
            free(m);
        }
    }
}

// 4-bit KQ_ROWS codes sit where kernels.h documents: 128-column superblocks, then 32-column blocks.
// The kernels read those bytes directly, so the accessor round trip above is not enough.
TEST(format_rows4_byte_positions) {
    const QFormat f = {4, 32, true, false, false};
    // 480 columns: superblocks for 0 .. 383, then three 32-column blocks.
    QMatrix *m = qmatrix_new(2, 480, &f);
    REQUIRE(m != NULL);
    CHECK_EQ_INT(kq_rows_super_cols(&m->view), 384);
    CHECK_EQ_INT((int)m->view.stride, 240);
    const struct {
        int col;
        int byte; // in the row
        bool high;
    } cases[] = {
        {0, 0, false},   {16, 0, true},    {32, 1, false},   {112, 3, true},   {5, 20, false},
        {53, 21, true},  {127, 63, true},  {128 + 53, 85, true}, {384, 192, false},
        {384 + 16, 192, true}, {384 + 15, 207, false}, {479, 239, true},
    };
    for (size_t i = 0; i < COUNT(cases); i++) {
        memset((void *)m->view.codes, 0, 2 * m->view.stride);
        qmatrix_set_code(m, 1, cases[i].col, 9);
        const uint8_t *line = m->view.codes + m->view.stride;
        int expected = cases[i].high ? 9 << 4 : 9;
        CHECK_MSG(line[cases[i].byte] == expected, "column %d: byte %d holds 0x%02x, expected 0x%02x",
                  cases[i].col, cases[i].byte, line[cases[i].byte], expected);
    }
    free(m);
}

// 3-bit KQ_ROWS codes: in a superblock, bits 3t .. 3t + 2 of the 24-bit word at byte 3 (c % 16),
// with t = (c % 128) / 16. After the superblocks, 12-byte blocks of 32 columns.
TEST(format_rows3_byte_positions) {
    const QFormat f = {3, 32, true, false, false};
    QMatrix *m = qmatrix_new(2, 480, &f);
    REQUIRE(m != NULL);
    CHECK_EQ_INT(kq_rows_super_cols(&m->view), 384);
    CHECK_EQ_INT((int)m->view.stride, 180);
    const struct {
        int col;
        int byte;     // of the 24-bit word in the row
        uint32_t word; // its value after storing code 5 (binary 101)
    } cases[] = {
        {0, 0, 5},          {16, 0, 5 << 3},  {5, 15, 5},         {53, 15, 5 << 9},
        {127, 45, 5 << 21}, {128 + 53, 63, 5 << 9}, {383, 141, 5 << 21},
    };
    for (size_t i = 0; i < COUNT(cases); i++) {
        memset((void *)m->view.codes, 0, 2 * m->view.stride);
        qmatrix_set_code(m, 1, cases[i].col, 5);
        const uint8_t *word = m->view.codes + m->view.stride + cases[i].byte;
        uint32_t value = (uint32_t)word[0] | (uint32_t)word[1] << 8 | (uint32_t)word[2] << 16;
        CHECK_MSG(value == cases[i].word, "column %d: word at byte %d is 0x%06x, expected 0x%06x",
                  cases[i].col, cases[i].byte, value, cases[i].word);
    }

    // Column 384 + 9: block at byte 144, low bits in byte 1 (bits 2-3), high bit in byte 9 (bit 1).
    memset((void *)m->view.codes, 0, 2 * m->view.stride);
    qmatrix_set_code(m, 1, 384 + 9, 5);
    const uint8_t *block = m->view.codes + m->view.stride + 144;
    CHECK_EQ_INT(block[1], 1 << 2);
    CHECK_EQ_INT(block[9], 1 << 1);
    free(m);
}

// Writes code u of column c into a row stored in 32-column blocks only, as layouts before the
// superblocks did (4-bit before version 2, 3-bit before version 3).
static void set_blocks_only_code(uint8_t *line, int bits, int c, int u) {
    int i = c % 32;
    if (bits == 4) {
        line[(c / 32) * 16 + i % 16] |= (uint8_t)(i < 16 ? u : u << 4);
        return;
    }
    uint8_t *block = line + (c / 32) * 12;
    block[i % 8] |= (uint8_t)((u & 3) << (2 * (i / 8)));
    block[8 + i / 8] |= (uint8_t)(((u >> 2) & 1) << (i % 8));
}

// Files written before the superblocks load with the same codes: 4-bit rows of layout 1 and 3-bit
// rows of layouts 1 and 2 are converted. A version this qbias does not know is rejected.
TEST(format_payload_old_layouts_convert) {
    const struct {
        int bits, version;
    } cases[] = {{4, 1}, {3, 1}, {3, 2}};
    for (size_t k = 0; k < COUNT(cases); k++) {
        const int bits = cases[k].bits, levels = 1 << bits;
        const QFormat f = {bits, 64, false, true, false};
        const int rows = 3, cols = 300;
        QMatrix *m = qmatrix_new(rows, cols, &f);
        REQUIRE(m != NULL);
        for (int r = 0; r < rows; r++) {
            for (int g = 0; g < m->view.n_groups; g++) {
                qmatrix_set_group(m, r, g, 0.25f * (float)(r + g + 1), (r + g) % levels);
            }
        }

        // The payload with its codes in 32-column blocks only.
        const void *data = NULL;
        size_t nbytes = 0;
        qmatrix_payload(m, &data, &nbytes);
        unsigned char *old = malloc(nbytes);
        REQUIRE(old != NULL);
        memcpy(old, data, nbytes);
        for (int r = 0; r < rows; r++) {
            uint8_t *line = old + (size_t)r * m->view.stride;
            memset(line, 0, m->view.stride);
            for (int c = 0; c < cols; c++) {
                set_blocks_only_code(line, bits, c, (r * 5 + c * 11) % levels);
            }
        }

        QMatrix *converted = qmatrix_from_payload(rows, cols, &f, old, nbytes, cases[k].version);
        REQUIRE(converted != NULL);
        int bad = 0;
        for (int r = 0; r < rows; r++) {
            for (int c = 0; c < cols; c++) {
                bad += kq_code(&converted->view, r, c) != (r * 5 + c * 11) % levels;
            }
            for (int g = 0; g < converted->view.n_groups; g++) {
                bad += kq_scale(&converted->view, r, g) != kq_scale(&m->view, r, g);
                bad += kq_zero(&converted->view, r, g) != kq_zero(&m->view, r, g);
            }
        }
        CHECK_MSG(bad == 0, "W%d layout %d: %d codes, scales or zero points differ after converting",
                  bits, cases[k].version, bad);

        // The current version is copied as it is, and unknown versions are rejected.
        QMatrix *current = qmatrix_from_payload(rows, cols, &f, old, nbytes, QMATRIX_LAYOUT_VERSION);
        REQUIRE(current != NULL);
        CHECK(memcmp(current->view.codes, old, (size_t)rows * m->view.stride) == 0);
        CHECK(qmatrix_from_payload(rows, cols, &f, old, nbytes, QMATRIX_LAYOUT_VERSION + 1) == NULL);
        CHECK(qmatrix_from_payload(rows, cols, &f, old, nbytes, 0) == NULL);
        free(current);
        free(converted);
        free(old);
        free(m);
    }
}

TEST(format_scales_and_zeros_round_trip) {
    const QFormat f32 = {4, 32, false, false, true}, f16 = {4, 32, false, true, false};
    QMatrix *a = qmatrix_new(20, 100, &f32), *b = qmatrix_new(20, 100, &f16);
    REQUIRE(a != NULL);
    REQUIRE(b != NULL);
    CHECK_EQ_INT(a->view.n_groups, 4);
    for (int r = 0; r < 20; r++) {
        for (int g = 0; g < 4; g++) {
            qmatrix_set_group(a, r, g, 0.1f * (float)(r + g), r + g);
            qmatrix_set_group(b, r, g, 0.5f * (float)(r + g), 15 - g);
        }
    }
    for (int r = 0; r < 20; r++) {
        for (int g = 0; g < 4; g++) {
            CHECK(kq_scale(&a->view, r, g) == 0.1f * (float)(r + g));
            CHECK_EQ_INT(kq_zero(&a->view, r, g), r + g);
            // Multiples of 0.5 below 2048 are exact in fp16.
            CHECK(kq_scale(&b->view, r, g) == 0.5f * (float)(r + g));
            CHECK_EQ_INT(kq_zero(&b->view, r, g), 15 - g);
        }
    }
    free(a);
    free(b);
}

TEST(format_bits_per_weight) {
    // 4-bit codes, G = 128, fp16 scales: 4 + 16 / 128 bits.
    QFormat f = {4, 128, true, true, false};
    CHECK_NEAR(qformat_bits_per_weight(&f, 4096, 4096), 4.125, 1e-12);
    f.fp16_scales = false;
    f.symmetric = false;
    CHECK_NEAR(qformat_bits_per_weight(&f, 4096, 4096), 4.0 + 40.0 / 128.0, 1e-12);
    QFormat f3 = {3, 128, true, true, false};
    CHECK_NEAR(qformat_bits_per_weight(&f3, 896, 4864), 3.125, 1e-12);
    QFormat f8 = {8, 0, true, false, true};
    CHECK_NEAR(qformat_bits_per_weight(&f8, 4096, 4096), 8.0 + 32.0 / 4096.0, 1e-12);
    // 172 columns pad to 192 and 10 rows of tiles to 16.
    CHECK_NEAR(qformat_bits_per_weight(&f8, 10, 172), (16.0 * 192 + 16 * 4) * 8 / 1720.0, 1e-9);
}

TEST(format_rejects_invalid_groups) {
    const QFormat bad_group = {4, 48, true, false, false}, bad_bits = {9, 32, true, false, false};
    const QFormat ok_row = {4, 0, true, false, false}, ok_group = {4, 256, true, false, true};
    CHECK(qformat_check(&bad_group) != NULL);
    CHECK(qformat_check(&bad_bits) != NULL);
    CHECK(qformat_check(&ok_row) == NULL);
    CHECK(qformat_check(&ok_group) == NULL);
    CHECK_EQ_INT(qformat_container_bits(&(QFormat){3, 32, true, false, true}), 4);
    CHECK_EQ_INT(qformat_container_bits(&(QFormat){3, 32, true, false, false}), 3);
    CHECK_EQ_INT(qformat_container_bits(&(QFormat){2, 32, true, false, false}), 4);
    CHECK_EQ_INT(qformat_container_bits(&(QFormat){5, 32, true, false, false}), 8);
}

// Packing by RTN keeps rtn.c's codes and scales, so dequantizing gives its fake-quantized values
// bit for bit, including the short last group (172 columns, G = 128: 128 + 44).
TEST(format_rtn_dequantizes_to_fake_quant) {
    const int rows = 9, col_cases[] = {172, 64, 300};
    for (size_t ci = 0; ci < COUNT(col_cases); ci++) {
        int cols = col_cases[ci];
        float *w = malloc((size_t)rows * cols * sizeof(float));
        float *fake = malloc((size_t)rows * cols * sizeof(float));
        float *back = malloc((size_t)cols * sizeof(float));
        REQUIRE(w != NULL);
        REQUIRE(fake != NULL);
        REQUIRE(back != NULL);
        for (int i = 0; i < rows * cols; i++) {
            // Deterministic values with a few large ones, as real weights have.
            w[i] = sinf((float)i * 0.37f) * (i % 29 == 0 ? 6.0f : 1.0f);
        }
        for (size_t fi = 0; fi < COUNT(formats); fi++) {
            QFormat f = formats[fi];
            f.fp16_scales = false;
            rtn_fake_quantize(w, fake, rows, cols, f.code_bits, f.group, f.symmetric);
            QMatrix *m = qmatrix_new(rows, cols, &f);
            REQUIRE(m != NULL);
            for (int r = 0; r < rows; r++) {
                qmatrix_quantize_row_rtn(m, r, w + (size_t)r * cols);
            }
            int bad = 0;
            for (int r = 0; r < rows; r++) {
                qmatrix_dequantize_row(m, r, back);
                bad += memcmp(back, fake + (size_t)r * cols, (size_t)cols * sizeof(float)) != 0;
            }
            CHECK_MSG(bad == 0, "W%d g%d %s %s, %d columns: %d rows differ from rtn_fake_quantize",
                      f.code_bits, f.group, f.symmetric ? "sym" : "asym",
                      f.int8_acts ? "tiles" : "rows", cols, bad);
            free(m);
        }
        free(w);
        free(fake);
        free(back);
    }
}

// ----------------------------------------------------------------------------
// Packed model variants on stories260K

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
    REQUIRE_MSG(v != NULL, "%s: %s", text, err_msg());
    return v;
}

static const char *sentences[] = {
    "Once upon a time, there was a little girl named Lily.",
    "The doctor said, \"Hello, little boy.\"",
    "He was a nurse.",
    "She was a nurse.",
    "The cat sat on the mat and looked at the big red ball for a long time.",
    "Tom and Sue went to the park.",
};

static void score_sentences(const Model *m, int max_batch_tokens, int threads, ScoreResult *out) {
    ScoreRequest reqs[COUNT(sentences)];
    for (size_t i = 0; i < COUNT(sentences); i++) {
        reqs[i] = (ScoreRequest){.context = "", .continuation = sentences[i]};
    }
    kernels_set_threads(threads);
    ScoreOptions options = {.max_batch_tokens = max_batch_tokens};
    REQUIRE_OK(score_requests(m, reqs, (int)COUNT(sentences), &options, out));
}

static void free_results(ScoreResult *r, size_t n) {
    for (size_t i = 0; i < n; i++) {
        score_result_free(&r[i]);
    }
}

// The seven quantized matrices of a layer.
static void layer_weights(Layer *layer, Weight *out[7]) {
    Weight *list[7] = {&layer->attn_q,   &layer->attn_k, &layer->attn_v, &layer->attn_output,
                       &layer->ffn_gate, &layer->ffn_up, &layer->ffn_down};
    memcpy(out, list, sizeof list);
}

// Weight-only packed variants equal the fake-quant path bit for bit (same dequantized values, same
// 16-lane order). Int8-activation products differ by the float rounding of the group sums and
// scales only: a few ulps per matrix product, checked on every matrix. Through a whole model that
// rounding can flip an activation's int8 code where x / scale sits on a rounding boundary. Such a
// flip moves the activation by a whole quantization step, so sentence scores are compared with a
// tolerance of 2% (seen: 0.8% for one sentence of rtn:w8ca8, 0.1% or less for the rest).
TEST(packed_scores_equal_fake_quant) {
    static const char *specs[] = {"rtn:w4g128", "rtn:w8g128", "rtn:w3g128-asym", "rtn:w4c",
                                  "rtn:w2g32-f16", "rtn:w4g128a8", "rtn:w8ca8", "rtn:w4g32a8-asym"};
    Model *base = load_stories();
    for (size_t s = 0; s < COUNT(specs); s++) {
        char fake_spec[80];
        snprintf(fake_spec, sizeof fake_spec, "%s-fake", specs[s]);
        Model *packed = make_variant(base, specs[s]);
        Model *fake = make_variant(base, fake_spec);
        bool int8_acts = strstr(specs[s], "a8") != NULL;

        for (int l = 0; l < base->config.n_layer; l++) {
            Weight *a[7], *b[7];
            layer_weights(&packed->layers[l], a);
            layer_weights(&fake->layers[l], b);
            for (int i = 0; i < 7; i++) {
                REQUIRE(a[i]->packed != NULL);
                REQUIRE(b[i]->packed == NULL);
                int n = 5, rows = a[i]->rows, cols = a[i]->cols;
                float *x = xmalloc((size_t)n * cols * sizeof(float));
                float *ya = xmalloc((size_t)n * rows * sizeof(float));
                float *yb = xmalloc((size_t)n * rows * sizeof(float));
                for (int j = 0; j < n * cols; j++) {
                    x[j] = sinf((float)j * 0.71f + (float)l);
                }
                linear_forward(a[i], x, n, ya);
                linear_forward(b[i], x, n, yb);
                for (int j = 0; j < n * rows; j++) {
                    CHECK_NEAR(ya[j], yb[j], int8_acts ? 1e-6 * (1 + fabsf(yb[j])) : 0);
                }
                free(x);
                free(ya);
                free(yb);
            }
        }

        ScoreResult ra[COUNT(sentences)], rb[COUNT(sentences)];
        score_sentences(packed, 4096, 1, ra);
        score_sentences(fake, 4096, 1, rb);
        for (size_t i = 0; i < COUNT(sentences); i++) {
            double tolerance = int8_acts ? 0.02 * fabs(rb[i].logprob) : 0;
            CHECK_MSG(fabs(ra[i].logprob - rb[i].logprob) <= tolerance,
                      "%s sentence %zu: packed %.9g, fake %.9g", specs[s], i, ra[i].logprob,
                      rb[i].logprob);
        }
        free_results(ra, COUNT(sentences));
        free_results(rb, COUNT(sentences));
        model_free(fake);
        model_free(packed);
    }
    model_free(base);
}

TEST(packed_scores_independent_of_batch_and_threads) {
    static const char *specs[] = {"rtn:w4g128a8", "rtn:w8g128a8-asym", "rtn:w4g128", "rtn:w3c"};
    Model *base = load_stories();
    for (size_t s = 0; s < COUNT(specs); s++) {
        Model *v = make_variant(base, specs[s]);
        ScoreResult reference[COUNT(sentences)];
        score_sentences(v, 1, 1, reference);
        const int limits[] = {16, 4096}, threads[] = {1, 2, 3};
        for (size_t li = 0; li < COUNT(limits); li++) {
            for (size_t ti = 0; ti < COUNT(threads); ti++) {
                ScoreResult got[COUNT(sentences)];
                score_sentences(v, limits[li], threads[ti], got);
                for (size_t i = 0; i < COUNT(sentences); i++) {
                    CHECK_MSG(got[i].logprob == reference[i].logprob,
                              "%s sentence %zu, batch limit %d, %d threads: %.9g vs %.9g", specs[s],
                              i, limits[li], threads[ti], got[i].logprob, reference[i].logprob);
                }
                free_results(got, COUNT(sentences));
            }
        }
        free_results(reference, COUNT(sentences));
        model_free(v);
    }
    model_free(base);
}

// Bytes per quantized weight of the whole variant. stories260K's 172-column rows pad to 192 and
// its 64-column rows hold one group of 64, so it needs more than the 4.25 bits of large models.
TEST(packed_variant_memory) {
    Model *base = load_stories();
    Model *w4 = make_variant(base, "rtn:w4g128");
    Model *fake = make_variant(base, "rtn:w4g128-fake");
    size_t params = 0, packed_bytes = 0, fake_bytes = 0;
    for (int l = 0; l < base->config.n_layer; l++) {
        Weight *a[7], *b[7];
        layer_weights(&w4->layers[l], a);
        layer_weights(&fake->layers[l], b);
        for (int i = 0; i < 7; i++) {
            params += (size_t)a[i]->rows * (size_t)a[i]->cols;
            packed_bytes += weight_nbytes(a[i]);
            fake_bytes += weight_nbytes(b[i]);
        }
    }
    double per_weight = (double)packed_bytes / (double)params;
    printf("  rtn:w4g128 on stories260K: %.3f bytes per quantized weight\n", per_weight);
    CHECK(per_weight > 0.5);
    CHECK(per_weight < 0.75);
    CHECK_EQ_INT(fake_bytes, params * 4);
    model_free(fake);
    model_free(w4);
    model_free(base);
}

TEST(packed_variant_rejects_unpackable_group) {
    Model *base = load_stories();
    QuantSpec spec;
    char error[512];
    REQUIRE(quant_spec_parse("rtn:w4g48", &spec, error, sizeof error) == 0);
    CHECK(model_make_variant(base, &spec) == NULL);
    CHECK(strstr(err_msg(), "multiple of 32") != NULL);
    CHECK(strstr(err_msg(), "-fake") != NULL);
    // The simulated path takes any group.
    REQUIRE(quant_spec_parse("rtn:w4g48-fake", &spec, error, sizeof error) == 0);
    Model *v = model_make_variant(base, &spec);
    CHECK(v != NULL);
    model_free(v);
    model_free(base);
}

TEST(spec_parses_packing_suffixes) {
    QuantSpec spec;
    char error[512];
    REQUIRE(quant_spec_parse("rtn:w4g128a8-asym-f16-fake", &spec, error, sizeof error) == 0);
    CHECK_STR(spec.text, "rtn:w4g128a8-asym-f16-fake");
    CHECK_EQ_INT(spec.act_bits, 8);
    CHECK(!spec.symmetric);
    CHECK(spec.fp16_scales);
    CHECK(spec.fake_quant);
    REQUIRE(quant_spec_parse("rtn:w8ca8", &spec, error, sizeof error) == 0);
    CHECK_STR(spec.text, "rtn:w8ca8");
    CHECK(spec.symmetric);
    CHECK(!spec.fp16_scales);
    CHECK(!spec.fake_quant);
    REQUIRE(quant_spec_parse("rtn:w3g64-f16", &spec, error, sizeof error) == 0);
    CHECK_EQ_INT(spec.act_bits, 0);
    CHECK(spec.fp16_scales);

    static const char *bad[] = {"rtn:w4g128-fake-asym", "rtn:w4g128a4", "rtn:w4g128-asym-asym",
                                "rtn:w4g128a8a8", "rtn:w4a8"};
    for (size_t i = 0; i < COUNT(bad); i++) {
        CHECK_MSG(quant_spec_parse(bad[i], &spec, error, sizeof error) == -1, "'%s' was accepted",
                  bad[i]);
    }
}
