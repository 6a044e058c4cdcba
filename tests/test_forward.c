// test_forward.c: the forward pass against golden logits of llama2.c's run.c and of llama.cpp on
// the real trained model stories260K.
#include <cjson/cJSON.h>
#include <stdlib.h>

#include "../engine/forward.h"
#include "../engine/util.h"
#include "test.h"

static Model *load_stories(void) {
    Model *m = model_load(test_shared_path("models/stories260K/stories260K.gguf"));
    REQUIRE_MSG(m != NULL, "model_load failed: %s", err_msg());
    return m;
}

static cJSON *load_json(const char *path) {
    char *text = NULL;
    size_t len = 0;
    REQUIRE_OK(file_read_all(path, &text, &len));
    cJSON *json = cJSON_Parse(text);
    free(text);
    REQUIRE_MSG(json != NULL, "cannot parse %s", path);
    return json;
}

// Runs tokens [n] as one sequence and returns the logits [n, n_vocab]. With one_by_one, each token
// is its own batch, which exercises the KV cache the way decoding does.
static float *run_sequence(const Model *m, const int *tokens, int n, bool one_by_one) {
    const ModelConfig *c = &m->config;
    KVCache *kv = kv_cache_new(c, 1, n);
    REQUIRE_MSG(kv != NULL, "%s", err_msg());
    float *hidden = xmalloc((size_t)n * c->n_embd * sizeof(float));
    float *logits = xmalloc((size_t)n * c->n_vocab * sizeof(float));
    int *pos = xmalloc((size_t)n * sizeof(int));
    int *seq = xcalloc((size_t)n, sizeof(int));
    for (int i = 0; i < n; i++) {
        pos[i] = i;
    }

    if (one_by_one) {
        for (int i = 0; i < n; i++) {
            Batch b = {.n_tokens = 1, .tokens = tokens + i, .pos = pos + i, .seq = seq + i};
            REQUIRE_OK(model_forward(m, kv, &b, hidden + (size_t)i * c->n_embd));
        }
    } else {
        Batch b = {.n_tokens = n, .tokens = tokens, .pos = pos, .seq = seq};
        REQUIRE_OK(model_forward(m, kv, &b, hidden));
    }
    model_logits(m, hidden, n, logits);

    kv_cache_free(kv);
    free(hidden);
    free(pos);
    free(seq);
    return logits;
}

static int argmax(const float *x, int n) {
    int best = 0;
    for (int i = 1; i < n; i++) {
        if (x[i] > x[best]) {
            best = i;
        }
    }
    return best;
}

// Compares against run.c: argmax equal, max logit and logits 0..7 within 1e-4, sum within 1e-2
// (float summation order alone moves the sum of 512 logits by ~3e-3).
static void check_against_runc(bool one_by_one) {
    Model *m = load_stories();
    cJSON *cases = load_json(test_shared_path("models/stories260K/reference_logits_runc.json"));
    int n_vocab = m->config.n_vocab;
    int n_checked = 0;

    cJSON *item;
    cJSON_ArrayForEach(item, cases) {
        cJSON *steps = cJSON_GetObjectItem(item, "steps");
        int n = cJSON_GetArraySize(steps);
        int *tokens = xmalloc((size_t)n * sizeof(int));
        for (int i = 0; i < n; i++) {
            tokens[i] = cJSON_GetObjectItem(cJSON_GetArrayItem(steps, i), "input")->valueint;
        }
        float *logits = run_sequence(m, tokens, n, one_by_one);

        for (int i = 0; i < n; i++) {
            cJSON *step = cJSON_GetArrayItem(steps, i);
            const float *row = logits + (size_t)i * n_vocab;
            CHECK_EQ_INT(argmax(row, n_vocab), cJSON_GetObjectItem(step, "argmax")->valueint);
            CHECK_NEAR(row[argmax(row, n_vocab)], cJSON_GetObjectItem(step, "max_logit")->valuedouble,
                       1e-4);
            double sum = 0;
            for (int v = 0; v < n_vocab; v++) {
                sum += row[v];
            }
            CHECK_NEAR(sum, cJSON_GetObjectItem(step, "logit_sum")->valuedouble, 1e-2);
            cJSON *first = cJSON_GetObjectItem(step, "logits_0_7");
            for (int v = 0; v < 8; v++) {
                CHECK_NEAR(row[v], cJSON_GetArrayItem(first, v)->valuedouble, 1e-4);
            }
            n_checked++;
        }
        free(tokens);
        free(logits);
    }
    CHECK_EQ_INT(n_checked, 95); // 4 prompts: 21 + 23 + 27 + 24 positions
    cJSON_Delete(cases);
    model_free(m);
}

TEST(forward_matches_runc_prefill) {
    check_against_runc(false);
}

TEST(forward_matches_runc_token_by_token) {
    check_against_runc(true);
}

// Reads the llama.cpp token sequences (one per line).
static int read_sequences(int tokens[4][64], int lengths[4]) {
    char *text = NULL;
    size_t len = 0;
    REQUIRE_OK(file_read_all(test_shared_path("reference/stories260K-llama.cpp/sequences.txt"), &text,
                             &len));
    int n_seq = 0;
    char *line = text;
    while (*line && n_seq < 4) {
        char *end = NULL;
        lengths[n_seq] = 0;
        for (;;) {
            long id = strtol(line, &end, 10);
            if (end == line) {
                break;
            }
            tokens[n_seq][lengths[n_seq]++] = (int)id;
            line = end;
            while (*line == ' ') {
                line++;
            }
            if (*line == '\n' || *line == '\0') {
                break;
            }
        }
        n_seq++;
        while (*line == '\n') {
            line++;
        }
    }
    free(text);
    return n_seq;
}

// llama.cpp's full logits at every position, within 1e-4 (observed agreement of independent fp32
// engines on this model is ~1.6e-5).
TEST(forward_matches_llamacpp_all_logits) {
    Model *m = load_stories();
    int tokens[4][64], lengths[4];
    int n_seq = read_sequences(tokens, lengths);
    REQUIRE(n_seq == 4);
    int n_vocab = m->config.n_vocab;

    for (int s = 0; s < n_seq; s++) {
        char rel[128];
        snprintf(rel, sizeof rel, "reference/stories260K-llama.cpp/f32/seq%d.logits.bin", s);
        char *raw = NULL;
        size_t len = 0;
        REQUIRE_OK(file_read_all(test_shared_path(rel), &raw, &len));
        REQUIRE(len == (size_t)lengths[s] * n_vocab * sizeof(float));
        const float *expected = (const float *)raw;

        float *logits = run_sequence(m, tokens[s], lengths[s], false);
        double max_diff = 0;
        for (size_t i = 0; i < (size_t)lengths[s] * n_vocab; i++) {
            double d = fabs((double)logits[i] - expected[i]);
            if (d > max_diff) {
                max_diff = d;
            }
        }
        CHECK_MSG(max_diff <= 1e-4, "sequence %d: max |logit difference| %.3g > 1e-4", s, max_diff);
        free(logits);
        free(raw);
    }
    model_free(m);
}

// Several sequences packed into one batch give exactly the logits of each sequence alone.
TEST(forward_packed_batch_matches_single) {
    Model *m = load_stories();
    const ModelConfig *c = &m->config;
    int tokens[4][64], lengths[4];
    int n_seq = read_sequences(tokens, lengths);
    REQUIRE(n_seq == 4);

    int total = 0;
    int packed_tokens[256], packed_pos[256], packed_seq[256];
    for (int s = 0; s < n_seq; s++) {
        for (int i = 0; i < lengths[s]; i++) {
            packed_tokens[total] = tokens[s][i];
            packed_pos[total] = i;
            packed_seq[total] = s;
            total++;
        }
    }
    KVCache *kv = kv_cache_new(c, n_seq, 64);
    REQUIRE(kv != NULL);
    float *hidden = xmalloc((size_t)total * c->n_embd * sizeof(float));
    float *logits = xmalloc((size_t)total * c->n_vocab * sizeof(float));
    Batch b = {.n_tokens = total, .tokens = packed_tokens, .pos = packed_pos, .seq = packed_seq};
    REQUIRE_OK(model_forward(m, kv, &b, hidden));
    model_logits(m, hidden, total, logits);

    int offset = 0;
    for (int s = 0; s < n_seq; s++) {
        float *single = run_sequence(m, tokens[s], lengths[s], false);
        double max_diff = 0;
        for (size_t i = 0; i < (size_t)lengths[s] * c->n_vocab; i++) {
            double d = fabs((double)single[i] - logits[(size_t)offset * c->n_vocab + i]);
            max_diff = d > max_diff ? d : max_diff;
        }
        CHECK_MSG(max_diff == 0, "sequence %d: packed vs single max diff %.3g", s, max_diff);
        offset += lengths[s];
        free(single);
    }
    kv_cache_free(kv);
    free(hidden);
    free(logits);
    model_free(m);
}

TEST(forward_rejects_invalid_batch) {
    Model *m = load_stories();
    KVCache *kv = kv_cache_new(&m->config, 1, 8);
    float hidden[64 * 2];
    int tokens[2] = {1, 600}, pos[2] = {0, 1}, seq[2] = {0, 0};
    Batch b = {.n_tokens = 2, .tokens = tokens, .pos = pos, .seq = seq};
    CHECK(model_forward(m, kv, &b, hidden) == -1);
    CHECK(strstr(err_msg(), "outside the vocabulary") != NULL);

    tokens[1] = 5;
    pos[1] = 3; // gap in positions
    CHECK(model_forward(m, kv, &b, hidden) == -1);
    CHECK(strstr(err_msg(), "does not continue") != NULL);

    pos[1] = 1;
    seq[1] = 1; // slot outside the cache
    CHECK(model_forward(m, kv, &b, hidden) == -1);
    CHECK(strstr(err_msg(), "outside the cache") != NULL);
    kv_cache_free(kv);
    model_free(m);
}
