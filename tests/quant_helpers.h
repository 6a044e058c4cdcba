// quant_helpers.h: helpers shared by the quantizer tests (test_gptq.c, test_awq.c,
// test_smoothquant.c, test_calibrate.c).
#ifndef QBIAS_TESTS_QUANT_HELPERS_H
#define QBIAS_TESTS_QUANT_HELPERS_H

#include <stdint.h>

#include "../engine/calib_data.h"
#include "../engine/model.h"
#include "../quant/spec_methods.h"

// Twenty-two tokens of a stories260K sentence, BOS first.
extern const int qtest_story_tokens[22];
#define QTEST_N_STORY 22

// Returns a deterministic pseudo-random value in [-1, 1) and advances *state.
float qtest_uniform(unsigned *state);

// Loads a model under the shared reference folder (ends the test when it fails).
Model *qtest_load_model(const char *relative);
Model *qtest_load_stories(void);

// Parses a recipe (ends the test when it fails).
QuantRecipe qtest_recipe(const char *text);

// Samples n_samples x seq_len calibration tokens from the default C4 subset.
CalibrationSet *qtest_c4_calibration(const Model *m, CalibSampling sampling, int n_samples,
                                     int seq_len, uint64_t seed);

// Returns the logits [n, n_vocab] of one sequence through model_forward; the caller frees them.
float *qtest_logits(const Model *m, const int *tokens, int n);

// Returns the mean over positions of KL(base || variant) of the next-token distributions on a
// 256-token story that llama2.c's run.c sampled from stories260K.
double qtest_kl_from_base(const Model *base, const Model *variant);

#endif
