// test_attack_quantize.c: regression tests for bad inputs to the quantize, ppl and calibration
// paths: damaged or edited saved variants, bad calibration files, sizes and seeds, and bad --out,
// --json and --text paths. Each test covers a case that would otherwise be accepted silently,
// crash, hang or fail only after the work is done.
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "../engine/quantize.h"
#include "../engine/util.h"
#include "../engine/variants.h"
#include "quant_helpers.h"
#include "test.h"

// Makes the rtn variant `recipe` of stories260K; the caller frees it before `base`.
static Model *make_rtn_variant(const Model *base, const char *recipe) {
    QuantRecipe r = qtest_recipe(recipe);
    Model *v = model_make_quantized(base, &r, NULL, NULL);
    REQUIRE_MSG(v != NULL, "%s: %s", recipe, err_msg());
    return v;
}

static char *save_variant(const Model *variant, const char *name) {
    char *path = path_join(test_tmp_dir(), name);
    REQUIRE_MSG(model_save_gguf(variant, path, NULL) == 0, "%s", err_msg());
    return path;
}

// Overwrites element `index` of the int32[8] key qbias.packed.<tensor> in a saved file, as a bit
// flip or a hand edit would. The key's value follows its name: type 9 (array), element type 5
// (int32) and the count 8, then the values.
static void patch_packed_key(const char *path, const char *tensor, int index, int32_t value) {
    char *data = NULL;
    size_t len = 0;
    REQUIRE_OK(file_read_all(path, &data, &len));
    char *key = xasprintf("qbias.packed.%s", tensor);
    size_t key_len = strlen(key);
    char *at = memmem(data, len, key, key_len);
    REQUIRE_MSG(at != NULL, "%s has no key %s", path, key);
    size_t values = (size_t)(at - data) + key_len + 4 + 4 + 8;
    REQUIRE(values + 8 * sizeof(int32_t) <= len);
    memcpy(data + values + (size_t)index * sizeof(int32_t), &value, sizeof value);
    REQUIRE_OK(file_write_atomic(path, data, len));
    free(key);
    free(data);
}

// Loads `path`, which must fail with an error that contains each of `needles` (NULL-terminated).
static void check_load_rejected(const char *path, const char *const *needles,
                                const char *case_name) {
    Model *m = model_load(path);
    bool rejected = m == NULL;
    CHECK_MSG(rejected, "%s: the damaged file loaded as %s", case_name, m ? m->variant : "");
    model_free(m);
    for (int i = 0; rejected && needles[i]; i++) {
        CHECK_MSG(strstr(err_msg(), needles[i]) != NULL, "%s: error '%s' lacks '%s'", case_name,
                  err_msg(), needles[i]);
    }
}

// Flags other than 0 or 1 would read as true, and activation bits other than the layout's would
// go unnoticed.
TEST(saved_packed_key_rejects_invalid_flags) {
    Model *base = qtest_load_stories();
    Model *v = make_rtn_variant(base, "rtn:w4g128");
    struct {
        int index;
        int32_t value;
    } cases[] = {{4, 2}, {5, -1}, {6, 7}, {7, 3}, {7, 8}};
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        char *path = save_variant(v, "flags.gguf");
        patch_packed_key(path, "blk.0.attn_q.weight", cases[i].index, cases[i].value);
        const char *needles[] = {path, "blk.0.attn_q.weight", "quantize the model again", NULL};
        char *case_name = xasprintf("element %d = %d", cases[i].index, cases[i].value);
        check_load_rejected(path, needles, case_name);
        free(case_name);
        free(path);
    }
    model_free(v);
    model_free(base);
}

// Setting the int8-layout flag of a 64-row matrix keeps its byte count, so only the recipe check
// stops its codes from being read in the wrong layout.
TEST(saved_packed_key_must_match_recipe) {
    Model *base = qtest_load_stories();
    Model *v = make_rtn_variant(base, "rtn:w4g128");
    struct {
        int index;
        int32_t value;
        const char *field;
    } cases[] = {{6, 1, "int8"}, {2, 2, "code bits"}, {3, 64, "group"}};
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        char *path = save_variant(v, "mismatch.gguf");
        if (cases[i].index == 6) {
            // Both activation fields change together, so only the recipe can tell.
            patch_packed_key(path, "blk.0.attn_q.weight", 7, 8);
        }
        patch_packed_key(path, "blk.0.attn_q.weight", cases[i].index, cases[i].value);
        const char *needles[] = {path, "blk.0.attn_q.weight", "rtn:w4g128", cases[i].field, NULL};
        check_load_rejected(path, needles, cases[i].field);
        free(path);
    }
    model_free(v);
    model_free(base);
}

// Replaces the value of the uint32 key qbias.packed_layout of a saved file (it follows the name
// and the type 4), or with rename set, changes the key's last letter so that the key is absent.
static void patch_layout_key(const char *path, uint32_t value, bool rename) {
    char *data = NULL;
    size_t len = 0;
    REQUIRE_OK(file_read_all(path, &data, &len));
    const char *key = "qbias.packed_layout";
    char *at = memmem(data, len, key, strlen(key));
    REQUIRE_MSG(at != NULL, "%s has no key %s", path, key);
    size_t end = (size_t)(at - data) + strlen(key);
    REQUIRE(end + 8 <= len);
    if (rename) {
        data[end - 1] = 'X';
    } else {
        memcpy(data + end + 4, &value, sizeof value);
    }
    REQUIRE_OK(file_write_atomic(path, data, len));
    free(data);
}

// Reads code c of a row stored in 32-column blocks only, as layouts before the superblocks did.
static int blocks_only_code(const uint8_t *line, int bits, int c) {
    int i = c % 32;
    if (bits == 4) {
        uint8_t byte = line[(c / 32) * 16 + i % 16];
        return i < 16 ? byte & 15 : byte >> 4;
    }
    const uint8_t *block = line + (c / 32) * 12;
    int low = (block[i % 8] >> (2 * (i / 8))) & 3;
    return low | ((block[8 + i / 8] >> (i % 8)) & 1) << 2;
}

// Saved files record the layout of their packed bytes. A file from before the key existed contains
// 4- and 3-bit rows in 32-column blocks only, so it is converted when loaded. A layout from a newer
// qbias is rejected rather than read as the wrong codes.
TEST(saved_packed_layout_version) {
    Model *base = qtest_load_stories();
    const char *recipes[] = {"rtn:w4g128", "rtn:w3g128"};
    for (size_t k = 0; k < ARRAY_LEN(recipes); k++) {
        Model *v = make_rtn_variant(base, recipes[k]);
        char *path = save_variant(v, "layout.gguf");
        Model *current = model_load(path);
        REQUIRE_MSG(current != NULL, "%s", err_msg());

        patch_layout_key(path, 0, true);
        Model *old = model_load(path);
        REQUIRE_MSG(old != NULL, "%s", err_msg());
        // The same bytes, read as blocks only. ffn_down has 172 columns, so its rows start with a
        // superblock in the current layout.
        const KQuantMatrix *stored = &current->layers[0].ffn_down.packed->view;
        const KQuantMatrix *converted = &old->layers[0].ffn_down.packed->view;
        REQUIRE(kq_rows_super_cols(stored) == 128);
        int bad = 0, moved = 0;
        for (int r = 0; r < stored->rows; r++) {
            const uint8_t *line = stored->codes + (size_t)r * stored->stride;
            for (int c = 0; c < stored->cols; c++) {
                bad += kq_code(converted, r, c) != blocks_only_code(line, stored->bits, c);
                moved += kq_code(converted, r, c) != kq_code(stored, r, c);
            }
        }
        CHECK_MSG(bad == 0, "%s: %d codes of blk.0.ffn_down.weight differ from the blocks' reading",
                  recipes[k], bad);
        CHECK_MSG(moved > 0, "%s: both layouts read blk.0.ffn_down.weight the same", recipes[k]);
        model_free(old);
        model_free(current);
        free(path);

        path = save_variant(v, "layout.gguf");
        patch_layout_key(path, QMATRIX_LAYOUT_VERSION + 1, false);
        const char *needles[] = {path, "qbias.packed_layout", "newer qbias", NULL};
        check_load_rejected(path, needles, recipes[k]);
        patch_layout_key(path, 0, false);
        const char *invalid[] = {path, "qbias.packed_layout", "invalid", NULL};
        check_load_rejected(path, invalid, "layout 0");
        free(path);
        model_free(v);
    }

    // A file without packed matrices is checked too.
    Model *fake = make_rtn_variant(base, "rtn:w4g128-fake");
    char *path = save_variant(fake, "layout.gguf");
    patch_layout_key(path, QMATRIX_LAYOUT_VERSION + 1, false);
    const char *needles[] = {path, "qbias.packed_layout", "newer qbias", NULL};
    check_load_rejected(path, needles, "rtn:w4g128-fake");
    free(path);
    model_free(fake);
    model_free(base);
}

// A recipe key that disagrees with how the matrices are stored (edited by hand, or damaged into
// another valid recipe) mislabels every score made with the file.
TEST(saved_recipe_must_match_storage) {
    Model *base = qtest_load_stories();
    struct {
        const char *made, *claimed;
    } cases[] = {{"rtn:w4g128", "fp32"},        {"rtn:w4g128", "rtn:w8g128"},
                 {"rtn:w4g128", "rtn:w4g128-fake"}, {"fp32", "rtn:w4g128"},
                 {"rtn:w8ca8", "rtn:w8c"},      {"rtn:w4g128-fake", "rtn:w4g128"}};
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        Model *v = make_rtn_variant(base, cases[i].made);
        free(v->variant);
        v->variant = xstrdup(cases[i].claimed);
        char *path = save_variant(v, "relabelled.gguf");
        const char *needles[] = {path, cases[i].claimed, "qbias.quant.recipe", NULL};
        check_load_rejected(path, needles, cases[i].made);
        free(path);
        model_free(v);
    }
    model_free(base);
}

// Loads `path` as calibration text for stories260K with packed sampling, which must fail with an
// error that names the file and contains `needle`.
static void check_calibration_rejected(const Model *m, const char *path, const char *needle) {
    CalibOptions options;
    calib_options_default(QUANT_ALGO_AWQ, &options);
    options.path = path;
    options.n_samples = 4;
    options.seq_len = 64;
    CalibrationSet *set = calib_set_load(m->tokenizer, m->config.n_ctx_train, NULL, &options);
    CHECK_MSG(set == NULL, "%s was accepted as calibration text (%d samples)", path,
              set ? set->n_samples : 0);
    calib_set_free(set);
    if (!set) {
        CHECK_MSG(strstr(err_msg(), path) != NULL, "error '%s' does not name %s", err_msg(), path);
        CHECK_MSG(strstr(err_msg(), needle) != NULL, "%s: error '%s' lacks '%s'", path, err_msg(),
                  needle);
    }
}

static char *write_tmp_file(const char *name, const char *data, size_t len) {
    char *path = path_join(test_tmp_dir(), name);
    REQUIRE_OK(file_write_atomic(path, data, len));
    return path;
}

// A binary file would give a few tokens from the text before each NUL byte, and a text of only
// blank lines samples of BOS and newline tokens, so both are rejected before sampling.
TEST(calibration_rejects_binary_and_blank_text) {
    Model *m = qtest_load_stories();
    static const char nul[] = "Once upon a time\0\x7f" "ELF\x02\x01\nthere was a cat.\n";
    static const char latin1[] = "Once upon a time there was a caf\xe9.\n";
    static const char blank[] = "\n   \n\t\r\n\n";
    static const char blank_jsonl[] = "{\"text\": \"\"}\n{\"text\": \" \\n\\t \"}\n";
    struct {
        const char *name, *data;
        size_t len;
        const char *needle;
    } cases[] = {
        {"binary.txt", nul, sizeof nul - 1, "NUL byte"},
        {"latin1.txt", latin1, sizeof latin1 - 1, "invalid UTF-8"},
        {"blank.txt", blank, sizeof blank - 1, "no text"},
        {"blank.jsonl", blank_jsonl, sizeof blank_jsonl - 1, "no text"},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        char *path = write_tmp_file(cases[i].name, cases[i].data, cases[i].len);
        check_calibration_rejected(m, path, cases[i].needle);
        free(path);
    }
    check_calibration_rejected(m, test_tmp_dir(), "is a folder");
    model_free(m);
}

// /dev/zero never ends and a FIFO blocks until a writer comes, so hashing either would hang.
TEST(calibration_rejects_special_files) {
    Model *m = qtest_load_stories();
    check_calibration_rejected(m, "/dev/zero", "not a regular file");
    char *fifo = path_join(test_tmp_dir(), "fifo.txt");
    REQUIRE(mkfifo(fifo, 0600) == 0);
    check_calibration_rejected(m, fifo, "not a regular file");
    free(fifo);
    model_free(m);
}

// 2^20 samples of 2^20 tokens are 2^40 tokens, past the int offsets of a calibration set: the
// request must fail before any sampling.
TEST(calibration_rejects_token_count_overflow) {
    Model *m = qtest_load_stories();
    CalibOptions options;
    calib_options_default(QUANT_ALGO_GPTQ, &options);
    options.path = test_shared_path("data/c4-validation-subset/c4_validation_2k.jsonl");
    options.n_samples = 1 << 20;
    options.seq_len = 1 << 20;
    // A max_seq_len of 0 leaves the sequence length as requested.
    CalibrationSet *set = calib_set_load(m->tokenizer, 0, NULL, &options);
    CHECK(set == NULL);
    calib_set_free(set);
    CHECK_MSG(strstr(err_msg(), "1048576") != NULL, "%s", err_msg());
    model_free(m);
}

// 4,000,000 samples of 512 tokens on stories260K keep about 524 GB of activations for SmoothQuant
// (64 floats per token) and more for GPTQ and AWQ. Unchecked, the driver's first allocation aborts
// the program after seconds of sampling, so the request must fail at once, naming the options.
TEST(variant_rejects_calibration_beyond_memory) {
    Model *m = qtest_load_stories();
    const char *recipes[] = {"gptq:w4g128", "awq:w4g128", "sq:w8a8"};
    for (size_t i = 0; i < ARRAY_LEN(recipes); i++) {
        QuantRecipe recipe = qtest_recipe(recipes[i]);
        VariantOptions o;
        variant_options_default(&o);
        o.calib_path = test_shared_path("data/c4-validation-subset/c4_validation_2k.jsonl");
        o.calib_samples = 4000000;
        o.calib_seq_len = 512;
        double start = now_seconds();
        Model *v = variant_build(m, &recipe, &o, NULL, NULL);
        CHECK_MSG(v == NULL, "%s: calibrated on 2.048e9 tokens", recipes[i]);
        model_free(v);
        CHECK_MSG(strstr(err_msg(), "--calib-samples") != NULL, "%s: %s", recipes[i], err_msg());
        CHECK_MSG(strstr(err_msg(), "GB") != NULL, "%s: %s", recipes[i], err_msg());
        CHECK_MSG(now_seconds() - start < 1.0, "%s: took %.1f s to reject", recipes[i],
                  now_seconds() - start);
    }
    model_free(m);
}

// Runs `qbias ARGS` with the cache and the captured standard error in `dir` (the test's folder,
// which test_tmp_dir clears on every call). Returns the exit status; *err receives the standard
// error, which the caller frees.
static int run_qbias(const char *dir, const char *args, char **err) {
    const char *bin = getenv("QBIAS_BIN");
    char *err_path = path_join(dir, "stderr.txt");
    // timeout(1) ends a hanging command, which the test runner's alarm would leave running.
    char *command = xasprintf("QBIAS_CACHE_DIR='%s/cache' timeout 300 %s %s >/dev/null 2>'%s'",
                              dir, bin && *bin ? bin : "./build/qbias", args, err_path);
    int status = system(command);
    size_t len = 0;
    REQUIRE_OK(file_read_all(err_path, err, &len));
    free(command);
    free(err_path);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static int count_lines_starting(const char *text, const char *prefix) {
    int n = 0;
    const char *line = text;
    while (line && *line) {
        n += strncmp(line, prefix, strlen(prefix)) == 0;
        const char *newline = strchr(line, '\n');
        line = newline ? newline + 1 : NULL;
    }
    return n;
}

// Checked only when the file is written, an output path that cannot be written fails after
// calibrating and quantizing (hours for a large model) or after every perplexity chunk, with a
// message about a temporary file. It must fail before any work, naming the path and the fix.
TEST(output_path_checked_before_work) {
    const char *dir = test_tmp_dir();
    const char *model = test_shared_path("models/stories260K/stories260K.gguf");
    char *model_copy = xstrdup(model);
    struct {
        const char *command, *out, *needle;
    } cases[] = {
        {"quantize --quant gptq:w4g128 --calib-samples 4 --calib-seqlen 64 --out", "missing/x.gguf",
         "does not exist"},
        {"quantize --quant gptq:w4g128 --calib-samples 4 --calib-seqlen 64 --out", "",
         "is a folder"},
        {"ppl --chunks 1 --json", "missing/x.json", "does not exist"},
        {"ppl --chunks 1 --json", "", "is a folder"},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        char *out = *cases[i].out ? path_join(dir, cases[i].out) : xstrdup(dir);
        char *args = xasprintf("%s '%s' --model '%s'", cases[i].command, out, model_copy);
        char *err = NULL;
        CHECK_MSG(run_qbias(dir, args, &err) == 2, "%s: exit status", args);
        CHECK_MSG(count_lines_starting(err, "error:") == 1, "%s: stderr\n%s", args, err);
        CHECK_MSG(strstr(err, out) != NULL, "%s: the error does not name the path:\n%s", args, err);
        CHECK_MSG(strstr(err, cases[i].needle) != NULL, "%s: stderr lacks '%s':\n%s", args,
                  cases[i].needle, err);
        CHECK_MSG(strstr(err, "calibrating") == NULL && strstr(err, "chunk") == NULL,
                  "%s: worked before the error:\n%s", args, err);
        CHECK_MSG(strstr(err, ".tmp.") == NULL, "%s: names a temporary file:\n%s", args, err);
        free(err);
        free(args);
        free(out);
    }
    free(model_copy);
}

// The SHA-256 and the file name of WikiText-2 test miss a renamed copy with one byte more, a copy
// with CRLF line ends and the JSON Lines export of the Hugging Face split. Each of them must still
// be rejected as the perplexity text.
TEST(calibration_rejects_wikitext2_test_copies) {
    Model *m = qtest_load_stories();
    char *text = NULL;
    size_t len = 0;
    REQUIRE_OK(file_read_all(test_shared_path("data/wikitext-2-raw/wiki.test.raw"), &text, &len));

    StrBuf extended, crlf, jsonl;
    sb_init(&extended);
    sb_init(&crlf);
    sb_init(&jsonl);
    sb_append_n(&extended, text, len);
    sb_append(&extended, "\nOne more line.\n");
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && text[i] != '\n') {
            continue;
        }
        sb_append_n(&crlf, text + start, i - start);
        sb_append(&crlf, "\r\n");
        // The Hugging Face split keeps each line with its newline as one "text" record.
        cJSON *record = cJSON_CreateObject();
        char *line = xstrndup(text + start, i - start);
        char *with_newline = xasprintf("%s\n", line);
        cJSON_AddStringToObject(record, "text", with_newline);
        char *printed = cJSON_PrintUnformatted(record);
        sb_append(&jsonl, printed);
        sb_append(&jsonl, "\n");
        cJSON_free(printed);
        cJSON_Delete(record);
        free(with_newline);
        free(line);
        start = i + 1;
    }

    struct {
        const char *name;
        const StrBuf *data;
    } cases[] = {{"train.txt", &extended}, {"crlf.txt", &crlf}, {"test.jsonl", &jsonl}};
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        char *path = write_tmp_file(cases[i].name, cases[i].data->data, cases[i].data->len);
        check_calibration_rejected(m, path, "WikiText-2 test");
        free(path);
    }

    // One paragraph of the sample that calib_data.c fingerprints (its first line of 200 bytes or
    // more) is enough, wherever it sits in a document.
    const char *paragraph = strstr(text, " Robert Boulter is an English film");
    REQUIRE(paragraph != NULL);
    const char *end = strchr(paragraph, '\n');
    char *mixed = xasprintf("Once upon a time there was a cat.\n%.*s\nThe end.\n",
                            (int)(end - paragraph), paragraph);
    char *path = write_tmp_file("mixed.txt", mixed, strlen(mixed));
    check_calibration_rejected(m, path, "WikiText-2 test");
    free(path);
    free(mixed);

    sb_free(&extended);
    sb_free(&crlf);
    sb_free(&jsonl);
    free(text);
    model_free(m);
}

// Calibration options given with recipes that do not calibrate are dropped, so a warning keeps a
// user from believing that an rtn file was calibrated on their text.
TEST(calibration_options_without_calibration_warn) {
    const char *model = test_shared_path("models/stories260K/stories260K.gguf");
    char *model_copy = xstrdup(model);
    const char *commands[] = {
        "quantize --quant rtn:w4g128 --calib-samples 8 --out",
        "ppl --chunks 1 --quant fp32,rtn:w8g128 --calib-seed 7 --json",
    };
    const char *dir = test_tmp_dir();
    for (size_t i = 0; i < ARRAY_LEN(commands); i++) {
        char *out = path_join(dir, "out");
        char *args = xasprintf("%s '%s' --model '%s'", commands[i], out, model_copy);
        char *err = NULL;
        CHECK_MSG(run_qbias(dir, args, &err) == 0, "%s:\n%s", args, err);
        CHECK_MSG(count_lines_starting(err, "warn: ") == 1 && strstr(err, "ignored") != NULL,
                  "%s: no warning that calibration options are ignored:\n%s", args, err);
        free(err);
        free(args);
        free(out);
    }
    free(model_copy);
}

// A JSON syntax error and a record without a "text" string need different fixes, so the errors
// tell them apart and give the line.
TEST(calibration_jsonl_errors_name_the_problem) {
    Model *m = qtest_load_stories();
    static const char broken[] = "{\"text\": \"Once upon a time.\"}\n{\"text\": \"a cat\n";
    static const char surrogate[] = "{\"text\": \"a lone \\ud800 surrogate\"}\n";
    static const char no_text[] = "{\"text\": \"Once upon a time.\"}\n{\"content\": \"a cat\"}\n";
    static const char number[] = "{\"text\": 5}\n";
    struct {
        const char *name, *data, *needle;
    } cases[] = {
        {"broken.jsonl", broken, ":2: invalid JSON"},
        {"surrogate.jsonl", surrogate, ":1: invalid JSON"},
        {"no_text.jsonl", no_text, ":2: the record has no \"text\" string"},
        {"number.jsonl", number, ":1: the record has no \"text\" string"},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        char *path = write_tmp_file(cases[i].name, cases[i].data, strlen(cases[i].data));
        check_calibration_rejected(m, path, cases[i].needle);
        free(path);
    }
    model_free(m);
}

// A saved gptq file scored as stored does not calibrate: its calibration options are ignored with
// the warning, and the file is not hashed for a cache key it never uses (seconds per gigabyte).
TEST(stored_recipe_needs_no_calibration) {
    Model *base = qtest_load_stories();
    QuantRecipe recipe = qtest_recipe("gptq:w4g32");
    CalibrationSet *calib = qtest_c4_calibration(base, CALIB_SAMPLING_WINDOWS, 4, 64, 42);
    Model *v = model_make_quantized(base, &recipe, calib, NULL);
    REQUIRE_MSG(v != NULL, "%s", err_msg());
    const char *dir = test_tmp_dir();
    char *path = path_join(dir, "gptq.gguf");
    REQUIRE_OK(model_save_gguf(v, path, NULL));

    char *args = xasprintf("ppl --chunks 1 --calib-samples 8 --model '%s'", path);
    char *err = NULL;
    CHECK_MSG(run_qbias(dir, args, &err) == 0, "%s:\n%s", args, err);
    CHECK_MSG(strstr(err, "ignored") != NULL, "%s: no warning that --calib-samples is ignored:\n%s",
              args, err);
    free(err);
    free(args);
    free(path);
    model_free(v);
    calib_set_free(calib);
    model_free(base);
}

// ppl --text /dev/zero would read until malloc fails and aborts the program, and a FIFO blocks.
TEST(ppl_text_rejects_special_files) {
    const char *model = test_shared_path("models/stories260K/stories260K.gguf");
    char *model_copy = xstrdup(model);
    const char *dir = test_tmp_dir();
    char *fifo = path_join(dir, "fifo.txt");
    REQUIRE(mkfifo(fifo, 0600) == 0);
    const char *texts[] = {"/dev/zero", fifo, dir};
    for (size_t i = 0; i < ARRAY_LEN(texts); i++) {
        char *args = xasprintf("ppl --chunks 1 --text '%s' --model '%s'", texts[i], model_copy);
        char *err = NULL;
        CHECK_MSG(run_qbias(dir, args, &err) == 2, "%s: exit status", args);
        CHECK_MSG(count_lines_starting(err, "error:") == 1 && strstr(err, texts[i]) != NULL,
                  "%s: stderr\n%s", args, err);
        free(err);
        free(args);
    }
    free(fifo);
    free(model_copy);
}

// A recipe that cannot be packed is known from its text, so it must fail before the model is
// hashed for the cache and the calibration text is sampled (a minute for an 8B model).
TEST(unpackable_recipe_fails_before_calibration) {
    const char *model = test_shared_path("models/stories260K/stories260K.gguf");
    char *model_copy = xstrdup(model);
    const char *dir = test_tmp_dir();
    const char *commands[] = {
        "quantize --quant awq:w4g48 --out '%s/x.gguf' --model '%s'",
        "ppl --chunks 1 --quant fp32,gptq:w3g100 --json '%s/ppl.json' --model '%s'",
    };
    for (size_t i = 0; i < ARRAY_LEN(commands); i++) {
        char *args = xasprintf(commands[i], dir, model_copy);
        char *err = NULL;
        CHECK_MSG(run_qbias(dir, args, &err) != 0, "%s: exit status 0", args);
        CHECK_MSG(count_lines_starting(err, "error:") == 1 && strstr(err, "-fake") != NULL,
                  "%s: stderr\n%s", args, err);
        CHECK_MSG(strstr(err, "calibrating") == NULL, "%s: calibrated first:\n%s", args, err);
        free(err);
        free(args);
    }
    free(model_copy);
}

// Saved files and run.json record the seed as a double, which holds every integer only up to
// 2^53: a seed of 2^53 + 1 would be recorded as 2^53, whose samples differ.
TEST(calibration_seed_limited_to_exact_doubles) {
    const char *model = test_shared_path("models/stories260K/stories260K.gguf");
    char *model_copy = xstrdup(model);
    const char *dir = test_tmp_dir();
    char *args = xasprintf("quantize --quant gptq:w4g32 --calib-samples 4 --calib-seqlen 64 "
                           "--calib-seed 9007199254740993 --out '%s/x.gguf' --model '%s'",
                           dir, model_copy);
    char *err = NULL;
    CHECK_MSG(run_qbias(dir, args, &err) == 2, "%s: exit status", args);
    CHECK_MSG(strstr(err, "--calib-seed") && strstr(err, "9007199254740992"), "stderr:\n%s", err);
    free(err);
    free(args);
    free(model_copy);
}
