// report.h: a run's summaries, recomputed from its per-item records.
//
// summary.json holds every number of the report plus the run's fingerprint; summary.md holds one
// section per probe with tables whose rows are categories (and subgroups) and whose columns are
// variants, with the change from fp32 where fp32 is one of the variants.
#ifndef QBIAS_REPORT_H
#define QBIAS_REPORT_H

#include <cjson/cJSON.h>

#include "results.h"

// Builds both summaries from `records`. On success *json_out (free with cJSON_Delete) and
// *markdown_out (free with free) are set. Returns -1 with an error on failure.
int report_build(const cJSON *fingerprint, const RecordSet *records, const char *const *variants,
                 int n_variants, const char *const *probes, int n_probes, cJSON **json_out,
                 char **markdown_out);

// Writes summary.json and summary.md into `dir`, each atomically (temporary file, then rename).
int report_write(const char *dir, const cJSON *json, const char *markdown);

#endif
