// tokenizer_cases.c: see tokenizer_cases.h.
#include "tokenizer_cases.h"

#include <stdlib.h>
#include <string.h>

#include "../engine/gguf.h"
#include "../engine/util.h"
#include "test.h"

Tokenizer *tc_load_gguf(const char *relative) {
    const char *path = test_shared_path(relative);
    GGUFFile *f = gguf_open(path);
    REQUIRE_MSG(f != NULL, "gguf_open(%s) failed: %s", path, err_msg());
    Tokenizer *t = tokenizer_load_gguf(f);
    gguf_close(f); // the tokenizer must not point into the mapping
    REQUIRE_MSG(t != NULL, "tokenizer_load_gguf(%s) failed: %s", path, err_msg());
    return t;
}

Tokenizer *tc_load_hf(const char *relative) {
    const char *path = test_shared_path(relative);
    Tokenizer *t = tokenizer_load_hf(path);
    REQUIRE_MSG(t != NULL, "tokenizer_load_hf(%s) failed: %s", path, err_msg());
    return t;
}

Ids tc_encode(const Tokenizer *t, const char *text, size_t len, bool add_special,
              bool parse_special) {
    Ids r = {0};
    REQUIRE_OK(tokenizer_encode(t, text, len, add_special, parse_special, &r.ids, &r.n));
    REQUIRE(r.ids != NULL);
    return r;
}

char *tc_decode(const Tokenizer *t, const int *ids, int n, bool skip_special) {
    StrBuf sb;
    sb_init(&sb);
    REQUIRE_OK(tokenizer_decode(t, ids, n, skip_special, &sb));
    return sb.data;
}

static void append_ids(StrBuf *sb, const int *ids, int n) {
    sb_append(sb, "[");
    for (int i = 0; i < n; i++) {
        sb_printf(sb, i ? " %d" : "%d", ids[i]);
    }
    sb_append(sb, "]");
}

bool tc_check_ids(const char *what, int index, const char *input, const Ids *got,
                  const int *expected, int n_expected) {
    if (got->n == n_expected &&
        (n_expected == 0 || memcmp(got->ids, expected, (size_t)n_expected * sizeof *expected) == 0)) {
        return true;
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
    return false;
}

int tc_parse_ids(const char *line, int **out) {
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
        REQUIRE_MSG(end != p, "invalid id list: %s", line);
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

VocabCases tc_read_vocab_cases(const char *base_relative) {
    VocabCases c = {0};
    char relative[512];
    size_t inp_len, out_len;
    snprintf(relative, sizeof relative, "%s.inp", base_relative);
    REQUIRE_OK(file_read_all(test_shared_path(relative), &c.inp_data, &inp_len));
    snprintf(relative, sizeof relative, "%s.out", base_relative);
    REQUIRE_OK(file_read_all(test_shared_path(relative), &c.out_data, &out_len));

    const char *sep = "\n__ggml_vocab_test__\n";
    size_t sep_len = strlen(sep);
    int cap = 64;
    c.inputs = xmalloc((size_t)cap * sizeof *c.inputs);
    c.input_lens = xmalloc((size_t)cap * sizeof *c.input_lens);
    size_t pos = 0;
    while (pos < inp_len) {
        char *next = memmem(c.inp_data + pos, inp_len - pos, sep, sep_len);
        size_t end = next ? (size_t)(next - c.inp_data) : inp_len;
        c.inp_data[end] = '\0'; // the separator starts with '\n', so this only ends the input
        if (c.n == cap) {
            cap *= 2;
            c.inputs = xrealloc(c.inputs, (size_t)cap * sizeof *c.inputs);
            c.input_lens = xrealloc(c.input_lens, (size_t)cap * sizeof *c.input_lens);
        }
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
        c.n_expected[n_lines] = tc_parse_ids(line, &c.expected[n_lines]);
        n_lines++;
        char *nl = strchr(line, '\n');
        line = nl ? nl + 1 : NULL;
    }
    REQUIRE_MSG(n_lines == c.n, "%s: %d inputs but %d lines of expected ids", base_relative, c.n,
                n_lines);
    return c;
}

void tc_free_vocab_cases(VocabCases *c) {
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

int tc_run_vocab_cases(const Tokenizer *t, const char *base_relative, int expected_cases,
                       bool parse_special) {
    VocabCases c = tc_read_vocab_cases(base_relative);
    CHECK_EQ_INT(c.n, expected_cases);
    int failures = 0;
    for (int i = 0; i < c.n; i++) {
        Ids got = tc_encode(t, c.inputs[i], c.input_lens[i], false, parse_special);
        failures += !tc_check_ids(base_relative, i, c.inputs[i], &got, c.expected[i],
                                  c.n_expected[i]);
        free(got.ids);
    }
    tc_free_vocab_cases(&c);
    return failures;
}

void tc_check_round_trips(const Tokenizer *t, const char *base_relative) {
    VocabCases c = tc_read_vocab_cases(base_relative);
    for (int i = 0; i < c.n; i++) {
        Ids got = tc_encode(t, c.inputs[i], c.input_lens[i], false, false);
        char *text = tc_decode(t, got.ids, got.n, false);
        CHECK_MSG(strcmp(text, c.inputs[i]) == 0, "case %d: \"%s\" decodes to \"%s\"", i,
                  c.inputs[i], text);
        free(text);
        free(got.ids);
    }
    tc_free_vocab_cases(&c);
}
