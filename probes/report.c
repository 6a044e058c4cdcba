// report.c: summary.json and summary.md of a run, recomputed from items.jsonl (see report.h).
#include "report.h"

#include <stdlib.h>
#include <string.h>

#include "../engine/util.h"
#include "summary.h"

// Lists the categories of the probe's category order that no record of this run has: in
// summary.json as "categories_without_items", and in a note in summary.md when there are any.
static void report_missing_categories(const ProbeDef *def, const RecordSet *records,
                                      const cJSON *fingerprint, cJSON *probe_json, StrBuf *md) {
    cJSON *missing = cJSON_AddArrayToObject(probe_json, "categories_without_items");
    StrBuf names;
    sb_init(&names);
    int n_missing = 0;
    for (int k = 0; def->category_order && def->category_order[k]; k++) {
        const char *category = def->category_order[k];
        bool present = false;
        for (int64_t r = 0; r < records->n_records && !present; r++) {
            const ItemRecord *record = &records->records[r];
            present = strcmp(record->probe, def->name) == 0 &&
                      strcmp(record->category, category) == 0;
        }
        if (!present) {
            cJSON_AddItemToArray(missing, cJSON_CreateString(category));
            sb_printf(&names, "%s%s", n_missing++ ? ", " : "", category);
        }
    }

    if (n_missing > 0) {
        const cJSON *limit = cJSON_GetObjectItemCaseSensitive(fingerprint, "limit_per_probe");
        sb_printf(md, "No items for %s in this run", names.data);
        if (cJSON_IsNumber(limit)) {
            sb_printf(md, ": `--limit %.0f` scores the first %.0f items of each probe in the "
                          "order of its data files, so later categories can get none",
                      limit->valuedouble, limit->valuedouble);
        }
        sb_append(md, ". The tables list only the categories with items, and every aggregate "
                      "row (global, overall, all pairs) covers only those.\n\n");
    }
    sb_free(&names);
}

int report_build(const cJSON *fingerprint, const RecordSet *records, const char *const *variants,
                 int n_variants, const char *const *probes, int n_probes, cJSON **json_out,
                 char **markdown_out) {
    int baseline = -1;
    for (int v = 0; v < n_variants; v++) {
        if (strcmp(variants[v], "fp32") == 0) {
            baseline = v;
        }
    }

    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "qbias_version", QBIAS_VERSION);
    cJSON_AddItemToObject(root, "run", cJSON_Duplicate(fingerprint, true));
    cJSON *variant_list = cJSON_AddArrayToObject(root, "variants");
    for (int v = 0; v < n_variants; v++) {
        cJSON_AddItemToArray(variant_list, cJSON_CreateString(variants[v]));
    }
    if (baseline >= 0) {
        cJSON_AddStringToObject(root, "baseline", "fp32");
    } else {
        cJSON_AddNullToObject(root, "baseline");
    }
    cJSON *units = cJSON_AddObjectToObject(root, "units");
    cJSON_AddStringToObject(units, "ss", "percent of non-tied pairs preferring the stereotype");
    cJSON_AddStringToObject(units, "pct_stereotype", "percent of pairs");
    cJSON_AddStringToObject(units, "flip_rate", "fraction of compared items");
    cJSON_AddStringToObject(units, "p_value", "paired approximate randomization, 10,000 iterations");
    cJSON *probes_json = cJSON_AddObjectToObject(root, "probes");

    StrBuf md;
    sb_init(&md);
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(fingerprint, "model");
    const cJSON *model_name = cJSON_GetObjectItemCaseSensitive(model, "file");
    sb_printf(&md, "# qbias bias report: %s\n\n",
              cJSON_IsString(model_name) ? model_name->valuestring : "model");
    sb_append(&md, "Variants:");
    for (int v = 0; v < n_variants; v++) {
        sb_printf(&md, " `%s`%s", variants[v], v + 1 < n_variants ? "," : "");
    }
    sb_printf(&md, ". qbias %s.%s\n\n", QBIAS_VERSION,
              baseline >= 0 ? " Changes are relative to `fp32`." : "");

    int rc = 0;
    for (int p = 0; p < n_probes && rc == 0; p++) {
        const ProbeDef *def = probe_find(probes[p]);
        if (!def) {
            rc = err_set("unknown probe '%s' (known: %s)", probes[p], probe_names());
            break;
        }
        int64_t n_records = 0;
        for (int64_t r = 0; r < records->n_records; r++) {
            n_records += strcmp(records->records[r].probe, def->name) == 0;
        }
        cJSON *probe_json = cJSON_AddObjectToObject(probes_json, def->name);
        cJSON_AddStringToObject(probe_json, "title", def->title);
        cJSON_AddStringToObject(probe_json, "convention", def->convention);
        cJSON_AddNumberToObject(probe_json, "n_records", (double)n_records);

        sb_printf(&md, "## %s: %s\n\n", def->name, def->title);
        sb_printf(&md, "Convention: %s.\n\n", def->convention);
        report_missing_categories(def, records, fingerprint, probe_json, &md);
        ProbeSummaryInput input = {
            .probe = def->name,
            .variants = variants,
            .n_variants = n_variants,
            .baseline = baseline,
            .records = records,
        };
        rc = def->summarize(&input, probe_json, &md);
    }

    if (rc != 0) {
        cJSON_Delete(root);
        sb_free(&md);
        return -1;
    }
    *json_out = root;
    *markdown_out = md.data;
    return 0;
}

int report_write(const char *dir, const cJSON *json, const char *markdown) {
    char *json_path = path_join(dir, "summary.json");
    char *md_path = path_join(dir, "summary.md");
    char *text = cJSON_Print(json);
    StrBuf sb;
    sb_init(&sb);
    sb_append(&sb, text);
    sb_append(&sb, "\n");
    int rc = file_write_atomic(json_path, sb.data, sb.len);
    if (rc == 0) {
        rc = file_write_atomic(md_path, markdown, strlen(markdown));
    }
    sb_free(&sb);
    cJSON_free(text);
    free(json_path);
    free(md_path);
    return rc;
}
