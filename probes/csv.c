// csv.c: RFC 4180 CSV reader (see csv.h).
#include "csv.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "../engine/unicode.h"
#include "../engine/util.h"

// ----------------------------------------------------------------------------
// Parser

typedef struct {
    const char *path;
    const char *p;
    const char *end;
    long long line; // 1-based line of *p
    StrBuf field;
} CsvParser;

static bool at_line_end(const CsvParser *ps) {
    return ps->p < ps->end && (*ps->p == '\r' || *ps->p == '\n');
}

// Consumes one CRLF, LF or CR.
static void skip_line_end(CsvParser *ps) {
    if (*ps->p == '\r' && ps->p + 1 < ps->end && ps->p[1] == '\n') {
        ps->p++;
    }
    ps->p++;
    ps->line++;
}

// Reads a quoted field; ps->p is at the opening quote. The field may span lines.
static int parse_quoted_field(CsvParser *ps, int field_number) {
    long long start_line = ps->line;
    ps->p++;
    for (;;) {
        if (ps->p >= ps->end) {
            return err_set("%s:%lld: unterminated quoted field %d (the opening quote has no "
                           "closing quote before the end of the file); add the closing quote",
                           ps->path, start_line, field_number);
        }
        char c = *ps->p;
        if (c == '"') {
            if (ps->p + 1 < ps->end && ps->p[1] == '"') {
                sb_append_n(&ps->field, "\"", 1);
                ps->p += 2;
                continue;
            }
            ps->p++;
            break;
        }

        // Count line ends inside the field so that later messages give the right line.
        if (c == '\n' || (c == '\r' && (ps->p + 1 >= ps->end || ps->p[1] != '\n'))) {
            ps->line++;
        }
        sb_append_n(&ps->field, &c, 1);
        ps->p++;
    }

    if (ps->p < ps->end && *ps->p != ',' && !at_line_end(ps)) {
        return err_set("%s:%lld: unexpected character '%c' after the closing quote of field %d; a "
                       "quote inside a quoted field must be doubled (\"\")",
                       ps->path, ps->line, *ps->p, field_number);
    }
    return 0;
}

static int parse_unquoted_field(CsvParser *ps, int field_number) {
    const char *start = ps->p;
    while (ps->p < ps->end && *ps->p != ',' && !at_line_end(ps)) {
        if (*ps->p == '"') {
            return err_set("%s:%lld: quote inside unquoted field %d; enclose the field in quotes "
                           "and double the quote (\"\")",
                           ps->path, ps->line, field_number);
        }
        ps->p++;
    }
    sb_append_n(&ps->field, start, (size_t)(ps->p - start));
    return 0;
}

static void record_free(CsvRecord *record) {
    for (int i = 0; i < record->n_fields; i++) {
        free(record->fields[i]);
    }
    free(record->fields);
    record->fields = NULL;
    record->n_fields = 0;
}

// Reads the next record. Sets *found to false at the end of the input.
static int parse_record(CsvParser *ps, CsvRecord *record, bool *found) {
    while (at_line_end(ps)) {
        skip_line_end(ps);
    }
    *found = ps->p < ps->end;
    if (!*found) {
        return 0;
    }

    memset(record, 0, sizeof *record);
    record->line = ps->line;
    int cap = 0;
    for (;;) {
        int field_number = record->n_fields + 1;
        ps->field.len = 0;
        ps->field.data[0] = '\0';
        int rc = (ps->p < ps->end && *ps->p == '"') ? parse_quoted_field(ps, field_number)
                                                     : parse_unquoted_field(ps, field_number);
        if (rc != 0) {
            record_free(record);
            return -1;
        }

        if (record->n_fields == cap) {
            cap = cap ? 2 * cap : 8;
            record->fields = xrealloc(record->fields, (size_t)cap * sizeof *record->fields);
        }
        record->fields[record->n_fields++] = xstrndup(ps->field.data, ps->field.len);

        if (ps->p < ps->end && *ps->p == ',') {
            ps->p++;
            continue;
        }
        if (ps->p < ps->end) {
            skip_line_end(ps);
        }
        return 0;
    }
}

int csv_parse(const char *path, const char *data, size_t len, CsvTable *out) {
    memset(out, 0, sizeof *out);
    if (text_check_utf8(path, data, len, "a data file") != 0) {
        return -1;
    }

    // A UTF-8 byte order mark (EF BB BF), as spreadsheet programs write, is not part of the header.
    if (len >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0) {
        data += 3;
        len -= 3;
    }

    CsvParser ps = {.path = path, .p = data, .end = data + len, .line = 1};
    sb_init(&ps.field);
    out->path = xstrdup(path);

    bool found = false;
    if (parse_record(&ps, &out->header, &found) != 0) {
        goto fail;
    }
    if (!found) {
        err_set("%s: the file is empty; a CSV file needs a header line with the column names",
                path);
        goto fail;
    }

    int64_t cap = 0;
    for (;;) {
        CsvRecord record;
        if (parse_record(&ps, &record, &found) != 0) {
            goto fail;
        }
        if (!found) {
            break;
        }
        if (record.n_fields != out->header.n_fields) {
            err_set("%s:%lld: the record has %d fields but the header has %d; a field that "
                    "contains a comma must be quoted",
                    path, (long long)record.line, record.n_fields, out->header.n_fields);
            record_free(&record);
            goto fail;
        }
        if (out->n_records == cap) {
            cap = cap ? 2 * cap : 256;
            out->records = xrealloc(out->records, (size_t)cap * sizeof *out->records);
        }
        out->records[out->n_records++] = record;
    }

    sb_free(&ps.field);
    return 0;

fail:
    sb_free(&ps.field);
    csv_free(out);
    return -1;
}

int csv_read(const char *path, CsvTable *out) {
    memset(out, 0, sizeof *out);
    char *data = NULL;
    size_t len = 0;
    if (file_read_all(path, &data, &len) != 0) {
        return -1;
    }
    int rc = csv_parse(path, data, len, out);
    free(data);
    return rc;
}

void csv_free(CsvTable *table) {
    record_free(&table->header);
    for (int64_t i = 0; i < table->n_records; i++) {
        record_free(&table->records[i]);
    }
    free(table->records);
    free(table->path);
    memset(table, 0, sizeof *table);
}

int csv_column(const CsvTable *table, const char *name) {
    int found = -1;
    for (int i = 0; i < table->header.n_fields; i++) {
        if (strcmp(table->header.fields[i], name) != 0) {
            continue;
        }
        if (found >= 0) {
            return err_set("%s: column \"%s\" appears twice in the header (fields %d and %d), so "
                           "it is ambiguous; rename one of them",
                           table->path, name, found + 1, i + 1);
        }
        found = i;
    }
    if (found >= 0) {
        return found;
    }

    StrBuf columns;
    sb_init(&columns);
    for (int i = 0; i < table->header.n_fields; i++) {
        sb_printf(&columns, "%s\"%s\"", i ? ", " : "", table->header.fields[i]);
    }
    err_set("%s: column \"%s\" not found; the header has %s. Check that this is the expected "
            "file",
            table->path, name, columns.data);
    sb_free(&columns);
    return -1;
}
