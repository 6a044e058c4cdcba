// test_ggml_quants.c: llama.cpp block formats, dequantized and compared with the F32 weights they
// were quantized from (llama-quantize outputs of the same random-weight models), and with blocks
// built by hand.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../engine/ggml_quants.h"
#include "../engine/gguf.h"
#include "../engine/util.h"
#include "../kernels/half.h"
#include "test.h"

// Relative RMS error of every quantized 2-D tensor of `quantized` against the same tensor of
// `original`, per type. A wrong bit layout gives errors near or above 1; correct layouts give the
// format's quantization noise.
static void check_against_original(const char *quantized_path, const char *original_path,
                                   GGMLType type, double max_relative_rms, int min_tensors) {
    GGUFFile *q = gguf_open(test_shared_path(quantized_path));
    GGUFFile *f = gguf_open(test_shared_path(original_path));
    REQUIRE_MSG(q && f, "%s", err_msg());
    int checked = 0;
    double worst = 0;
    for (uint64_t i = 0; i < q->n_tensors; i++) {
        const GGUFTensor *t = &q->tensors[i];
        if (t->type != type) {
            continue;
        }
        const GGUFTensor *ref = gguf_find_tensor(f, t->name);
        REQUIRE_MSG(ref != NULL, "%s missing in the original", t->name);
        int64_t n = gguf_tensor_nelements(t);
        float *deq = xmalloc((size_t)n * sizeof(float));
        float *orig = xmalloc((size_t)n * sizeof(float));
        REQUIRE(ggml_dequantize(t->type, t->data, deq, n) == 0);
        REQUIRE(ggml_dequantize(ref->type, ref->data, orig, n) == 0);
        double err = 0, norm = 0;
        for (int64_t k = 0; k < n; k++) {
            err += (deq[k] - orig[k]) * (double)(deq[k] - orig[k]);
            norm += (double)orig[k] * orig[k];
        }
        double rel = sqrt(err / norm);
        CHECK_MSG(rel <= max_relative_rms, "%s (%s): relative RMS error %.4f > %.4f", t->name,
                  ggml_type_name(t->type), rel, max_relative_rms);
        worst = rel > worst ? rel : worst;
        checked++;
        free(deq);
        free(orig);
    }
    printf("  %s: %d tensors, max relative RMS error %.4f\n", ggml_type_name(type), checked, worst);
    CHECK_MSG(checked >= min_tensors, "%s: only %d %s tensors checked", quantized_path, checked,
              ggml_type_name(type));
    gguf_close(q);
    gguf_close(f);
}

// Bounds: 8-bit ~0.4% and 6-bit ~1.5% relative noise on Gaussian weights, 4-bit ~10%; the limits
// leave room while a layout error (values in the wrong places) gives ~140%.
TEST(dequantize_q8_0_matches_original) {
    check_against_original("reference/tiny-models/qwen2-tiny/qwen2-tiny-Q8_0.gguf",
                           "reference/tiny-models/qwen2-tiny/qwen2-tiny.gguf", GGML_TYPE_Q8_0, 0.01,
                           15);
}

TEST(dequantize_q4_0_matches_original) {
    check_against_original("reference/tiny-models/qwen2-tiny/qwen2-tiny-Q4_0.gguf",
                           "reference/tiny-models/qwen2-tiny/qwen2-tiny.gguf", GGML_TYPE_Q4_0, 0.15,
                           14);
}

TEST(dequantize_q4_k_matches_original) {
    check_against_original("reference/tiny-models/qwen2-kquant-tiny/qwen2-kquant-tiny-Q4_K_M.gguf",
                           "reference/tiny-models/qwen2-kquant-tiny/qwen2-kquant-tiny.gguf",
                           GGML_TYPE_Q4_K, 0.15, 10);
}

TEST(dequantize_q6_k_matches_original) {
    check_against_original("reference/tiny-models/qwen2-kquant-tiny/qwen2-kquant-tiny-Q6_K.gguf",
                           "reference/tiny-models/qwen2-kquant-tiny/qwen2-kquant-tiny.gguf",
                           GGML_TYPE_Q6_K, 0.03, 15);
    check_against_original("reference/tiny-models/qwen2-kquant-tiny/qwen2-kquant-tiny-Q4_K_M.gguf",
                           "reference/tiny-models/qwen2-kquant-tiny/qwen2-kquant-tiny.gguf",
                           GGML_TYPE_Q6_K, 0.03, 3);
}

// Hand-built blocks with known values.
TEST(dequantize_hand_built_blocks) {
    // Q8_0: d = 0.5, q = j - 16.
    uint8_t q8[34];
    uint16_t half = fp32_to_fp16(0.5f);
    memcpy(q8, &half, 2);
    for (int j = 0; j < 32; j++) {
        q8[2 + j] = (uint8_t)(int8_t)(j - 16);
    }
    float out[256];
    REQUIRE(ggml_dequantize(GGML_TYPE_Q8_0, q8, out, 32) == 0);
    CHECK(out[0] == -8.0f && out[31] == 7.5f);

    // Q4_0: d = 2, low nibble of byte j is value j, high nibble value j + 16; stored q - 8.
    uint8_t q4[18];
    half = fp32_to_fp16(2.0f);
    memcpy(q4, &half, 2);
    for (int j = 0; j < 16; j++) {
        q4[2 + j] = (uint8_t)((j & 0x0f) | (15 - j) << 4);
    }
    REQUIRE(ggml_dequantize(GGML_TYPE_Q4_0, q4, out, 32) == 0);
    CHECK(out[0] == -16.0f);  // (0 - 8) * 2
    CHECK(out[15] == 14.0f);  // (15 - 8) * 2
    CHECK(out[16] == 14.0f);  // high nibble of byte 0 is 15
    CHECK(out[31] == -16.0f);

    // Q6_K: d = 1, every scale 2, every 6-bit value 40 (stored 40, meaning 40 - 32 = 8): 16.
    uint8_t q6[210] = {0};
    for (int j = 0; j < 128; j++) {
        q6[j] = 0x88; // low 4 bits 8 in both nibbles
    }
    for (int j = 0; j < 64; j++) {
        q6[128 + j] = 0xaa; // high 2 bits 2 in all four positions: 8 | 2 << 4 = 40
    }
    for (int j = 0; j < 16; j++) {
        q6[192 + j] = 2;
    }
    half = fp32_to_fp16(1.0f);
    memcpy(q6 + 208, &half, 2);
    REQUIRE(ggml_dequantize(GGML_TYPE_Q6_K, q6, out, 256) == 0);
    int wrong = 0;
    for (int j = 0; j < 256; j++) {
        wrong += out[j] != 16.0f;
    }
    CHECK_EQ_INT(wrong, 0);

    CHECK(ggml_dequantize(GGML_TYPE_IQ2_XXS, q6, out, 256) == -1);
    CHECK(!ggml_can_dequantize(GGML_TYPE_IQ4_NL));
}
