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

TEST(bpe_gpt2_vocab_round_trip) {
    Tokenizer *t = tc_load_gguf(GPT2_VOCAB);
    tc_check_round_trips(t, GPT2_VOCAB);
    tokenizer_free(t);
}

TEST(bpe_llama3_vocab_round_trip) {
    Tokenizer *t = tc_load_gguf(LLAMA3_VOCAB);
    tc_check_round_trips(t, LLAMA3_CASES);
    tokenizer_free(t);
}

// llama.cpp's ids for texts with Llama 3 special tokens under the four flag combinations.
static void check_llama3_special_cases(const Tokenizer *t, const char *what) {
    char *json;
    size_t len;
    REQUIRE_OK(file_read_all(
        test_shared_path("reference/tokenizers/ggml-vocab-llama-bpe.special-cases.json"), &json,
        &len));
    cJSON *root = cJSON_Parse(json);
    REQUIRE(cJSON_IsArray(root));
    CHECK_EQ_INT(cJSON_GetArraySize(root), 6);
    static const struct {
        const char *key;
        bool add_special, parse_special;
    } flags[] = {
        {"add_special=false,parse_special=false", false, false},
        {"add_special=false,parse_special=true", false, true},
        {"add_special=true,parse_special=false", true, false},
        {"add_special=true,parse_special=true", true, true},
    };
    int index = 0;
    const cJSON *item;
    cJSON_ArrayForEach(item, root) {
        const char *text = cJSON_GetStringValue(cJSON_GetObjectItem(item, "text"));
        REQUIRE(text != NULL);
        for (size_t f = 0; f < ARRAY_LEN(flags); f++) {
            const cJSON *list = cJSON_GetObjectItem(item, flags[f].key);
            REQUIRE(cJSON_IsArray(list));
            int n = cJSON_GetArraySize(list);
            int *expected = xmalloc(((size_t)n + 1) * sizeof *expected);
            for (int i = 0; i < n; i++) {
                expected[i] = cJSON_GetArrayItem(list, i)->valueint;
            }
            Ids got = tc_encode(t, text, strlen(text), flags[f].add_special, flags[f].parse_special);
            char label[160];
            snprintf(label, sizeof label, "%s %s", what, flags[f].key);
            tc_check_ids(label, index, text, &got, expected, n);

            // Decoding gives the text back, with the BOS text in front when one was added.
            char *decoded = tc_decode(t, got.ids, got.n, false);
            const char *body = decoded;
            if (flags[f].add_special) {
                CHECK_MSG(strncmp(decoded, "<|begin_of_text|>", 17) == 0, "%s: %s", label, decoded);
                body += 17;
            }
            CHECK_MSG(strcmp(body, text) == 0, "%s: decoded \"%s\"", label, decoded);
            free(decoded);
            free(got.ids);
            free(expected);
        }
        index++;
    }
    cJSON_Delete(root);
    free(json);
}

TEST(bpe_llama3_special_tokens_match_llama_cpp) {
    Tokenizer *t = tc_load_gguf(LLAMA3_VOCAB);
    CHECK_EQ_INT(tokenizer_vocab_size(t), 128256);
    CHECK_EQ_INT(tokenizer_bos_id(t), 128000);
    CHECK_EQ_INT(tokenizer_eos_id(t), 128009);
    CHECK(tokenizer_add_bos(t));
    CHECK(!tokenizer_add_eos(t));
    CHECK_STR(tokenizer_family_name(t), "gpt2");
    check_llama3_special_cases(t, "GGUF");

    // skip_special drops the control tokens of a chat prompt.
    const char *chat = "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>";
    Ids got = tc_encode(t, chat, strlen(chat), true, true);
    char *text = tc_decode(t, got.ids, got.n, true);
    CHECK_STR(text, "user\n\nHi");
    free(text);
    free(got.ids);
    tokenizer_free(t);
}

// ----------------------------------------------------------------------------
// Meta's tiktoken file: the same vocabulary as the Llama 3 GGUF, built from ranks

TEST(bpe_tiktoken_llama3_equals_gguf) {
    TiktokenOptions options = tokenizer_tiktoken_llama3_options();
    CHECK_EQ_INT(options.n_special_tokens, 256);
    CHECK_STR(options.special_tokens[0], "<|begin_of_text|>");
    CHECK_STR(options.special_tokens[10], "<|python_tag|>");
    CHECK_STR(options.special_tokens[11], "<|reserved_special_token_3|>");
    CHECK_STR(options.special_tokens[255], "<|reserved_special_token_247|>");

    const char *path = test_shared_path("models/llama3-tokenizer/tokenizer.model");
    Tokenizer *tik = tokenizer_load_tiktoken(path, &options);
    REQUIRE_MSG(tik != NULL, "tokenizer_load_tiktoken: %s", err_msg());
    Tokenizer *gguf = tc_load_gguf(LLAMA3_VOCAB);

    // Same texts and types for every id.
    CHECK_EQ_INT(tokenizer_vocab_size(tik), tokenizer_vocab_size(gguf));
    int text_mismatches = 0;
    for (int id = 0; id < tokenizer_vocab_size(gguf); id++) {
        const char *a = tokenizer_token_text(tik, id), *b = tokenizer_token_text(gguf, id);
        if (strcmp(a, b) != 0 || tokenizer_token_type(tik, id) != tokenizer_token_type(gguf, id)) {
            if (text_mismatches++ < 5) {
                CHECK_MSG(false, "token %d: tiktoken \"%s\", GGUF \"%s\"", id, a, b);
            }
        }
    }
    CHECK_EQ_INT(text_mismatches, 0);

    // The derived merges are the GGUF's 280147 (the official tokenizer.json has as many).
    StrBuf sb;
    sb_init(&sb);
    tokenizer_describe(tik, &sb);
    CHECK_MSG(strstr(sb.data, "merges: 280147, ignore_merges: true") != NULL, "%s", sb.data);
    CHECK_MSG(strstr(sb.data, "source: tiktoken") != NULL, "%s", sb.data);
    sb_free(&sb);

    CHECK_EQ_INT(tokenizer_bos_id(tik), 128000);
    CHECK_EQ_INT(tokenizer_eos_id(tik), 128009);
    tc_run_vocab_cases(tik, LLAMA3_CASES, 46, false);
    check_llama3_special_cases(tik, "tiktoken");
    tokenizer_free(gguf);
    tokenizer_free(tik);
}

// With ignore_merges off, the derived merges still give the same ids on these cases: a piece that
// is a token is also reached by merging, except where a lower-ranked merge splits it differently.
TEST(bpe_tiktoken_without_ignore_merges) {
    TiktokenOptions options = tokenizer_tiktoken_llama3_options();
    options.ignore_merges = false;
    options.pre = "dbrx"; // Llama 3's regex without llama-bpe's ignore_merges
    Tokenizer *t =
        tokenizer_load_tiktoken(test_shared_path("models/llama3-tokenizer/tokenizer.model"),
                                &options);
    REQUIRE_MSG(t != NULL, "%s", err_msg());
    StrBuf sb;
    sb_init(&sb);
    tokenizer_describe(t, &sb);
    CHECK_MSG(strstr(sb.data, "ignore_merges: false") != NULL, "%s", sb.data);
    sb_free(&sb);
    // "Hello world" and " Hello world" as in the GGUF check of the reference data.
    Ids a = tc_encode(t, "Hello world", 11, false, false);
    static const int expected_a[] = {9906, 1917};
    tc_check_ids("tiktoken dbrx", 0, "Hello world", &a, expected_a, 2);
    free(a.ids);
    tokenizer_free(t);
}

// ----------------------------------------------------------------------------
// Hugging Face folders

// The GPT-2 tokenizer.json of the tiny Llama 3 model and of the tiny random GPT-2.
TEST(bpe_hf_gpt2_folders_match_llama_cpp) {
    static const char *const folders[] = {
        "reference/tiny-models/llama3-tiny/hf",
        "models/tiny-random-gpt2-fullvocab",
    };
    for (size_t i = 0; i < ARRAY_LEN(folders); i++) {
        Tokenizer *t = tc_load_hf(folders[i]);
        CHECK_EQ_INT(tokenizer_vocab_size(t), 50257);
        CHECK(!tokenizer_add_bos(t));
        CHECK(!tokenizer_add_eos(t));
        CHECK_EQ_INT(tokenizer_bos_id(t), 50256);
        CHECK_EQ_INT(tokenizer_token_type(t, 50256), TOKEN_TYPE_CONTROL);
        tc_run_vocab_cases(t, GPT2_VOCAB, 46, true);
        tokenizer_free(t);
    }
}

// Checks that `t` encodes sentence.txt (add_special and parse_special true) to the first ids of
// sequence 3 in `sequences` (a tiny model's sequences.txt, made by llama.cpp), that the sequence
// has `expected_len` ids, and that the ids decode back to the sentence.
static void check_sentence_sequence(const Tokenizer *t, const char *sequences, int expected_len) {
    char *sentence, *lines;
    size_t sentence_len, lines_len;
    REQUIRE_OK(file_read_all(test_shared_path("reference/tiny-models/sentence.txt"), &sentence,
                             &sentence_len));
    REQUIRE_OK(file_read_all(test_shared_path(sequences), &lines, &lines_len));
    char *line = lines;
    for (int i = 0; i < 3 && line; i++) {
        line = strchr(line, '\n');
        line = line ? line + 1 : NULL;
    }
    REQUIRE_MSG(line != NULL, "%s has fewer than 4 lines", sequences);
    int *expected;
    int n_expected = tc_parse_ids(line, &expected);
    CHECK_EQ_INT(n_expected, expected_len);

    Ids got = tc_encode(t, sentence, sentence_len, true, true);
    REQUIRE(got.n >= n_expected);
    Ids prefix = {got.ids, n_expected};
    tc_check_ids(sequences, 3, sentence, &prefix, expected, n_expected);
    char *text = tc_decode(t, got.ids, got.n, true);
    CHECK_STR(text, sentence);

    free(text);
    free(got.ids);
    free(expected);
    free(lines);
    free(sentence);
}

// llama3-tiny's sequence 3 is the whole sentence with the GPT-2 vocabulary (add_special adds
// nothing for it): 91 ids.
TEST(bpe_hf_llama3_tiny_sentence) {
    Tokenizer *t = tc_load_hf("reference/tiny-models/llama3-tiny/hf");
    check_sentence_sequence(t, "reference/tiny-models/llama3-tiny/sequences.txt", 91);
    tokenizer_free(t);
}

// The Llama 2 layout of qwen2-tiny's tokenizer.json: normalizer Prepend "▁" + Replace " " -> "▁",
// BPE with byte fallback, <s> added by the TemplateProcessing post-processor.
TEST(bpe_hf_spm_layout_matches_llama_cpp) {
    Tokenizer *t = tc_load_hf("reference/tiny-models/qwen2-tiny/hf");
    CHECK_EQ_INT(tokenizer_vocab_size(t), 32000);
    CHECK(tokenizer_add_bos(t));
    CHECK_EQ_INT(tokenizer_bos_id(t), 1);
    CHECK_EQ_INT(tokenizer_unk_id(t), 0);
    CHECK_EQ_INT(tokenizer_token_type(t, 3), TOKEN_TYPE_BYTE); // <0x00>
    tc_run_vocab_cases(t, LLAMA_SPM_CASES, 46, true);
    tc_check_round_trips(t, LLAMA_SPM_CASES);

    // qwen2-tiny's sequence 3: BOS, then the sentence, cut to 100 ids.
    check_sentence_sequence(t, "reference/tiny-models/qwen2-tiny/sequences.txt", 100);
    tokenizer_free(t);
}

// ----------------------------------------------------------------------------
// Pre-tokenizer names of GGUF files: Qwen2 splits numbers into digits, Llama 3 into groups of 3

TEST(bpe_qwen2_pre_splits_digits) {
    TiktokenOptions options = tokenizer_tiktoken_llama3_options();
    options.pre = "qwen2";
    options.ignore_merges = false;
    const char *path = test_shared_path("models/llama3-tokenizer/tokenizer.model");
    Tokenizer *qwen2 = tokenizer_load_tiktoken(path, &options);
    REQUIRE_MSG(qwen2 != NULL, "%s", err_msg());
    Tokenizer *llama3 = tc_load_gguf(LLAMA3_VOCAB);

    Ids got = tc_encode(qwen2, "x 12345", 7, false, false);
    int expected[8];
    int n = 0;
    expected[n++] = tokenizer_lookup(qwen2, "x", 1);
    expected[n++] = tokenizer_lookup(qwen2, "\xc4\xa0", 2); // "Ġ": the space alone
    for (const char *d = "12345"; *d; d++) {
        expected[n++] = tokenizer_lookup(qwen2, d, 1);
    }
    tc_check_ids("qwen2 digits", 0, "x 12345", &got, expected, n);
    free(got.ids);

    // Llama 3 keeps groups of up to three digits: "123" and "45".
    got = tc_encode(llama3, "x 12345", 7, false, false);
    static const int expected_llama3[] = {87, 220, 4513, 1774};
    tc_check_ids("llama3 digits", 0, "x 12345", &got, expected_llama3, 4);
    free(got.ids);
    tokenizer_free(llama3);
    tokenizer_free(qwen2);
}

// ----------------------------------------------------------------------------
// tokenizer.json components on a hand-made vocabulary
//
// Tokens: a b - a- -b a-b <unk>; merges "a -", "- b", "a- b". When "a-b" stays one piece it
// merges into the single token a-b (5), so the ids show where the pre-tokenizer cut.

enum { TA, TB, TDASH, TA_DASH, TDASH_B, TA_DASH_B, TUNK };

// Writes tokenizer.json with the given normalizer and pre_tokenizer (JSON text) to a new folder
// and loads it.
static Tokenizer *load_tiny_json(const char *name, const char *normalizer, const char *pre,
                                 bool fuse_unk) {
    char *json = xasprintf(
        "{\"version\": \"1.0\", \"added_tokens\": [{\"id\": 6, \"content\": \"<unk>\", "
        "\"special\": true}], \"normalizer\": %s, \"pre_tokenizer\": %s, "
        "\"post_processor\": null, \"decoder\": null, \"model\": {\"type\": \"BPE\", "
        "\"unk_token\": \"<unk>\", \"fuse_unk\": %s, \"vocab\": {\"a\": 0, \"b\": 1, \"-\": 2, "
        "\"a-\": 3, \"-b\": 4, \"a-b\": 5, \"<unk>\": 6}, \"merges\": [\"a -\", [\"-\", \"b\"], "
        "\"a- b\"]}}",
        normalizer, pre, fuse_unk ? "true" : "false");
    char *dir = path_join(test_tmp_dir(), name);
    REQUIRE_OK(dir_create(dir));
    char *path = path_join(dir, "tokenizer.json");
    REQUIRE_OK(file_write_atomic(path, json, strlen(json)));
    Tokenizer *t = tokenizer_load_hf(dir);
    REQUIRE_MSG(t != NULL, "%s: %s", name, err_msg());
    free(path);
    free(dir);
    free(json);
    return t;
}

TEST(bpe_json_split_behaviors) {
    static const struct {
        const char *pre;
        const char *text;
        int ids[4];
        int n;
    } cases[] = {
        {"null", "a-b", {TA_DASH_B}, 1},
        {"{\"type\": \"Split\", \"pattern\": {\"String\": \"-\"}, \"behavior\": \"Isolated\"}",
         "a-b", {TA, TDASH, TB}, 3},
        {"{\"type\": \"Split\", \"pattern\": {\"Regex\": \"-\"}, \"behavior\": \"Removed\"}",
         "a-b", {TA, TB}, 2},
        {"{\"type\": \"Split\", \"pattern\": {\"String\": \"-\"}, \"behavior\": "
         "\"MergedWithPrevious\"}",
         "a-b", {TA_DASH, TB}, 2},
        {"{\"type\": \"Split\", \"pattern\": {\"String\": \"-\"}, \"behavior\": \"MergedWithNext\"}",
         "a-b", {TA, TDASH_B}, 2},
        {"{\"type\": \"Split\", \"pattern\": {\"String\": \"-\"}, \"behavior\": \"Contiguous\"}",
         "a--b", {TA, TDASH, TDASH, TB}, 4},
        {"{\"type\": \"Split\", \"pattern\": {\"String\": \"-\"}, \"behavior\": \"Removed\", "
         "\"invert\": true}",
         "a-b", {TDASH}, 1},
        {"{\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\", \"pattern\": "
         "{\"Regex\": \"b\"}, \"behavior\": \"Isolated\"}]}",
         "a-b", {TA_DASH, TB}, 2},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        Tokenizer *t = load_tiny_json("split", "null", cases[i].pre, true);
        Ids got = tc_encode(t, cases[i].text, strlen(cases[i].text), false, false);
        tc_check_ids(cases[i].pre, (int)i, cases[i].text, &got, cases[i].ids, cases[i].n);
        free(got.ids);
        tokenizer_free(t);
    }
}

TEST(bpe_json_normalizers_and_unknown) {
    static const struct {
        const char *normalizer;
        bool fuse_unk;
        const char *text;
        int ids[4];
        int n;
    } cases[] = {
        {"{\"type\": \"Lowercase\"}", true, "A-B", {TA_DASH_B}, 1},
        {"{\"type\": \"Replace\", \"pattern\": {\"String\": \"x\"}, \"content\": \"-\"}", true,
         "axb", {TA_DASH_B}, 1},
        {"{\"type\": \"Prepend\", \"prepend\": \"a\"}", true, "-b", {TA_DASH_B}, 1},
        // NFKC turns the fullwidth "ａ" (U+FF41) into "a".
        {"{\"type\": \"Sequence\", \"normalizers\": [{\"type\": \"NFKC\"}, {\"type\": "
         "\"Strip\"}]}",
         true, " \xef\xbd\x81-b ", {TA_DASH_B}, 1},
        // Characters outside the vocabulary: one <unk> for the run with fuse_unk, else one each.
        {"null", true, "a??b", {TA, TUNK, TB}, 3},
        {"null", false, "a??b", {TA, TUNK, TUNK, TB}, 4},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        Tokenizer *t = load_tiny_json("norm", cases[i].normalizer, "null", cases[i].fuse_unk);
        Ids got = tc_encode(t, cases[i].text, strlen(cases[i].text), false, false);
        tc_check_ids(cases[i].normalizer, (int)i, cases[i].text, &got, cases[i].ids, cases[i].n);
        free(got.ids);
        tokenizer_free(t);
    }
}

// ----------------------------------------------------------------------------
// Errors

static void check_load_error(Tokenizer *t, const char *expected_error, const char *what) {
    CHECK_MSG(t == NULL, "%s: loaded without an error", what);
    CHECK_MSG(strstr(err_msg(), expected_error) != NULL, "%s: error \"%s\" lacks \"%s\"", what,
              err_msg(), expected_error);
    tokenizer_free(t);
}

static Tokenizer *load_json_text(const char *name, const char *json) {
    char *dir = path_join(test_tmp_dir(), name);
    REQUIRE_OK(dir_create(dir));
    char *path = path_join(dir, "tokenizer.json");
    REQUIRE_OK(file_write_atomic(path, json, strlen(json)));
    Tokenizer *t = tokenizer_load_hf(dir);
    free(path);
    free(dir);
    return t;
}

TEST(bpe_load_errors) {
    check_load_error(load_json_text("broken", "{\"model\": {\"type\": \"BPE\", "),
                     "invalid JSON near byte", "truncated JSON");
    check_load_error(load_json_text("unigram", "{\"model\": {\"type\": \"Unigram\", "
                                               "\"vocab\": []}}"),
                     "model.type is \"Unigram\"", "unsupported model");
    check_load_error(load_json_text("badmerge", "{\"model\": {\"type\": \"BPE\", \"vocab\": "
                                                "{\"a\": 0, \"b\": 1}, \"merges\": [\"a c\"]}}"),
                     "model.merges[0] \"a c\" is not two vocabulary tokens", "unknown merge part");
    check_load_error(load_json_text("gap", "{\"model\": {\"type\": \"BPE\", \"vocab\": "
                                           "{\"a\": 0, \"b\": 2}, \"merges\": []}}"),
                     "no token with id 1", "gap in ids");
    check_load_error(load_json_text("metaspace",
                                    "{\"pre_tokenizer\": {\"type\": \"Metaspace\"}, \"model\": "
                                    "{\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}}"),
                     "pre-tokenizer type \"Metaspace\" is not supported", "Metaspace");
    check_load_error(load_json_text("regex",
                                    "{\"pre_tokenizer\": {\"type\": \"Split\", \"pattern\": "
                                    "{\"Regex\": \"(a\"}, \"behavior\": \"Isolated\"}, \"model\": "
                                    "{\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}}"),
                     "does not compile at offset", "invalid regex");
    check_load_error(tokenizer_load_hf(test_tmp_dir()), "neither tokenizer.json nor vocab.txt",
                     "empty folder");
    check_load_error(tokenizer_load_hf("/nonexistent/qbias"), "not a directory", "no folder");

    TiktokenOptions options = tokenizer_tiktoken_llama3_options();
    options.pre = "gpt-5";
    check_load_error(
        tokenizer_load_tiktoken(test_shared_path("models/llama3-tokenizer/tokenizer.model"),
                                &options),
        "tokenizer.ggml.pre is \"gpt-5\", which qbias does not support", "unknown pre");
    char *bad = path_join(test_tmp_dir(), "bad.tiktoken");
    REQUIRE_OK(file_write_atomic(bad, "IQ== 0\nIg== 5\n", 14));
    options = tokenizer_tiktoken_llama3_options();
    check_load_error(tokenizer_load_tiktoken(bad, &options), "bad.tiktoken:2: expected",
                     "rank out of order");
    free(bad);
}

// A long text without spaces is one piece: the heap keeps the merging at O(n log n), and the
// text decodes back unchanged.
TEST(bpe_long_piece) {
    Tokenizer *t = tc_load_gguf(GPT2_VOCAB);
    size_t n = 200000;
    char *text = xmalloc(n + 1);
    for (size_t i = 0; i < n; i++) {
        text[i] = "abcdefghij"[(i * 7 + i / 13) % 10];
    }
    text[n] = '\0';
    double start = now_seconds();
    Ids got = tc_encode(t, text, n, false, false);
    double seconds = now_seconds() - start;
    CHECK_MSG(seconds < 10, "encoding %zu bytes took %.1f s", n, seconds);
    CHECK(got.n > 0);
    CHECK(got.n < (int)n);
    char *decoded = tc_decode(t, got.ids, got.n, false);
    CHECK(strcmp(decoded, text) == 0);
    free(decoded);
    free(got.ids);
    free(text);
    tokenizer_free(t);
}
