// test_tokenizer_wordpiece.c: the WordPiece family (BERT) against llama.cpp's expected ids for the
// bge vocabulary and the Hugging Face ids of the bert-tiny reference cases, from GGUF, vocab.txt
// and tokenizer.json.
#include "test.h"

#include <cjson/cJSON.h>
#include <stdlib.h>

#include "../engine/tokenizer.h"
#include "../engine/util.h"
#include "tokenizer_cases.h"

#define BGE_VOCAB "models/llama.cpp-vocab-tests/ggml-vocab-bert-bge.gguf"
#define BERT_TINY "reference/bert-tiny"             // vocab.txt + tokenizer_config.json
#define TINY_RANDOM_BERT "models/tiny-random-bert" // tokenizer.json

TEST(wordpiece_bge_gguf_matches_llama_cpp) {
    Tokenizer *t = tc_load_gguf(BGE_VOCAB);
    CHECK_STR(tokenizer_family_name(t), "bert");
    CHECK_EQ_INT(tokenizer_bos_id(t), 101); // [CLS]
    CHECK_EQ_INT(tokenizer_sep_id(t), 102);
    CHECK_EQ_INT(tokenizer_unk_id(t), 100);
    CHECK(tokenizer_add_bos(t));
    CHECK(tokenizer_add_sep(t));
    tc_run_vocab_cases(t, BGE_VOCAB, 46, false);
    tokenizer_free(t);
}

// The .out ids are Hugging Face's for bge-small, whose vocabulary equals bert-base-uncased's.
TEST(wordpiece_hf_folders_match_llama_cpp) {
    static const char *const folders[] = {BERT_TINY, TINY_RANDOM_BERT};
    for (size_t i = 0; i < ARRAY_LEN(folders); i++) {
        Tokenizer *t = tc_load_hf(folders[i]);
        CHECK_EQ_INT(tokenizer_vocab_size(t), 30522);
        CHECK_STR(tokenizer_family_name(t), "bert");
        tc_run_vocab_cases(t, BGE_VOCAB, 46, true);
        tokenizer_free(t);
    }
}

// Hugging Face's ids ([CLS] ... [SEP]) for the 10 bert-tiny sentences. The last one has 888
// pieces; the reference keeps the first 510 and [SEP], as truncation to 512 does.
static void check_bert_tiny_cases(const Tokenizer *t, const char *what) {
    char *data;
    size_t len;
    REQUIRE_OK(file_read_all(test_shared_path(BERT_TINY "/cases.jsonl"), &data, &len));
    int index = 0;
    for (char *line = data; line && *line; index++) {
        char *nl = strchr(line, '\n');
        if (nl) {
            *nl = '\0';
        }
        cJSON *item = cJSON_Parse(line);
        REQUIRE_MSG(item != NULL, "cases.jsonl line %d is not JSON", index + 1);
        const char *name = cJSON_GetStringValue(cJSON_GetObjectItem(item, "name"));
        const char *text = cJSON_GetStringValue(cJSON_GetObjectItem(item, "text"));
        const cJSON *ids = cJSON_GetObjectItem(item, "input_ids");
        bool truncated = cJSON_IsTrue(cJSON_GetObjectItem(item, "truncated"));
        REQUIRE(name != NULL);
        REQUIRE(text != NULL);
        REQUIRE(cJSON_IsArray(ids));
        int n = cJSON_GetArraySize(ids);
        int *expected = xmalloc((size_t)n * sizeof *expected);
        for (int i = 0; i < n; i++) {
            expected[i] = cJSON_GetArrayItem(ids, i)->valueint;
        }

        Ids got = tc_encode(t, text, strlen(text), true, true);
        char label[128];
        snprintf(label, sizeof label, "%s %s", what, name);
        if (truncated) {
            int before = cJSON_GetObjectItem(item, "n_wordpieces_before_truncation")->valueint;
            CHECK_EQ_INT(got.n, before + 2);
            REQUIRE(got.n >= n);
            CHECK_EQ_INT(got.ids[got.n - 1], expected[n - 1]); // [SEP]
            Ids prefix = {got.ids, n - 1};
            tc_check_ids(label, index, text, &prefix, expected, n - 1);
        } else {
            tc_check_ids(label, index, text, &got, expected, n);
        }
        free(got.ids);
        free(expected);
        cJSON_Delete(item);
        line = nl ? nl + 1 : NULL;
    }
    CHECK_EQ_INT(index, 10);
    free(data);
}

TEST(wordpiece_bert_tiny_cases_vocab_txt) {
    Tokenizer *t = tc_load_hf(BERT_TINY);
    StrBuf sb;
    sb_init(&sb);
    tokenizer_describe(t, &sb);
    CHECK_MSG(strstr(sb.data, "source: vocab.txt") != NULL, "%s", sb.data);
    CHECK_MSG(strstr(sb.data, "lowercase true, strip_accents true") != NULL, "%s", sb.data);
    sb_free(&sb);
    check_bert_tiny_cases(t, "vocab.txt");
    tokenizer_free(t);
}

TEST(wordpiece_bert_tiny_cases_tokenizer_json) {
    Tokenizer *t = tc_load_hf(TINY_RANDOM_BERT);
    check_bert_tiny_cases(t, "tokenizer.json");
    tokenizer_free(t);
}

// The GGUF's phantom-space vocabulary gives the same ids as vocab.txt.
TEST(wordpiece_bert_tiny_cases_gguf) {
    Tokenizer *t = tc_load_gguf(BGE_VOCAB);
    check_bert_tiny_cases(t, "GGUF");
    tokenizer_free(t);
}

// Decoding joins "##" pieces, puts spaces between words and, with clean_up_tokenization_spaces,
// removes the space before punctuation, as transformers' decode does.
TEST(wordpiece_decode) {
    static const struct {
        const char *text, *decoded;
    } cases[] = {
        {"Hello, world!", "hello, world!"},
        {"Crème brûlée", "creme brulee"},
        {"unaffable tokenization", "unaffable tokenization"},
        {"I can't go. Are you sure?", "i can't go. are you sure?"},
        {"我apple", "我 apple"}, // CJK characters become words of their own
    };
    static const char *const sources[] = {"GGUF", "vocab.txt", "tokenizer.json"};
    Tokenizer *tokenizers[3] = {tc_load_gguf(BGE_VOCAB), tc_load_hf(BERT_TINY),
                                tc_load_hf(TINY_RANDOM_BERT)};
    for (size_t k = 0; k < ARRAY_LEN(tokenizers); k++) {
        for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
            Ids got = tc_encode(tokenizers[k], cases[i].text, strlen(cases[i].text), true, false);
            char *text = tc_decode(tokenizers[k], got.ids, got.n, true);
            CHECK_MSG(strcmp(text, cases[i].decoded) == 0, "%s case %zu: \"%s\", expected \"%s\"",
                      sources[k], i, text, cases[i].decoded);
            free(text);

            // Without skip_special, [CLS] and [SEP] are words of their own.
            text = tc_decode(tokenizers[k], got.ids, got.n, false);
            StrBuf expected;
            sb_init(&expected);
            sb_printf(&expected, "[CLS] %s [SEP]", cases[i].decoded);
            CHECK_MSG(strcmp(text, expected.data) == 0, "%s case %zu: \"%s\"", sources[k], i, text);
            sb_free(&expected);
            free(text);
            free(got.ids);
        }
    }
    for (size_t k = 0; k < ARRAY_LEN(tokenizers); k++) {
        tokenizer_free(tokenizers[k]);
    }
}

// A word of 101 characters is [UNK]; one of 100 is split into pieces (max_input_chars_per_word).
TEST(wordpiece_long_word_limit) {
    Tokenizer *t = tc_load_hf(BERT_TINY);
    char word[102];
    memset(word, 'x', 101);
    word[101] = '\0';
    Ids got = tc_encode(t, word, 101, false, false);
    CHECK_EQ_INT(got.n, 1);
    CHECK_EQ_INT(got.ids[0], 100);
    free(got.ids);
    got = tc_encode(t, word, 100, false, false);
    CHECK(got.n > 1);
    for (int i = 0; i < got.n; i++) {
        CHECK(got.ids[i] != 100);
    }
    free(got.ids);
    tokenizer_free(t);
}

// parse_special matches "[SEP]" in the text; without it the brackets are punctuation.
TEST(wordpiece_special_tokens_in_text) {
    Tokenizer *t = tc_load_hf(BERT_TINY);
    const char *text = "a [SEP] b";
    Ids on = tc_encode(t, text, strlen(text), false, true);
    static const int expected_on[] = {1037, 102, 1038};
    tc_check_ids("parse_special on", 0, text, &on, expected_on, 3);
    Ids off = tc_encode(t, text, strlen(text), false, false);
    CHECK(off.n == 5); // a [ sep ] b
    for (int i = 0; i < off.n; i++) {
        CHECK(off.ids[i] != 102);
    }
    free(on.ids);
    free(off.ids);
    tokenizer_free(t);
}
