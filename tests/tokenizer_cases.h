// tokenizer_cases.h: helpers for the tokenizer family tests: encoding and decoding with failure
// messages, id-list comparison that prints both lists, and llama.cpp's tokenizer test files.
#ifndef QBIAS_TOKENIZER_CASES_H
#define QBIAS_TOKENIZER_CASES_H

#include <stdbool.h>
#include <stddef.h>

#include "../engine/tokenizer.h"

typedef struct {
    int *ids;
    int n;
} Ids;

// Loads a GGUF vocabulary under the shared reference folder; ends the test on failure.
Tokenizer *tc_load_gguf(const char *relative);
// Loads a Hugging Face folder under the shared reference folder; ends the test on failure.
Tokenizer *tc_load_hf(const char *relative);

Ids tc_encode(const Tokenizer *t, const char *text, size_t len, bool add_special,
              bool parse_special);
// Returns the decoded text; the caller frees it.
char *tc_decode(const Tokenizer *t, const int *ids, int n, bool skip_special);

// Checks that `got` equals `expected`; on a mismatch prints the case, the input and both lists.
// Returns true when they are equal.
bool tc_check_ids(const char *what, int index, const char *input, const Ids *got,
                  const int *expected, int n_expected);

// Parses space-separated ids up to the end of the line into a new array; returns the count.
int tc_parse_ids(const char *line, int **out);

// llama.cpp's tokenizer test format: inputs separated by "\n__ggml_vocab_test__\n" in <base>.inp,
// one line of expected ids (add_special and parse_special false) per input in <base>.out.
typedef struct {
    char **inputs;
    size_t *input_lens;
    int **expected;
    int *n_expected;
    int n;
    char *inp_data, *out_data;
} VocabCases;

VocabCases tc_read_vocab_cases(const char *base_relative);
void tc_free_vocab_cases(VocabCases *c);

// Encodes every case of <base>.inp with `t` (add_special false, parse_special `parse_special`)
// and compares with <base>.out; checks the file has `expected_cases` cases. Returns the number of
// mismatches.
int tc_run_vocab_cases(const Tokenizer *t, const char *base_relative, int expected_cases,
                       bool parse_special);

// Checks that decoding the ids of every case gives the input back.
void tc_check_round_trips(const Tokenizer *t, const char *base_relative);

#endif
