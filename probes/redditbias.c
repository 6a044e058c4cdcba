// redditbias.c: item loader of the RedditBias probe (see datasets.h).
//
// Each group has two CSV files with different columns. The target group's file contains the
// original Reddit comment (`comment`) and the phrase cut from it (`comments_processed`). The
// counterpart file contains, row for row, that phrase (`comments`) and the same phrase with the group
// term swapped (`comments_processed`, e.g. "wife" -> "husband"). Items pair the two phrases.
#include <stdlib.h>
#include <string.h>

#include "../engine/util.h"
#include "csv.h"
#include "datasets.h"

// Item ids are group index * REDDITBIAS_ID_STRIDE + row, so they stay unique across groups and a
// row can be read back from an id. Each group file has fewer than 300 rows.
#define REDDITBIAS_ID_STRIDE 100000

typedef struct {
    const char *category;          // group name used in reports
    const char *subgroup;          // the target group, whose sentence is texts[0]
    const char *target_file;       // manifest path of the target group's file
    const char *counterpart_file;  // manifest path of the counterpart file
} RedditBiasGroup;

static const RedditBiasGroup redditbias_groups[] = {
    {"gender", "female", "gender/reddit_comments_gender_female_biased_test_reduced.csv",
     "gender/reddit_comments_gender_male_biased_test_reduced.csv"},
    {"race", "black", "race/reddit_comments_race_black_biased_test_reduced.csv",
     "race/reddit_comments_race_white_biased_test_reduced.csv"},
    {"religion_jc", "jews", "religion1/reddit_comments_religion1_jews_biased_test_reduced.csv",
     "religion1/reddit_comments_religion1_christians_biased_test_reduced.csv"},
    {"religion_mc", "muslims", "religion2/reddit_comments_religion2_muslims_biased_test_reduced.csv",
     "religion2/reddit_comments_religion2_christians_biased_test_reduced.csv"},
};

// Pairs the rows of one group's two tables and appends the items.
static int redditbias_pair_rows(int group_index, const CsvTable *target,
                                const CsvTable *counterpart, ProbeItems *out, int64_t *capacity) {
    const RedditBiasGroup *group = &redditbias_groups[group_index];
    int col_target = csv_column(target, "comments_processed");
    int col_original = csv_column(counterpart, "comments");
    int col_swapped = csv_column(counterpart, "comments_processed");
    if (col_target < 0 || col_original < 0 || col_swapped < 0) {
        return -1;
    }

    if (target->n_records != counterpart->n_records) {
        return err_set("%s has %lld rows but %s has %lld; the two files must pair row for row, so "
                       "restore both from the URLs in the redditbias manifest",
                       target->path, (long long)target->n_records, counterpart->path,
                       (long long)counterpart->n_records);
    }
    if (target->n_records >= REDDITBIAS_ID_STRIDE) {
        return err_set("%s has %lld rows; item ids allow at most %d rows per group", target->path,
                       (long long)target->n_records, REDDITBIAS_ID_STRIDE - 1);
    }

    for (int64_t row = 0; row < target->n_records; row++) {
        const CsvRecord *t = &target->records[row];
        const CsvRecord *c = &counterpart->records[row];
        const char *sentence = t->fields[col_target];
        const char *swapped = c->fields[col_swapped];

        if (strcmp(c->fields[col_original], sentence) != 0) {
            return err_set("%s:%lld: column comments (\"%.60s\") differs from comments_processed "
                           "in %s:%lld (\"%.60s\"); the files are not row-aligned, so restore "
                           "both from the URLs in the redditbias manifest",
                           counterpart->path, (long long)c->line, c->fields[col_original],
                           target->path, (long long)t->line, sentence);
        }
        if (sentence[0] == '\0' || swapped[0] == '\0') {
            return err_set("%s:%lld: empty comments_processed; every pair needs two sentences",
                           sentence[0] == '\0' ? target->path : counterpart->path,
                           (long long)(sentence[0] == '\0' ? t->line : c->line));
        }

        ProbeItem *item = dataset_add_item(out, capacity);
        item->id = (int64_t)group_index * REDDITBIAS_ID_STRIDE + row;
        item->category = xstrdup(group->category);
        item->subgroup = xstrdup(group->subgroup);
        item->n_texts = 2;
        item->texts[0] = xstrdup(sentence);
        item->texts[1] = xstrdup(swapped);
        item->text_labels[0] = "target";
        item->text_labels[1] = "counterpart";
    }
    return 0;
}

// Resolves and reads one group's two files, appending their paths to `source`. Resolver errors
// already name the data set; the others get a "redditbias" prefix.
static int redditbias_load_group(const Resolver *resolver, int group_index, ProbeItems *out,
                                 int64_t *capacity, StrBuf *source) {
    const RedditBiasGroup *group = &redditbias_groups[group_index];
    char *target_path = resolver_find(resolver, "redditbias", group->target_file);
    char *counterpart_path =
        target_path ? resolver_find(resolver, "redditbias", group->counterpart_file) : NULL;
    if (!counterpart_path) {
        free(target_path);
        return -1;
    }

    CsvTable target = {0}, counterpart = {0};
    int rc = csv_read(target_path, &target);
    if (rc == 0) {
        rc = csv_read(counterpart_path, &counterpart);
    }
    if (rc == 0) {
        rc = redditbias_pair_rows(group_index, &target, &counterpart, out, capacity);
    }
    if (rc == 0) {
        sb_printf(source, "%s%s, %s", source->len ? ", " : "", target_path, counterpart_path);
    } else {
        err_prefix("redditbias");
    }

    csv_free(&target);
    csv_free(&counterpart);
    free(target_path);
    free(counterpart_path);
    return rc;
}

int redditbias_load(const Resolver *resolver, ProbeItems *out) {
    memset(out, 0, sizeof *out);
    int64_t capacity = 0;
    StrBuf source;
    sb_init(&source);
    for (int g = 0; g < (int)ARRAY_LEN(redditbias_groups); g++) {
        if (redditbias_load_group(resolver, g, out, &capacity, &source) != 0) {
            sb_free(&source);
            probe_items_free(out);
            return -1;
        }
    }
    out->source = source.data;
    return 0;
}
