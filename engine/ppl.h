// ppl.h: perplexity of a text under several variants of a model, with the KL divergence of each
// variant's next-token distributions from the first variant's.
//
// The protocol is llama.cpp's perplexity tool (examples/perplexity): the text is tokenized once
// (BOS first where the model adds one), cut into chunks of n_ctx tokens, the first token of each
// chunk is replaced by BOS, and only the second half of each chunk is scored, so every scored
// token has at least n_ctx/2 tokens of context. Perplexity = exp(mean negative log-likelihood).
#ifndef QBIAS_PPL_H
#define QBIAS_PPL_H

#include <stdbool.h>
#include <stdint.h>

#include "model.h"

typedef struct {
    double ppl;          // exp(mean negative log-likelihood)
    double ppl_se;       // standard error of ppl (delta method: ppl * standard error of the mean)
    double mean_nll;
    int64_t n_tokens;    // tokens scored
    bool has_kld;        // false for the first variant (the reference)
    double kld_mean;     // mean KL(P_first || P_variant) per token, natural log
    double kld_se;       // standard error of kld_mean
    double kld_median, kld_p90, kld_p99, kld_p999, kld_max;
    double same_top;     // share of tokens whose most probable next token equals the first's
} PplResult;

typedef void (*PplProgress)(void *ctx, int chunk, int n_chunks);

// Computes results[v] for each of the n_variants models (variants[0] is the reference for the KL
// divergence) over `tokens` (n_tokens, as tokenized from the text with BOS). n_ctx >= 4 and even.
// max_chunks <= 0 uses every whole chunk. Returns 0, or -1 with an error when the text has fewer
// than n_ctx tokens, the models' vocabularies differ, or a model produces non-finite logits.
int ppl_run(const Model *const *variants, int n_variants, const int *tokens, int64_t n_tokens,
            int n_ctx, int max_chunks, PplProgress progress, void *progress_ctx,
            PplResult *results);

#endif
