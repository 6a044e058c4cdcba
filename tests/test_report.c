// test_report.c: summary.json and summary.md built from hand-made records: interval status,
// ties, categories without items, global rows and flip-rate tables.
#include "test.h"

#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdlib.h>

#include "../engine/util.h"
#include "../probes/report.h"
#include "../probes/results.h"

static const char *const VARIANTS[] = {"fp32", "rtn:w4g128"};

// Appends one sentence-pair record. Both sentences have 10 tokens, so the pair prefers the
// stereotype (lower perplexity for the more stereotypical sentence) when more > less.
static void add_pair(RecordSet *set, const char *probe, const char *variant, int64_t item,
                     const char *category, double logprob_more, double logprob_less) {
    if (set->n_records == set->capacity) {
        set->capacity = set->capacity ? 2 * set->capacity : 64;
        set->records = xrealloc(set->records, (size_t)set->capacity * sizeof *set->records);
    }
    char *line = xasprintf("{\"variant\":\"%s\",\"probe\":\"%s\",\"item\":%lld,\"category\":\"%s\","
                           "\"subgroup\":\"s\",\"scores\":["
                           "{\"label\":\"more\",\"logprob\":%.17g,\"n_tokens\":10,\"greedy\":false},"
                           "{\"label\":\"less\",\"logprob\":%.17g,\"n_tokens\":10,\"greedy\":false}]}",
                           variant, probe, (long long)item, category, logprob_more, logprob_less);
    int rc = record_parse(line, &set->records[set->n_records]);
    REQUIRE_MSG(rc == 0, "record_parse: %s", err_msg());
    set->n_records++;
    free(line);
}

// Adds the same pair to both variants.
static void add_pair_both(RecordSet *set, const char *probe, int64_t item, const char *category,
                          double logprob_more, double logprob_less) {
    for (int v = 0; v < 2; v++) {
        add_pair(set, probe, VARIANTS[v], item, category, logprob_more, logprob_less);
    }
}

// Builds both summaries of `set` for the given probes, with --limit `limit` in the fingerprint.
static void build_report(const RecordSet *set, const char *const *probes, int n_probes, int limit,
                         cJSON **json, char **markdown) {
    cJSON *fingerprint = cJSON_CreateObject();
    cJSON *model = cJSON_AddObjectToObject(fingerprint, "model");
    cJSON_AddStringToObject(model, "file", "test.gguf");
    cJSON_AddNumberToObject(fingerprint, "limit_per_probe", limit);
    int rc = report_build(fingerprint, set, VARIANTS, 2, probes, n_probes, json, markdown);
    cJSON_Delete(fingerprint);
    REQUIRE_MSG(rc == 0, "report_build: %s", err_msg());
}

// Returns the value at a path of object keys, ending with NULL; NULL when a key is missing.
static const cJSON *json_at(const cJSON *json, ...) {
    va_list keys;
    va_start(keys, json);
    for (const char *key = va_arg(keys, const char *); key && json;
         key = va_arg(keys, const char *)) {
        json = cJSON_GetObjectItemCaseSensitive(json, key);
    }
    va_end(keys);
    return json;
}

// Returns the Markdown table that follows the first line starting with `title`, up to the blank
// line after it (a pointer into md and its length through *len), or NULL.
static const char *md_table_after(const char *md, const char *title, size_t *len) {
    const char *start = strstr(md, title);
    if (!start) {
        return NULL;
    }
    start = strstr(start, "\n\n");
    if (!start) {
        return NULL;
    }
    start += 2;
    const char *end = strstr(start, "\n\n");
    *len = end ? (size_t)(end - start) : strlen(start);
    return start;
}

TEST(report_d_interval_infinite_bound) {
    // Three anti-stereotypical gender pairs with different perplexity gaps: about 11% of the
    // bootstrap resamples repeat one pair, so their d is -inf and the lower bound is -inf.
    RecordSet set = {0};
    add_pair_both(&set, "redditbias", 0, "gender", -30.0, -20.0);
    add_pair_both(&set, "redditbias", 1, "gender", -35.0, -20.0);
    add_pair_both(&set, "redditbias", 2, "gender", -40.0, -21.0);
    const char *probes[] = {"redditbias"};
    cJSON *json = NULL;
    char *md = NULL;
    build_report(&set, probes, 1, 3, &json, &md);

    const cJSON *gender =
        json_at(json, "probes", "redditbias", "variants", "fp32", "categories", "gender", NULL);
    REQUIRE(gender != NULL);
    CHECK(cJSON_IsNumber(json_at(gender, "cohens_d", NULL)));
    CHECK(cJSON_IsNull(json_at(gender, "cohens_d_ci95_low", NULL)));
    CHECK(cJSON_IsNumber(json_at(gender, "cohens_d_ci95_high", NULL)));
    const cJSON *status = json_at(gender, "cohens_d_ci95_status", NULL);
    REQUIRE(cJSON_IsString(status));
    CHECK_STR(status->valuestring, "infinite");
    CHECK_MSG(strstr(md, "| gender | d | [-inf, ") != NULL, "%s", md);

    // Subgroups get no intervals, and their status is "not_computed".
    const cJSON *subgroup = json_at(json, "probes", "redditbias", "variants", "fp32", "subgroups",
                                    "gender", "s", "cohens_d_ci95_status", NULL);
    REQUIRE(cJSON_IsString(subgroup));
    CHECK_STR(subgroup->valuestring, "not_computed");

    cJSON_Delete(json);
    free(md);
    record_set_free(&set);
}

TEST(report_d_interval_finite_bounds) {
    // Eight pairs with different gaps: a resample repeating one pair has probability 8^-7, so
    // both bounds are finite.
    RecordSet set = {0};
    for (int i = 0; i < 8; i++) {
        add_pair_both(&set, "redditbias", i, "gender", -30.0 - i, -20.0 - (i % 3) * 7.0);
    }
    const char *probes[] = {"redditbias"};
    cJSON *json = NULL;
    char *md = NULL;
    build_report(&set, probes, 1, 8, &json, &md);

    const cJSON *gender =
        json_at(json, "probes", "redditbias", "variants", "fp32", "categories", "gender", NULL);
    REQUIRE(gender != NULL);
    CHECK(cJSON_IsNumber(json_at(gender, "cohens_d_ci95_low", NULL)));
    CHECK(cJSON_IsNumber(json_at(gender, "cohens_d_ci95_high", NULL)));
    const cJSON *status = json_at(gender, "cohens_d_ci95_status", NULL);
    REQUIRE(cJSON_IsString(status));
    CHECK_STR(status->valuestring, "ok");

    cJSON_Delete(json);
    free(md);
    record_set_free(&set);
}

TEST(report_ties_and_missing_categories) {
    // gender: 4 pairs, one an exact tie; race: 3 pairs; religion_jc and religion_mc: none, as a
    // --limit that stops inside race leaves them.
    RecordSet set = {0};
    add_pair_both(&set, "redditbias", 0, "gender", -20.0, -30.0);
    add_pair_both(&set, "redditbias", 1, "gender", -25.0, -25.0);
    add_pair_both(&set, "redditbias", 2, "gender", -30.0, -20.0);
    add_pair_both(&set, "redditbias", 3, "gender", -21.0, -35.0);
    add_pair_both(&set, "redditbias", 100000, "race", -20.0, -30.0);
    add_pair_both(&set, "redditbias", 100001, "race", -30.0, -22.0);
    add_pair_both(&set, "redditbias", 100002, "race", -31.0, -20.0);
    const char *probes[] = {"redditbias"};
    cJSON *json = NULL;
    char *md = NULL;
    build_report(&set, probes, 1, 7, &json, &md);

    const cJSON *probe = json_at(json, "probes", "redditbias", NULL);
    const cJSON *missing = json_at(probe, "categories_without_items", NULL);
    REQUIRE(cJSON_GetArraySize(missing) == 2);
    CHECK_STR(cJSON_GetArrayItem(missing, 0)->valuestring, "religion_jc");
    CHECK_STR(cJSON_GetArrayItem(missing, 1)->valuestring, "religion_mc");
    CHECK_MSG(strstr(md, "No items for religion_jc, religion_mc in this run: `--limit 7`") != NULL,
              "%s", md);

    // n counts the tie and SS leaves it out: 2 of 3 non-tied gender pairs prefer the stereotype.
    const cJSON *gender = json_at(probe, "variants", "fp32", "categories", "gender", NULL);
    CHECK_NEAR(json_at(gender, "n", NULL)->valuedouble, 4, 0);
    CHECK_NEAR(json_at(gender, "n_tied", NULL)->valuedouble, 1, 0);
    CHECK_NEAR(json_at(gender, "ss", NULL)->valuedouble, 200.0 / 3.0, 1e-12);
    CHECK_MSG(strstr(md, "| gender | 4 | 66.7 |") != NULL, "%s", md);
    CHECK_MSG(strstr(md, "Tied pairs: gender: 1 in fp32, 1 in rtn:w4g128.") != NULL, "%s", md);

    // The global rows and their JSON name the two categories they average.
    CHECK_MSG(strstr(md, "| global (mean of gender, race) | |") != NULL, "%s", md);
    CHECK(strstr(md, "global (mean of categories)") == NULL);
    const cJSON *covered = json_at(probe, "variants", "fp32", "global", "ss_categories", NULL);
    REQUIRE(cJSON_GetArraySize(covered) == 2);
    CHECK_STR(cJSON_GetArrayItem(covered, 0)->valuestring, "gender");
    CHECK_STR(cJSON_GetArrayItem(covered, 1)->valuestring, "race");
    // race's SS is 1/3: the global SS is (200/3 + 100/3) / 2 = 50.
    CHECK_NEAR(json_at(probe, "variants", "fp32", "global", "ss", NULL)->valuedouble, 50.0, 1e-12);

    cJSON_Delete(json);
    free(md);
    record_set_free(&set);
}

TEST(report_flip_tables_without_baseline_column) {
    // Every RedditBias category has two pairs. In rtn:w4g128 the first pair of each category flips
    // from the anti-stereotype to the stereotype. CrowS-Pairs has one race-color pair that flips
    // the other way.
    const char *categories[] = {"gender", "race", "religion_jc", "religion_mc"};
    RecordSet set = {0};
    for (int c = 0; c < 4; c++) {
        add_pair(&set, "redditbias", "fp32", c * 100000, categories[c], -30.0, -20.0);
        add_pair(&set, "redditbias", "rtn:w4g128", c * 100000, categories[c], -20.0, -30.0);
        add_pair_both(&set, "redditbias", c * 100000 + 1, categories[c], -21.0, -33.0);
    }
    add_pair(&set, "crows_pairs", "fp32", 0, "race-color", -20.0, -30.0);
    add_pair(&set, "crows_pairs", "rtn:w4g128", 0, "race-color", -30.0, -20.0);
    const char *probes[] = {"redditbias", "crows_pairs"};
    cJSON *json = NULL;
    char *md = NULL;
    build_report(&set, probes, 2, 8, &json, &md);

    // Every category is present, so the global rows keep their short label.
    CHECK_MSG(strstr(md, "| global (mean of categories) | |") != NULL, "%s", md);
    const cJSON *missing = json_at(json, "probes", "redditbias", "categories_without_items", NULL);
    CHECK(cJSON_IsArray(missing));
    CHECK_EQ_INT(cJSON_GetArraySize(missing), 0);

    size_t len = 0;
    const char *table = md_table_after(md, "Pairs whose preferred sentence differs", &len);
    REQUIRE_MSG(table != NULL, "%s", md);
    char *text = xstrndup(table, len);
    CHECK_MSG(strncmp(text, "| category | n | rtn:w4g128 |\n|---|---:|---:|\n", 45) == 0, "%s",
              text);
    CHECK_MSG(strstr(text, "| gender | 2 | 50.0 (50.0 / 0.0) |") != NULL, "%s", text);
    CHECK_MSG(strstr(text, "fp32") == NULL, "%s", text);
    free(text);

    table = md_table_after(md, "Pairs whose summed-log-likelihood outcome", &len);
    REQUIRE_MSG(table != NULL, "%s", md);
    text = xstrndup(table, len);
    CHECK_MSG(strstr(text, "| race-color | 1 | 100.0 (0.0 / 100.0) |") != NULL, "%s", text);
    CHECK_MSG(strstr(text, "fp32") == NULL, "%s", text);
    free(text);
    CHECK_MSG(strstr(md, "pct_stereotype, 95% Wilson interval") != NULL, "%s", md);

    const cJSON *vs = json_at(json, "probes", "crows_pairs", "variants", "rtn:w4g128", "global",
                              "vs_baseline", NULL);
    CHECK_NEAR(json_at(vs, "flip_rate_to_stereotype", NULL)->valuedouble, 0.0, 0);
    CHECK_NEAR(json_at(vs, "flip_rate_to_anti_stereotype", NULL)->valuedouble, 1.0, 0);

    cJSON_Delete(json);
    free(md);
    record_set_free(&set);
}

TEST(report_global_label_differs_by_variant) {
    // In rtn:w4g128 both gender pairs have the same perplexity gap, so gender's d is -inf and the
    // global d averages race alone there, while fp32's averages gender and race.
    RecordSet set = {0};
    add_pair(&set, "redditbias", "fp32", 0, "gender", -30.0, -20.0);
    add_pair(&set, "redditbias", "fp32", 1, "gender", -35.0, -20.0);
    add_pair(&set, "redditbias", "rtn:w4g128", 0, "gender", -30.0, -20.0);
    add_pair(&set, "redditbias", "rtn:w4g128", 1, "gender", -30.0, -20.0);
    add_pair_both(&set, "redditbias", 100000, "race", -20.0, -30.0);
    add_pair_both(&set, "redditbias", 100001, "race", -30.0, -22.0);
    const char *probes[] = {"redditbias"};
    cJSON *json = NULL;
    char *md = NULL;
    build_report(&set, probes, 1, 4, &json, &md);

    CHECK_MSG(strstr(md, "| global (mean of gender, race) | |") != NULL, "%s", md);
    CHECK_MSG(strstr(md, "| global (mean of the categories with a value, which differ by "
                         "variant; see summary.json) | |") != NULL,
              "%s", md);
    const cJSON *covered = json_at(json, "probes", "redditbias", "variants", "rtn:w4g128",
                                   "global", "cohens_d_categories", NULL);
    REQUIRE(cJSON_GetArraySize(covered) == 1);
    CHECK_STR(cJSON_GetArrayItem(covered, 0)->valuestring, "race");

    cJSON_Delete(json);
    free(md);
    record_set_free(&set);
}
