// generate.c: decoding loop and run.c-compatible sampler (see generate.h).
#include "generate.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "forward.h"
#include "util.h"

// run.c's xorshift* generator: 64-bit state, 32-bit outputs.
static uint32_t random_u32(uint64_t *state) {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    return (uint32_t)((*state * 0x2545F4914F6CDD1Dull) >> 32);
}

// A float in [0, 1) from the top 24 bits of one output.
static float random_f32(uint64_t *state) {
    return (float)(random_u32(state) >> 8) / 16777216.0f;
}

static int sample_argmax(const float *probs, int n) {
    int best = 0;
    for (int i = 1; i < n; i++) {
        if (probs[i] > probs[best]) {
            best = i;
        }
    }
    return best;
}

static void softmax_in_place(float *x, int n) {
    float max = x[0];
    for (int i = 1; i < n; i++) {
        max = x[i] > max ? x[i] : max;
    }
    float sum = 0.0f;
    for (int i = 0; i < n; i++) {
        x[i] = expf(x[i] - max);
        sum += x[i];
    }
    for (int i = 0; i < n; i++) {
        x[i] /= sum;
    }
}

static int sample_from(const float *probs, int n, float coin) {
    float cdf = 0.0f;
    for (int i = 0; i < n; i++) {
        cdf += probs[i];
        if (coin < cdf) {
            return i;
        }
    }
    return n - 1; // rounding left the total below coin
}

typedef struct {
    float prob;
    int index;
} ProbIndex;

static int compare_prob_desc(const void *a, const void *b) {
    const ProbIndex *x = a, *y = b;
    if (x->prob > y->prob) {
        return -1;
    }
    if (x->prob < y->prob) {
        return 1;
    }
    // run.c leaves ties to qsort; ordering them by index makes the choice reproducible.
    return x->index - y->index;
}

// Top-p (nucleus) sampling as run.c does it: drop tokens below (1 - top_p) / (n - 1), sort the
// rest by probability, keep the smallest prefix whose mass exceeds top_p, sample within it.
static int sample_top_p(const float *probs, int n, float top_p, float coin, ProbIndex *scratch) {
    int kept = 0;
    float cutoff = (1.0f - top_p) / (float)(n - 1);
    for (int i = 0; i < n; i++) {
        if (probs[i] >= cutoff) {
            scratch[kept].index = i;
            scratch[kept].prob = probs[i];
            kept++;
        }
    }
    qsort(scratch, (size_t)kept, sizeof(ProbIndex), compare_prob_desc);

    float cumulative = 0.0f;
    int last = kept - 1;
    for (int i = 0; i < kept; i++) {
        cumulative += scratch[i].prob;
        if (cumulative > top_p) {
            last = i;
            break;
        }
    }
    float r = coin * cumulative;
    float cdf = 0.0f;
    for (int i = 0; i <= last; i++) {
        cdf += scratch[i].prob;
        if (r < cdf) {
            return scratch[i].index;
        }
    }
    return scratch[last].index;
}

int generate_tokens(const Model *m, const int *prompt, int n_prompt, const GenerateOptions *options,
                    GenerateCallback callback, void *ctx, int **out, int *n_out) {
    const ModelConfig *c = &m->config;
    if (n_prompt < 1) {
        return err_set("generation needs at least one prompt token (BOS for an empty prompt)");
    }
    int max_new = options->max_new_tokens > 0 ? options->max_new_tokens : 0;
    if (n_prompt + max_new > c->n_ctx_train) {
        return err_set("prompt (%d tokens) plus %d new tokens exceed the model's context of %d",
                       n_prompt, max_new, c->n_ctx_train);
    }

    KVCache *kv = kv_cache_new(c, 1, n_prompt + max_new);
    if (!kv) {
        return -1;
    }
    float *hidden = xmalloc((size_t)n_prompt * c->n_embd * sizeof(float));
    float *logits = xmalloc((size_t)c->n_vocab * sizeof(float));
    ProbIndex *scratch = xmalloc((size_t)c->n_vocab * sizeof(ProbIndex));
    int *tokens = xmalloc((size_t)(max_new > 0 ? max_new : 1) * sizeof(int));
    int *positions = xmalloc((size_t)n_prompt * sizeof(int));
    int *seqs = xcalloc((size_t)n_prompt, sizeof(int));
    for (int i = 0; i < n_prompt; i++) {
        positions[i] = i;
    }
    uint64_t rng = options->seed ? options->seed : GENERATE_SEED_FOR_ZERO;
    int bos = tokenizer_bos_id(m->tokenizer), eos = tokenizer_eos_id(m->tokenizer);

    // Prefill the prompt in one batch; only the last position's logits are needed.
    Batch prefill = {.n_tokens = n_prompt, .tokens = prompt, .pos = positions, .seq = seqs};
    int rc = model_forward(m, kv, &prefill, hidden);
    int n_new = 0, prev = prompt[n_prompt - 1];
    const float *last_hidden = hidden + (size_t)(n_prompt - 1) * c->n_embd;

    while (rc == 0 && n_new < max_new) {
        model_logits(m, last_hidden, 1, logits);
        for (int i = 0; i < c->n_vocab; i++) {
            if (!isfinite(logits[i])) {
                rc = err_set("the model produced a non-finite logit (%g) at position %d; its "
                             "weights give NaN or infinity, so the model file may be damaged",
                             logits[i], n_prompt + n_new - 1);
                break;
            }
        }
        if (rc != 0) {
            break;
        }
        int next;
        if (options->temperature <= 0.0f) {
            next = sample_argmax(logits, c->n_vocab);
        } else {
            for (int i = 0; i < c->n_vocab; i++) {
                logits[i] /= options->temperature;
            }
            softmax_in_place(logits, c->n_vocab);
            float coin = random_f32(&rng);
            if (options->top_p <= 0.0f || options->top_p >= 1.0f) {
                next = sample_from(logits, c->n_vocab, coin);
            } else {
                next = sample_top_p(logits, c->n_vocab, options->top_p, coin, scratch);
            }
        }
        if (next == eos || (options->stop_at_bos && next == bos)) {
            break;
        }
        tokens[n_new++] = next;
        if (callback) {
            callback(ctx, prev, next);
        }
        prev = next;
        if (n_new == max_new) {
            break;
        }

        int pos = n_prompt + n_new - 1, seq = 0;
        Batch step = {.n_tokens = 1, .tokens = &next, .pos = &pos, .seq = &seq};
        rc = model_forward(m, kv, &step, hidden);
        last_hidden = hidden;
    }

    kv_cache_free(kv);
    free(hidden);
    free(logits);
    free(scratch);
    free(positions);
    free(seqs);
    if (rc != 0) {
        free(tokens);
        return -1;
    }
    *out = tokens;
    *n_out = n_new;
    return 0;
}
