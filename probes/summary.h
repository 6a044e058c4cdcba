// summary.h: shared machinery of probe summaries: items aligned across variants, categories in
// report order, and Markdown table cells with deltas and significance marks.
#ifndef QBIAS_SUMMARY_H
#define QBIAS_SUMMARY_H

#include <cjson/cJSON.h>

#include "probe.h"
#include "results.h"
#include "stats.h"

// Seeds of the bootstrap and randomization tests, fixed so that a summary is reproducible.
#define SUMMARY_BOOTSTRAP_SEED 20260101u
#define SUMMARY_RANDOMIZATION_SEED 20260102u
// Significance level of the '*' marks in reports (the reference study's alpha).
#define SUMMARY_ALPHA 0.05

// The items of one probe, aligned across the run's variants by item id.
typedef struct {
    int n_variants;
    int64_t n_items;
    int64_t *item_ids;             // [n_items], ascending
    const char **category;         // [n_items]
    const char **subgroup;         // [n_items]
    const ItemRecord **records;    // [n_variants * n_items]; NULL where a variant lacks the item
    const char **categories;       // [n_categories] in report order
    int n_categories;
} AlignedItems;

// Collects the records of input->probe. Categories follow `order` (NULL-terminated, may be NULL),
// then any others in item order.
void aligned_items_build(const ProbeSummaryInput *input, const char *const *order,
                         AlignedItems *out);
void aligned_items_free(AlignedItems *items);

static inline const ItemRecord *aligned_record(const AlignedItems *items, int variant, int64_t i) {
    return items->records[(int64_t)variant * items->n_items + i];
}

// Collects into `out` the indices of the items of a group (a category, a subgroup of it, or all
// when both are NULL) that variant v has and, when `paired` >= 0, that variant `paired` has too.
// Returns their count.
int64_t aligned_select_items(const AlignedItems *a, int v, int paired, const char *category,
                             const char *subgroup, int64_t *out);

// Returns the mean per-token log-probability of a record's text, or NaN without scored tokens.
double summary_mean_logprob(const ItemRecord *r, int text);

// Returns the two-sided p-value of a paired approximate randomization test of metric(a) against
// metric(b), or NaN when the test is undefined (no items, or a metric that is NaN on the data).
double summary_p_value(const double *a, const double *b, int64_t n, StatsStatisticFn metric,
                       void *ctx);

// Appends a JSON number, or null when x is NaN or infinite (JSON has no NaN).
void json_add_number(cJSON *obj, const char *name, double x);

// Appends a Markdown table cell for a value with `digits` decimals; for a non-baseline variant
// also the delta to the baseline and '*' when p < SUMMARY_ALPHA. NaN prints as "n/a".
void md_cell(StrBuf *md, double value, double baseline_value, double p_value, bool is_baseline,
             int digits);

// Appends the header and separator rows of a table with the columns `first`, `second` (such as
// "n" or "metric") and one per variant except `skip_variant` (-1 keeps every variant).
void md_table_header(StrBuf *md, const char *first, const char *second,
                     const ProbeSummaryInput *input, int skip_variant);

// Appends a Markdown table cell "[lower, upper]" with `digits` decimals. Infinite bounds print as
// -inf and +inf, and a NaN bound makes the cell "n/a".
void md_interval_cell(StrBuf *md, double lower, double upper, int digits);

// Appends a Markdown table cell with a flip rate and its two directions in percent,
// "total (0 to 1 / 1 to 0)", or "n/a" when no item was compared.
void md_flip_cell(StrBuf *md, const StatsFlipRate *flips);

// Summaries of the built-in probes (summary_pairs.c, summary_crows.c).
int summarize_stereotype_pairs(const ProbeSummaryInput *input, cJSON *json, StrBuf *markdown);
int summarize_stereoset(const ProbeSummaryInput *input, cJSON *json, StrBuf *markdown);
int summarize_crows_pairs(const ProbeSummaryInput *input, cJSON *json, StrBuf *markdown);

#endif
