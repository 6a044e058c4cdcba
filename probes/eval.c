// eval.c: the `qbias eval` driver (see eval.h).
//
// Every argument is checked and every data set loaded first, so a typo fails in seconds and not
// after an hour of scoring. Then variants are scored one by one, probe by probe, with one line per
// item appended to items.jsonl. Finally the summaries are recomputed from items.jsonl alone.
#include "eval.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../engine/resolver.h"
#include "../engine/score.h"
#include "../engine/variants.h"
#include "../engine/util.h"
#include "probe.h"
#include "report.h"
#include "results.h"

// Items scored per call of score_requests(); each item has 2 or 3 sentences.
#define EVAL_CHUNK_ITEMS 64
// Seconds between progress lines when stderr is not a terminal.
#define PROGRESS_LOG_INTERVAL 10.0

typedef struct {
    const ProbeDef *def;
    ProbeItems items;
} LoadedProbe;

typedef struct {
    char label[160];
    int64_t total;
    int64_t done;
    double start;
    double last_print;
    bool tty;
} Progress;

static void progress_start(Progress *p, const char *variant, const char *probe, int64_t total) {
    snprintf(p->label, sizeof p->label, "[%s] %s", variant, probe);
    p->total = total;
    p->done = 0;
    p->start = p->last_print = now_seconds();
    p->tty = isatty(fileno(stderr));
}

static void progress_update(Progress *p, int64_t done, bool final) {
    p->done = done;
    double now = now_seconds();
    if (!final && now - p->last_print < (p->tty ? 0.2 : PROGRESS_LOG_INTERVAL)) {
        return;
    }
    p->last_print = now;
    double elapsed = now - p->start;
    double rate = elapsed > 0 ? (double)done / elapsed : 0.0;
    double eta = rate > 0 ? (double)(p->total - done) / rate : 0.0;
    fprintf(stderr, "%s%s: %lld/%lld items, %.1f items/s, %s %.0f s%s", p->tty ? "\r" : "",
            p->label, (long long)done, (long long)p->total, rate, final ? "took" : "ETA",
            final ? elapsed : eta, p->tty && !final ? "   " : "\n");
    fflush(stderr);
}

// The variant settings of this run. `model_hash` may be NULL (no cache).
static void eval_variant_options(const EvalOptions *o, const Resolver *resolver,
                                 const char *model_hash, VariantOptions *vo) {
    variant_options_default(vo);
    vo->calib_path = o->calib_path;
    vo->calib_samples = o->calib_samples;
    vo->calib_seq_len = o->calib_seq_len;
    if (o->calib_seed_set) {
        vo->calib_seed = o->calib_seed;
    }
    vo->resolver = resolver;
    vo->cache_dir = o->no_cache ? NULL : resolver_cache_dir(resolver);
    vo->model_hash = model_hash;
}

// Returns the calibration of a variant saved in the model file: the qbias.quant.calibration_* keys
// that `qbias quantize` wrote. The model's SHA-256 already pins them.
static cJSON *stored_calibration(const Model *base) {
    cJSON *v = cJSON_CreateObject();
    cJSON_AddBoolToObject(v, "stored_in_model", true);
    static const char *const text_keys[] = {"file", "sha256", "sampling"};
    static const char *const number_keys[] = {"samples", "seq_len", "tokens", "seed"};
    for (size_t i = 0; base->file && i < sizeof text_keys / sizeof text_keys[0]; i++) {
        char *key = xasprintf("qbias.quant.calibration_%s", text_keys[i]);
        char *value = NULL;
        if (gguf_get_string(base->file, key, &value) == 1) {
            cJSON_AddStringToObject(v, text_keys[i], value);
        }
        free(value);
        free(key);
    }
    for (size_t i = 0; base->file && i < sizeof number_keys / sizeof number_keys[0]; i++) {
        char *key = xasprintf("qbias.quant.calibration_%s", number_keys[i]);
        double value = 0;
        if (gguf_get_float(base->file, key, &value) == 1) {
            cJSON_AddNumberToObject(v, number_keys[i], value);
        }
        free(key);
    }
    return v;
}

// The calibration behind the calibrated variants (GPTQ, AWQ, SmoothQuant): the text file's hash
// and each variant's sampling, with the sequence length the model's context allows (as
// calibration uses it). A variant saved in the model file records the calibration stored with
// it instead. *out is NULL when no variant is calibrated; -1 with an error when the
// text cannot be found, so that a missing file fails before any scoring. Opens *base when a
// variant needs the model.
static int calibration_fingerprint(const EvalOptions *o, const QuantRecipe *specs,
                                   const Resolver *resolver, const char *model_path,
                                   Model **base, cJSON **out) {
    *out = NULL;
    VariantOptions vo;
    eval_variant_options(o, resolver, NULL, &vo);
    for (int i = 0; i < o->n_specs; i++) {
        if (!recipe_needs_calibration(&specs[i])) {
            continue;
        }
        if (!*base && !(*base = model_open(model_path))) {
            return -1;
        }
        cJSON *v = NULL;
        if (strcmp((*base)->variant, specs[i].text) == 0) {
            if (o->calib_path || o->calib_samples > 0 || o->calib_seq_len > 0 ||
                o->calib_seed_set) {
                log_warn("%s: ignoring the calibration options, because %s contains this variant "
                         "as saved", specs[i].text, model_path);
            }
            v = stored_calibration(*base);
        } else {
            CalibOptions c = variant_calib_options(&specs[i], &vo);
            if (!*out || !cJSON_GetObjectItemCaseSensitive(*out, "sha256")) {
                char *path = calib_find_text(&c, resolver);
                char sha256[65];
                if (!path || sha256_path(path, sha256) != 0) {
                    free(path);
                    return -1;
                }
                if (!*out) {
                    *out = cJSON_CreateObject();
                }
                const char *slash = strrchr(path, '/');
                cJSON_AddStringToObject(*out, "file", slash ? slash + 1 : path);
                cJSON_AddStringToObject(*out, "sha256", sha256);
                cJSON_AddNumberToObject(*out, "seed", (double)c.seed);
                free(path);
            }
            int n_ctx = (*base)->config.n_ctx_train;
            v = cJSON_CreateObject();
            cJSON_AddStringToObject(v, "sampling", calib_sampling_name(c.sampling));
            cJSON_AddNumberToObject(v, "samples", c.n_samples);
            cJSON_AddNumberToObject(v, "seq_len", n_ctx > 0 && c.seq_len > n_ctx ? n_ctx : c.seq_len);
        }
        if (!*out) {
            *out = cJSON_CreateObject();
        }
        cJSON *variants = cJSON_GetObjectItemCaseSensitive(*out, "variants");
        if (!variants) {
            variants = cJSON_AddObjectToObject(*out, "variants");
        }
        cJSON_AddItemToObject(variants, specs[i].text, v);
    }
    return 0;
}

// The run fingerprint: everything that determines the per-item records. Thread count and batch
// size are left out because results do not depend on them.
static cJSON *make_fingerprint(const EvalOptions *o, const char *model_path, const char *model_hash,
                               const QuantRecipe *specs, const LoadedProbe *probes,
                               const Resolver *resolver, cJSON *calibration) {
    cJSON *fp = cJSON_CreateObject();
    cJSON_AddStringToObject(fp, "qbias_version", QBIAS_VERSION);
    cJSON *model = cJSON_AddObjectToObject(fp, "model");
    const char *slash = strrchr(model_path, '/');
    cJSON_AddStringToObject(model, "file", slash ? slash + 1 : model_path);
    cJSON_AddStringToObject(model, "sha256", model_hash);
    struct stat st;
    cJSON_AddNumberToObject(model, "bytes", stat(model_path, &st) == 0 ? (double)st.st_size : -1);

    cJSON *variants = cJSON_AddArrayToObject(fp, "variants");
    for (int i = 0; i < o->n_specs; i++) {
        cJSON_AddItemToArray(variants, cJSON_CreateString(specs[i].text));
    }
    cJSON *probe_list = cJSON_AddArrayToObject(fp, "probes");
    cJSON *data = cJSON_AddObjectToObject(fp, "data");
    for (int p = 0; p < o->n_probes; p++) {
        cJSON_AddItemToArray(probe_list, cJSON_CreateString(probes[p].def->name));
        const Manifest *m = resolver_manifest(resolver, probes[p].def->manifest);
        cJSON *files = cJSON_AddArrayToObject(data, probes[p].def->name);
        for (int f = 0; m && f < m->n_files; f++) {
            cJSON *file = cJSON_CreateObject();
            cJSON_AddStringToObject(file, "path", m->files[f].path);
            cJSON_AddStringToObject(file, "sha256", m->files[f].sha256);
            cJSON_AddItemToArray(files, file);
        }
    }
    if (calibration) {
        cJSON_AddItemToObject(fp, "calibration", calibration);
    }
    if (o->limit > 0) {
        cJSON_AddNumberToObject(fp, "limit_per_probe", (double)o->limit);
    } else {
        cJSON_AddNullToObject(fp, "limit_per_probe");
    }
    return fp;
}

// Scores the items todo[0..n_todo) of a probe under `model` and appends their records.
static int score_chunk(const Model *model, const LoadedProbe *probe, const int64_t *todo,
                       int64_t n_todo, const EvalOptions *o, FILE *out, const char *out_path) {
    int n_requests = 0;
    for (int64_t k = 0; k < n_todo; k++) {
        n_requests += probe->items.items[todo[k]].n_texts;
    }
    ScoreRequest *requests = xcalloc((size_t)n_requests, sizeof *requests);
    ScoreResult *results = xcalloc((size_t)n_requests, sizeof *results);
    int r = 0;
    for (int64_t k = 0; k < n_todo; k++) {
        const ProbeItem *item = &probe->items.items[todo[k]];
        for (int t = 0; t < item->n_texts; t++) {
            requests[r++] = (ScoreRequest){.context = "", .continuation = item->texts[t]};
        }
    }
    int failed = -1;
    ScoreOptions options = {.max_batch_tokens = o->batch_tokens,
                            .empty_context_eos = probe->def->empty_context_eos,
                            .failed_request = &failed};
    if (score_requests(model, requests, n_requests, &options, results) != 0) {
        // Name the item and sentence the failed request belongs to.
        for (int64_t k = 0, first = 0; failed >= 0 && k < n_todo; k++) {
            const ProbeItem *item = &probe->items.items[todo[k]];
            if (failed < first + item->n_texts) {
                err_prefix("item %lld, %s sentence", (long long)item->id,
                           item->text_labels[failed - first]);
                break;
            }
            first += item->n_texts;
        }
        free(requests);
        free(results);
        return -1;
    }

    int rc = 0;
    StrBuf line;
    sb_init(&line);
    r = 0;
    for (int64_t k = 0; k < n_todo && rc == 0; k++) {
        const ProbeItem *item = &probe->items.items[todo[k]];
        ItemRecord record = {
            .variant = model->variant,
            .probe = (char *)probe->def->name,
            .item = item->id,
            .category = item->category,
            .subgroup = item->subgroup,
            .n_scores = item->n_texts,
        };
        double logprob[PROBE_MAX_TEXTS];
        int64_t n_tokens[PROBE_MAX_TEXTS];
        for (int t = 0; t < item->n_texts; t++, r++) {
            record.scores[t] = (RecordScore){.label = (char *)item->text_labels[t],
                                             .logprob = results[r].logprob,
                                             .n_tokens = results[r].n_tokens,
                                             .greedy = results[r].is_greedy};
            logprob[t] = results[r].logprob;
            n_tokens[t] = results[r].n_tokens;
        }
        cJSON *outcome = cJSON_CreateObject();
        probe->def->outcome(item, logprob, n_tokens, outcome);
        line.len = 0;
        line.data[0] = '\0';
        record_format(&record, outcome, &line);
        cJSON_Delete(outcome);
        rc = results_append(out, out_path, line.data);
    }
    sb_free(&line);
    for (int i = 0; i < n_requests; i++) {
        score_result_free(&results[i]);
    }
    free(requests);
    free(results);
    return rc;
}

// Scores every item of every probe that the variant has not done yet.
static int run_variant(const Model *variant, LoadedProbe *probes, const EvalOptions *o,
                       const RecordIndex *done, FILE *out, const char *out_path) {
    for (int p = 0; p < o->n_probes; p++) {
        LoadedProbe *probe = &probes[p];
        int64_t n = probe->items.n_items;
        int64_t *todo = xmalloc((size_t)(n + 1) * sizeof(int64_t));
        int64_t n_todo = 0;
        for (int64_t i = 0; i < n; i++) {
            if (!record_index_contains(done, variant->variant, probe->def->name,
                                       probe->items.items[i].id)) {
                todo[n_todo++] = i;
            }
        }
        if (n_todo == 0) {
            free(todo);
            continue;
        }
        if (n_todo < n) {
            log_info("[%s] %s: resuming, %lld of %lld items already scored", variant->variant,
                     probe->def->name, (long long)(n - n_todo), (long long)n);
        }

        Progress progress;
        progress_start(&progress, variant->variant, probe->def->name, n_todo);
        for (int64_t start = 0; start < n_todo; start += EVAL_CHUNK_ITEMS) {
            int64_t count = n_todo - start < EVAL_CHUNK_ITEMS ? n_todo - start : EVAL_CHUNK_ITEMS;
            if (score_chunk(variant, probe, todo + start, count, o, out, out_path) != 0) {
                free(todo);
                return err_prefix("[%s] %s", variant->variant, probe->def->name);
            }
            progress_update(&progress, start + count, false);
        }
        progress_update(&progress, n_todo, true);
        free(todo);
    }
    return 0;
}

static int compare_int64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

// Checks that every record belongs to this run: a listed variant and probe, and an item of that
// probe's data (after --limit). A foreign line would silently enter the summaries.
static int check_records_belong(const RecordSet *set, const QuantRecipe *specs, int n_specs,
                                const LoadedProbe *probes, int n_probes, const char *path) {
    int64_t **ids = xcalloc((size_t)n_probes, sizeof(int64_t *));
    for (int p = 0; p < n_probes; p++) {
        ids[p] = xmalloc((size_t)(probes[p].items.n_items + 1) * sizeof(int64_t));
        for (int64_t i = 0; i < probes[p].items.n_items; i++) {
            ids[p][i] = probes[p].items.items[i].id;
        }
        qsort(ids[p], (size_t)probes[p].items.n_items, sizeof(int64_t), compare_int64);
    }
    int rc = 0;
    for (int64_t r = 0; r < set->n_records && rc == 0; r++) {
        const ItemRecord *rec = &set->records[r];
        bool variant_ok = false;
        for (int v = 0; v < n_specs; v++) {
            variant_ok = variant_ok || strcmp(specs[v].text, rec->variant) == 0;
        }
        int probe = -1;
        for (int p = 0; p < n_probes; p++) {
            if (strcmp(probes[p].def->name, rec->probe) == 0) {
                probe = p;
            }
        }
        bool item_ok = probe >= 0 && bsearch(&rec->item, ids[probe], (size_t)probes[probe].items.n_items,
                                             sizeof(int64_t), compare_int64) != NULL;
        if (!variant_ok || !item_ok) {
            rc = err_set("%s line %lld holds item %lld of probe '%s' under '%s', which is not part "
                         "of this run; remove the line or use a new --out directory",
                         path, (long long)rec->line, (long long)rec->item, rec->probe,
                         rec->variant);
        }
    }
    for (int p = 0; p < n_probes; p++) {
        free(ids[p]);
    }
    free(ids);
    return rc;
}

static int count_missing(const char *variant, const LoadedProbe *probes, int n_probes,
                         const RecordIndex *done) {
    int missing = 0;
    for (int p = 0; p < n_probes; p++) {
        for (int64_t i = 0; i < probes[p].items.n_items; i++) {
            missing += !record_index_contains(done, variant, probes[p].def->name,
                                              probes[p].items.items[i].id);
        }
    }
    return missing;
}

// Checks specs and probes, loads the data sets and hashes the model. Fills specs and probes.
static int prepare(const EvalOptions *o, const Resolver *resolver, QuantRecipe *specs,
                   LoadedProbe *probes, char **model_path, char model_hash[65]) {
    if (o->n_specs < 1 || o->n_probes < 1) {
        return err_set("give at least one variant (--quant) and one probe (--probes)");
    }
    for (int i = 0; i < o->n_specs; i++) {
        char error[1024];
        if (quant_recipe_parse(o->specs[i], &specs[i], error, sizeof error) != 0) {
            return err_set("%s", error);
        }
        // A recipe that cannot be packed fails here, not after the data and model are loaded.
        if (variant_check_recipe(&specs[i]) != 0) {
            return -1;
        }
        for (int j = 0; j < i; j++) {
            if (strcmp(specs[i].text, specs[j].text) == 0) {
                return err_set("variant '%s' is listed twice in --quant", specs[i].text);
            }
        }
    }
    for (int p = 0; p < o->n_probes; p++) {
        probes[p].def = probe_find(o->probes[p]);
        if (!probes[p].def) {
            return err_set("unknown probe '%s' (available: %s)", o->probes[p], probe_names());
        }
        for (int q = 0; q < p; q++) {
            if (probes[q].def == probes[p].def) {
                return err_set("probe '%s' is listed twice in --probes", o->probes[p]);
            }
        }
    }

    *model_path = resolver_find_model(resolver, o->model);
    if (!*model_path) {
        return -1;
    }
    for (int p = 0; p < o->n_probes; p++) {
        if (probes[p].def->load(resolver, &probes[p].items) != 0) {
            return err_prefix("cannot load the data of probe '%s'", probes[p].def->name);
        }
        if (probes[p].items.n_items == 0) {
            return err_set("probe '%s' has no items in its data files (%s)", probes[p].def->name,
                           probes[p].items.source ? probes[p].items.source : "see its manifest");
        }
        if (o->limit > 0 && probes[p].items.n_items > o->limit) {
            // Items past the limit are freed here so that the probe owns exactly what it scores.
            ProbeItems *items = &probes[p].items;
            ProbeItems tail = {.items = items->items + o->limit,
                               .n_items = items->n_items - o->limit};
            for (int64_t i = 0; i < tail.n_items; i++) {
                ProbeItem *item = &tail.items[i];
                free(item->category);
                free(item->subgroup);
                for (int t = 0; t < item->n_texts; t++) {
                    free(item->texts[t]);
                }
            }
            items->n_items = o->limit;
        }
    }

    struct stat st;
    if (stat(*model_path, &st) == 0 && st.st_size > (1 << 30)) {
        log_info("computing the SHA-256 of %s (%.1f GB) for the run fingerprint", *model_path,
                 (double)st.st_size / 1e9);
    }
    return sha256_path(*model_path, model_hash);
}

int eval_run(const EvalOptions *o, bool print_summary) {
    Resolver *resolver = resolver_new(o->data_dir);
    QuantRecipe *specs = xcalloc((size_t)(o->n_specs + 1), sizeof(QuantRecipe));
    LoadedProbe *probes = xcalloc((size_t)(o->n_probes + 1), sizeof(LoadedProbe));
    char *model_path = NULL, model_hash[65] = "";
    char *items_path = path_join(o->out_dir, "items.jsonl");
    cJSON *fingerprint = NULL;
    RecordSet records = {0};
    RecordIndex *done = NULL;
    FILE *out = NULL;
    Model *base = NULL;
    int lock = -1;
    int rc = prepare(o, resolver, specs, probes, &model_path, model_hash);

    if (rc == 0 && o->out_dir[0] == '\0') {
        rc = err_set("--out is empty; give the run directory");
    }
    if (rc == 0) {
        rc = dir_create(o->out_dir);
    }
    if (rc == 0) {
        lock = results_lock(o->out_dir);
        rc = lock >= 0 ? 0 : -1;
    }
    if (rc == 0) {
        cJSON *calibration = NULL;
        rc = calibration_fingerprint(o, specs, resolver, model_path, &base, &calibration);
        if (rc == 0) {
            fingerprint = make_fingerprint(o, model_path, model_hash, specs, probes, resolver,
                                           calibration);
            rc = results_check_fingerprint(o->out_dir, fingerprint);
        }
    }
    bool dropped = false;
    if (rc == 0) {
        rc = results_load(items_path, &records, &dropped);
    }
    if (rc == 0) {
        rc = check_records_belong(&records, specs, o->n_specs, probes, o->n_probes, items_path);
    }
    if (rc == 0) {
        done = record_index_new(&records);
        out = results_open_append(items_path);
        rc = out ? 0 : -1;
    }
    if (rc == 0) {
        char *message = xasprintf("qbias eval: interrupted; %s keeps every item scored so far, and "
                                  "the same command resumes the run",
                                  items_path);
        interrupt_message_set(message);
        free(message);
    }

    // Score variant by variant; a variant is built only when it still has items to score.
    for (int v = 0; v < o->n_specs && rc == 0; v++) {
        if (count_missing(specs[v].text, probes, o->n_probes, done) == 0) {
            continue;
        }
        if (!base) {
            base = model_open(model_path);
            if (!base) {
                rc = -1;
                break;
            }
        }
        VariantOptions vo;
        eval_variant_options(o, resolver, model_hash, &vo);
        Model *variant = variant_build(base, &specs[v], &vo, NULL, NULL);
        if (!variant) {
            rc = -1;
            break;
        }
        rc = run_variant(variant, probes, o, done, out, items_path);
        model_free(variant);
    }
    if (out && fclose(out) != 0 && rc == 0) {
        rc = err_set("cannot close %s", items_path);
    }

    // The summaries come from items.jsonl alone, so a resumed run gives the same numbers.
    if (rc == 0) {
        record_set_free(&records);
        rc = results_load(items_path, &records, &dropped);
    }
    if (rc == 0) {
        const char **variant_names = xcalloc((size_t)o->n_specs, sizeof(char *));
        const char **probe_names_list = xcalloc((size_t)o->n_probes, sizeof(char *));
        for (int v = 0; v < o->n_specs; v++) {
            variant_names[v] = specs[v].text;
        }
        for (int p = 0; p < o->n_probes; p++) {
            probe_names_list[p] = probes[p].def->name;
        }
        cJSON *summary = NULL;
        char *markdown = NULL;
        rc = report_build(fingerprint, &records, variant_names, o->n_specs, probe_names_list,
                          o->n_probes, &summary, &markdown);
        if (rc == 0) {
            rc = report_write(o->out_dir, summary, markdown);
        }
        if (rc == 0 && print_summary) {
            fputs(markdown, stdout);
        }
        if (rc == 0) {
            log_info("wrote %s/summary.md and summary.json", o->out_dir);
        }
        cJSON_Delete(summary);
        free(markdown);
        free(variant_names);
        free(probe_names_list);
    }

    results_unlock(lock);
    model_free(base);
    record_index_free(done);
    record_set_free(&records);
    cJSON_Delete(fingerprint);
    for (int p = 0; p < o->n_probes; p++) {
        probe_items_free(&probes[p].items);
    }
    free(probes);
    free(specs);
    free(model_path);
    free(items_path);
    resolver_free(resolver);
    return rc;
}
