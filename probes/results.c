// results.c: items.jsonl records and the run fingerprint (see results.h).
#include "results.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <stb/stb_ds.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../engine/util.h"

// ----------------------------------------------------------------------------
// Records

void record_free(ItemRecord *record) {
    free(record->variant);
    free(record->probe);
    free(record->category);
    free(record->subgroup);
    for (int i = 0; i < record->n_scores; i++) {
        free(record->scores[i].label);
    }
    memset(record, 0, sizeof *record);
}

void record_set_free(RecordSet *set) {
    for (int64_t i = 0; i < set->n_records; i++) {
        record_free(&set->records[i]);
    }
    free(set->records);
    memset(set, 0, sizeof *set);
}

static int get_string(const cJSON *obj, const char *field, char **out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, field);
    if (!cJSON_IsString(v)) {
        return err_set("field '%s' is missing or not a string", field);
    }
    *out = xstrdup(v->valuestring);
    return 0;
}

static int get_number(const cJSON *obj, const char *field, double *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, field);
    if (!cJSON_IsNumber(v)) {
        return err_set("field '%s' is missing or not a number", field);
    }
    *out = v->valuedouble;
    return 0;
}

int record_parse(const char *line, ItemRecord *out) {
    memset(out, 0, sizeof *out);
    cJSON *obj = cJSON_Parse(line);
    if (!cJSON_IsObject(obj)) {
        cJSON_Delete(obj);
        return err_set("not a JSON object");
    }

    double item = 0;
    int rc = 0;
    if (get_string(obj, "variant", &out->variant) != 0 || get_string(obj, "probe", &out->probe) != 0 ||
        get_number(obj, "item", &item) != 0 || get_string(obj, "category", &out->category) != 0 ||
        get_string(obj, "subgroup", &out->subgroup) != 0) {
        rc = -1;
    }
    out->item = (int64_t)item;

    const cJSON *scores = cJSON_GetObjectItemCaseSensitive(obj, "scores");
    if (rc == 0 && (!cJSON_IsArray(scores) || cJSON_GetArraySize(scores) < 1 ||
                    cJSON_GetArraySize(scores) > PROBE_MAX_TEXTS)) {
        rc = err_set("field 'scores' must be an array of 1 to %d objects", PROBE_MAX_TEXTS);
    }
    const cJSON *score;
    if (rc == 0) {
        cJSON_ArrayForEach(score, scores) {
            RecordScore *s = &out->scores[out->n_scores];
            double n_tokens = 0;
            if (get_string(score, "label", &s->label) != 0) {
                rc = -1;
                break;
            }
            out->n_scores++;
            const cJSON *greedy = cJSON_GetObjectItemCaseSensitive(score, "greedy");
            if (get_number(score, "logprob", &s->logprob) != 0 ||
                get_number(score, "n_tokens", &n_tokens) != 0 || !cJSON_IsBool(greedy)) {
                rc = cJSON_IsBool(greedy) ? -1 : err_set("field 'greedy' is missing or not a bool");
                break;
            }
            s->n_tokens = (int64_t)n_tokens;
            s->greedy = cJSON_IsTrue(greedy);
            // A log-probability is finite and at most 0, and at least one token was scored.
            if (!isfinite(s->logprob) || s->logprob > 0 || n_tokens < 1 || n_tokens > 1e9 ||
                n_tokens != floor(n_tokens)) {
                rc = err_set("score '%s' has logprob %g and n_tokens %g; expected a finite logprob "
                             "<= 0 and a whole n_tokens >= 1",
                             s->label, s->logprob, n_tokens);
                break;
            }
        }
    }
    cJSON_Delete(obj);
    if (rc != 0) {
        record_free(out);
    }
    return rc;
}

// Appends a double that parses back to exactly the same value (17 significant digits).
static void append_double(StrBuf *sb, double x) {
    if (!isfinite(x)) {
        sb_append(sb, "null");
        return;
    }
    sb_printf(sb, "%.17g", x);
}

void record_format(const ItemRecord *record, const cJSON *outcome, StrBuf *out) {
    sb_append(out, "{\"variant\":");
    sb_append_json_string(out, record->variant);
    sb_append(out, ",\"probe\":");
    sb_append_json_string(out, record->probe);
    sb_printf(out, ",\"item\":%lld,\"category\":", (long long)record->item);
    sb_append_json_string(out, record->category);
    sb_append(out, ",\"subgroup\":");
    sb_append_json_string(out, record->subgroup);
    sb_append(out, ",\"scores\":[");
    for (int i = 0; i < record->n_scores; i++) {
        const RecordScore *s = &record->scores[i];
        sb_append(out, i ? ",{\"label\":" : "{\"label\":");
        sb_append_json_string(out, s->label);
        sb_append(out, ",\"logprob\":");
        append_double(out, s->logprob);
        sb_printf(out, ",\"n_tokens\":%lld,\"greedy\":%s}", (long long)s->n_tokens,
                  s->greedy ? "true" : "false");
    }
    sb_append(out, "]");
    if (outcome) {
        char *text = cJSON_PrintUnformatted(outcome);
        sb_append(out, ",\"outcome\":");
        sb_append(out, text);
        cJSON_free(text);
    }
    sb_append(out, "}\n");
}

// ----------------------------------------------------------------------------
// Index of (variant, probe, item)

struct RecordIndex {
    struct {
        char *key;
        int64_t value; // index into the record set
    } *map;
    const RecordSet *set;
};

static char *index_key(const char *variant, const char *probe, int64_t item) {
    // The unit separator cannot occur in variant or probe names.
    return xasprintf("%s\x1f%s\x1f%lld", variant, probe, (long long)item);
}

RecordIndex *record_index_new(const RecordSet *set) {
    RecordIndex *index = xcalloc(1, sizeof *index);
    index->set = set;
    sh_new_strdup(index->map);
    for (int64_t i = 0; i < set->n_records; i++) {
        const ItemRecord *r = &set->records[i];
        char *key = index_key(r->variant, r->probe, r->item);
        if (shgeti(index->map, key) < 0) {
            shput(index->map, key, i);
        }
        free(key);
    }
    return index;
}

const ItemRecord *record_index_find(const RecordIndex *index, const char *variant,
                                    const char *probe, int64_t item) {
    char *key = index_key(variant, probe, item);
    // stb_ds lookups write scratch state into the map header, so the map is not const.
    RecordIndex *mutable_index = (RecordIndex *)index;
    ptrdiff_t slot = shgeti(mutable_index->map, key);
    free(key);
    return slot < 0 ? NULL : &index->set->records[index->map[slot].value];
}

bool record_index_contains(const RecordIndex *index, const char *variant, const char *probe,
                           int64_t item) {
    return record_index_find(index, variant, probe, item) != NULL;
}

void record_index_free(RecordIndex *index) {
    if (!index) {
        return;
    }
    shfree(index->map);
    free(index);
}

// ----------------------------------------------------------------------------
// items.jsonl

static void record_set_push(RecordSet *set, const ItemRecord *record) {
    if (set->n_records == set->capacity) {
        set->capacity = set->capacity ? 2 * set->capacity : 1024;
        set->records = xrealloc(set->records, (size_t)set->capacity * sizeof *set->records);
    }
    set->records[set->n_records++] = *record;
}

int results_load(const char *path, RecordSet *set, bool *dropped_torn) {
    *dropped_torn = false;
    if (!file_exists(path)) {
        return 0;
    }
    char *data = NULL;
    size_t len = 0;
    if (file_read_all(path, &data, &len) != 0) {
        return -1;
    }

    size_t start = 0, good_end = 0;
    int64_t line_number = 0;
    int rc = 0;
    while (start < len) {
        line_number++;
        char *newline = memchr(data + start, '\n', len - start);
        size_t end = newline ? (size_t)(newline - data) : len;
        data[end] = '\0';

        ItemRecord record;
        bool valid = record_parse(data + start, &record) == 0;
        if (!newline) {
            // A line without its newline was being written when the run stopped.
            if (valid) {
                record_free(&record);
            }
            *dropped_torn = true;
            break;
        }
        if (!valid) {
            rc = err_set("%s line %lld is not a valid record (%s); the file is damaged. Move it "
                         "away to start the run again, or repair the line",
                         path, (long long)line_number, err_msg());
            break;
        }
        record.line = line_number;
        record_set_push(set, &record);
        good_end = end + 1;
        start = end + 1;
    }
    free(data);

    // Each (variant, probe, item) may appear once: a second line would count the item twice.
    if (rc == 0) {
        RecordIndex *index = record_index_new(set);
        for (int64_t i = 0; i < set->n_records && rc == 0; i++) {
            const ItemRecord *r = &set->records[i];
            const ItemRecord *first = record_index_find(index, r->variant, r->probe, r->item);
            if (first && first != r) {
                rc = err_set("%s lines %lld and %lld both hold item %lld of probe %s under %s; "
                             "remove the duplicate line (two runs into one directory?)",
                             path, (long long)first->line, (long long)r->line, (long long)r->item,
                             r->probe, r->variant);
            }
        }
        record_index_free(index);
    }

    if (rc == 0 && *dropped_torn) {
        log_warn("%s: dropped an incomplete last line (line %lld) left by an interrupted run",
                 path, (long long)line_number);
        if (truncate(path, (off_t)good_end) != 0) {
            return err_set("cannot truncate %s to remove its incomplete last line: %s", path,
                           strerror(errno));
        }
    }
    return rc;
}

FILE *results_open_append(const char *path) {
    FILE *f = fopen(path, "a");
    if (!f) {
        err_set("cannot open %s for appending: %s", path, strerror(errno));
    }
    return f;
}

int results_append(FILE *file, const char *path, const char *line) {
    if (fputs(line, file) == EOF || fflush(file) != 0) {
        return err_set("cannot write to %s: %s", path, strerror(errno));
    }
    return 0;
}

// ----------------------------------------------------------------------------
// Fingerprint

int results_check_fingerprint(const char *dir, const cJSON *fingerprint) {
    char *path = path_join(dir, "run.json");
    char *text = cJSON_Print(fingerprint);
    int rc = 0;

    if (!file_exists(path)) {
        char *items = path_join(dir, "items.jsonl");
        struct stat st;
        bool has_items = stat(items, &st) == 0 && st.st_size > 0;
        free(items);
        if (has_items) {
            cJSON_free(text);
            err_set("%s holds items.jsonl but no run.json, so it is unknown which model and "
                    "settings produced those records. Use a new --out directory, or delete %s "
                    "to start over",
                    dir, dir);
            free(path);
            return -1;
        }
        StrBuf sb;
        sb_init(&sb);
        sb_append(&sb, text);
        sb_append(&sb, "\n");
        rc = file_write_atomic(path, sb.data, sb.len);
        sb_free(&sb);
        cJSON_free(text);
        free(path);
        return rc;
    }

    char *stored_text = NULL;
    size_t len = 0;
    if (file_read_all(path, &stored_text, &len) != 0) {
        cJSON_free(text);
        free(path);
        return -1;
    }
    cJSON *stored = cJSON_Parse(stored_text);
    free(stored_text);
    if (!stored) {
        rc = err_set("%s is not valid JSON; it records which run wrote this directory. Use a new "
                     "--out directory, or delete %s to start over",
                     path, dir);
    } else if (!cJSON_Compare(stored, fingerprint, true)) {
        StrBuf diff;
        sb_init(&diff);
        const cJSON *field;
        cJSON_ArrayForEach(field, fingerprint) {
            const cJSON *old = cJSON_GetObjectItemCaseSensitive(stored, field->string);
            if (!old || !cJSON_Compare(old, field, true)) {
                char *now = cJSON_PrintUnformatted(field);
                char *before = old ? cJSON_PrintUnformatted(old) : xstrdup("(absent)");
                sb_printf(&diff, "\n  %s: stored %.200s, now %.200s", field->string, before, now);
                cJSON_free(now);
                if (old) {
                    cJSON_free(before);
                } else {
                    free(before);
                }
            }
        }
        cJSON_ArrayForEach(field, stored) {
            if (!cJSON_GetObjectItemCaseSensitive(fingerprint, field->string)) {
                sb_printf(&diff, "\n  %s: stored, but not part of this run's fingerprint",
                          field->string);
            }
        }
        rc = err_set("%s holds results of a different run, so they cannot be resumed or mixed with "
                     "this one. Differences:%s\nUse a new --out directory, or delete %s to start "
                     "over",
                     dir, diff.data, dir);
        sb_free(&diff);
    }
    cJSON_Delete(stored);
    cJSON_free(text);
    free(path);
    return rc;
}

int results_lock(const char *dir) {
    char *path = path_join(dir, ".qbias.lock");
    int fd = open(path, O_RDWR | O_CREAT, 0644);
    if (fd < 0) {
        err_set("cannot create the lock file %s: %s", path, strerror(errno));
        free(path);
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        err_set("another qbias process is writing to %s (it holds %s); wait for it to finish, or "
                "use a different --out directory",
                dir, path);
        close(fd);
        free(path);
        return -1;
    }
    free(path);
    return fd;
}

void results_unlock(int fd) {
    if (fd >= 0) {
        flock(fd, LOCK_UN);
        close(fd);
    }
}
