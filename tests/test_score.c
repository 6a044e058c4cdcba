// test_score.c: log-likelihood scoring on stories260K: values against llama.cpp's logits, the
// tokenization rules, and independence of batch size and thread count.
#include <stdlib.h>
#include <string.h>

#include "../engine/score.h"
#include "../engine/util.h"
#include "../kernels/kernels.h"
#include "test.h"

static Model *load_stories(void) {
    Model *m = model_load(test_shared_path("models/stories260K/stories260K.gguf"));
    REQUIRE_MSG(m != NULL, "model_load failed: %s", err_msg());
    return m;
}

static const char *sentences[] = {
    "Once upon a time, there was a little girl named Lily.",
    "The doctor said, \"Hello, little boy.\"",
    "He was a nurse.",
    "She was a nurse.",
    "The cat sat on the mat and looked at the big red ball for a long time.",
    "Tom and Sue went to the park.",
    "x",
    "The king was very sad because he lost his crown in the garden.",
};

// Reads llama.cpp's sequence 0 (BOS, "Once upon a time" and 16 greedy tokens) and its logits.
static int read_reference(int *tokens, float **logits) {
    char *text = NULL;
    size_t len = 0;
    REQUIRE_OK(file_read_all(test_shared_path("reference/stories260K-llama.cpp/sequences.txt"), &text,
                             &len));
    int n = 0;
    char *p = text, *end = NULL;
    while (*p && *p != '\n') {
        tokens[n++] = (int)strtol(p, &end, 10);
        p = end;
        while (*p == ' ') {
            p++;
        }
    }
    free(text);
    char *raw = NULL;
    REQUIRE_OK(file_read_all(test_shared_path("reference/stories260K-llama.cpp/f32/seq0.logits.bin"),
                             &raw, &len));
    REQUIRE(len == (size_t)n * 512 * sizeof(float));
    *logits = (float *)raw;
    return n;
}

// Scores "Once upon a time" + the greedy continuation and compares every token's log-probability
// with the log-softmax of llama.cpp's logits.
TEST(score_matches_llamacpp_logprobs) {
    Model *m = load_stories();
    int tokens[64];
    float *logits = NULL;
    int n = read_reference(tokens, &logits);
    REQUIRE(n == 21);

    // Decode prompt (tokens 1..4) and continuation (5..20) back to text.
    StrBuf prompt, continuation;
    sb_init(&prompt);
    sb_init(&continuation);
    REQUIRE_OK(tokenizer_decode(m->tokenizer, tokens, 5, true, &prompt));
    for (int i = 5; i < n; i++) {
        REQUIRE_OK(tokenizer_append_piece(m->tokenizer, tokens[i - 1], tokens[i], true, &continuation));
    }
    CHECK_STR(prompt.data, "Once upon a time");

    ScoreRequest req = {.context = prompt.data, .continuation = continuation.data};
    ScoreResult res;
    REQUIRE_OK(score_requests(m, &req, 1, NULL, &res));
    CHECK_EQ_INT(res.n_tokens, 16);
    CHECK(res.is_greedy);

    double expected_sum = 0;
    for (int i = 0; i < res.n_tokens && i < 16; i++) {
        CHECK_EQ_INT(res.tokens[i], tokens[5 + i]);
        const float *row = logits + (size_t)(4 + i) * 512;
        double max = row[0], sum = 0;
        for (int v = 1; v < 512; v++) {
            max = row[v] > max ? row[v] : max;
        }
        for (int v = 0; v < 512; v++) {
            sum += exp(row[v] - max);
        }
        double expected = row[tokens[5 + i]] - max - log(sum);
        CHECK_NEAR(res.token_logprobs[i], expected, 1e-4);
        expected_sum += expected;
    }
    CHECK_NEAR(res.logprob, expected_sum, 1e-3);
    score_result_free(&res);

    // An empty context scores every token after BOS; the model adds BOS (key absent: default).
    ScoreRequest whole = {.context = "", .continuation = prompt.data};
    REQUIRE_OK(score_requests(m, &whole, 1, NULL, &res));
    CHECK_EQ_INT(res.n_tokens, 4);
    CHECK_EQ_INT(res.tokens[0], tokens[1]);
    score_result_free(&res);

    sb_free(&prompt);
    sb_free(&continuation);
    free(logits);
    model_free(m);
}

TEST(score_moves_trailing_space_to_continuation) {
    Model *m = load_stories();
    ScoreRequest a = {.context = "The doctor", .continuation = " said hello"};
    ScoreRequest b = {.context = "The doctor ", .continuation = "said hello"};
    ScoreResult ra, rb;
    REQUIRE_OK(score_requests(m, &a, 1, NULL, &ra));
    REQUIRE_OK(score_requests(m, &b, 1, NULL, &rb));
    CHECK_EQ_INT(ra.n_tokens, rb.n_tokens);
    CHECK(ra.logprob == rb.logprob);
    for (int i = 0; i < ra.n_tokens && i < rb.n_tokens; i++) {
        CHECK_EQ_INT(ra.tokens[i], rb.tokens[i]);
    }
    score_result_free(&ra);
    score_result_free(&rb);
    model_free(m);
}

TEST(score_rejects_empty_continuation) {
    Model *m = load_stories();
    ScoreRequest reqs[2] = {{.context = "", .continuation = "fine"}, {.context = "a", .continuation = ""}};
    ScoreResult res[2];
    CHECK(score_requests(m, reqs, 2, NULL, res) == -1);
    CHECK(strstr(err_msg(), "request 1") != NULL);
    CHECK(strstr(err_msg(), "empty continuation") != NULL);
    model_free(m);
}

// Scores every sentence with a given batch limit and thread count.
static void score_all(const Model *m, int max_batch_tokens, int threads, ScoreResult *out) {
    int n = (int)ARRAY_LEN(sentences);
    ScoreRequest reqs[ARRAY_LEN(sentences)];
    for (int i = 0; i < n; i++) {
        reqs[i] = (ScoreRequest){.context = "", .continuation = sentences[i]};
    }
    kernels_set_threads(threads);
    ScoreOptions options = {.max_batch_tokens = max_batch_tokens};
    REQUIRE_OK(score_requests(m, reqs, n, &options, out));
}

TEST(score_independent_of_batch_and_threads) {
    Model *m = load_stories();
    int n = (int)ARRAY_LEN(sentences);
    ScoreResult reference[ARRAY_LEN(sentences)];
    score_all(m, 1, 1, reference); // one sentence per batch, one thread

    const int limits[] = {16, 40, 4096}, threads[] = {1, 2, 3};
    for (size_t li = 0; li < ARRAY_LEN(limits); li++) {
        for (size_t ti = 0; ti < ARRAY_LEN(threads); ti++) {
            ScoreResult got[ARRAY_LEN(sentences)];
            score_all(m, limits[li], threads[ti], got);
            for (int i = 0; i < n; i++) {
                CHECK_MSG(fabs(got[i].logprob - reference[i].logprob) <= 1e-5,
                          "sentence %d: batch limit %d, %d threads: %.9g vs %.9g", i, limits[li],
                          threads[ti], got[i].logprob, reference[i].logprob);
                // The kernels are order-fixed, so the agreement is in fact exact.
                CHECK(got[i].logprob == reference[i].logprob);
                CHECK_EQ_INT(got[i].n_tokens, reference[i].n_tokens);
                score_result_free(&got[i]);
            }
        }
    }
    for (int i = 0; i < n; i++) {
        score_result_free(&reference[i]);
    }
    model_free(m);
}
