// test_datasets.c: the CSV and JSON Lines readers.
#include <stdlib.h>
#include <string.h>

#include "../engine/util.h"
#include "../probes/csv.h"
#include "../probes/jsonl.h"
#include "test.h"

// Defined in test_resolver.c.
void fixture_write(const char *path, const char *content);

// A macro, so that a failure reports the line of the check.
#define CHECK_CONTAINS(text, part)                                                                 \
    CHECK_MSG(strstr((text), (part)) != NULL, "expected \"%s\" in the message:\n%s", (part), \
              (text))

// ----------------------------------------------------------------------------
// CSV reader

TEST(csv_quoted_fields_and_crlf) {
    const char *text = "a,b,c\r\n"
                       "\"x,1\",\"he said \"\"hi\"\"\",\"line1\nline2\"\r\n"
                       "plain,,\"\"\r\n"
                       "\"cr\r\nlf\",last,\"\"\"\"";
    CsvTable t;
    REQUIRE_OK(csv_parse("mem.csv", text, strlen(text), &t));
    CHECK_EQ_INT(t.header.n_fields, 3);
    CHECK_EQ_INT(t.n_records, 3);
    CHECK_STR(t.records[0].fields[0], "x,1");
    CHECK_STR(t.records[0].fields[1], "he said \"hi\"");
    CHECK_STR(t.records[0].fields[2], "line1\nline2");
    CHECK_STR(t.records[1].fields[0], "plain");
    CHECK_STR(t.records[1].fields[1], "");
    CHECK_STR(t.records[1].fields[2], "");
    CHECK_STR(t.records[2].fields[0], "cr\r\nlf");
    CHECK_STR(t.records[2].fields[2], "\"");

    // Line numbers count the line breaks inside quoted fields.
    CHECK_EQ_INT(t.records[0].line, 2);
    CHECK_EQ_INT(t.records[1].line, 4);
    CHECK_EQ_INT(t.records[2].line, 5);
    csv_free(&t);
}

TEST(csv_header_lookup) {
    const char *text = "\xEF\xBB\xBF,name,name2\n0,a,b\n\n1,c,d\n";
    CsvTable t;
    REQUIRE_OK(csv_parse("mem.csv", text, strlen(text), &t));
    CHECK_EQ_INT(t.n_records, 2); // the blank line is skipped
    CHECK_EQ_INT(csv_column(&t, ""), 0); // the byte order mark is not part of the first name
    CHECK_EQ_INT(csv_column(&t, "name2"), 2);
    CHECK_EQ_INT(t.records[1].line, 4);

    CHECK_EQ_INT(csv_column(&t, "missing"), -1);
    CHECK_CONTAINS(err_msg(), "mem.csv: column \"missing\" not found");
    CHECK_CONTAINS(err_msg(), "\"\", \"name\", \"name2\"");
    csv_free(&t);
}

TEST(csv_unterminated_quote_names_line) {
    const char *dir = test_tmp_dir();
    char *path = xasprintf("%s/bad.csv", dir);
    fixture_write(path, "a,b\n1,2\n3,\"open\n4,5\n");
    CsvTable t;
    CHECK_EQ_INT(csv_read(path, &t), -1);
    char *expected = xasprintf("%s:3: unterminated quoted field 2", path);
    CHECK_CONTAINS(err_msg(), expected);
    CHECK(t.records == NULL);
    CHECK_EQ_INT(t.n_records, 0);
    free(expected);
    free(path);
}

TEST(csv_rejects_malformed_records) {
    struct {
        const char *text;
        const char *expected;
    } cases[] = {
        {"a,b\n1,2,3\n", "mem.csv:2: the record has 3 fields but the header has 2"},
        {"a,b\n1\n", "mem.csv:2: the record has 1 fields but the header has 2"},
        {"a,b\n1,x\"y\n", "mem.csv:2: quote inside unquoted field 2"},
        {"a,b\n\"1\"x,2\n", "mem.csv:2: unexpected character 'x' after the closing quote of field 1"},
        {"a,b\n1,\xC3\n", "mem.csv:2: invalid UTF-8"},
        {"a,b\n1,\xED\xA0\x80\n", "mem.csv:2: invalid UTF-8"},
        {"", "mem.csv: the file is empty"},
        {"\n\n", "mem.csv: the file is empty"},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        CsvTable t;
        CHECK_MSG(csv_parse("mem.csv", cases[i].text, strlen(cases[i].text), &t) == -1,
                  "case %zu was accepted", i);
        CHECK_CONTAINS(err_msg(), cases[i].expected);
    }

    const char with_nul[] = "a\nx\0y\n";
    CsvTable t;
    CHECK_EQ_INT(csv_parse("mem.csv", with_nul, sizeof with_nul - 1, &t), -1);
    CHECK_CONTAINS(err_msg(), "mem.csv:2: NUL byte");
}

// ----------------------------------------------------------------------------
// JSON Lines reader

static int count_values(void *context, const cJSON *value, int64_t line_index) {
    int64_t *indices = context;
    CHECK(cJSON_IsObject(value));
    indices[indices[0] + 1] = line_index;
    indices[0]++;
    return 0;
}

TEST(jsonl_skips_blank_lines_but_counts_them) {
    const char *dir = test_tmp_dir();
    char *path = xasprintf("%s/ok.jsonl", dir);
    fixture_write(path, "{\"a\": 1}\r\n\n   \n{\"a\": 2}\n");
    int64_t indices[8] = {0};
    REQUIRE_OK(jsonl_for_each(path, count_values, indices));
    CHECK_EQ_INT(indices[0], 2);
    CHECK_EQ_INT(indices[1], 0);
    CHECK_EQ_INT(indices[2], 3);
    free(path);
}

TEST(jsonl_malformed_line_names_line) {
    const char *dir = test_tmp_dir();
    char *path = xasprintf("%s/bad.jsonl", dir);
    int64_t indices[8] = {0};

    fixture_write(path, "{\"a\": 1}\n{\"a\": }\n{\"a\": 3}\n");
    CHECK_EQ_INT(jsonl_for_each(path, count_values, indices), -1);
    char *expected = xasprintf("%s:2: invalid JSON at column 7", path);
    CHECK_CONTAINS(err_msg(), expected);
    free(expected);

    fixture_write(path, "{\"a\": 1} {\"a\": 2}\n");
    CHECK_EQ_INT(jsonl_for_each(path, count_values, indices), -1);
    expected = xasprintf("%s:1: unexpected text after the JSON value at column 10", path);
    CHECK_CONTAINS(err_msg(), expected);
    free(expected);
    free(path);
}
