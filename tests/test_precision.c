// test_precision.c: F16 and BF16 weights are used in their stored precision and converted exactly.
//
// stories260K is rewritten with its matrices in F16 (or BF16), and once more in F32 holding exactly
// the rounded values. Both files must give bit-identical logits: the conversion on use is exact and
// nothing else differs.
#include <stdlib.h>
#include <string.h>

#include "../engine/forward.h"
#include "../engine/util.h"
#include "../kernels/half.h"
#include "test.h"

// Writes stories260K with every 2-D tensor rounded to `type`; stored as `type` when `as_f32` is
// false, else as F32 holding the rounded values.
static char *write_rounded_copy(const char *dir, const char *name, GGMLType type, bool as_f32) {
    GGUFFile *src = gguf_open(test_shared_path("models/stories260K/stories260K.gguf"));
    REQUIRE(src != NULL);
    GGUFWriter *w = gguf_writer_new();
    for (uint64_t i = 0; i < src->n_kv; i++) {
        gguf_writer_copy_key(w, src, src->kv[i].key);
    }
    void **buffers = xcalloc((size_t)src->n_tensors, sizeof(void *));
    for (uint64_t i = 0; i < src->n_tensors; i++) {
        const GGUFTensor *t = &src->tensors[i];
        if (t->n_dims != 2) {
            gguf_writer_add_tensor(w, t->name, t->type, (int)t->n_dims, t->ne, t->data);
            continue;
        }
        size_t n = (size_t)gguf_tensor_nelements(t);
        const float *values = t->data;
        if (as_f32) {
            float *rounded = xmalloc(n * sizeof(float));
            for (size_t k = 0; k < n; k++) {
                rounded[k] = type == GGML_TYPE_F16 ? fp16_to_fp32(fp32_to_fp16(values[k]))
                                                   : bf16_to_fp32(fp32_to_bf16(values[k]));
            }
            buffers[i] = rounded;
            gguf_writer_add_tensor(w, t->name, GGML_TYPE_F32, 2, t->ne, rounded);
        } else {
            uint16_t *halves = xmalloc(n * sizeof(uint16_t));
            for (size_t k = 0; k < n; k++) {
                halves[k] = type == GGML_TYPE_F16 ? fp32_to_fp16(values[k]) : fp32_to_bf16(values[k]);
            }
            buffers[i] = halves;
            gguf_writer_add_tensor(w, t->name, type, 2, t->ne, halves);
        }
    }
    char *path = path_join(dir, name);
    REQUIRE_OK(gguf_writer_write(w, path));
    gguf_writer_free(w);
    for (uint64_t i = 0; i < src->n_tensors; i++) {
        free(buffers[i]);
    }
    free(buffers);
    gguf_close(src);
    return path;
}

static float *logits_of(const char *path, const int *tokens, int n) {
    Model *m = model_load(path);
    REQUIRE_MSG(m != NULL, "%s", err_msg());
    const ModelConfig *c = &m->config;
    KVCache *kv = kv_cache_new(c, 1, n);
    int pos[32], seq[32] = {0};
    for (int i = 0; i < n; i++) {
        pos[i] = i;
    }
    float *hidden = xmalloc((size_t)n * c->n_embd * sizeof(float));
    float *logits = xmalloc((size_t)n * c->n_vocab * sizeof(float));
    Batch b = {.n_tokens = n, .tokens = tokens, .pos = pos, .seq = seq};
    REQUIRE_OK(model_forward(m, kv, &b, hidden));
    model_logits(m, hidden, n, logits);
    kv_cache_free(kv);
    free(hidden);
    model_free(m);
    return logits;
}

static void check_type(GGMLType type, const char *label) {
    const char *dir = test_tmp_dir();
    char *stored = write_rounded_copy(dir, "stored.gguf", type, false);
    char *widened = write_rounded_copy(dir, "widened.gguf", type, true);
    static const int tokens[] = {1, 403, 407, 261, 378, 432, 383, 286, 261, 376};
    int n = (int)ARRAY_LEN(tokens);
    float *a = logits_of(stored, tokens, n), *b = logits_of(widened, tokens, n);
    CHECK_MSG(memcmp(a, b, (size_t)n * 512 * sizeof(float)) == 0,
              "%s weights give other logits than their exact fp32 values", label);

    Model *m = model_load(stored);
    REQUIRE(m != NULL);
    CHECK_EQ_INT(m->layers[0].attn_q.type, type);
    CHECK_EQ_INT(m->token_embd.type, type);
    model_free(m);
    free(a);
    free(b);
    free(stored);
    free(widened);
}

TEST(f16_weights_convert_exactly) {
    check_type(GGML_TYPE_F16, "F16");
}

TEST(bf16_weights_convert_exactly) {
    check_type(GGML_TYPE_BF16, "BF16");
}

// Known bit patterns: exact values, subnormals, rounding ties, overflow and NaN.
TEST(half_conversions_known_values) {
    CHECK(fp16_to_fp32(0x3c00) == 1.0f);
    CHECK(fp16_to_fp32(0xc000) == -2.0f);
    CHECK(fp16_to_fp32(0x7bff) == 65504.0f);
    CHECK(fp16_to_fp32(0x0001) == 5.9604644775390625e-8f); // smallest subnormal, 2^-24
    CHECK(isinf(fp16_to_fp32(0x7c00)));
    CHECK(isnan(fp16_to_fp32(0x7e00)));
    CHECK_EQ_INT(fp32_to_fp16(1.0f), 0x3c00);
    CHECK_EQ_INT(fp32_to_fp16(65520.0f), 0x7c00);           // rounds up to infinity
    CHECK_EQ_INT(fp32_to_fp16(65519.0f), 0x7bff);
    CHECK_EQ_INT(fp32_to_fp16(1.0f + 1.0f / 2048), 0x3c00); // tie to even (down)
    CHECK_EQ_INT(fp32_to_fp16(1.0f + 3.0f / 2048), 0x3c02); // tie to even (up)
    CHECK_EQ_INT(fp32_to_fp16(5.9604644775390625e-8f), 0x0001);
    CHECK_EQ_INT(fp32_to_fp16(2.98023223876953125e-8f), 0x0000); // half of 2^-24 ties to 0
    CHECK_EQ_INT(fp32_to_fp16(-0.0f), 0x8000);
    CHECK_EQ_INT(fp32_to_fp16(NAN) & 0x7c00, 0x7c00);
    CHECK(bf16_to_fp32(0x3f80) == 1.0f);
    CHECK_EQ_INT(fp32_to_bf16(1.0f), 0x3f80);
    CHECK_EQ_INT(fp32_to_bf16(1.0f + 1.0f / 256), 0x3f80);  // tie to even (down)
    CHECK_EQ_INT(fp32_to_bf16(1.0f + 3.0f / 256), 0x3f82);  // tie to even (up)
    CHECK(isnan(bf16_to_fp32(fp32_to_bf16(NAN))));

    // Every fp16 value survives fp16 -> fp32 -> fp16.
    int mismatches = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        uint16_t back = fp32_to_fp16(fp16_to_fp32((uint16_t)h));
        bool nan = (h & 0x7c00) == 0x7c00 && (h & 0x3ff);
        mismatches += !nan && back != h;
    }
    CHECK_EQ_INT(mismatches, 0);
}
