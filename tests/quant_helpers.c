// quant_helpers.c: helpers shared by the quantizer tests (see quant_helpers.h).
#include "quant_helpers.h"

#include <math.h>
#include <stdlib.h>

#include "../engine/forward.h"
#include "../engine/util.h"
#include "test.h"

const int qtest_story_tokens[22] = {1,   403, 407, 261, 378, 432, 383, 286, 261, 376, 298,
                                    315, 268, 287, 261, 384, 297, 337, 276, 283, 291, 261};

float qtest_uniform(unsigned *state) {
    *state = *state * 1664525u + 1013904223u;
    return (float)((*state >> 8) & 0xFFFFFF) / (float)(1 << 23) - 1.0f;
}

Model *qtest_load_model(const char *relative) {
    Model *m = model_load(test_shared_path(relative));
    REQUIRE_MSG(m != NULL, "model_load failed: %s", err_msg());
    return m;
}

Model *qtest_load_stories(void) {
    return qtest_load_model("models/stories260K/stories260K.gguf");
}

QuantRecipe qtest_recipe(const char *text) {
    QuantRecipe r;
    char error[1024];
    REQUIRE_MSG(quant_recipe_parse(text, &r, error, sizeof error) == 0, "%s", error);
    return r;
}

CalibrationSet *qtest_c4_calibration(const Model *m, CalibSampling sampling, int n_samples,
                                     int seq_len, uint64_t seed) {
    Resolver *r = resolver_new(NULL);
    CalibOptions o = {.n_samples = n_samples, .seq_len = seq_len, .seed = seed,
                      .sampling = sampling};
    CalibrationSet *cs = calib_set_load(m->tokenizer, m->config.n_ctx_train, r, &o);
    resolver_free(r);
    REQUIRE_MSG(cs != NULL, "%s", err_msg());
    return cs;
}

float *qtest_logits(const Model *m, const int *tokens, int n) {
    const ModelConfig *c = &m->config;
    int *pos = xmalloc((size_t)n * sizeof(int)), *seq = xcalloc((size_t)n, sizeof(int));
    for (int i = 0; i < n; i++) {
        pos[i] = i;
    }
    KVCache *kv = kv_cache_new(c, 1, n);
    REQUIRE_MSG(kv != NULL, "%s", err_msg());
    float *hidden = xmalloc((size_t)n * c->n_embd * sizeof(float));
    float *logits = xmalloc((size_t)n * c->n_vocab * sizeof(float));
    Batch b = {.n_tokens = n, .tokens = tokens, .pos = pos, .seq = seq};
    REQUIRE_OK(model_forward(m, kv, &b, hidden));
    model_logits(m, hidden, n, logits);
    kv_cache_free(kv);
    free(hidden);
    free(pos);
    free(seq);
    return logits;
}

// Converts logits [n] to log-probabilities in double.
static void log_softmax(const float *logits, int n, double *out) {
    double max = -INFINITY, sum = 0;
    for (int i = 0; i < n; i++) {
        max = fmax(max, logits[i]);
    }
    for (int i = 0; i < n; i++) {
        sum += exp(logits[i] - max);
    }
    for (int i = 0; i < n; i++) {
        out[i] = logits[i] - max - log(sum);
    }
}

double qtest_kl_from_base(const Model *base, const Model *variant) {
    char *text = NULL;
    size_t len = 0;
    REQUIRE_OK(file_read_all(
        test_shared_path("models/stories260K/expected_t1.0_p0.9_s133742_n256.txt"), &text, &len));
    int *ids = NULL, n = 0;
    REQUIRE_OK(tokenizer_encode(base->tokenizer, text, len, true, false, &ids, &n));
    free(text);

    int n_vocab = base->config.n_vocab;
    float *a = qtest_logits(base, ids, n), *b = qtest_logits(variant, ids, n);
    double *p = xmalloc((size_t)n_vocab * sizeof(double));
    double *q = xmalloc((size_t)n_vocab * sizeof(double));
    double kl = 0;
    for (int t = 0; t < n; t++) {
        log_softmax(a + (size_t)t * n_vocab, n_vocab, p);
        log_softmax(b + (size_t)t * n_vocab, n_vocab, q);
        for (int i = 0; i < n_vocab; i++) {
            kl += exp(p[i]) * (p[i] - q[i]);
        }
    }
    free(p);
    free(q);
    free(a);
    free(b);
    free(ids);
    return kl / n;
}
