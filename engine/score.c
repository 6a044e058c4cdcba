// score.c: batched log-likelihood scoring (rules in score.h).
#include "score.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "forward.h"
#include "util.h"

// Output rows whose logits are computed at once: 64 rows of a 128K vocabulary are 32 MB.
#define LOGIT_CHUNK_ROWS 64
#define DEFAULT_BATCH_TOKENS 2048

static bool is_python_space(char c) {
    // Python's str.rstrip() whitespace in ASCII, which lm-evaluation-harness uses.
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

int score_tokenize(const Model *m, const ScoreRequest *request, const ScoreOptions *options,
                   int **tokens_out, int *n_tokens_out, int *n_context_out) {
    const Tokenizer *tok = m->tokenizer;
    if (request->continuation == NULL || request->continuation[0] == '\0') {
        return err_set("empty continuation: a log-likelihood needs at least one token to score");
    }

    // Trailing whitespace of the context belongs to the continuation.
    const char *context = request->context ? request->context : "";
    size_t context_len = strlen(context);
    while (context_len > 0 && is_python_space(context[context_len - 1])) {
        context_len--;
    }
    char *whole = xasprintf("%s%s", context, request->continuation);

    int *whole_ids = NULL, *context_ids = NULL;
    int n_whole = 0, n_ctx_ids = 0;
    if (tokenizer_encode(tok, whole, strlen(whole), false, false, &whole_ids, &n_whole) != 0 ||
        tokenizer_encode(tok, context, context_len, false, false, &context_ids, &n_ctx_ids) != 0) {
        free(whole);
        free(whole_ids);
        free(context_ids);
        return -1;
    }
    free(whole);
    free(context_ids);
    if (n_ctx_ids > n_whole) {
        n_ctx_ids = n_whole;
    }

    // The prefix is BOS where the tokenizer adds one. Without BOS, an empty context becomes EOS
    // (lm-eval) or the first continuation token, which is then not scored (the study's convention).
    int prefix = -1;
    int n_context = n_ctx_ids;
    if (tokenizer_add_bos(tok) && tokenizer_bos_id(tok) >= 0) {
        prefix = tokenizer_bos_id(tok);
    } else if (n_ctx_ids == 0 && options && options->empty_context_eos && tokenizer_eos_id(tok) >= 0) {
        prefix = tokenizer_eos_id(tok);
    } else if (n_ctx_ids == 0) {
        n_context = 1;
    }

    int n_total = n_whole + (prefix >= 0 ? 1 : 0);
    int n_context_total = n_context + (prefix >= 0 ? 1 : 0);
    if (n_total - n_context_total <= 0) {
        free(whole_ids);
        return err_set("continuation '%.60s' leaves no token to score (it is a single token with "
                       "an empty context and the model adds no BOS, or it merges into the "
                       "context's tokens)",
                       request->continuation);
    }

    int *tokens = xmalloc((size_t)n_total * sizeof(int));
    int k = 0;
    if (prefix >= 0) {
        tokens[k++] = prefix;
    }
    memcpy(tokens + k, whole_ids, (size_t)n_whole * sizeof(int));
    free(whole_ids);
    *tokens_out = tokens;
    *n_tokens_out = n_total;
    *n_context_out = n_context_total;
    return 0;
}

void score_result_free(ScoreResult *r) {
    free(r->token_logprobs);
    free(r->tokens);
    r->token_logprobs = NULL;
    r->tokens = NULL;
}

typedef struct {
    int *tokens;
    int n_tokens;
    int n_context;
} TokenizedRequest;

// Computes the log-probabilities of tokens[p + 1] from the hidden states at positions p for
// p = n_context - 1 .. n_tokens - 2, writing out's fields. hidden: [n_tokens, n_embd].
static int score_positions(const Model *m, const TokenizedRequest *req, const float *hidden,
                           float *logits, ScoreResult *out) {
    const ModelConfig *c = &m->config;
    int n_scored = req->n_tokens - req->n_context;
    out->n_tokens = n_scored;
    out->token_logprobs = xmalloc((size_t)n_scored * sizeof(float));
    out->tokens = xmalloc((size_t)n_scored * sizeof(int));
    memcpy(out->tokens, req->tokens + req->n_context, (size_t)n_scored * sizeof(int));
    out->logprob = 0.0;
    out->is_greedy = true;

    for (int start = 0; start < n_scored; start += LOGIT_CHUNK_ROWS) {
        int rows = n_scored - start < LOGIT_CHUNK_ROWS ? n_scored - start : LOGIT_CHUNK_ROWS;
        const float *h = hidden + (size_t)(req->n_context - 1 + start) * c->n_embd;
        model_logits(m, h, rows, logits);

        for (int r = 0; r < rows; r++) {
            const float *row = logits + (size_t)r * c->n_vocab;
            int target = out->tokens[start + r];

            // log-softmax in double; the greedy token is the first maximum, like torch.argmax.
            int best = 0;
            for (int v = 1; v < c->n_vocab; v++) {
                if (row[v] > row[best]) {
                    best = v;
                }
            }
            double sum = 0.0;
            for (int v = 0; v < c->n_vocab; v++) {
                sum += exp((double)row[v] - (double)row[best]);
            }
            double logprob = (double)row[target] - (double)row[best] - log(sum);
            if (!isfinite(logprob)) {
                return err_set("the model produced a non-finite log-probability (%g) for token %d "
                               "of the continuation; its weights or this variant's quantization "
                               "give NaN or infinite logits, so the model file may be damaged",
                               logprob, start + r);
            }
            out->token_logprobs[start + r] = (float)logprob;
            out->logprob += logprob;
            if (best != target) {
                out->is_greedy = false;
            }
        }
    }
    return 0;
}

// Runs one batch of requests (indices `batch` into reqs) and scores each.
static int run_batch(const Model *m, const TokenizedRequest *reqs, const int *batch, int n_batch,
                     ScoreResult *out, int *failed_request) {
    const ModelConfig *c = &m->config;
    int total = 0, max_len = 0;
    for (int i = 0; i < n_batch; i++) {
        total += reqs[batch[i]].n_tokens;
        if (reqs[batch[i]].n_tokens > max_len) {
            max_len = reqs[batch[i]].n_tokens;
        }
    }

    int *tokens = xmalloc((size_t)total * sizeof(int));
    int *pos = xmalloc((size_t)total * sizeof(int));
    int *seq = xmalloc((size_t)total * sizeof(int));
    int k = 0;
    for (int i = 0; i < n_batch; i++) {
        const TokenizedRequest *r = &reqs[batch[i]];
        for (int p = 0; p < r->n_tokens; p++, k++) {
            tokens[k] = r->tokens[p];
            pos[k] = p;
            seq[k] = i;
        }
    }

    KVCache *kv = kv_cache_new(c, n_batch, max_len);
    if (!kv) {
        free(tokens);
        free(pos);
        free(seq);
        return -1;
    }
    float *hidden = xmalloc((size_t)total * c->n_embd * sizeof(float));
    Batch b = {.n_tokens = total, .tokens = tokens, .pos = pos, .seq = seq};
    int rc = model_forward(m, kv, &b, hidden);

    if (rc == 0) {
        float *logits = xmalloc((size_t)LOGIT_CHUNK_ROWS * c->n_vocab * sizeof(float));
        int offset = 0;
        for (int i = 0; i < n_batch && rc == 0; i++) {
            const TokenizedRequest *r = &reqs[batch[i]];
            rc = score_positions(m, r, hidden + (size_t)offset * c->n_embd, logits, &out[batch[i]]);
            if (rc != 0) {
                *failed_request = batch[i];
                err_prefix("request %d", batch[i]);
            }
            offset += r->n_tokens;
        }
        free(logits);
    }

    kv_cache_free(kv);
    free(hidden);
    free(tokens);
    free(pos);
    free(seq);
    return rc;
}

static const TokenizedRequest *sort_base;

static int compare_length_desc(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    int lx = sort_base[x].n_tokens, ly = sort_base[y].n_tokens;
    if (lx != ly) {
        return ly > lx ? 1 : -1;
    }
    return (x > y) - (x < y);
}

int score_requests(const Model *m, const ScoreRequest *requests, int n, const ScoreOptions *options,
                   ScoreResult *out) {
    int max_batch_tokens = options && options->max_batch_tokens > 0 ? options->max_batch_tokens
                                                                    : DEFAULT_BATCH_TOKENS;
    memset(out, 0, (size_t)n * sizeof *out);
    int failed = -1;
    TokenizedRequest *reqs = xcalloc((size_t)(n > 0 ? n : 1), sizeof *reqs);
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        rc = score_tokenize(m, &requests[i], options, &reqs[i].tokens, &reqs[i].n_tokens,
                            &reqs[i].n_context);
        if (rc != 0) {
            failed = i;
            err_prefix("request %d", i);
        } else if (reqs[i].n_tokens > m->config.n_ctx_train) {
            failed = i;
            rc = err_set("request %d has %d tokens, more than the model's context of %d", i,
                         reqs[i].n_tokens, m->config.n_ctx_train);
        }
    }

    // Longest requests first, so batches fill evenly. A request's result does not depend on the order.
    int *order = xmalloc((size_t)(n > 0 ? n : 1) * sizeof(int));
    for (int i = 0; i < n; i++) {
        order[i] = i;
    }
    sort_base = reqs;
    qsort(order, (size_t)n, sizeof(int), compare_length_desc);

    for (int start = 0; start < n && rc == 0;) {
        int count = 0, tokens = 0;
        while (start + count < n &&
               (count == 0 || tokens + reqs[order[start + count]].n_tokens <= max_batch_tokens)) {
            tokens += reqs[order[start + count]].n_tokens;
            count++;
        }
        rc = run_batch(m, reqs, order + start, count, out, &failed);
        start += count;
    }

    if (rc != 0) {
        for (int i = 0; i < n; i++) {
            score_result_free(&out[i]);
        }
    }
    if (options && options->failed_request) {
        *options->failed_request = rc != 0 ? failed : -1;
    }
    for (int i = 0; i < n; i++) {
        free(reqs[i].tokens);
    }
    free(reqs);
    free(order);
    return rc;
}
