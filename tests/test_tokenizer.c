// test_tokenizer.c: the tokenizer layer and the SentencePiece tokenizer against llama.cpp's
// expected ids (llama.cpp's tokenizer test files), llama2.c's prompt ids and hand-made GGUF files.
#include "test.h"

#include <cjson/cJSON.h>
#include <stdlib.h>

#include "../engine/gguf.h"
#include "../engine/tokenizer.h"
#include "../engine/util.h"

#define LLAMA_SPM_VOCAB "models/llama.cpp-vocab-tests/ggml-vocab-llama-spm.gguf"
#define PHI3_VOCAB "models/llama.cpp-vocab-tests/ggml-vocab-phi-3.gguf"
#define STORIES_GGUF "models/stories260K/stories260K.gguf"

// ----------------------------------------------------------------------------
// Helpers

static Tokenizer *load_tokenizer_path(const char *path) {
    GGUFFile *f = gguf_open(path);
    REQUIRE_MSG(f != NULL, "gguf_open(%s) failed: %s", path, err_msg());
    Tokenizer *t = tokenizer_load_gguf(f);
    gguf_close(f); // the tokenizer must not point into the mapping
    REQUIRE_MSG(t != NULL, "tokenizer_load_gguf(%s) failed: %s", path, err_msg());
    return t;
}

static Tokenizer *load_shared_tokenizer(const char *relative) {
    return load_tokenizer_path(test_shared_path(relative));
}

typedef struct {
    int *ids;
    int n;
} Ids;

static Ids encode(const Tokenizer *t, const char *text, size_t len, bool add_special,
                  bool parse_special) {
    Ids r = {0};
    REQUIRE_OK(tokenizer_encode(t, text, len, add_special, parse_special, &r.ids, &r.n));
    REQUIRE(r.ids != NULL);
    return r;
}

static Ids encode_str(const Tokenizer *t, const char *text, bool add_special, bool parse_special) {
    return encode(t, text, strlen(text), add_special, parse_special);
}

// Returns the decoded text; the caller frees it.
static char *decode(const Tokenizer *t, const int *ids, int n, bool skip_special) {
    StrBuf sb;
    sb_init(&sb);
    REQUIRE_OK(tokenizer_decode(t, ids, n, skip_special, &sb));
    return sb.data;
}

static bool ids_equal(const int *a, int na, const int *b, int nb) {
    return na == nb && (na == 0 || memcmp(a, b, (size_t)na * sizeof *a) == 0);
}

static void append_ids(StrBuf *sb, const int *ids, int n) {
    sb_append(sb, "[");
    for (int i = 0; i < n; i++) {
        sb_printf(sb, i ? " %d" : "%d", ids[i]);
    }
    sb_append(sb, "]");
}

// Checks that `got` equals `expected`; on a mismatch prints the case, the input and both lists.
static void check_ids(const char *what, int index, const char *input, const Ids *got,
                      const int *expected, int n_expected) {
    if (ids_equal(got->ids, got->n, expected, n_expected)) {
        return;
    }
    StrBuf sb;
    sb_init(&sb);
    sb_printf(&sb, "%s case %d: input ", what, index);
    sb_append_json_string(&sb, input);
    sb_append(&sb, "\n    expected ");
    append_ids(&sb, expected, n_expected);
    sb_append(&sb, "\n    got      ");
    append_ids(&sb, got->ids, got->n);
    printf("  %s\n", sb.data);
    test_fail(__FILE__, __LINE__, "%s case %d: token ids differ (listed above)", what, index);
    sb_free(&sb);
}

// Parses space-separated ids from `line` (up to the end of the line) into a new array.
static int parse_ids(const char *line, int **out) {
    int cap = 16, n = 0;
    int *ids = xmalloc((size_t)cap * sizeof *ids);
    const char *p = line;
    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == '\r') {
            p++;
        }
        if (*p == '\0' || *p == '\n') {
            break;
        }
        char *end;
        long v = strtol(p, &end, 10);
        REQUIRE_MSG(end != p, "bad id list: %s", line);
        if (n == cap) {
            cap *= 2;
            ids = xrealloc(ids, (size_t)cap * sizeof *ids);
        }
        ids[n++] = (int)v;
        p = end;
    }
    *out = ids;
    return n;
}

// llama.cpp's tokenizer test format: inputs separated by "\n__ggml_vocab_test__\n" in .inp, one
// line of expected ids (without BOS, encoded with add_special = false) per input in .out.
typedef struct {
    char **inputs;
    size_t *input_lens;
    int **expected;
    int *n_expected;
    int n;
    char *inp_data, *out_data;
} VocabCases;

static VocabCases read_vocab_cases(const char *gguf_relative) {
    VocabCases c = {0};
    char relative[512];
    size_t inp_len, out_len;
    snprintf(relative, sizeof relative, "%s.inp", gguf_relative);
    REQUIRE_OK(file_read_all(test_shared_path(relative), &c.inp_data, &inp_len));
    snprintf(relative, sizeof relative, "%s.out", gguf_relative);
    REQUIRE_OK(file_read_all(test_shared_path(relative), &c.out_data, &out_len));

    const char *sep = "\n__ggml_vocab_test__\n";
    size_t sep_len = strlen(sep);
    c.inputs = xmalloc(128 * sizeof *c.inputs);
    c.input_lens = xmalloc(128 * sizeof *c.input_lens);
    size_t pos = 0;
    while (pos < inp_len && c.n < 128) {
        char *next = memmem(c.inp_data + pos, inp_len - pos, sep, sep_len);
        size_t end = next ? (size_t)(next - c.inp_data) : inp_len;
        c.inp_data[end] = '\0'; // the separator starts with '\n', so this only ends the input
        c.inputs[c.n] = c.inp_data + pos;
        c.input_lens[c.n] = end - pos;
        c.n++;
        pos = next ? end + sep_len : inp_len;
    }

    c.expected = xmalloc((size_t)c.n * sizeof *c.expected);
    c.n_expected = xmalloc((size_t)c.n * sizeof *c.n_expected);
    char *line = c.out_data;
    int n_lines = 0;
    while (line && *line && n_lines < c.n) {
        c.n_expected[n_lines] = parse_ids(line, &c.expected[n_lines]);
        n_lines++;
        char *nl = strchr(line, '\n');
        line = nl ? nl + 1 : NULL;
    }
    REQUIRE_MSG(n_lines == c.n, "%s: %d inputs but %d lines of expected ids", gguf_relative, c.n,
                n_lines);
    return c;
}

static void free_vocab_cases(VocabCases *c) {
    for (int i = 0; i < c->n; i++) {
        free(c->expected[i]);
    }
    free(c->expected);
    free(c->n_expected);
    free(c->inputs);
    free(c->input_lens);
    free(c->inp_data);
    free(c->out_data);
}

// Encodes every case as llama.cpp's test-tokenizer-0 does (add_special and parse_special false).
static void run_vocab_cases(const char *gguf_relative, int expected_cases) {
    VocabCases c = read_vocab_cases(gguf_relative);
    CHECK_EQ_INT(c.n, expected_cases);
    Tokenizer *t = load_shared_tokenizer(gguf_relative);
    for (int i = 0; i < c.n; i++) {
        Ids got = encode(t, c.inputs[i], c.input_lens[i], false, false);
        check_ids(gguf_relative, i, c.inputs[i], &got, c.expected[i], c.n_expected[i]);
        free(got.ids);
    }
    tokenizer_free(t);
    free_vocab_cases(&c);
}

static void run_round_trips(const char *gguf_relative) {
    VocabCases c = read_vocab_cases(gguf_relative);
    Tokenizer *t = load_shared_tokenizer(gguf_relative);
    for (int i = 0; i < c.n; i++) {
        Ids got = encode(t, c.inputs[i], c.input_lens[i], false, false);
        char *text = decode(t, got.ids, got.n, false);
        CHECK_MSG(strcmp(text, c.inputs[i]) == 0, "case %d: \"%s\" decodes to \"%s\"", i,
                  c.inputs[i], text);
        free(text);

        // With BOS in front, decoding without special tokens gives the same text.
        Ids with_bos = encode(t, c.inputs[i], c.input_lens[i], true, false);
        text = decode(t, with_bos.ids, with_bos.n, true);
        CHECK_MSG(strcmp(text, c.inputs[i]) == 0, "case %d with BOS: \"%s\" decodes to \"%s\"",
                  i, c.inputs[i], text);
        free(text);
        free(with_bos.ids);
        free(got.ids);
    }
    tokenizer_free(t);
    free_vocab_cases(&c);
}

// ----------------------------------------------------------------------------
// llama.cpp's tokenizer test files

TEST(spm_llama_vocab_matches_llama_cpp) {
    run_vocab_cases(LLAMA_SPM_VOCAB, 46);
}

TEST(spm_phi3_vocab_matches_llama_cpp) {
    run_vocab_cases(PHI3_VOCAB, 46);
}

TEST(spm_llama_vocab_round_trip) {
    run_round_trips(LLAMA_SPM_VOCAB);
}

TEST(spm_phi3_vocab_round_trip) {
    run_round_trips(PHI3_VOCAB);
}

// The tiny reference models' sequence 3 is sentence.txt tokenized by llama.cpp with their
// vocabulary (add_special true, parse_special false), cut to its first 100 tokens.
static void check_sentence_sequence(const char *vocab, const char *sequences) {
    Tokenizer *t = load_shared_tokenizer(vocab);
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
    int n_expected = parse_ids(line, &expected);
    CHECK_EQ_INT(n_expected, 100);

    Ids got = encode(t, sentence, sentence_len, true, false);
    REQUIRE(got.n >= n_expected);
    Ids prefix = {got.ids, n_expected};
    check_ids(sequences, 3, sentence, &prefix, expected, n_expected);

    char *text = decode(t, got.ids, got.n, true);
    CHECK_STR(text, sentence);
    free(text);
    free(got.ids);
    free(expected);
    free(lines);
    free(sentence);
    tokenizer_free(t);
}

TEST(spm_llama_sentence_matches_llama_cpp) {
    check_sentence_sequence(LLAMA_SPM_VOCAB, "reference/tiny-models/llama2-tiny/sequences.txt");
}

TEST(spm_phi3_sentence_matches_llama_cpp) {
    check_sentence_sequence(PHI3_VOCAB, "reference/tiny-models/phi3-tiny/sequences.txt");
}

// ----------------------------------------------------------------------------
// stories260K: llama2.c's prompt ids, and llama.cpp's sequences that start with them

TEST(spm_stories260k_prompts_match_llama2c) {
    Tokenizer *t = load_shared_tokenizer(STORIES_GGUF);
    CHECK_EQ_INT(tokenizer_vocab_size(t), 512);

    char *json_text, *sequences;
    size_t json_len, sequences_len;
    REQUIRE_OK(file_read_all(test_shared_path("models/stories260K/reference_logits_runc.json"),
                             &json_text, &json_len));
    REQUIRE_OK(file_read_all(test_shared_path("reference/stories260K-llama.cpp/sequences.txt"),
                             &sequences, &sequences_len));
    cJSON *root = cJSON_Parse(json_text);
    REQUIRE(cJSON_IsArray(root));
    CHECK_EQ_INT(cJSON_GetArraySize(root), 4);

    char *line = sequences;
    int index = 0;
    cJSON *item;
    cJSON_ArrayForEach(item, root) {
        const char *prompt = cJSON_GetStringValue(cJSON_GetObjectItem(item, "prompt"));
        cJSON *ids_json = cJSON_GetObjectItem(item, "prompt_ids");
        REQUIRE(prompt != NULL);
        REQUIRE(cJSON_IsArray(ids_json));
        int n_expected = cJSON_GetArraySize(ids_json);
        int *expected = xmalloc((size_t)n_expected * sizeof *expected);
        for (int i = 0; i < n_expected; i++) {
            expected[i] = cJSON_GetArrayItem(ids_json, i)->valueint;
        }

        Ids got = encode_str(t, prompt, true, false);
        check_ids("stories260K prompt", index, prompt, &got, expected, n_expected);

        // llama.cpp's sequence for this prompt starts with the same ids.
        REQUIRE_MSG(line != NULL && *line, "sequences.txt has no line %d", index);
        int *sequence;
        int n_sequence = parse_ids(line, &sequence);
        REQUIRE(n_sequence >= got.n);
        Ids sequence_prefix = {sequence, got.n};
        check_ids("stories260K llama.cpp sequence", index, prompt, &sequence_prefix, got.ids,
                  got.n);

        char *text = decode(t, got.ids, got.n, true);
        CHECK_STR(text, prompt);
        free(text);

        free(sequence);
        free(got.ids);
        free(expected);
        char *nl = strchr(line, '\n');
        line = nl ? nl + 1 : NULL;
        index++;
    }
    cJSON_Delete(root);
    free(sequences);
    free(json_text);
    tokenizer_free(t);
}

// stories260K.gguf has no add_bos_token, add_eos_token or add_space_prefix keys.
TEST(tokenizer_describe_marks_defaults) {
    Tokenizer *t = load_shared_tokenizer(STORIES_GGUF);
    StrBuf sb;
    sb_init(&sb);
    tokenizer_describe(t, &sb);
    CHECK_MSG(strstr(sb.data, "tokenizer: llama (") != NULL, "%s", sb.data);
    CHECK_MSG(strstr(sb.data, "vocabulary: 512 tokens") != NULL, "%s", sb.data);
    CHECK_MSG(strstr(sb.data, "bos_token_id: 1 \"<s>\"\n") != NULL, "%s", sb.data);
    CHECK_MSG(strstr(sb.data, "eos_token_id: 2 \"</s>\"\n") != NULL, "%s", sb.data);
    CHECK_MSG(strstr(sb.data, "unknown_token_id: 0 \"<unk>\"\n") != NULL, "%s", sb.data);
    CHECK_MSG(strstr(sb.data, "add_bos_token: true (key absent, llama.cpp default)\n") != NULL,
              "%s", sb.data);
    CHECK_MSG(strstr(sb.data, "add_eos_token: false (key absent, llama.cpp default)\n") != NULL,
              "%s", sb.data);
    CHECK_MSG(strstr(sb.data, "add_space_prefix: true (key absent, llama.cpp default)\n") != NULL,
              "%s", sb.data);
    sb_free(&sb);
    tokenizer_free(t);

    // The llama-spm vocabulary sets add_bos_token and add_eos_token itself.
    t = load_shared_tokenizer(LLAMA_SPM_VOCAB);
    sb_init(&sb);
    tokenizer_describe(t, &sb);
    CHECK_MSG(strstr(sb.data, "add_bos_token: true\n") != NULL, "%s", sb.data);
    CHECK_MSG(strstr(sb.data, "add_eos_token: false\n") != NULL, "%s", sb.data);
    CHECK_MSG(strstr(sb.data, "add_space_prefix: true (key absent, llama.cpp default)\n") != NULL,
              "%s", sb.data);
    sb_free(&sb);
    tokenizer_free(t);
}

TEST(tokenizer_accessors) {
    Tokenizer *t = load_shared_tokenizer(PHI3_VOCAB);
    CHECK_EQ_INT(tokenizer_vocab_size(t), 32064);
    CHECK_EQ_INT(tokenizer_bos_id(t), 1);
    CHECK_EQ_INT(tokenizer_eos_id(t), 32000); // Phi-3's <|endoftext|>
    CHECK_EQ_INT(tokenizer_unk_id(t), 0);
    CHECK(tokenizer_add_bos(t));
    CHECK(!tokenizer_add_eos(t));
    CHECK(tokenizer_add_space_prefix(t));
    CHECK_STR(tokenizer_family_name(t), "llama");
    CHECK_STR(tokenizer_token_text(t, 32000), "<|endoftext|>");
    CHECK_STR(tokenizer_token_text(t, 3), "<0x00>");
    CHECK_EQ_INT(tokenizer_token_type(t, 32000), TOKEN_TYPE_CONTROL);
    CHECK_EQ_INT(tokenizer_token_type(t, 2), TOKEN_TYPE_USER_DEFINED);
    CHECK_EQ_INT(tokenizer_token_type(t, 3), TOKEN_TYPE_BYTE);
    CHECK_EQ_INT(tokenizer_token_type(t, 32011), TOKEN_TYPE_UNKNOWN);
    CHECK(tokenizer_token_text(t, -1) == NULL);
    CHECK(tokenizer_token_text(t, 32064) == NULL);
    CHECK_EQ_INT(tokenizer_token_type(t, 32064), TOKEN_TYPE_UNDEFINED);
    tokenizer_free(t);
}

// ----------------------------------------------------------------------------
// Special tokens, whitespace, byte fallback, empty input

TEST(spm_parse_special_on_and_off) {
    Tokenizer *t = load_shared_tokenizer(LLAMA_SPM_VOCAB);
    const char *text = "<s>Hello</s>";

    // With parse_special, "<s>" and "</s>" are BOS and EOS, and "Hello" gets the space prefix
    // because it follows a special token: 15043 is "▁Hello".
    Ids on = encode_str(t, text, false, true);
    static const int expected_on[] = {1, 15043, 2};
    check_ids("parse_special on", 0, text, &on, expected_on, 3);
    char *decoded = decode(t, on.ids, on.n, false);
    CHECK_STR(decoded, text);
    free(decoded);
    decoded = decode(t, on.ids, on.n, true);
    CHECK_STR(decoded, "Hello");
    free(decoded);

    // Without it, the same characters are plain text: no BOS or EOS id appears.
    Ids off = encode_str(t, text, false, false);
    CHECK(off.n > 3);
    for (int i = 0; i < off.n; i++) {
        CHECK_MSG(off.ids[i] != 1 && off.ids[i] != 2, "id %d at %d", off.ids[i], i);
    }
    decoded = decode(t, off.ids, off.n, false);
    CHECK_STR(decoded, text);
    free(decoded);

    // add_special puts BOS in front; the vocabulary has add_eos_token false.
    Ids with_bos = encode_str(t, "Hello", true, false);
    static const int expected_bos[] = {1, 15043};
    check_ids("add_special", 0, "Hello", &with_bos, expected_bos, 2);

    free(with_bos.ids);
    free(off.ids);
    free(on.ids);
    tokenizer_free(t);
}

// Phi-3: "</s>" is a user-defined token, so it is matched even without parse_special, and
// llama.cpp gives Phi-3's special tokens the right-strip flag (by model name).
TEST(spm_phi3_user_defined_and_rstrip) {
    Tokenizer *t = load_shared_tokenizer(PHI3_VOCAB);
    Ids a = encode_str(t, "a", false, false);
    Ids b = encode_str(t, "b", false, false);
    Ids hi = encode_str(t, "Hi", false, false);

    Ids got = encode_str(t, "a</s> \n b", false, false);
    int expected[16];
    int n = 0;
    memcpy(expected + n, a.ids, (size_t)a.n * sizeof(int));
    n += a.n;
    expected[n++] = 2;
    memcpy(expected + n, b.ids, (size_t)b.n * sizeof(int));
    n += b.n;
    check_ids("phi3 user-defined", 0, "a</s> \n b", &got, expected, n);
    free(got.ids);

    // Control tokens need parse_special; "<|user|>" and "<|end|>" drop the newline after them.
    const char *chat = "<|user|>\nHi<|end|>\n";
    got = encode_str(t, chat, false, true);
    n = 0;
    expected[n++] = 32010;
    memcpy(expected + n, hi.ids, (size_t)hi.n * sizeof(int));
    n += hi.n;
    expected[n++] = 32007;
    check_ids("phi3 parse_special", 0, chat, &got, expected, n);
    free(got.ids);

    got = encode_str(t, chat, false, false);
    for (int i = 0; i < got.n; i++) {
        CHECK_MSG(got.ids[i] < 32000, "control id %d without parse_special", got.ids[i]);
    }
    free(got.ids);

    free(hi.ids);
    free(b.ids);
    free(a.ids);
    tokenizer_free(t);
}

// Expected ids from llama.cpp's test file for the llama-spm vocabulary (29871 "▁", 259 "▁▁",
// 1678 "▁▁▁", 268 "▁▁▁▁", 12 <0x09>, 13 <0x0A>).
TEST(spm_whitespace_runs) {
    Tokenizer *t = load_shared_tokenizer(LLAMA_SPM_VOCAB);
    static const struct {
        const char *text;
        int ids[4];
        int n;
    } cases[] = {
        {" ", {259}, 1},
        {"  ", {1678}, 1},
        {"   ", {268}, 1},
        {"\t", {29871, 12}, 2},
        {"\n\n", {29871, 13, 13}, 3},
        {"\t\n", {29871, 12, 13}, 3},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        Ids got = encode_str(t, cases[i].text, false, false);
        check_ids("whitespace", (int)i, cases[i].text, &got, cases[i].ids, cases[i].n);
        free(got.ids);
    }

    // A long run of spaces merges into few tokens and decodes back unchanged.
    char spaces[1001];
    memset(spaces, ' ', 1000);
    spaces[1000] = '\0';
    Ids got = encode_str(t, spaces, false, false);
    CHECK_MSG(got.n < 1000 / 4, "1000 spaces gave %d tokens", got.n);
    char *text = decode(t, got.ids, got.n, false);
    CHECK_STR(text, spaces);
    free(text);
    free(got.ids);
    tokenizer_free(t);
}

// Bytes outside the vocabulary become <0xNN> tokens; in these vocabularies <0xNN> is id 3 + NN.
TEST(spm_byte_fallback) {
    Tokenizer *t = load_shared_tokenizer(LLAMA_SPM_VOCAB);
    const char *llama = "\xf0\x9f\xa6\x99"; // U+1F999, not in the vocabulary
    Ids got = encode_str(t, llama, false, false);
    static const int expected[] = {29871, 3 + 0xf0, 3 + 0x9f, 3 + 0xa6, 3 + 0x99};
    check_ids("byte fallback", 0, llama, &got, expected, 5);
    for (int i = 1; i < got.n; i++) {
        CHECK_EQ_INT(tokenizer_token_type(t, got.ids[i]), TOKEN_TYPE_BYTE);
    }
    char *text = decode(t, got.ids, got.n, false);
    CHECK_STR(text, llama);
    free(text);
    free(got.ids);

    // Invalid UTF-8 (a stray continuation byte, a truncated sequence) survives the round trip.
    const char *invalid = "a\x80z\xe2\x96";
    got = encode_str(t, invalid, false, false);
    text = decode(t, got.ids, got.n, false);
    CHECK_STR(text, invalid);
    free(text);
    free(got.ids);
    tokenizer_free(t);

    // stories260K has 512 tokens, so most non-ASCII characters fall back to bytes.
    t = load_shared_tokenizer(STORIES_GGUF);
    const char *mixed = "Ünïcödé snowman \xe2\x98\x83, tab\tand newline\n";
    got = encode_str(t, mixed, true, false);
    CHECK_EQ_INT(got.ids[0], 1);
    int n_bytes = 0;
    for (int i = 0; i < got.n; i++) {
        n_bytes += tokenizer_token_type(t, got.ids[i]) == TOKEN_TYPE_BYTE;
    }
    CHECK(n_bytes >= 3);
    text = decode(t, got.ids, got.n, true);
    CHECK_STR(text, mixed);
    free(text);
    free(got.ids);
    tokenizer_free(t);
}

TEST(spm_empty_input) {
    Tokenizer *t = load_shared_tokenizer(LLAMA_SPM_VOCAB);
    Ids got = encode(t, "", 0, false, false);
    CHECK_EQ_INT(got.n, 0);
    free(got.ids);

    got = encode(t, "", 0, true, true);
    static const int bos_only[] = {1};
    check_ids("empty with add_special", 0, "", &got, bos_only, 1);
    char *text = decode(t, got.ids, got.n, true);
    CHECK_STR(text, "");
    free(text);
    free(got.ids);

    text = decode(t, NULL, 0, false);
    CHECK_STR(text, "");
    free(text);
    tokenizer_free(t);
}

// Streaming pieces, given the previous token, concatenate to the decoded text.
TEST(tokenizer_pieces_concatenate_to_decode) {
    Tokenizer *t = load_shared_tokenizer(LLAMA_SPM_VOCAB);
    const char *text = "<s> Hello,  world!\n\tIt's 3.14 \xf0\x9f\xa6\x99</s>";
    Ids got = encode_str(t, text, true, true);
    StrBuf pieces;
    sb_init(&pieces);
    for (int i = 0; i < got.n; i++) {
        REQUIRE_OK(tokenizer_append_piece(t, i ? got.ids[i - 1] : -1, got.ids[i], false, &pieces));
    }
    char *decoded = decode(t, got.ids, got.n, false);
    CHECK_STR(pieces.data, decoded);
    // BOS from add_special, then the input itself.
    CHECK_MSG(strncmp(decoded, "<s><s>", 6) == 0, "%s", decoded);
    CHECK_STR(decoded + 3, text);
    free(decoded);
    sb_free(&pieces);

    StrBuf sb;
    sb_init(&sb);
    int bad[] = {15043, 32000};
    CHECK(tokenizer_decode(t, bad, 2, false, &sb) == -1);
    CHECK_MSG(strstr(err_msg(), "32000") != NULL, "%s", err_msg());
    CHECK_STR(sb.data, "Hello");
    CHECK(tokenizer_append_piece(t, -1, -5, false, &sb) == -1);
    sb_free(&sb);
    free(got.ids);
    tokenizer_free(t);
}

// Encodes about 1 MB of mixed text (about 650K tokens). The algorithm is O(n log n); a quadratic
// one would take minutes here. No time limit is checked because machines differ.
TEST(spm_large_text) {
    Tokenizer *t = load_shared_tokenizer(LLAMA_SPM_VOCAB);
    VocabCases c = read_vocab_cases(LLAMA_SPM_VOCAB);
    StrBuf big;
    sb_init(&big);
    for (int round = 0; big.len < (1u << 20); round++) {
        const char *s = c.inputs[round % c.n];
        sb_append_n(&big, s, c.input_lens[round % c.n]);
        sb_printf(&big, " %d\n", round);
    }

    double start = now_seconds();
    Ids got = encode(t, big.data, big.len, true, false);
    double seconds = now_seconds() - start;
    printf("  encoded %zu bytes into %d tokens in %.3f s\n", big.len, got.n, seconds);
    CHECK(got.n > 100000);

    char *text = decode(t, got.ids, got.n, true);
    CHECK_MSG(strcmp(text, big.data) == 0, "the 1 MB text does not round-trip");
    free(text);
    free(got.ids);
    sb_free(&big);
    free_vocab_cases(&c);
    tokenizer_free(t);
}

// ----------------------------------------------------------------------------
// Hand-made GGUF files (version 3, metadata only)

typedef struct {
    StrBuf kv; // the encoded key-value pairs
    int n_kv;
} GgufWriter;

static void put_bytes(StrBuf *sb, const void *p, size_t n) {
    sb_append_n(sb, (const char *)p, n);
}

static void put_u32(StrBuf *sb, uint32_t v) {
    put_bytes(sb, &v, 4);
}

static void put_u64(StrBuf *sb, uint64_t v) {
    put_bytes(sb, &v, 8);
}

static void put_string(StrBuf *sb, const char *s) {
    put_u64(sb, strlen(s));
    put_bytes(sb, s, strlen(s));
}

static void put_key(GgufWriter *w, const char *key, GGUFType type) {
    put_string(&w->kv, key);
    put_u32(&w->kv, type);
    w->n_kv++;
}

static void kv_string(GgufWriter *w, const char *key, const char *value) {
    put_key(w, key, GGUF_TYPE_STRING);
    put_string(&w->kv, value);
}

static void kv_u32(GgufWriter *w, const char *key, uint32_t value) {
    put_key(w, key, GGUF_TYPE_UINT32);
    put_u32(&w->kv, value);
}

static void kv_bool(GgufWriter *w, const char *key, bool value) {
    put_key(w, key, GGUF_TYPE_BOOL);
    uint8_t b = value;
    put_bytes(&w->kv, &b, 1);
}

static void kv_strings(GgufWriter *w, const char *key, const char *const *values, int n) {
    put_key(w, key, GGUF_TYPE_ARRAY);
    put_u32(&w->kv, GGUF_TYPE_STRING);
    put_u64(&w->kv, (uint64_t)n);
    for (int i = 0; i < n; i++) {
        put_string(&w->kv, values[i]);
    }
}

static void kv_floats(GgufWriter *w, const char *key, const float *values, int n) {
    put_key(w, key, GGUF_TYPE_ARRAY);
    put_u32(&w->kv, GGUF_TYPE_FLOAT32);
    put_u64(&w->kv, (uint64_t)n);
    put_bytes(&w->kv, values, (size_t)n * sizeof *values);
}

static void kv_ints(GgufWriter *w, const char *key, const int32_t *values, int n) {
    put_key(w, key, GGUF_TYPE_ARRAY);
    put_u32(&w->kv, GGUF_TYPE_INT32);
    put_u64(&w->kv, (uint64_t)n);
    put_bytes(&w->kv, values, (size_t)n * sizeof *values);
}

// Writes the file and returns its path (valid until the next call).
static const char *gguf_write(GgufWriter *w, const char *name) {
    StrBuf file;
    sb_init(&file);
    put_bytes(&file, "GGUF", 4);
    put_u32(&file, 3);
    put_u64(&file, 0); // tensors
    put_u64(&file, (uint64_t)w->n_kv);
    put_bytes(&file, w->kv.data, w->kv.len);
    static char path[4096];
    snprintf(path, sizeof path, "%s/%s.gguf", test_tmp_dir(), name);
    REQUIRE_OK(file_write_atomic(path, file.data, file.len));
    sb_free(&file);
    sb_free(&w->kv);
    return path;
}

// A small SentencePiece vocabulary: <unk> <s> </s>, the 256 byte tokens, then pieces.
#define TINY_PIECES 6
static const char *const tiny_pieces[TINY_PIECES] = {
    "\xe2\x96\x81", "a", "b", "ab", "ba", "\xe2\x96\x81" "a",
};

typedef struct {
    const char *texts[3 + 256 + TINY_PIECES];
    char bytes[256][7];
    float scores[3 + 256 + TINY_PIECES];
    int32_t types[3 + 256 + TINY_PIECES];
    int n;
} TinyVocab;

static void tiny_vocab_init(TinyVocab *v, float score_ab, float score_ba) {
    v->n = 0;
    const char *specials[3] = {"<unk>", "<s>", "</s>"};
    const int32_t special_types[3] = {TOKEN_TYPE_UNKNOWN, TOKEN_TYPE_CONTROL, TOKEN_TYPE_CONTROL};
    for (int i = 0; i < 3; i++) {
        v->texts[v->n] = specials[i];
        v->scores[v->n] = 0;
        v->types[v->n++] = special_types[i];
    }
    for (int b = 0; b < 256; b++) {
        snprintf(v->bytes[b], sizeof v->bytes[b], "<0x%02X>", b);
        v->texts[v->n] = v->bytes[b];
        v->scores[v->n] = 0;
        v->types[v->n++] = TOKEN_TYPE_BYTE;
    }
    const float piece_scores[TINY_PIECES] = {-1, -2, -2, score_ab, score_ba, -10};
    for (int i = 0; i < TINY_PIECES; i++) {
        v->texts[v->n] = tiny_pieces[i];
        v->scores[v->n] = piece_scores[i];
        v->types[v->n++] = TOKEN_TYPE_NORMAL;
    }
}

static void write_tiny_vocab(GgufWriter *w, const TinyVocab *v) {
    kv_string(w, "tokenizer.ggml.model", "llama");
    kv_strings(w, "tokenizer.ggml.tokens", v->texts, v->n);
    kv_floats(w, "tokenizer.ggml.scores", v->scores, v->n);
    kv_ints(w, "tokenizer.ggml.token_type", v->types, v->n);
}

enum { TINY_SPACE = 259, TINY_A, TINY_B, TINY_AB, TINY_BA, TINY_SPACE_A };

// The highest-scoring pair merges first; equal scores merge the leftmost pair first.
TEST(spm_merge_order_by_score) {
    static const struct {
        float score_ab, score_ba;
        int ids[3];
        int n;
    } cases[] = {
        // "ab" first; "▁" + "ab" and "ab" + "a" are not tokens, so nothing else merges.
        {-3, -5, {TINY_SPACE, TINY_AB, TINY_A}, 3},
        // "ba" first; then the lower-scoring "▁" + "a" is still adjacent and merges.
        {-5, -3, {TINY_SPACE_A, TINY_BA}, 2},
        // A tie: the leftmost pair "ab" wins.
        {-4, -4, {TINY_SPACE, TINY_AB, TINY_A}, 3},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        TinyVocab v;
        tiny_vocab_init(&v, cases[i].score_ab, cases[i].score_ba);
        GgufWriter w = {0};
        sb_init(&w.kv);
        write_tiny_vocab(&w, &v);
        Tokenizer *t = load_tokenizer_path(gguf_write(&w, "tiny"));
        Ids got = encode_str(t, "aba", false, false);
        check_ids("merge order", (int)i, "aba", &got, cases[i].ids, cases[i].n);
        free(got.ids);
        tokenizer_free(t);
    }
}

// A vocabulary without byte tokens falls back to <unk> for characters it cannot spell.
TEST(spm_no_byte_tokens_uses_unk) {
    const char *texts[] = {"<unk>", "<s>", "</s>", "\xe2\x96\x81", "a"};
    const float scores[] = {0, 0, 0, -1, -1};
    const int32_t types[] = {2, 3, 3, 1, 1};
    GgufWriter w = {0};
    sb_init(&w.kv);
    kv_string(&w, "tokenizer.ggml.model", "llama");
    kv_strings(&w, "tokenizer.ggml.tokens", texts, 5);
    kv_floats(&w, "tokenizer.ggml.scores", scores, 5);
    kv_ints(&w, "tokenizer.ggml.token_type", types, 5);
    Tokenizer *t = load_tokenizer_path(gguf_write(&w, "nobytes"));
    Ids got = encode_str(t, "az", false, false);
    static const int expected[] = {3, 4, 0};
    check_ids("no byte tokens", 0, "az", &got, expected, 3);
    free(got.ids);
    tokenizer_free(t);
}

// Writes a vocabulary-only file with the given damage and checks that loading fails with an error
// that contains `expected_error`.
typedef enum {
    DAMAGE_NO_TOKENS,
    DAMAGE_SHORT_SCORES,
    DAMAGE_SHORT_TYPES,
    DAMAGE_BOS_OUT_OF_RANGE,
    DAMAGE_BAD_BYTE_TOKEN,
    DAMAGE_DUPLICATE_TOKEN,
    DAMAGE_UNSUPPORTED_MODEL,
    DAMAGE_NO_MODEL,
    DAMAGE_TOKENS_NOT_STRINGS,
    DAMAGE_NONE,
} Damage;

static Tokenizer *load_damaged(Damage damage) {
    TinyVocab v;
    tiny_vocab_init(&v, -3, -5);
    if (damage == DAMAGE_BAD_BYTE_TOKEN) {
        v.texts[3 + 0x41] = "<0xZZ>";
    }
    if (damage == DAMAGE_DUPLICATE_TOKEN) {
        v.texts[v.n - 1] = "a";
    }
    GgufWriter w = {0};
    sb_init(&w.kv);
    if (damage != DAMAGE_NO_MODEL) {
        kv_string(&w, "tokenizer.ggml.model", damage == DAMAGE_UNSUPPORTED_MODEL ? "t5" : "llama");
    }
    if (damage == DAMAGE_TOKENS_NOT_STRINGS) {
        kv_ints(&w, "tokenizer.ggml.tokens", v.types, v.n);
    } else if (damage != DAMAGE_NO_TOKENS) {
        kv_strings(&w, "tokenizer.ggml.tokens", v.texts, v.n);
    }
    kv_floats(&w, "tokenizer.ggml.scores", v.scores, damage == DAMAGE_SHORT_SCORES ? v.n - 1 : v.n);
    kv_ints(&w, "tokenizer.ggml.token_type", v.types, damage == DAMAGE_SHORT_TYPES ? 10 : v.n);
    kv_u32(&w, "tokenizer.ggml.bos_token_id", damage == DAMAGE_BOS_OUT_OF_RANGE ? 5000 : 1);
    kv_u32(&w, "tokenizer.ggml.eos_token_id", 4294967295u); // "none": keeps the default 2
    kv_bool(&w, "tokenizer.ggml.add_bos_token", true);
    GGUFFile *f = gguf_open(gguf_write(&w, "damaged"));
    REQUIRE_MSG(f != NULL, "%s", err_msg());
    Tokenizer *t = tokenizer_load_gguf(f);
    gguf_close(f);
    return t;
}

TEST(tokenizer_malformed_vocab_errors) {
    static const struct {
        Damage damage;
        const char *expected_error;
    } cases[] = {
        {DAMAGE_NO_TOKENS, "tokenizer.ggml.tokens is missing"},
        {DAMAGE_SHORT_SCORES, "tokenizer.ggml.scores has 264 entries but tokenizer.ggml.tokens has 265"},
        {DAMAGE_SHORT_TYPES, "tokenizer.ggml.token_type has 10 entries"},
        {DAMAGE_BOS_OUT_OF_RANGE, "tokenizer.ggml.bos_token_id is 5000"},
        {DAMAGE_BAD_BYTE_TOKEN, "\"<0xZZ>\" has type byte"},
        {DAMAGE_DUPLICATE_TOKEN, "has the text \"a\" twice"},
        {DAMAGE_UNSUPPORTED_MODEL, "\"t5\", which qbias does not support"},
        {DAMAGE_NO_MODEL, "tokenizer.ggml.model is missing"},
        {DAMAGE_TOKENS_NOT_STRINGS, "expected an array of strings"},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        Tokenizer *t = load_damaged(cases[i].damage);
        CHECK_MSG(t == NULL, "damage %zu loaded without an error", i);
        CHECK_MSG(strstr(err_msg(), cases[i].expected_error) != NULL,
                  "damage %zu: error \"%s\" does not contain \"%s\"", i, err_msg(),
                  cases[i].expected_error);
        CHECK_MSG(strstr(err_msg(), "damaged.gguf") != NULL, "damage %zu: error \"%s\" has no path",
                  i, err_msg());
        tokenizer_free(t);
    }
}

// The undamaged file loads, so the failures above come from the damage alone.
TEST(tokenizer_tiny_vocab_loads) {
    Tokenizer *t = load_damaged(DAMAGE_NONE);
    REQUIRE_MSG(t != NULL, "%s", err_msg());
    CHECK_EQ_INT(tokenizer_vocab_size(t), 265);
    CHECK_EQ_INT(tokenizer_bos_id(t), 1);
    CHECK_EQ_INT(tokenizer_eos_id(t), 2);
    StrBuf sb;
    sb_init(&sb);
    tokenizer_describe(t, &sb);
    CHECK_MSG(strstr(sb.data, "eos_token_id: 2 \"</s>\" (key holds the \"none\" value") != NULL,
              "%s", sb.data);
    sb_free(&sb);
    tokenizer_free(t);
}
