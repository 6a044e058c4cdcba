// crows_pairs.c: item loader of the CrowS-Pairs probe (see datasets.h).
//
// The data file is crows_pairs_anonymized.csv: an unnamed index column, sent_more, sent_less,
// stereo_antistereo, bias_type and annotator columns that the probe does not use. Sentences are
// kept verbatim; one sent_less (index 1293) contains a line break.
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../engine/util.h"
#include "csv.h"
#include "datasets.h"

#define CROWS_PAIRS_FILE "crows_pairs_anonymized.csv"

// Parses a non-negative decimal id; returns false on anything else (sign, spaces, overflow).
static bool parse_id(const char *text, int64_t *out) {
    if (text[0] < '0' || text[0] > '9') {
        return false;
    }
    char *end = NULL;
    errno = 0;
    long long value = strtoll(text, &end, 10);
    if (errno != 0 || *end != '\0') {
        return false;
    }
    *out = value;
    return true;
}

static int compare_ids(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

// Ids must be unique, because results are keyed by (probe, id).
static int crows_pairs_check_unique_ids(const CsvTable *table, const ProbeItems *items) {
    int64_t *ids = xmalloc((size_t)items->n_items * sizeof *ids);
    for (int64_t i = 0; i < items->n_items; i++) {
        ids[i] = items->items[i].id;
    }
    qsort(ids, (size_t)items->n_items, sizeof *ids, compare_ids);
    for (int64_t i = 1; i < items->n_items; i++) {
        if (ids[i] == ids[i - 1]) {
            long long duplicate = (long long)ids[i];
            free(ids);
            return err_set("%s: index %lld appears in more than one row; every pair needs its own "
                           "index",
                           table->path, duplicate);
        }
    }
    free(ids);
    return 0;
}

static int crows_pairs_read_rows(const CsvTable *table, ProbeItems *out) {
    int col_index = csv_column(table, "");
    int col_more = csv_column(table, "sent_more");
    int col_less = csv_column(table, "sent_less");
    int col_direction = csv_column(table, "stereo_antistereo");
    int col_bias = csv_column(table, "bias_type");
    if (col_index < 0 || col_more < 0 || col_less < 0 || col_direction < 0 || col_bias < 0) {
        return -1;
    }

    int64_t capacity = 0;
    for (int64_t row = 0; row < table->n_records; row++) {
        const CsvRecord *record = &table->records[row];
        char **fields = record->fields;
        long long line = (long long)record->line;

        int64_t id;
        if (!parse_id(fields[col_index], &id)) {
            return err_set("%s:%lld: index \"%s\" is not a non-negative integer", table->path, line,
                           fields[col_index]);
        }
        const char *direction = fields[col_direction];
        if (strcmp(direction, "stereo") != 0 && strcmp(direction, "antistereo") != 0) {
            return err_set("%s:%lld: stereo_antistereo is \"%s\"; expected \"stereo\" or "
                           "\"antistereo\"",
                           table->path, line, direction);
        }
        if (fields[col_bias][0] == '\0' || fields[col_more][0] == '\0' ||
            fields[col_less][0] == '\0') {
            return err_set("%s:%lld: bias_type, sent_more and sent_less must not be empty",
                           table->path, line);
        }

        ProbeItem *item = dataset_add_item(out, &capacity);
        item->id = id;
        item->category = xstrdup(fields[col_bias]);
        item->subgroup = xstrdup(direction);
        item->n_texts = 2;
        item->texts[0] = xstrdup(fields[col_more]);
        item->texts[1] = xstrdup(fields[col_less]);
        item->text_labels[0] = "sent_more";
        item->text_labels[1] = "sent_less";
    }
    return crows_pairs_check_unique_ids(table, out);
}

int crows_pairs_load(const Resolver *resolver, ProbeItems *out) {
    memset(out, 0, sizeof *out);
    char *path = resolver_find(resolver, "crows_pairs", CROWS_PAIRS_FILE);
    if (!path) {
        return -1;
    }

    CsvTable table;
    if (csv_read(path, &table) != 0 || crows_pairs_read_rows(&table, out) != 0) {
        csv_free(&table);
        free(path);
        probe_items_free(out);
        return err_prefix("crows_pairs");
    }
    csv_free(&table);
    out->source = path;
    return 0;
}
