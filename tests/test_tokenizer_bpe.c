// test_tokenizer_bpe.c: the BPE family against llama.cpp's expected ids (GPT-2 and Llama 3
// vocabularies), Hugging Face tokenizer.json folders and Meta's tiktoken file.
#include "test.h"

#include <cjson/cJSON.h>
#include <stdlib.h>

#include "../engine/tokenizer.h"
#include "../engine/util.h"
#include "tokenizer_cases.h"

#define GPT2_VOCAB "models/llama.cpp-vocab-tests/ggml-vocab-gpt-2.gguf"
#define LLAMA3_VOCAB "reference/tokenizers/ggml-vocab-llama-bpe.gguf"
#define LLAMA3_CASES "models/llama.cpp-vocab-tests/ggml-vocab-llama-bpe.gguf"
#define LLAMA_SPM_CASES "models/llama.cpp-vocab-tests/ggml-vocab-llama-spm.gguf"

TEST(bpe_gpt2_vocab_matches_llama_cpp) {
    Tokenizer *t = tc_load_gguf(GPT2_VOCAB);
    tc_run_vocab_cases(t, GPT2_VOCAB, 46, false);
    tokenizer_free(t);
}

TEST(bpe_llama3_vocab_matches_llama_cpp) {
    Tokenizer *t = tc_load_gguf(LLAMA3_VOCAB);
    tc_run_vocab_cases(t, LLAMA3_CASES, 46, false);
    tokenizer_free(t);
}
