// jsonl.h: a JSON Lines reader (one JSON value per line, https://jsonlines.org) built on cJSON.
#ifndef QBIAS_JSONL_H
#define QBIAS_JSONL_H

#include <stdint.h>

#include <cjson/cJSON.h>

// Called once per non-blank line with the parsed value and the line's 0-based index in the file.
// The value is freed after the call returns. Return 0 to continue, or -1 (after err_set) to stop.
typedef int (*JsonlLineFn)(void *context, const cJSON *value, int64_t line_index);

// Reads `path` and calls `fn` for every non-blank line in file order. Lines may end in LF or
// CRLF; blank and whitespace-only lines are skipped but still counted. Returns 0, or -1 with an
// error naming the file and 1-based line: invalid UTF-8, a NUL byte, invalid JSON or text after
// the value, or the error that `fn` set (prefixed with the file and line).
int jsonl_for_each(const char *path, JsonlLineFn fn, void *context);

#endif
