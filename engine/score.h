// score.h: log-likelihood scoring of (context, continuation) requests, in batches.
//
// For each request the score is log P(continuation | context) under the model: the sum of the
// natural-log probabilities of the continuation's tokens, each given every token before it.
//
// Tokenization follows lm-evaluation-harness: trailing whitespace of the context moves to the
// start of the continuation; the continuation's tokens are those of encode(context + continuation)
// after the tokens of encode(context). The model's BOS token is prepended where its tokenizer adds
// one (as vLLM does for the reference study). With an empty context and no BOS, the first
// continuation token serves as context and is not scored (the study's convention), unless
// ScoreOptions.empty_context_eos asks for lm-evaluation-harness's rule (score it after EOS).
//
// Results do not depend on the batch size or the thread count: every request's numbers are
// computed with the same floating-point operations whatever it is batched with (see kernels.h).
#ifndef QBIAS_SCORE_H
#define QBIAS_SCORE_H

#include <stdbool.h>

#include "model.h"

typedef struct {
    const char *context;      // may be ""
    const char *continuation; // must not be empty
} ScoreRequest;

typedef struct {
    double logprob;         // sum of the continuation tokens' log-probabilities (natural log)
    int n_tokens;           // continuation tokens scored
    bool is_greedy;         // every continuation token was the most probable next token
    float *token_logprobs;  // [n_tokens], owned; free with score_result_free()
    int *tokens;            // [n_tokens] the continuation's token ids, owned
} ScoreResult;

typedef struct {
    int max_batch_tokens;   // tokens per forward batch (0: 2048)
    bool empty_context_eos; // score the first token of an empty context after EOS (lm-eval)
    int *failed_request;    // when not NULL, receives the index of the request an error is
                            // about, or -1 for an error that concerns no single request
} ScoreOptions;

// Scores n requests into out[n]. Returns 0, or -1 with an error naming the request index for an
// empty continuation, a continuation with no token left to score, a sequence longer than the
// model's context, or a non-finite log-probability (a model whose weights produce NaN or
// infinity). On failure no result needs freeing.
int score_requests(const Model *m, const ScoreRequest *requests, int n, const ScoreOptions *options,
                   ScoreResult *out);

void score_result_free(ScoreResult *r);

// Tokenizes one request as score_requests() does: *tokens gets the full token sequence (BOS,
// context, continuation) and *n_context the number of leading tokens that are not scored.
// Returns 0 or -1 with an error. The caller frees *tokens.
int score_tokenize(const Model *m, const ScoreRequest *request, const ScoreOptions *options,
                   int **tokens, int *n_tokens, int *n_context);

#endif
