// ppl.c: perplexity and KL divergence over chunks of a text (protocol in ppl.h).
#include "ppl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "forward.h"
#include "util.h"

// Runs one chunk through `m` and writes the log-softmax of rows first..n_ctx-2 (each predicting
// the next token) to logprobs [n_scored, n_vocab].
static int chunk_logprobs(const Model *m, const int *tokens, int n_ctx, int first, float *logprobs) {
    const ModelConfig *c = &m->config;
    KVCache *kv = kv_cache_new(c, 1, n_ctx);
    if (!kv) {
        return -1;
    }
    int *pos = xmalloc((size_t)n_ctx * sizeof(int)), *seq = xcalloc((size_t)n_ctx, sizeof(int));
    for (int i = 0; i < n_ctx; i++) {
        pos[i] = i;
    }
    float *hidden = xmalloc((size_t)n_ctx * c->n_embd * sizeof(float));
    Batch b = {.n_tokens = n_ctx, .tokens = tokens, .pos = pos, .seq = seq};
    int rc = model_forward(m, kv, &b, hidden);
    int n_scored = n_ctx - 1 - first;
    if (rc == 0) {
        model_logits(m, hidden + (size_t)first * c->n_embd, n_scored, logprobs);
        for (int r = 0; r < n_scored && rc == 0; r++) {
            float *row = logprobs + (size_t)r * c->n_vocab;
            float max = row[0];
            for (int v = 1; v < c->n_vocab; v++) {
                max = row[v] > max ? row[v] : max;
            }
            double sum = 0;
            for (int v = 0; v < c->n_vocab; v++) {
                sum += exp((double)row[v] - max);
            }
            double lse = max + log(sum);
            if (!isfinite(lse)) {
                rc = err_set("the model %s (%s) produced non-finite logits at position %d of a "
                             "chunk; its weights may be damaged (a file edited or corrupted), so "
                             "check or recreate the file",
                             m->path ? m->path : "built in memory", m->variant, first + r);
            }
            for (int v = 0; v < c->n_vocab; v++) {
                row[v] = (float)(row[v] - lse);
            }
        }
    }
    kv_cache_free(kv);
    free(hidden);
    free(pos);
    free(seq);
    return rc;
}

static int argmax(const float *row, int n) {
    int best = 0;
    for (int i = 1; i < n; i++) {
        best = row[i] > row[best] ? i : best;
    }
    return best;
}

static int compare_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

// Linear-interpolated quantile q of sorted values (numpy's default).
static double quantile(const double *sorted, int64_t n, double q) {
    double position = q * (double)(n - 1);
    int64_t lo = (int64_t)floor(position);
    int64_t hi = lo + 1 < n ? lo + 1 : lo;
    return sorted[lo] + (position - (double)lo) * (sorted[hi] - sorted[lo]);
}

int ppl_run(const Model *const *variants, int n_variants, const int *tokens, int64_t n_tokens,
            int n_ctx, int max_chunks, PplProgress progress, void *progress_ctx,
            PplResult *results) {
    if (n_variants < 1) {
        return err_set("no variant to evaluate");
    }
    if (n_ctx < 4 || n_ctx % 2 != 0) {
        return err_set("--ctx must be an even number of at least 4, got %d", n_ctx);
    }
    const ModelConfig *c = &variants[0]->config;
    for (int v = 1; v < n_variants; v++) {
        if (variants[v]->config.n_vocab != c->n_vocab) {
            return err_set("variants %s and %s have different vocabularies", variants[0]->variant,
                           variants[v]->variant);
        }
    }
    if (n_ctx > c->n_ctx_train) {
        return err_set("--ctx %d exceeds the model's context of %d", n_ctx, c->n_ctx_train);
    }
    int64_t n_chunks = n_tokens / n_ctx;
    if (n_chunks < 1) {
        return err_set("the text has %lld tokens, fewer than one chunk of --ctx %d", (long long)n_tokens,
                       n_ctx);
    }
    if (max_chunks > 0 && n_chunks > max_chunks) {
        n_chunks = max_chunks;
    }

    int first = n_ctx / 2, n_scored = n_ctx - 1 - first;
    int64_t total = n_chunks * n_scored;
    int bos = tokenizer_add_bos(variants[0]->tokenizer) ? tokenizer_bos_id(variants[0]->tokenizer)
                                                         : -1;
    float *reference = xmalloc((size_t)n_scored * c->n_vocab * sizeof(float));
    float *current = xmalloc((size_t)n_scored * c->n_vocab * sizeof(float));
    double *nll_sum = xcalloc((size_t)n_variants, sizeof(double));
    double *nll_sq = xcalloc((size_t)n_variants, sizeof(double));
    double *kld = xmalloc((size_t)n_variants * (size_t)total * sizeof(double));
    int64_t *same = xcalloc((size_t)n_variants, sizeof(int64_t));
    int *chunk = xmalloc((size_t)n_ctx * sizeof(int));
    int rc = 0;

    for (int64_t k = 0; k < n_chunks && rc == 0; k++) {
        memcpy(chunk, tokens + k * n_ctx, (size_t)n_ctx * sizeof(int));
        if (bos >= 0) {
            chunk[0] = bos;
        }
        for (int v = 0; v < n_variants && rc == 0; v++) {
            float *lp = v == 0 ? reference : current;
            rc = chunk_logprobs(variants[v], chunk, n_ctx, first, lp);
            for (int r = 0; rc == 0 && r < n_scored; r++) {
                const float *row = lp + (size_t)r * c->n_vocab;
                double nll = -(double)row[chunk[first + r + 1]];
                nll_sum[v] += nll;
                nll_sq[v] += nll * nll;
                if (v == 0) {
                    continue;
                }
                // KL(P_ref || P_v) = sum_t p_ref(t) (log p_ref(t) - log p_v(t)).
                const float *ref = reference + (size_t)r * c->n_vocab;
                double d = 0;
                for (int t = 0; t < c->n_vocab; t++) {
                    d += exp((double)ref[t]) * ((double)ref[t] - (double)row[t]);
                }
                kld[(size_t)v * total + k * n_scored + r] = d > 0 ? d : 0;
                same[v] += argmax(ref, c->n_vocab) == argmax(row, c->n_vocab);
            }
        }
        if (progress) {
            progress(progress_ctx, (int)k + 1, (int)n_chunks);
        }
    }

    for (int v = 0; v < n_variants && rc == 0; v++) {
        PplResult *out = &results[v];
        memset(out, 0, sizeof *out);
        out->n_tokens = total;
        out->mean_nll = nll_sum[v] / (double)total;
        double var = total > 1 ? (nll_sq[v] / (double)total - out->mean_nll * out->mean_nll) *
                                     (double)total / (double)(total - 1)
                               : 0;
        out->ppl = exp(out->mean_nll);
        out->ppl_se = out->ppl * sqrt(var > 0 ? var / (double)total : 0);
        if (v == 0) {
            continue;
        }
        double *values = kld + (size_t)v * total;
        double sum = 0, sq = 0;
        for (int64_t i = 0; i < total; i++) {
            sum += values[i];
            sq += values[i] * values[i];
        }
        out->has_kld = true;
        out->kld_mean = sum / (double)total;
        double kvar = total > 1 ? (sq / (double)total - out->kld_mean * out->kld_mean) *
                                      (double)total / (double)(total - 1)
                                : 0;
        out->kld_se = sqrt(kvar > 0 ? kvar / (double)total : 0);
        qsort(values, (size_t)total, sizeof(double), compare_double);
        out->kld_median = quantile(values, total, 0.5);
        out->kld_p90 = quantile(values, total, 0.9);
        out->kld_p99 = quantile(values, total, 0.99);
        out->kld_p999 = quantile(values, total, 0.999);
        out->kld_max = values[total - 1];
        out->same_top = (double)same[v] / (double)total;
    }

    free(reference);
    free(current);
    free(nll_sum);
    free(nll_sq);
    free(kld);
    free(same);
    free(chunk);
    return rc;
}
