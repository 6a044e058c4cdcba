// generate.h: text generation with a KV cache: greedy decoding, or temperature and top-p sampling.
//
// The sampler reproduces llama2.c's run.c (its xorshift random generator, softmax with temperature
// and top-p cut-off), so that a seed gives the same story as run.c on the same model.
#ifndef QBIAS_GENERATE_H
#define QBIAS_GENERATE_H

#include <stdint.h>

#include "model.h"

// The state used for seed 0. run.c replaces seed 0 with the current time; qbias keeps runs
// reproducible with a fixed constant (the multiplier of xorshift*'s output step).
#define GENERATE_SEED_FOR_ZERO 0x2545F4914F6CDD1Dull

typedef struct {
    int max_new_tokens;
    float temperature;      // 0: greedy (argmax, lowest id among equal maxima)
    float top_p;            // nucleus sampling threshold in (0, 1]; 1 or more disables it
    uint64_t seed;          // random state for sampling (run.c's rng_seed); 0 is replaced by
                            // GENERATE_SEED_FOR_ZERO because xorshift never leaves state 0
    bool stop_at_bos;       // stop when the model emits BOS (run.c's rule for story models)
} GenerateOptions;

// Called for each generated token with the token before it (for tokenizer_append_piece).
typedef void (*GenerateCallback)(void *ctx, int prev_token, int token);

// Generates up to max_new_tokens tokens after `prompt` (n_prompt >= 1 tokens, BOS included when
// the model uses one). Stops early at EOS, or at BOS when stop_at_bos is set; the stop token is
// not returned. On success stores the new tokens in *out (caller frees) and their count in *n_out.
// Returns -1 with an error when the prompt is empty or the sequence would exceed the context.
int generate_tokens(const Model *m, const int *prompt, int n_prompt, const GenerateOptions *options,
                    GenerateCallback callback, void *ctx, int **out, int *n_out);

#endif
