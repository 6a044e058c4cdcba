// test_format.c: packed weight formats: code round trips, sizes, and RTN packing that dequantizes
// to exactly quant/rtn.c's fake-quantized values.
#include <stdlib.h>
#include <string.h>

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

TEST(format_scales_and_zeros_round_trip) {
    const QFormat f32 = {4, 32, false, false, true}, f16 = {4, 32, false, true, false};
    QMatrix *a = qmatrix_new(20, 100, &f32), *b = qmatrix_new(20, 100, &f16);
    REQUIRE(a && b);
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
        REQUIRE(w && fake && back);
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
