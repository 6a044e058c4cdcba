// jsonl.c: JSON Lines reader (see jsonl.h).
#include "jsonl.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "../engine/unicode.h"
#include "../engine/util.h"

static bool is_json_space(char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

// Parses one line (without its LF) and passes the value to fn.
static int jsonl_parse_line(const char *path, const char *line, size_t len, int64_t index,
                            JsonlLineFn fn, void *context) {
    size_t start = 0;
    while (start < len && is_json_space(line[start])) {
        start++;
    }
    if (start == len) {
        return 0;
    }

    const char *parse_end = NULL;
    cJSON *value = cJSON_ParseWithLengthOpts(line, len, &parse_end, false);
    if (!value) {
        size_t offset = parse_end ? (size_t)(parse_end - line) : 0;
        size_t shown_from = offset > 20 ? offset - 20 : 0;
        size_t shown_len = len - shown_from < 40 ? len - shown_from : 40;
        return err_set("%s:%lld: invalid JSON at column %zu, near \"%.*s\"; each line must be "
                       "one complete JSON value, so fix or remove this line",
                       path, (long long)index + 1, offset + 1, (int)shown_len, line + shown_from);
    }

    const char *rest = parse_end;
    while (rest < line + len && is_json_space(*rest)) {
        rest++;
    }
    if (rest < line + len) {
        cJSON_Delete(value);
        return err_set("%s:%lld: unexpected text after the JSON value at column %zu; each line "
                       "must hold exactly one JSON value",
                       path, (long long)index + 1, (size_t)(rest - line) + 1);
    }

    int rc = fn(context, value, index);
    cJSON_Delete(value);
    if (rc != 0) {
        return err_prefix("%s:%lld", path, (long long)index + 1);
    }
    return 0;
}

int jsonl_for_each(const char *path, JsonlLineFn fn, void *context) {
    char *data = NULL;
    size_t len = 0;
    if (file_read_all(path, &data, &len) != 0) {
        return -1;
    }
    if (text_check_utf8(path, data, len, "a data file") != 0) {
        free(data);
        return -1;
    }

    int64_t index = 0;
    size_t pos = 0;
    while (pos < len) {
        const char *line = data + pos;
        const char *newline = memchr(line, '\n', len - pos);
        size_t line_len = newline ? (size_t)(newline - line) : len - pos;
        if (jsonl_parse_line(path, line, line_len, index, fn, context) != 0) {
            free(data);
            return -1;
        }
        pos += line_len + (newline ? 1 : 0);
        index++;
    }
    free(data);
    return 0;
}
