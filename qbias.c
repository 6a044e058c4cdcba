// qbias.c: the command-line entry point. It parses arguments and dispatches to the subcommands
// implemented in engine/, quant/ and probes/; nothing includes this file.
#include <cblas.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/bench.h"
#include "engine/bert.h"
#include "engine/chat_source.h"
#include "engine/chat_template.h"
#include "engine/generate.h"
#include "engine/model.h"
#include "engine/ppl.h"
#include "engine/resolver.h"
#include "engine/safetensors.h"
#include "engine/unicode.h"
#include "engine/util.h"
#include "engine/variants.h"
#include "kernels/kernels.h"
#include "probes/eval.h"
#include "probes/probe.h"
#include "quant/spec_methods.h"

// OpenBLAS's thread-count setter (declared in its cblas.h, not in every BLAS's).
void openblas_set_num_threads(int num_threads);

// Most entries of a comma-separated list option (--quant, --probes).
#define MAX_LIST_ITEMS 64

// ----------------------------------------------------------------------------
// Argument parsing

typedef struct {
    const char *name;  // "--model"
    const char *alias; // "-m" or NULL
    bool takes_value;
    const char *value; // parsed value; for flags "1" when present
} Option;

// Parses argv into options and positional arguments. Returns 0, or -1 after printing an error.
static int parse_args(const char *command, int argc, char **argv, Option *options, int n_options,
                      const char **positional, int max_positional, int *n_positional) {
    *n_positional = 0;
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        if (arg[0] == '-' && arg[1] != '\0') {
            // --name=value is accepted as well as --name value.
            const char *eq = strchr(arg, '=');
            size_t name_len = eq ? (size_t)(eq - arg) : strlen(arg);
            Option *match = NULL;
            for (int k = 0; k < n_options; k++) {
                bool long_match = strlen(options[k].name) == name_len &&
                                  strncmp(options[k].name, arg, name_len) == 0;
                bool short_match = options[k].alias && strcmp(options[k].alias, arg) == 0;
                if (long_match || short_match) {
                    match = &options[k];
                }
            }
            if (!match) {
                fprintf(stderr, "error: unknown option '%s' for 'qbias %s' (see 'qbias help %s')\n",
                        arg, command, command);
                return -1;
            }
            // A value that starts with "--" is the next option: its own value was left out.
            if (!match->takes_value) {
                match->value = "1";
            } else if (eq) {
                match->value = eq + 1;
            } else if (i + 1 < argc && strncmp(argv[i + 1], "--", 2) != 0) {
                match->value = argv[++i];
            } else {
                fprintf(stderr, "error: option %.*s needs a value (see 'qbias help %s'); for a "
                                "value that starts with --, write %.*s=VALUE\n",
                        (int)name_len, arg, command, (int)name_len, arg);
                return -1;
            }
            continue;
        }
        if (*n_positional >= max_positional) {
            fprintf(stderr, "error: unexpected argument '%s' for 'qbias %s'\n", arg, command);
            return -1;
        }
        positional[(*n_positional)++] = arg;
    }
    return 0;
}

static const char *option_value(const Option *options, int n, const char *name) {
    for (int k = 0; k < n; k++) {
        if (strcmp(options[k].name, name) == 0) {
            return options[k].value;
        }
    }
    return NULL;
}

// Parses a whole decimal number in [min, max]; prints an error naming the option otherwise.
static int parse_int_option(const char *name, const char *text, long long min, long long max,
                            long long *out) {
    char *end = NULL;
    errno = 0;
    long long value = strtoll(text, &end, 10);
    if (end == text || *end != '\0' || errno == ERANGE || value < min || value > max) {
        fprintf(stderr, "error: %s must be a whole number from %lld to %lld, got '%s'\n", name, min,
                max, text);
        return -1;
    }
    *out = value;
    return 0;
}

static int parse_float_option(const char *name, const char *text, double min, double max,
                              double *out) {
    char *end = NULL;
    double value = strtod(text, &end);
    if (end == text || *end != '\0' || !(value >= min && value <= max)) {
        fprintf(stderr, "error: %s must be a number from %g to %g, got '%s'\n", name, min, max,
                text);
        return -1;
    }
    *out = value;
    return 0;
}

// Splits a comma-separated list in place (the string is modified) and returns the count. An
// empty item (a doubled or trailing comma, often a typo) and more than `max_items` items are
// errors: -1, never a silently shortened list.
static int split_list(const char *option, char *text, const char **items, int max_items) {
    int n = 0;
    char *token = text + strspn(text, " \t");
    if (!*token) {
        return 0;
    }
    while (token) {
        char *comma = strchr(token, ',');
        if (comma) {
            *comma = '\0';
        }
        // Spaces and tabs around an item are not part of it.
        token += strspn(token, " \t");
        size_t len = strlen(token);
        while (len > 0 && (token[len - 1] == ' ' || token[len - 1] == '\t')) {
            token[--len] = '\0';
        }
        if (!*token) {
            return err_set("%s contains an empty item (item %d); separate the items with single "
                           "commas", option, n + 1);
        }
        if (n == max_items) {
            return err_set("%s lists more than %d items; split the work into several runs", option,
                           max_items);
        }
        items[n++] = token;
        token = comma ? comma + 1 : NULL;
    }
    return n;
}

// Applies --threads to qbias's kernels and to OpenBLAS, so no pool oversubscribes the cores.
static int apply_threads(const char *value) {
    long long threads = 0;
    if (value && parse_int_option("--threads", value, 1, 1024, &threads) != 0) {
        return -1;
    }
    kernels_set_threads((int)threads);
    openblas_set_num_threads(kernels_threads());
    return 0;
}

// The calibration options of the commands that build variants (eval, ppl, quantize).
#define CALIB_OPTIONS                                                                            \
    {"--calib", NULL, true, NULL}, {"--calib-samples", NULL, true, NULL},                        \
        {"--calib-seqlen", NULL, true, NULL}, {"--calib-seed", NULL, true, NULL},                \
        {"--no-cache", NULL, false, NULL}

#define CALIB_USAGE                                                                              \
    "  --calib FILE          calibration text for gptq, awq and sq (.txt, or .jsonl with a\n"      \
    "                        \"text\" field; default: the C4 validation subset)\n"        \
    "  --calib-samples N     calibration samples (default: the study's, 128 or 512 by method)\n"  \
    "  --calib-seqlen N      tokens per sample (default: the study's, 2048 or 512 by method)\n"   \
    "  --calib-seed N        sampling seed (default 42, the study's)\n"                            \
    "  --no-cache            quantize again instead of loading a calibrated variant from the\n"   \
    "                        cache ($QBIAS_CACHE_DIR, else ~/.cache/qbias, in quantized/)\n"

typedef struct {
    const char *path;
    long long samples, seq_len, seed;
    bool seed_set, no_cache;
} CalibArgs;

// The largest --calib-seed: saved files and run.json record the seed as a double, which holds
// every integer up to 2^53 exactly.
#define MAX_CALIB_SEED (1LL << 53)

// Reads CALIB_OPTIONS. Returns 0, or -1 after printing an error.
static int parse_calib_args(const Option *options, int n, CalibArgs *out) {
    memset(out, 0, sizeof *out);
    out->path = option_value(options, n, "--calib");
    out->no_cache = option_value(options, n, "--no-cache") != NULL;
    const char *value;
    if (((value = option_value(options, n, "--calib-samples")) &&
         parse_int_option("--calib-samples", value, 1, 1 << 20, &out->samples) != 0) ||
        ((value = option_value(options, n, "--calib-seqlen")) &&
         parse_int_option("--calib-seqlen", value, 1, 1 << 20, &out->seq_len) != 0) ||
        ((value = option_value(options, n, "--calib-seed")) &&
         parse_int_option("--calib-seed", value, 0, MAX_CALIB_SEED, &out->seed) != 0)) {
        return -1;
    }
    out->seed_set = option_value(options, n, "--calib-seed") != NULL;
    return 0;
}

// Fills variant options from the calibration arguments. The cache needs the model's hash, which
// is computed only when a recipe calibrates (hashing a large model takes seconds). The recipe a
// file saved by qbias stores is scored as stored, so it does not calibrate.
static int calib_variant_options(const CalibArgs *args, const Resolver *resolver,
                                 const Model *base, const char *model_path,
                                 const QuantRecipe *recipes, int n_recipes, char model_hash[65],
                                 VariantOptions *o) {
    variant_options_default(o);
    o->calib_path = args->path;
    o->calib_samples = (int)args->samples;
    o->calib_seq_len = (int)args->seq_len;
    if (args->seed_set) {
        o->calib_seed = (uint64_t)args->seed;
    }
    o->resolver = resolver;
    bool calibrated = false;
    for (int i = 0; i < n_recipes; i++) {
        bool stored = strcmp(recipes[i].text, base->variant) == 0;
        calibrated = calibrated || (recipe_needs_calibration(&recipes[i]) && !stored);
    }
    if (!calibrated && (args->path || args->samples || args->seq_len || args->seed_set)) {
        log_warn("--calib, --calib-samples, --calib-seqlen and --calib-seed are ignored: no recipe "
                 "given calibrates (gptq, awq and sq do)");
    }
    if (calibrated && !args->no_cache && resolver_cache_dir(resolver)) {
        if (sha256_path(model_path, model_hash) != 0) {
            return -1;
        }
        o->cache_dir = resolver_cache_dir(resolver);
        o->model_hash = model_hash;
    }
    return 0;
}

// Returns the folder part of a file path ("." for a bare name, "/" for a file in the root).
static char *parent_folder(const char *path) {
    const char *slash = strrchr(path, '/');
    if (slash == path) {
        return xstrdup("/");
    }
    return slash ? xstrndup(path, (size_t)(slash - path)) : xstrdup(".");
}

// Checks that `path`, the value of `option`, names a file that can be created or replaced, so that
// a bad path fails before hours of quantization rather than when the result is written.
// `example_name` completes a folder into a suggested path. Returns 0, or -1 with an error.
static int check_output_file(const char *option, const char *path, const char *example_name) {
    size_t len = strlen(path);
    if (len == 0) {
        return err_set("%s is empty; give the path of the file to write", option);
    }
    if (dir_exists(path) || path[len - 1] == '/') {
        return err_set("%s %s is a folder; give the path of the file to write in it, e.g. "
                       "%s%s%s",
                       option, path, path, path[len - 1] == '/' ? "" : "/", example_name);
    }

    // The file is written under a temporary name and renamed over `path`, which would replace a
    // device, FIFO or symbolic link with a regular file (/dev/null included, when run as root).
    struct stat link_st, st;
    if (lstat(path, &link_st) == 0 &&
        (stat(path, &st) != 0 || !S_ISREG(st.st_mode) || S_ISLNK(link_st.st_mode))) {
        return err_set("%s %s exists and is not a regular file (a device, FIFO, socket or "
                       "symbolic link); give the path of a regular file",
                       option, path);
    }

    char *folder = parent_folder(path);
    int rc = 0;
    if (!dir_exists(folder)) {
        rc = err_set("%s %s: the folder %s does not exist; create it first (mkdir -p '%s')",
                     option, path, folder, folder);
    } else if (access(folder, W_OK | X_OK) != 0) {
        rc = err_set("%s %s: cannot write in the folder %s (%s); choose another folder", option,
                     path, folder, strerror(errno));
    }
    free(folder);
    return rc;
}

// Checks that `path`, the value of `option`, is a regular file when it exists: a device or FIFO
// would never end (/dev/zero) or block until a writer comes. Returns 0, or -1 with an error.
static int check_input_file(const char *option, const char *path) {
    struct stat st;
    if (stat(path, &st) != 0 || S_ISREG(st.st_mode)) {
        return 0;
    }
    return err_set("%s %s %s; give a text file", option, path,
                   S_ISDIR(st.st_mode) ? "is a folder"
                                       : "is not a regular file (a device, FIFO or socket)");
}

// Parses comma-separated recipes. Returns the count, or -1 with an error.
static int parse_recipes(char *list, QuantRecipe *recipes, int max) {
    const char *items[MAX_LIST_ITEMS];
    int n = split_list("--quant", list, items, max < MAX_LIST_ITEMS ? max : MAX_LIST_ITEMS);
    if (n < 0) {
        return -1;
    }
    if (n == 0) {
        return err_set("--quant is empty; give a recipe such as fp32 or gptq:w4g128");
    }
    for (int i = 0; i < n; i++) {
        char error[1024];
        if (quant_recipe_parse(items[i], &recipes[i], error, sizeof error) != 0) {
            return err_set("%s", error);
        }
        if (variant_check_recipe(&recipes[i]) != 0) {
            return -1;
        }
        for (int j = 0; j < i; j++) {
            if (strcmp(recipes[j].text, recipes[i].text) == 0) {
                return err_set("--quant lists %s twice (items %d and %d); give each recipe once",
                               recipes[i].text, j + 1, i + 1);
            }
        }
    }
    return n;
}

// Opens --model: a GGUF file, a Hugging Face folder or a bundled model name. When `path_out` is
// not NULL it receives the resolved path (free it). Prints the error and returns NULL on failure.
static Model *open_model_path(const char *model_arg, const char *data_dir, char **path_out) {
    if (!model_arg || !*model_arg) {
        fprintf(stderr, "error: --model is required (a GGUF file, a Hugging Face folder, or a "
                        "bundled model name such as stories260K)\n");
        return NULL;
    }
    Resolver *resolver = resolver_new(data_dir);
    char *path = dir_exists(model_arg) ? xstrdup(model_arg)
                                       : resolver_find_model(resolver, model_arg);
    resolver_free(resolver);
    if (!path) {
        fprintf(stderr, "error: %s\n", err_msg());
        return NULL;
    }
    Model *m = model_open(path);
    if (!m) {
        fprintf(stderr, "error: %s\n", err_msg());
    }
    if (m && path_out) {
        *path_out = path;
    } else {
        free(path);
    }
    return m;
}

static Model *open_model(const char *model_arg, const char *data_dir) {
    return open_model_path(model_arg, data_dir, NULL);
}

// Loads only the tokenizer of a model: a GGUF file (vocabulary-only files included) or a Hugging
// Face folder (tokenizer.json, or vocab.txt for BERT).
static Tokenizer *open_tokenizer(const char *model_arg, const char *data_dir) {
    Resolver *resolver = resolver_new(data_dir);
    char *path = dir_exists(model_arg) ? xstrdup(model_arg) : resolver_find_model(resolver, model_arg);
    resolver_free(resolver);
    if (!path) {
        fprintf(stderr, "error: %s\n", err_msg());
        return NULL;
    }
    Tokenizer *tok = NULL;
    if (dir_exists(path)) {
        tok = tokenizer_load_hf(path);
    } else {
        GGUFFile *f = gguf_open(path);
        tok = f ? tokenizer_load_gguf(f) : NULL;
        gguf_close(f);
    }
    if (!tok) {
        fprintf(stderr, "error: %s\n", err_msg());
    }
    free(path);
    return tok;
}

// ----------------------------------------------------------------------------
// qbias info

// Writes a packed format as "packed w4 g128 a8": code bits, group ("per row" for 0), "asym" with
// zero points, "a8" for int8 activations.
static void packed_type_text(int code_bits, int group, bool symmetric, bool int8_acts, char *buf,
                             size_t size) {
    char group_text[32];
    if (group == 0) {
        snprintf(group_text, sizeof group_text, "per row");
    } else {
        snprintf(group_text, sizeof group_text, "g%d", group);
    }
    snprintf(buf, size, "packed w%d %s%s%s", code_bits, group_text, symmetric ? "" : " asym",
             int8_acts ? " a8" : "");
}

// Returns a weight's storage type: its ggml type name, or for packed weights the format written
// into buf by packed_type_text.
static const char *weight_type_text(const Weight *w, char *buf, size_t size) {
    if (!w->packed) {
        return ggml_type_name(w->type);
    }
    const QFormat *f = &w->packed->format;
    packed_type_text(f->code_bits, f->group, f->symmetric, f->int8_acts, buf, size);
    return buf;
}

static void print_model_info(const Model *m) {
    const ModelConfig *c = &m->config;
    printf("file: %s\n", m->path);
    printf("architecture: %s\n", c->arch_name);
    printf("format: %s\n", m->file      ? "GGUF"
                           : m->overlay ? "GGUF blocks saved by qbias, over a Hugging Face folder"
                                        : "Hugging Face folder (safetensors)");
    // A file saved by qbias quantize: its recipe and how it was made (the qbias.quant.* keys).
    const GGUFFile *saved = m->file ? m->file : m->overlay;
    if (strcmp(m->variant, "fp32") != 0) {
        printf("quantized variant: %s\n", m->variant);
    }
    for (uint64_t i = 0; saved && i < saved->n_kv; i++) {
        const char *key = saved->kv[i].key;
        if (strncmp(key, "qbias.quant.", 12) != 0 || strcmp(key, "qbias.quant.recipe") == 0) {
            continue;
        }
        char *text = NULL;
        double number = 0;
        bool flag = false;
        if (gguf_get_string(saved, key, &text) == 1) {
            printf("  %s: %s\n", key + 12, text);
            free(text);
        } else if (gguf_get_bool(saved, key, &flag) == 1) {
            printf("  %s: %s\n", key + 12, flag ? "true" : "false");
        } else if (gguf_get_float(saved, key, &number) == 1) {
            printf("  %s: %.17g\n", key + 12, number);
        }
    }
    // The byte layout of its packed matrices (quant/format.h). model_load converts older ones.
    int64_t layout = 1;
    if (saved && strcmp(m->variant, "fp32") != 0 &&
        gguf_get_int(saved, "qbias.packed_layout", &layout) >= 0) {
        if (layout < QMATRIX_LAYOUT_VERSION) {
            printf("  packed layout: %lld, converted to %d on every load; run qbias quantize "
                   "again to store layout %d\n",
                   (long long)layout, QMATRIX_LAYOUT_VERSION, QMATRIX_LAYOUT_VERSION);
        } else {
            printf("  packed layout: %lld\n", (long long)layout);
        }
    }
    char q_type[64], down_type[64];
    printf("weights as stored: %s (attn_q), %s (ffn_down), %s (token_embd)\n",
           weight_type_text(&m->layers[0].attn_q, q_type, sizeof q_type),
           weight_type_text(&m->layers[0].ffn_down, down_type, sizeof down_type),
           ggml_type_name(m->token_embd.type));
    printf("vocabulary: %d\n", c->n_vocab);
    printf("embedding width (n_embd): %d\n", c->n_embd);
    printf("layers: %d\n", c->n_layer);
    printf("attention heads: %d query, %d key/value%s, head size %d\n", c->n_head, c->n_head_kv,
           c->head_count_kv_default ? " (key absent, default = query heads)" : "", c->head_dim);
    printf("feed-forward width: %d\n", c->n_ff);
    printf("context length: %d\n", c->n_ctx_train);
    printf("RoPE: base %g%s, %d rotated dimensions%s%s\n", c->rope_freq_base,
           c->rope_freq_base_default ? " (key absent, llama.cpp default)" : "", c->rope_dim,
           c->rope_dim_default ? " (key absent, default = head size)" : "",
           m->rope_freq_factors ? ", Llama 3.1 frequency factors" : "");
    printf("RMSNorm epsilon: %g\n", c->norm_eps);
    printf("output head: %s\n", c->tied_output ? "tied to the token embeddings" : "separate matrix");
    if (c->rope_type != ROPE_NONE) {
        printf("RoPE pairs: %s\n", c->rope_type == ROPE_NORMAL ? "adjacent (GGUF llama layout)"
                                                                : "halves (neox / rotate_half)");
    }
    if (c->sliding_window) {
        printf("sliding window: %d%s\n", c->sliding_window,
               c->window_even_layers ? " (even layers)" : "");
    }
    if (c->attn_softcap > 0 || c->final_softcap > 0) {
        printf("soft-caps: attention %g, final %g\n", c->attn_softcap, c->final_softcap);
    }
    if (m->unsupported) {
        printf("not used by qbias: %s\n", m->unsupported);
    }

    StrBuf sb;
    sb_init(&sb);
    tokenizer_describe(m->tokenizer, &sb);
    printf("%s", sb.data);
    if (sb.len == 0 || sb.data[sb.len - 1] != '\n') {
        printf("\n");
    }
    sb_free(&sb);
}

// Writes the type of a packed tensor saved by qbias, e.g. "packed w4 g128 a8", and its matrix
// shape in ggml order with its bytes, from the key qbias.packed.<name> (rows, columns, code bits,
// group, symmetric, fp16 scales, int8 layout, activation bits). Returns false when the key is
// missing or invalid.
static bool describe_packed(const GGUFFile *f, const GGUFTensor *t, char *type, size_t type_size,
                            char *shape, size_t shape_size) {
    char key[160];
    snprintf(key, sizeof key, "qbias.packed.%s", t->name);
    const GGUFArray *a = NULL;
    if (gguf_get_array(f, key, &a) != 1 || a->elem_type != GGUF_TYPE_INT32 || a->n != 8) {
        return false;
    }
    int64_t v[8];
    for (int i = 0; i < 8; i++) {
        v[i] = gguf_array_get_int(a, (uint64_t)i);
    }
    packed_type_text((int)v[2], (int)v[3], v[4] != 0, v[7] == 8, type, type_size);
    snprintf(shape, shape_size, "[%lld, %lld] (%llu bytes)", (long long)v[1], (long long)v[0],
             (unsigned long long)t->nbytes);
    return true;
}

static void print_tensor_table(const GGUFFile *f) {
    printf("tensors (%llu):\n", (unsigned long long)f->n_tensors);
    printf("  %-36s %-6s %s\n", "name", "type", "shape (ggml order: columns first)");
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        const GGUFTensor *t = &f->tensors[i];
        char type[64], shape[96];
        if (t->type == GGML_TYPE_QBIAS_PACKED &&
            describe_packed(f, t, type, sizeof type, shape, sizeof shape)) {
            printf("  %-36s %-6s %s\n", t->name, type, shape);
            continue;
        }
        printf("  %-36s %-6s [", t->name, ggml_type_name(t->type));
        for (uint32_t d = 0; d < t->n_dims; d++) {
            printf("%s%lld", d ? ", " : "", (long long)t->ne[d]);
        }
        printf("]\n");
    }
}

static void print_checkpoint_table(const SafeTensorsSet *set) {
    int total = 0;
    for (int f = 0; f < set->n_files; f++) {
        total += set->files[f]->n_tensors;
    }
    printf("tensors (%d in %d file%s):\n", total, set->n_files, set->n_files == 1 ? "" : "s");
    printf("  %-52s %-5s %s\n", "name", "dtype", "shape (rows first)");
    for (int f = 0; f < set->n_files; f++) {
        for (int i = 0; i < set->files[f]->n_tensors; i++) {
            const SafeTensor *t = &set->files[f]->tensors[i];
            printf("  %-52s %-5s [", t->name, safetensors_dtype_name(t->dtype));
            for (int d = 0; d < t->n_dims; d++) {
                printf("%s%lld", d ? ", " : "", (long long)t->shape[d]);
            }
            printf("]\n");
        }
    }
}

static int cmd_info(int argc, char **argv) {
    Option options[] = {{"--model", "-m", true, NULL}, {"--data-dir", NULL, true, NULL}};
    const char *positional[1];
    int n_positional = 0;
    if (parse_args("info", argc, argv, options, 2, positional, 1, &n_positional) != 0) {
        return 2;
    }
    const char *model_arg = n_positional ? positional[0] : option_value(options, 2, "--model");
    if (!model_arg) {
        fprintf(stderr, "usage: qbias info MODEL (a GGUF file, a Hugging Face folder or a bundled "
                        "model name)\n");
        return 2;
    }
    Model *m = open_model(model_arg, option_value(options, 2, "--data-dir"));
    if (!m) {
        return 1;
    }
    print_model_info(m);
    if (m->file) {
        print_tensor_table(m->file);
    } else if (m->overlay) {
        // A saved variant of a Hugging Face model: its own tensors are the quantized blocks; the
        // rest comes from the folder's checkpoint.
        print_tensor_table(m->overlay);
        printf("from the Hugging Face folder: ");
        print_checkpoint_table(m->checkpoint);
    } else {
        print_checkpoint_table(m->checkpoint);
    }
    model_free(m);
    return 0;
}

// ----------------------------------------------------------------------------
// qbias tokenize

static int cmd_tokenize(int argc, char **argv) {
    Option options[] = {{"--model", "-m", true, NULL},
                        {"--data-dir", NULL, true, NULL},
                        {"--no-special", NULL, false, NULL},
                        {"--parse-special", NULL, false, NULL}};
    const int n_options = (int)ARRAY_LEN(options);
    const char *positional[2];
    int n_positional = 0;
    if (parse_args("tokenize", argc, argv, options, n_options, positional, 2, &n_positional) != 0) {
        return 2;
    }
    const char *model_arg = option_value(options, n_options, "--model");
    const char *text = NULL;
    if (model_arg) {
        text = n_positional ? positional[0] : NULL;
    } else if (n_positional == 2) {
        model_arg = positional[0];
        text = positional[1];
    }
    if (!text) {
        fprintf(stderr, "usage: qbias tokenize MODEL TEXT [--no-special] [--parse-special]\n");
        return 2;
    }
    Tokenizer *tok = open_tokenizer(model_arg, option_value(options, n_options, "--data-dir"));
    if (!tok) {
        return 1;
    }
    int *ids = NULL, n = 0;
    bool add_special = !option_value(options, n_options, "--no-special");
    bool parse_special = option_value(options, n_options, "--parse-special") != NULL;
    if (tokenizer_encode(tok, text, strlen(text), add_special, parse_special, &ids, &n) != 0) {
        fprintf(stderr, "error: %s\n", err_msg());
        tokenizer_free(tok);
        return 1;
    }
    printf("%d tokens\n", n);
    for (int i = 0; i < n; i++) {
        const char *piece = tokenizer_token_text(tok, ids[i]);
        printf("%6d  ", ids[i]);
        // Show the stored piece as a JSON string so spaces and control bytes are visible.
        StrBuf sb;
        sb_init(&sb);
        sb_append_json_string(&sb, piece ? piece : "");
        printf("%s\n", sb.data);
        sb_free(&sb);
    }
    free(ids);
    tokenizer_free(tok);
    return 0;
}

// ----------------------------------------------------------------------------
// qbias classify

static int cmd_classify(int argc, char **argv) {
    Option options[] = {{"--threads", NULL, true, NULL}};
    const char *positional[2];
    int n_positional = 0;
    if (parse_args("classify", argc, argv, options, 1, positional, 2, &n_positional) != 0 ||
        apply_threads(option_value(options, 1, "--threads")) != 0) {
        return 2;
    }
    if (n_positional != 2) {
        fprintf(stderr, "usage: qbias classify FOLDER TEXT (a BertForSequenceClassification folder)\n");
        return 2;
    }
    BertClassifier *b = bert_load(positional[0]);
    Tokenizer *tok = b ? tokenizer_load_hf(positional[0]) : NULL;
    int rc = b && tok ? 0 : -1;
    float logits[256], scores[256];
    if (rc == 0 && bert_num_labels(b) > 256) {
        rc = err_set("%s has %d labels; qbias classify prints at most 256", positional[0],
                     bert_num_labels(b));
    }
    if (rc == 0) {
        rc = bert_classify_text(b, tok, positional[1], logits, scores);
    }
    if (rc == 0) {
        printf("| label | logit | %s |\n|---|---:|---:|\n", bert_multi_label(b) ? "sigmoid" : "softmax");
        float max = 0;
        for (int i = 0; i < bert_num_labels(b); i++) {
            printf("| %s | %.6f | %.6f |\n", bert_label(b, i), logits[i], scores[i]);
            max = scores[i] > max ? scores[i] : max;
        }
        printf("\nmax score %.6f (the reference study calls a text toxic when this is >= 0.5)\n",
               max);
    } else {
        fprintf(stderr, "error: %s\n", err_msg());
    }
    tokenizer_free(tok);
    bert_free(b);
    return rc == 0 ? 0 : 1;
}

// ----------------------------------------------------------------------------
// qbias chat-template

static int cmd_chat_template(int argc, char **argv) {
    Option options[] = {{"--model", "-m", true, NULL},
                        {"--messages", NULL, true, NULL},
                        {"--add-generation-prompt", NULL, false, NULL},
                        {"--continue-final-message", NULL, false, NULL},
                        {"--data-dir", NULL, true, NULL}};
    const int n_options = (int)ARRAY_LEN(options);
    const char *positional[1];
    int n_positional = 0;
    if (parse_args("chat-template", argc, argv, options, n_options, positional, 1, &n_positional) != 0) {
        return 2;
    }
    const char *model_arg = n_positional ? positional[0] : option_value(options, n_options, "--model");
    const char *messages_path = option_value(options, n_options, "--messages");
    if (!model_arg || !messages_path) {
        fprintf(stderr, "usage: qbias chat-template MODEL --messages FILE.json "
                        "[--add-generation-prompt] [--continue-final-message]\n");
        return 2;
    }

    Resolver *resolver = resolver_new(option_value(options, n_options, "--data-dir"));
    char *path = dir_exists(model_arg) ? xstrdup(model_arg) : resolver_find_model(resolver, model_arg);
    resolver_free(resolver);
    char *template_text = NULL, *bos = NULL, *eos = NULL, *text = NULL, *rendered = NULL;
    size_t len = 0;
    cJSON *messages = NULL;
    int rc = path ? chat_source_read(path, &template_text, &bos, &eos) : -1;
    if (rc == 0) {
        rc = file_read_all(messages_path, &text, &len);
    }
    if (rc == 0) {
        messages = cJSON_Parse(text);
        if (!cJSON_IsArray(messages)) {
            rc = err_set("%s must hold a JSON array of messages ({\"role\": ..., \"content\": ...})",
                         messages_path);
        }
    }
    if (rc == 0) {
        ChatTemplateOptions opt = {
            .add_generation_prompt = option_value(options, n_options, "--add-generation-prompt") != NULL,
            .continue_final_message = option_value(options, n_options, "--continue-final-message") != NULL,
            .bos_token = bos,
            .eos_token = eos,
        };
        rc = chat_template_render(template_text, messages, &opt, &rendered);
    }
    if (rc == 0) {
        fputs(rendered, stdout);
    } else {
        fprintf(stderr, "error: %s\n", err_msg());
    }
    cJSON_Delete(messages);
    free(rendered);
    free(text);
    free(template_text);
    free(bos);
    free(eos);
    free(path);
    return rc == 0 ? 0 : 1;
}

// ----------------------------------------------------------------------------
// qbias generate

typedef struct {
    const Tokenizer *tokenizer;
    const char *prompt;  // printed before the first token, so a failed start prints nothing
    bool prompt_printed;
    StrBuf piece;
} StreamContext;

static void print_prompt_once(StreamContext *s) {
    if (!s->prompt_printed) {
        fputs(s->prompt, stdout);
        s->prompt_printed = true;
    }
}

static void print_token(void *ctx, int prev_token, int token) {
    StreamContext *s = ctx;
    print_prompt_once(s);
    s->piece.len = 0;
    s->piece.data[0] = '\0';
    tokenizer_append_piece(s->tokenizer, prev_token, token, true, &s->piece);
    fwrite(s->piece.data, 1, s->piece.len, stdout);
    fflush(stdout);
}

static int cmd_generate(int argc, char **argv) {
    Option options[] = {{"--model", "-m", true, NULL},   {"--prompt", "-p", true, NULL},
                        {"--n-predict", "-n", true, NULL}, {"--temp", "-t", true, NULL},
                        {"--top-p", NULL, true, NULL},     {"--seed", "-s", true, NULL},
                        {"--threads", NULL, true, NULL},   {"--data-dir", NULL, true, NULL}};
    const int n_options = (int)ARRAY_LEN(options);
    const char *positional[1];
    int n_positional = 0;
    if (parse_args("generate", argc, argv, options, n_options, positional, 0, &n_positional) != 0 ||
        apply_threads(option_value(options, n_options, "--threads")) != 0) {
        return 2;
    }

    long long n_predict = 256, seed = 0;
    double temperature = 0.0, top_p = 1.0;
    const char *value;
    if (((value = option_value(options, n_options, "--n-predict")) &&
         parse_int_option("-n", value, 0, 1 << 24, &n_predict) != 0) ||
        ((value = option_value(options, n_options, "--temp")) &&
         parse_float_option("--temp", value, 0.0, 100.0, &temperature) != 0) ||
        ((value = option_value(options, n_options, "--top-p")) &&
         parse_float_option("--top-p", value, 0.0, 1.0, &top_p) != 0) ||
        ((value = option_value(options, n_options, "--seed")) &&
         parse_int_option("--seed", value, 0, INT64_MAX, &seed) != 0)) {
        return 2;
    }

    Model *m = open_model(option_value(options, n_options, "--model"),
                          option_value(options, n_options, "--data-dir"));
    if (!m) {
        return 1;
    }
    const char *prompt = option_value(options, n_options, "--prompt");
    prompt = prompt ? prompt : "";
    int *ids = NULL, n_ids = 0;
    if (tokenizer_encode(m->tokenizer, prompt, strlen(prompt), true, false, &ids, &n_ids) != 0) {
        fprintf(stderr, "error: %s\n", err_msg());
        model_free(m);
        return 1;
    }
    if (n_ids == 0) {
        fprintf(stderr, "error: the prompt is empty and the model adds no BOS token, so there is "
                        "nothing to continue from; give --prompt\n");
        free(ids);
        model_free(m);
        return 1;
    }

    GenerateOptions gen = {.max_new_tokens = (int)n_predict,
                           .temperature = (float)temperature,
                           .top_p = (float)top_p,
                           .seed = (uint64_t)seed,
                           .stop_at_bos = true};
    StreamContext stream = {.tokenizer = m->tokenizer, .prompt = prompt};
    sb_init(&stream.piece);
    int *out = NULL, n_out = 0;
    double start = now_seconds();
    int rc = generate_tokens(m, ids, n_ids, &gen, print_token, &stream, &out, &n_out);
    double elapsed = now_seconds() - start;
    if (rc == 0) {
        print_prompt_once(&stream);
    }
    if (stream.prompt_printed) {
        printf("\n");
    }
    // The text goes to stdout and the log line to stderr: flush, so that a terminal shows them in
    // order.
    fflush(stdout);
    if (rc != 0) {
        fprintf(stderr, "error: %s\n", err_msg());
    } else {
        log_info("%d tokens in %.2f s (%.1f tokens/s)", n_out, elapsed,
                 elapsed > 0 ? n_out / elapsed : 0.0);
    }
    sb_free(&stream.piece);
    free(out);
    free(ids);
    model_free(m);
    return rc == 0 ? 0 : 1;
}

// ----------------------------------------------------------------------------
// qbias ppl

static void ppl_progress(void *ctx, int chunk, int n_chunks) {
    double *start = ctx;
    if (chunk == n_chunks || chunk % 10 == 0) {
        double elapsed = now_seconds() - *start;
        fprintf(stderr, "\rppl: chunk %d/%d, %.1f s elapsed, ETA %.0f s   %s", chunk, n_chunks,
                elapsed, elapsed / chunk * (n_chunks - chunk), chunk == n_chunks ? "\n" : "");
    }
}

static void ppl_print(const Model *const *variants, const PplResult *r, int n, int n_ctx) {
    printf("| variant | PPL | +/- | change | mean KLD | KLD median | p99 | p99.9 | max | same top |\n");
    printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (int v = 0; v < n; v++) {
        printf("| %s | %.4f | %.4f |", variants[v]->variant, r[v].ppl, r[v].ppl_se);
        if (!r[v].has_kld) {
            printf(" | | | | | | |\n");
            continue;
        }
        printf(" %+.2f%% | %.6f | %.6f | %.6f | %.6f | %.6f | %.2f%% |\n",
               100.0 * (r[v].ppl / r[0].ppl - 1.0), r[v].kld_mean, r[v].kld_median, r[v].kld_p99,
               r[v].kld_p999, r[v].kld_max, 100.0 * r[v].same_top);
    }
    printf("\n%lld tokens scored per variant (chunks of %d tokens, second half of each scored); "
           "KLD = KL(P_%s || P_variant) per token, natural log.\n",
           (long long)r[0].n_tokens, n_ctx, variants[0]->variant);
}

static int cmd_ppl(int argc, char **argv) {
    Option options[] = {{"--model", "-m", true, NULL},  {"--quant", "-q", true, NULL},
                        {"--text", "-f", true, NULL},   {"--ctx", "-c", true, NULL},
                        {"--chunks", NULL, true, NULL}, {"--threads", NULL, true, NULL},
                        {"--data-dir", NULL, true, NULL}, {"--json", NULL, true, NULL},
                        CALIB_OPTIONS};
    const int n_options = (int)ARRAY_LEN(options);
    const char *positional[1];
    int n_positional = 0;
    if (parse_args("ppl", argc, argv, options, n_options, positional, 0, &n_positional) != 0 ||
        apply_threads(option_value(options, n_options, "--threads")) != 0) {
        return 2;
    }
    long long n_ctx = 512, max_chunks = 0;
    const char *value;
    if (((value = option_value(options, n_options, "--ctx")) &&
         parse_int_option("--ctx", value, 4, 1 << 20, &n_ctx) != 0) ||
        ((value = option_value(options, n_options, "--chunks")) &&
         parse_int_option("--chunks", value, 1, 1 << 30, &max_chunks) != 0)) {
        return 2;
    }

    CalibArgs calib_args;
    if (parse_calib_args(options, n_options, &calib_args) != 0) {
        return 2;
    }
    const char *json_arg = option_value(options, n_options, "--json");
    const char *text_arg = option_value(options, n_options, "--text");
    if ((json_arg && check_output_file("--json", json_arg, "ppl.json") != 0) ||
        (text_arg && check_input_file("--text", text_arg) != 0)) {
        fprintf(stderr, "error: %s\n", err_msg());
        return 2;
    }
    const char *data_dir = option_value(options, n_options, "--data-dir");
    char *model_path = NULL;
    Model *base = open_model_path(option_value(options, n_options, "--model"), data_dir,
                                  &model_path);
    if (!base) {
        return 1;
    }
    // The default is the weights as stored: fp32, or the recipe of a file saved by qbias.
    const char *quant_arg = option_value(options, n_options, "--quant");
    char *quant = xstrdup(quant_arg ? quant_arg : base->variant);
    QuantRecipe recipes[MAX_LIST_ITEMS];
    Model *variants[MAX_LIST_ITEMS];
    int n_variants = 0, rc = 0;
    int n_recipes = parse_recipes(quant, recipes, MAX_LIST_ITEMS);
    rc = n_recipes < 0 ? -1 : 0;
    Resolver *resolver = resolver_new(data_dir);
    VariantOptions vo;
    char model_hash[65] = "";
    if (rc == 0) {
        rc = calib_variant_options(&calib_args, resolver, base, model_path, recipes, n_recipes,
                                   model_hash, &vo);
    }
    for (int i = 0; i < n_recipes && rc == 0; i++) {
        variants[n_variants] = variant_build(base, &recipes[i], &vo, NULL, NULL);
        rc = variants[n_variants] ? 0 : -1;
        n_variants += rc == 0;
    }

    // The text: --text, else WikiText-2 test through the data resolver.
    char *text_path = NULL, *text = NULL;
    size_t len = 0;
    if (rc == 0) {
        const char *given = option_value(options, n_options, "--text");
        if (given) {
            text_path = xstrdup(given);
        } else {
            text_path = resolver_find(resolver, "wikitext2", "wiki.test.raw");
        }
        rc = text_path ? file_read_all(text_path, &text, &len) : -1;
    }
    if (rc == 0 && len == 0) {
        rc = err_set("%s is empty; give a text file to score", text_path);
    }
    if (rc == 0) {
        rc = text_check_utf8(text_path, text, len, "the text to score");
    }
    // Both are scored as text, as llama.cpp's perplexity tool does, but they are rarely meant.
    if (rc == 0 && len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) {
        log_warn("%s starts with a UTF-8 byte order mark, which is scored as text", text_path);
    }
    if (rc == 0 && strstr(text, "\r\n")) {
        log_warn("%s has Windows line ends (CR LF); each CR is scored as text, which changes the "
                 "perplexity (convert the file with dos2unix to compare with LF text)",
                 text_path);
    }
    int *tokens = NULL, n_tokens = 0;
    if (rc == 0) {
        rc = tokenizer_encode(base->tokenizer, text, len, true, false, &tokens, &n_tokens);
    }
    PplResult results[MAX_LIST_ITEMS];
    if (rc == 0) {
        log_info("%s: %d tokens; %d variants", text_path, n_tokens, n_variants);
        double start = now_seconds();
        rc = ppl_run((const Model *const *)variants, n_variants, tokens, n_tokens, (int)n_ctx,
                     (int)max_chunks, ppl_progress, &start, results);
    }
    if (rc == 0) {
        ppl_print((const Model *const *)variants, results, n_variants, (int)n_ctx);
        const char *json_path = option_value(options, n_options, "--json");
        if (json_path) {
            cJSON *json = cJSON_CreateObject();
            cJSON_AddStringToObject(json, "text", text_path);
            cJSON_AddNumberToObject(json, "ctx", (double)n_ctx);
            cJSON *list = cJSON_AddArrayToObject(json, "variants");
            for (int v = 0; v < n_variants; v++) {
                cJSON *o = cJSON_CreateObject();
                cJSON_AddStringToObject(o, "variant", variants[v]->variant);
                cJSON_AddNumberToObject(o, "ppl", results[v].ppl);
                cJSON_AddNumberToObject(o, "ppl_se", results[v].ppl_se);
                cJSON_AddNumberToObject(o, "n_tokens", (double)results[v].n_tokens);
                if (results[v].has_kld) {
                    cJSON_AddNumberToObject(o, "kld_mean", results[v].kld_mean);
                    cJSON_AddNumberToObject(o, "kld_se", results[v].kld_se);
                    cJSON_AddNumberToObject(o, "kld_median", results[v].kld_median);
                    cJSON_AddNumberToObject(o, "kld_p99", results[v].kld_p99);
                    cJSON_AddNumberToObject(o, "kld_p999", results[v].kld_p999);
                    cJSON_AddNumberToObject(o, "kld_max", results[v].kld_max);
                    cJSON_AddNumberToObject(o, "same_top", results[v].same_top);
                }
                cJSON_AddItemToArray(list, o);
            }
            char *printed = cJSON_Print(json);
            rc = file_write_atomic(json_path, printed, strlen(printed));
            cJSON_free(printed);
            cJSON_Delete(json);
        }
    }
    if (rc != 0) {
        fprintf(stderr, "error: %s\n", err_msg());
    }
    for (int v = 0; v < n_variants; v++) {
        model_free(variants[v]);
    }
    model_free(base);
    free(tokens);
    free(text);
    free(text_path);
    free(quant);
    free(model_path);
    resolver_free(resolver);
    return rc == 0 ? 0 : 1;
}

// ----------------------------------------------------------------------------
// qbias eval

// The variant scored when --quant is absent: the weights as stored, which is the recipe a file
// saved by qbias quantize names, and fp32 for any other model. Problems with the model are left
// for eval to report.
static char *stored_recipe(const char *model_arg, const char *data_dir) {
    Resolver *resolver = resolver_new(data_dir);
    char *path = dir_exists(model_arg) ? NULL : resolver_find_model(resolver, model_arg);
    resolver_free(resolver);
    char *recipe = NULL;
    GGUFFile *f = path ? gguf_open(path) : NULL;
    if (!f || gguf_get_string(f, "qbias.quant.recipe", &recipe) != 1) {
        recipe = xstrdup("fp32");
    }
    gguf_close(f);
    free(path);
    return recipe;
}

static int cmd_eval(int argc, char **argv) {
    Option options[] = {{"--model", "-m", true, NULL},    {"--quant", "-q", true, NULL},
                        {"--probes", NULL, true, NULL},   {"--out", "-o", true, NULL},
                        {"--limit", NULL, true, NULL},    {"--threads", NULL, true, NULL},
                        {"--data-dir", NULL, true, NULL}, {"--batch-tokens", NULL, true, NULL},
                        {"--quiet", NULL, false, NULL},   CALIB_OPTIONS};
    const int n_options = (int)ARRAY_LEN(options);
    const char *positional[1];
    int n_positional = 0;
    CalibArgs calib_args;
    if (parse_args("eval", argc, argv, options, n_options, positional, 0, &n_positional) != 0 ||
        apply_threads(option_value(options, n_options, "--threads")) != 0 ||
        parse_calib_args(options, n_options, &calib_args) != 0) {
        return 2;
    }

    const char *model = option_value(options, n_options, "--model");
    const char *out = option_value(options, n_options, "--out");
    const char *quant = option_value(options, n_options, "--quant");
    const char *probes = option_value(options, n_options, "--probes");
    if (!model || !out) {
        fprintf(stderr, "error: qbias eval needs --model and --out (see 'qbias help eval')\n");
        return 2;
    }
    if (!*model) {
        fprintf(stderr, "error: --model is empty; give a GGUF file, a Hugging Face folder or a "
                        "bundled model name such as stories260K\n");
        return 2;
    }

    long long limit = 0, batch_tokens = 0;
    const char *value;
    if (((value = option_value(options, n_options, "--limit")) &&
         parse_int_option("--limit", value, 1, INT64_MAX, &limit) != 0) ||
        ((value = option_value(options, n_options, "--batch-tokens")) &&
         parse_int_option("--batch-tokens", value, 1, 1 << 20, &batch_tokens) != 0)) {
        return 2;
    }

    char *quant_copy = quant ? xstrdup(quant)
                             : stored_recipe(model, option_value(options, n_options, "--data-dir"));
    char *probes_copy = xstrdup(probes ? probes : "stereoset,redditbias,crows_pairs");
    const char *specs[MAX_LIST_ITEMS], *probe_list[MAX_LIST_ITEMS];
    int n_specs = split_list("--quant", quant_copy, specs, MAX_LIST_ITEMS);
    int n_probes =
        n_specs < 0 ? -1 : split_list("--probes", probes_copy, probe_list, MAX_LIST_ITEMS);
    if (n_specs == 0 || n_probes == 0) {
        fprintf(stderr, "error: %s is empty; give a comma-separated list (see 'qbias help eval')\n",
                n_specs == 0 ? "--quant" : "--probes");
        free(quant_copy);
        free(probes_copy);
        return 2;
    }
    if (n_specs < 0 || n_probes < 0) {
        fprintf(stderr, "error: %s\n", err_msg());
        free(quant_copy);
        free(probes_copy);
        return 2;
    }
    EvalOptions eval = {
        .model = model,
        .out_dir = out,
        .data_dir = option_value(options, n_options, "--data-dir"),
        .specs = specs,
        .n_specs = n_specs,
        .probes = probe_list,
        .n_probes = n_probes,
        .limit = limit,
        .batch_tokens = (int)batch_tokens,
        .calib_path = calib_args.path,
        .calib_samples = (int)calib_args.samples,
        .calib_seq_len = (int)calib_args.seq_len,
        .calib_seed = (uint64_t)calib_args.seed,
        .calib_seed_set = calib_args.seed_set,
        .no_cache = calib_args.no_cache,
    };
    bool quiet = option_value(options, n_options, "--quiet") != NULL;
    int rc = eval_run(&eval, !quiet);
    if (rc != 0) {
        fprintf(stderr, "error: %s\n", err_msg());
    }
    free(quant_copy);
    free(probes_copy);
    return rc == 0 ? 0 : 1;
}

// ----------------------------------------------------------------------------
// qbias quantize

static int cmd_quantize(int argc, char **argv) {
    Option options[] = {{"--model", "-m", true, NULL},    {"--quant", "-q", true, NULL},
                        {"--out", "-o", true, NULL},      {"--threads", NULL, true, NULL},
                        {"--data-dir", NULL, true, NULL}, {"--force", NULL, false, NULL},
                        CALIB_OPTIONS};
    const int n_options = (int)ARRAY_LEN(options);
    const char *positional[1];
    int n_positional = 0;
    CalibArgs calib_args;
    if (parse_args("quantize", argc, argv, options, n_options, positional, 0, &n_positional) != 0 ||
        apply_threads(option_value(options, n_options, "--threads")) != 0 ||
        parse_calib_args(options, n_options, &calib_args) != 0) {
        return 2;
    }
    const char *quant = option_value(options, n_options, "--quant");
    const char *out = option_value(options, n_options, "--out");
    if (!quant || !out) {
        fprintf(stderr, "error: qbias quantize needs --model, --quant and --out (see 'qbias help "
                        "quantize')\n");
        return 2;
    }
    QuantRecipe recipe;
    char error[1024];
    if (quant_recipe_parse(quant, &recipe, error, sizeof error) != 0) {
        fprintf(stderr, "error: %s\n", error);
        return 2;
    }
    if (variant_check_recipe(&recipe) != 0) {
        fprintf(stderr, "error: %s\n", err_msg());
        return 2;
    }
    if (check_output_file("--out", out, "model.gguf") != 0) {
        fprintf(stderr, "error: %s\n", err_msg());
        return 2;
    }
    bool force = option_value(options, n_options, "--force") != NULL;
    if (file_exists(out) && !force) {
        fprintf(stderr, "error: --out %s already exists; choose another path, or pass --force to "
                        "replace it\n", out);
        return 2;
    }

    const char *data_dir = option_value(options, n_options, "--data-dir");
    char *model_path = NULL;
    Model *base = open_model_path(option_value(options, n_options, "--model"), data_dir,
                                  &model_path);
    if (!base) {
        return 1;
    }
    // Replacing the model with its own variant would lose the original, even with --force. For
    // a Hugging Face folder, any existing file in the folder may be one the model reads.
    struct stat out_st, model_st, parent_st;
    char *parent = parent_folder(out);
    bool same_file = stat(out, &out_st) == 0 && stat(model_path, &model_st) == 0 &&
                     out_st.st_dev == model_st.st_dev && out_st.st_ino == model_st.st_ino;
    bool in_folder = !base->file && lstat(out, &out_st) == 0 && stat(parent, &parent_st) == 0 &&
                     stat(model_path, &model_st) == 0 && parent_st.st_dev == model_st.st_dev &&
                     parent_st.st_ino == model_st.st_ino;
    free(parent);
    if (same_file || in_folder) {
        fprintf(stderr, "error: --out %s %s the model being quantized (%s); write the variant "
                        "to another path\n",
                out, same_file ? "is" : "is a file in the folder of", model_path);
        model_free(base);
        free(model_path);
        return 2;
    }
    if (file_exists(out)) {
        log_info("%s exists and will be replaced when the new file is complete (--force)", out);
    }
    Resolver *resolver = resolver_new(data_dir);
    VariantOptions vo;
    char model_hash[65] = "";
    Model *m = NULL;
    cJSON *metadata = NULL;
    QuantReport report;
    int rc = 0;
    if (!base->file) {
        log_info("%s is a Hugging Face folder: %s will hold the quantized blocks and load the "
                 "rest from the folder, so keep the folder in place",
                 model_path, out);
    }
    if (rc == 0) {
        rc = calib_variant_options(&calib_args, resolver, base, model_path, &recipe, 1,
                                   model_hash, &vo);
    }
    if (rc == 0) {
        m = variant_build(base, &recipe, &vo, &report, &metadata);
        rc = m ? 0 : -1;
    }
    if (rc == 0) {
        rc = model_save_gguf(m, out, metadata);
    }
    if (rc == 0) {
        struct stat st;
        double mb = stat(out, &st) == 0 ? (double)st.st_size / 1e6 : 0.0;
        log_info("wrote %s (%s, %.1f MB)", out, m->variant, mb);
    } else {
        fprintf(stderr, "error: %s\n", err_msg());
    }
    cJSON_Delete(metadata);
    model_free(m);
    model_free(base);
    free(model_path);
    resolver_free(resolver);
    return rc == 0 ? 0 : 1;
}

// ----------------------------------------------------------------------------
// qbias bench

// bench_main parses argv from index 1, as a main() does. The dispatcher passes the arguments after
// the command name, so step back one to include "bench" as argv[0].
static int cmd_bench(int argc, char **argv) {
    return bench_main(argc + 1, argv - 1);
}

// ----------------------------------------------------------------------------
// Help and dispatch

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
    const char *usage;
} Command;

static const char EVAL_USAGE[] =
    "usage: qbias eval --model MODEL --out DIR [options]\n"
    "\n"
    "Scores bias probes on MODEL and its quantized variants and writes DIR/items.jsonl (one line\n"
    "per item and variant, flushed as it is made), DIR/run.json (the run's fingerprint),\n"
    "DIR/summary.json and DIR/summary.md. Run the same command again to resume an interrupted run.\n"
    "\n"
    "  --model, -m MODEL     a GGUF file, a Hugging Face folder, or a bundled model name (e.g.\n"
    "                        stories260K)\n"
    "  --quant, -q LIST      comma-separated recipes: fp32, rtn:w8g128, gptq:w4g128,\n"
    "                        awq:w3g128, sq:w8a8, ... ('qbias help' lists the forms). Default:\n"
    "                        the weights as stored (fp32, or the recipe of a saved file)\n"
    "  --probes LIST         comma-separated probes (default all)\n"
    "  --out, -o DIR         run directory (created if missing)\n"
    "  --limit N             score only the first N items of each probe\n"
    "  --threads N           threads for every thread pool (default: all cores)\n"
    "  --data-dir DIR        look for data sets in DIR/<name>/ first (also $QBIAS_DATA_DIR)\n"
    "  --batch-tokens N      tokens per forward batch (default 2048; results do not depend on it)\n"
    "  --quiet               do not print summary.md when done\n" CALIB_USAGE;

static const Command commands[] = {
    {"classify", cmd_classify, "score a text with a BERT classifier such as unitary/toxic-bert",
     "usage: qbias classify FOLDER TEXT\n\nFOLDER is a Hugging Face BertForSequenceClassification "
     "folder (config.json,\nmodel.safetensors, vocab.txt or tokenizer.json). Prints every label's "
     "logit and score\n(sigmoid for multi-label models, softmax otherwise).\n"},
    {"eval", cmd_eval, "score bias probes on a model and its quantized variants", EVAL_USAGE},
    {"info", cmd_info, "print a model's architecture, tokenizer and tensors",
     "usage: qbias info MODEL\n\nMODEL is a GGUF file, a Hugging Face folder (config.json and\n"
     "safetensors) or a bundled model name. For a folder, info also names anything in it that\n"
     "qbias does not support.\n"},
    {"ppl", cmd_ppl, "perplexity and KL divergence of variants over a text",
     "usage: qbias ppl --model MODEL [--quant LIST] [--text FILE] [--ctx N] [--chunks N]\n"
     "\nPerplexity as llama.cpp's perplexity tool computes it: chunks of --ctx tokens (default\n"
     "512), the second half of each scored. The first variant (default: the weights as stored)\n"
     "is the reference for the KL divergence and the share of positions whose most probable\n"
     "token agrees.\n"
     "  --text FILE     text to score, UTF-8 (default: WikiText-2 test through the data\n"
     "                  resolver)\n"
     "  --ctx N         tokens per chunk (default 512; at most the model's context)\n"
     "  --chunks N      score at most N chunks\n"
     "  --json FILE     also write the numbers as JSON\n"
     "  --threads N     threads (default: all cores)\n"
     "  --data-dir DIR  look for data sets in DIR/<name>/ first (also $QBIAS_DATA_DIR)\n"
     CALIB_USAGE},
    {"quantize", cmd_quantize, "quantize a model by a recipe and save it as a GGUF file",
     "usage: qbias quantize --model MODEL --quant RECIPE --out FILE.gguf [options]\n"
     "\nQuantizes MODEL (a GGUF file, a Hugging Face folder or a bundled model name) by RECIPE\n"
     "(e.g. gptq:w4g128, awq:w3g128, sq:w8a8, rtn:w4g128) and writes the variant as a GGUF file\n"
     "that every qbias command loads. The recipe and calibration settings are kept in its\n"
     "qbias.quant.* keys (docs/formats.md).\n"
     "  --force               replace FILE.gguf if it exists (never MODEL itself)\n"
     "  --threads N           threads (default: all cores)\n"
     "  --data-dir DIR        look for data sets in DIR/<name>/ first (also $QBIAS_DATA_DIR)\n"
     CALIB_USAGE},
    {"tokenize", cmd_tokenize, "print the token ids and pieces of a text",
     "usage: qbias tokenize MODEL TEXT [--no-special] [--parse-special]\n"
     "\n  --no-special      do not add BOS/EOS\n"
     "  --parse-special   match special-token texts such as <s> in TEXT\n"},
    {"bench", cmd_bench, "measure the machine and the kernels; time random models of real shapes",
     "usage: qbias bench [options]; run 'qbias bench --help' for the options\n"},
    {"chat-template", cmd_chat_template, "render a conversation with the model's chat template",
     "usage: qbias chat-template MODEL --messages FILE.json [--add-generation-prompt]\n"
     "                           [--continue-final-message]\n"
     "\nMODEL is a GGUF file (tokenizer.chat_template) or a Hugging Face folder\n"
     "(tokenizer_config.json). The text is rendered as transformers 4.48's apply_chat_template.\n"
     "  --add-generation-prompt    end with the header of the assistant's turn\n"
     "  --continue-final-message   leave the final message open, as for a prefilled reply\n"},
    {"generate", cmd_generate, "continue a prompt (greedy, or sampled with --temp)",
     "usage: qbias generate --model MODEL [--prompt TEXT] [-n N] [--temp T] [--top-p P] [--seed S]\n"
     "\n  -n, --n-predict N   new tokens to generate (default 256); stops early at EOS or BOS\n"
     "  -t, --temp T        sampling temperature (default 0: greedy)\n"
     "  --top-p P           nucleus sampling threshold (default 1: off)\n"
     "  -s, --seed S        random seed for sampling, run.c's generator (default 0, which\n"
     "                      stands for a fixed nonzero state)\n"
     "  --threads N         threads (default: all cores)\n"},
};

static void print_help(void) {
    printf("qbias %s: quantized transformer inference with social-bias probes\n\n", QBIAS_VERSION);
    printf("usage: qbias COMMAND [options]\n\ncommands:\n");
    for (size_t i = 0; i < ARRAY_LEN(commands); i++) {
        printf("  %-14s %s\n", commands[i].name, commands[i].summary);
    }
    printf("\nprobes: %s\n", probe_names());
    printf("quantization recipes: %s\n", QUANT_RECIPE_FORMS);
    printf("kernel paths on this CPU: %s (force one with QBIAS_KERNELS)\n", kernels_supported());
    printf("\n'qbias help COMMAND' shows a command's options.\n");
}

int main(int argc, char **argv) {
    if (argc < 2 || strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "-h") == 0) {
        if (argc >= 3 && strcmp(argv[2], "--help") != 0 && strcmp(argv[2], "-h") != 0) {
            for (size_t i = 0; i < ARRAY_LEN(commands); i++) {
                if (strcmp(commands[i].name, argv[2]) == 0) {
                    fputs(commands[i].usage, stdout);
                    return 0;
                }
            }
            fprintf(stderr, "error: unknown command '%s'; run 'qbias help' for the list\n", argv[2]);
            return 2;
        }
        print_help();
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("qbias %s\n", QBIAS_VERSION);
        return 0;
    }
    for (size_t i = 0; i < ARRAY_LEN(commands); i++) {
        if (strcmp(commands[i].name, argv[1]) != 0) {
            continue;
        }
        // `qbias CMD --help` prints the command's usage (bench prints its own, longer list).
        for (int a = 2; a < argc && strcmp(argv[1], "bench") != 0; a++) {
            if (strcmp(argv[a], "--help") == 0 || strcmp(argv[a], "-h") == 0) {
                fputs(commands[i].usage, stdout);
                return 0;
            }
        }
        return commands[i].run(argc - 2, argv + 2);
    }
    fprintf(stderr, "error: unknown command '%s'; run 'qbias help' for the list\n", argv[1]);
    return 2;
}
