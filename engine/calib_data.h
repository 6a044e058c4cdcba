// calib_data.h: calibration token sequences drawn from a text file.
//
// Sources: a plain-text file (each line is one document, as Hugging Face's "text" loader reads
// WikiText-2) or JSON Lines with a "text" field (files ending in .jsonl or .json). Without a path,
// the C4 validation subset of the c4_validation manifest is used, because the study's files
// (WikiText-2 train for GPTQ, Pile validation for AWQ and SmoothQuant) are not available offline;
// that manifest names them for machines that can download them. WikiText-2 test, the perplexity
// evaluation text, is rejected.
//
// Three samplings reproduce llmc's preprocessing of the study's settings:
//   windows   (llmc wikitext2_gptq, for GPTQ): the documents joined with "\n\n" are tokenized
//             once (BOS at the start); each sample is a window of seq_len tokens at a uniformly
//             random start.
//   packed    (llmc pileval_awq, for AWQ): documents in shuffled order are stripped of surrounding
//             whitespace and tokenized with BOS; those longer than seq_len tokens (or encoding to
//             no token) are skipped; the first n_samples kept are concatenated and cut into
//             floor(total / seq_len) samples of seq_len tokens (usually fewer than n_samples).
//   truncated (llmc pileval_smooth, for SmoothQuant): the first n_samples documents in shuffled
//             order, each tokenized with BOS and cut to at most seq_len tokens.
// The shuffle and the window starts come from a SplitMix64 generator seeded with `seed`, so the
// samples are reproducible but not the ones Python's random or datasets' shuffle would draw.
// When the text is too short for the request, the set is scaled down with a warning (fewer or
// shorter samples).
#ifndef QBIAS_CALIB_DATA_H
#define QBIAS_CALIB_DATA_H

#include <stdint.h>

#include "../quant/spec_methods.h"
#include "resolver.h"
#include "tokenizer.h"

typedef enum {
    CALIB_SAMPLING_WINDOWS = 0,
    CALIB_SAMPLING_PACKED,
    CALIB_SAMPLING_TRUNCATED,
} CalibSampling;

typedef struct {
    const char *path;       // text file; NULL: the default C4 validation subset
    int n_samples;          // requested samples
    int seq_len;            // tokens per sample (at most, for truncated)
    uint64_t seed;
    CalibSampling sampling;
} CalibOptions;

typedef struct {
    int n_samples;
    int *offsets;           // [n_samples + 1]: sample i is tokens[offsets[i] .. offsets[i + 1])
    int *tokens;            // [n_tokens]
    int n_tokens;
    int max_len;            // longest sample
    char *source;           // the file the tokens came from
    char sha256[65];        // SHA-256 of that file
    CalibOptions options;   // the request, with path pointing at `source`
} CalibrationSet;

// The study's calibration for a method (llmc configurations of the reference study): GPTQ
// 128 x 2048 windows, AWQ 128 x 512 packed, SmoothQuant 512 x 512 truncated; seed 42.
void calib_options_default(QuantAlgo algo, CalibOptions *out);

// Returns the sampling's name ("windows", "packed", "truncated").
const char *calib_sampling_name(CalibSampling sampling);

// Returns the calibration file options->path names, else the default C4 subset found through
// `resolver` (newly allocated), or NULL with an error.
char *calib_find_text(const CalibOptions *options, const Resolver *resolver);

// Loads and samples the calibration text. seq_len above max_seq_len (the model's training
// context) is lowered to it with a warning. `resolver` finds the default file and may be NULL when
// options->path is set. Returns NULL with an error for a missing, unreadable or rejected file, a
// JSON Lines record without a "text" string, or text too short for a single sample.
CalibrationSet *calib_set_load(const Tokenizer *tok, int max_seq_len, const Resolver *resolver,
                               const CalibOptions *options);

// Makes a set from token sequences given directly (benchmarks, tests); source is "(tokens)".
CalibrationSet *calib_set_from_tokens(const int *tokens, const int *lengths, int n_samples);

void calib_set_free(CalibrationSet *set);

#endif
