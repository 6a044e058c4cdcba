// summary.c: items aligned across variants and Markdown helpers (see summary.h).
#include "summary.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "stats.h"

static int compare_int64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int find_string(const char **list, int n, const char *s) {
    for (int i = 0; i < n; i++) {
        if (strcmp(list[i], s) == 0) {
            return i;
        }
    }
    return -1;
}

void aligned_items_build(const ProbeSummaryInput *input, const char *const *order,
                         AlignedItems *out) {
    memset(out, 0, sizeof *out);
    out->n_variants = input->n_variants;
    const RecordSet *set = input->records;

    // Item ids of this probe, over all variants, without duplicates.
    int64_t *ids = xmalloc((size_t)(set->n_records + 1) * sizeof(int64_t));
    int64_t n_ids = 0;
    for (int64_t r = 0; r < set->n_records; r++) {
        if (strcmp(set->records[r].probe, input->probe) == 0) {
            ids[n_ids++] = set->records[r].item;
        }
    }
    qsort(ids, (size_t)n_ids, sizeof(int64_t), compare_int64);
    int64_t n_unique = 0;
    for (int64_t i = 0; i < n_ids; i++) {
        if (n_unique == 0 || ids[n_unique - 1] != ids[i]) {
            ids[n_unique++] = ids[i];
        }
    }
    out->n_items = n_unique;
    out->item_ids = ids;
    out->category = xcalloc((size_t)(n_unique + 1), sizeof(char *));
    out->subgroup = xcalloc((size_t)(n_unique + 1), sizeof(char *));
    out->records = xcalloc((size_t)(n_unique * input->n_variants + 1), sizeof(ItemRecord *));

    RecordIndex *index = record_index_new(set);
    for (int v = 0; v < input->n_variants; v++) {
        for (int64_t i = 0; i < n_unique; i++) {
            const ItemRecord *r = record_index_find(index, input->variants[v], input->probe, ids[i]);
            out->records[(int64_t)v * n_unique + i] = r;
            if (r && !out->category[i]) {
                out->category[i] = r->category;
                out->subgroup[i] = r->subgroup;
            }
        }
    }
    record_index_free(index);

    // Categories: the probe's order first, then the others as they appear.
    out->categories = xcalloc((size_t)(n_unique + 16), sizeof(char *));
    for (int k = 0; order && order[k]; k++) {
        for (int64_t i = 0; i < n_unique; i++) {
            if (out->category[i] && strcmp(out->category[i], order[k]) == 0) {
                out->categories[out->n_categories++] = order[k];
                break;
            }
        }
    }
    for (int64_t i = 0; i < n_unique; i++) {
        if (out->category[i] &&
            find_string(out->categories, out->n_categories, out->category[i]) < 0) {
            out->categories[out->n_categories++] = out->category[i];
        }
    }
}

void aligned_items_free(AlignedItems *items) {
    free(items->item_ids);
    free(items->category);
    free(items->subgroup);
    free(items->records);
    free(items->categories);
    memset(items, 0, sizeof *items);
}

double summary_mean_logprob(const ItemRecord *r, int text) {
    return r->scores[text].n_tokens > 0 ? r->scores[text].logprob / (double)r->scores[text].n_tokens
                                        : NAN;
}

int64_t aligned_select_items(const AlignedItems *a, int v, int paired, const char *category,
                             const char *subgroup, int64_t *out) {
    int64_t n = 0;
    for (int64_t i = 0; i < a->n_items; i++) {
        if (!aligned_record(a, v, i) || (paired >= 0 && !aligned_record(a, paired, i))) {
            continue;
        }
        if (category && strcmp(a->category[i], category) != 0) {
            continue;
        }
        if (subgroup && strcmp(a->subgroup[i], subgroup) != 0) {
            continue;
        }
        out[n++] = i;
    }
    return n;
}

double summary_p_value(const double *a, const double *b, int64_t n, StatsStatisticFn metric,
                       void *ctx) {
    StatsRandomization test;
    if (n < 1 || stats_randomization_test(a, b, n, metric, ctx, STATS_RANDOMIZATION_ITERATIONS,
                                          SUMMARY_RANDOMIZATION_SEED, &test) != 0) {
        return NAN;
    }
    return test.p_value;
}

void json_add_number(cJSON *obj, const char *name, double x) {
    if (isfinite(x)) {
        cJSON_AddNumberToObject(obj, name, x);
    } else {
        cJSON_AddNullToObject(obj, name);
    }
}

void md_cell(StrBuf *md, double value, double baseline_value, double p_value, bool is_baseline,
             int digits) {
    if (!isfinite(value)) {
        sb_append(md, " n/a |");
        return;
    }
    sb_printf(md, " %.*f", digits, value);
    if (!is_baseline && isfinite(baseline_value)) {
        double delta = value - baseline_value;
        sb_printf(md, " (%s%.*f%s)", delta >= 0 ? "+" : "", digits, delta,
                  isfinite(p_value) && p_value < SUMMARY_ALPHA ? "*" : "");
    }
    sb_append(md, " |");
}

void md_table_header(StrBuf *md, const char *first, const char *second,
                     const ProbeSummaryInput *input, int skip_variant) {
    sb_printf(md, "| %s | %s |", first, second);
    for (int v = 0; v < input->n_variants; v++) {
        if (v != skip_variant) {
            sb_printf(md, " %s |", input->variants[v]);
        }
    }

    // The second column is right-aligned when it contains counts.
    sb_append(md, strcmp(second, "n") == 0 ? "\n|---|---:|" : "\n|---|---|");
    for (int v = 0; v < input->n_variants; v++) {
        if (v != skip_variant) {
            sb_append(md, "---:|");
        }
    }
    sb_append(md, "\n");
}

// Appends one interval bound, with +inf written out where printf would print "inf".
static void md_bound(StrBuf *md, double x, int digits) {
    if (isinf(x)) {
        sb_append(md, x < 0 ? "-inf" : "+inf");
    } else {
        sb_printf(md, "%.*f", digits, x);
    }
}

void md_interval_cell(StrBuf *md, double lower, double upper, int digits) {
    if (isnan(lower) || isnan(upper)) {
        sb_append(md, " n/a |");
        return;
    }
    sb_append(md, " [");
    md_bound(md, lower, digits);
    sb_append(md, ", ");
    md_bound(md, upper, digits);
    sb_append(md, "] |");
}

void md_flip_cell(StrBuf *md, const StatsFlipRate *flips) {
    if (flips->n_compared == 0) {
        sb_append(md, " n/a |");
        return;
    }
    sb_printf(md, " %.1f (%.1f / %.1f) |", 100.0 * flips->rate, 100.0 * flips->rate_0_to_1,
              100.0 * flips->rate_1_to_0);
}
