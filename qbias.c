// qbias.c: the command-line entry point. It parses arguments and dispatches to the subcommands
// implemented in engine/, quant/ and probes/; nothing includes this file.
#include <cblas.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/bench.h"
#include "engine/chat_source.h"
#include "engine/chat_template.h"
#include "engine/generate.h"
#include "engine/model.h"
#include "engine/resolver.h"
#include "engine/util.h"
#include "kernels/kernels.h"
#include "probes/eval.h"
#include "probes/probe.h"
#include "quant/spec.h"

// OpenBLAS's thread-count setter (declared in its cblas.h, not in every BLAS's).
void openblas_set_num_threads(int num_threads);

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
            if (!match->takes_value) {
                match->value = "1";
            } else if (eq) {
                match->value = eq + 1;
            } else if (i + 1 < argc) {
                match->value = argv[++i];
            } else {
                fprintf(stderr, "error: option %s needs a value\n", match->name);
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

// Splits a comma-separated list in place (the string is modified); returns the count.
static int split_list(char *text, const char **items, int max_items) {
    int n = 0;
    for (char *token = strtok(text, ","); token && n < max_items; token = strtok(NULL, ",")) {
        while (*token == ' ') {
            token++;
        }
        if (*token) {
            items[n++] = token;
        }
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

static Model *open_model(const char *model_arg, const char *data_dir) {
    if (!model_arg) {
        fprintf(stderr, "error: --model is required (a GGUF file, or a bundled model name such as "
                        "stories260K)\n");
        return NULL;
    }
    Resolver *resolver = resolver_new(data_dir);
    char *path = resolver_find_model(resolver, model_arg);
    resolver_free(resolver);
    if (!path) {
        fprintf(stderr, "error: %s\n", err_msg());
        return NULL;
    }
    Model *m = model_load(path);
    free(path);
    if (!m) {
        fprintf(stderr, "error: %s\n", err_msg());
    }
    return m;
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

static void print_model_info(const Model *m) {
    const ModelConfig *c = &m->config;
    printf("file: %s\n", m->path);
    printf("architecture: %s\n", c->arch_name);
    printf("weights as stored: %s\n", ggml_type_name(m->layers[0].attn_q.type));
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
           m->rope_freq_factors ? ", frequency factors from rope_freqs.weight" : "");
    printf("RMSNorm epsilon: %g\n", c->norm_eps);
    printf("output head: %s\n", c->tied_output ? "tied to token_embd.weight" : "output.weight");

    StrBuf sb;
    sb_init(&sb);
    tokenizer_describe(m->tokenizer, &sb);
    printf("%s", sb.data);
    if (sb.len == 0 || sb.data[sb.len - 1] != '\n') {
        printf("\n");
    }
    sb_free(&sb);
}

static void print_tensor_table(const GGUFFile *f) {
    printf("tensors (%llu):\n", (unsigned long long)f->n_tensors);
    printf("  %-36s %-6s %s\n", "name", "type", "shape (ggml order: columns first)");
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        const GGUFTensor *t = &f->tensors[i];
        printf("  %-36s %-6s [", t->name, ggml_type_name(t->type));
        for (uint32_t d = 0; d < t->n_dims; d++) {
            printf("%s%lld", d ? ", " : "", (long long)t->ne[d]);
        }
        printf("]\n");
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
        fprintf(stderr, "usage: qbias info MODEL (a GGUF file or a bundled model name)\n");
        return 2;
    }
    Model *m = open_model(model_arg, option_value(options, 2, "--data-dir"));
    if (!m) {
        return 1;
    }
    print_model_info(m);
    print_tensor_table(m->file);
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
// qbias eval

#define MAX_LIST_ITEMS 64

static int cmd_eval(int argc, char **argv) {
    Option options[] = {{"--model", "-m", true, NULL},    {"--quant", "-q", true, NULL},
                        {"--probes", NULL, true, NULL},   {"--out", "-o", true, NULL},
                        {"--limit", NULL, true, NULL},    {"--threads", NULL, true, NULL},
                        {"--data-dir", NULL, true, NULL}, {"--batch-tokens", NULL, true, NULL},
                        {"--quiet", NULL, false, NULL}};
    const int n_options = (int)ARRAY_LEN(options);
    const char *positional[1];
    int n_positional = 0;
    if (parse_args("eval", argc, argv, options, n_options, positional, 0, &n_positional) != 0 ||
        apply_threads(option_value(options, n_options, "--threads")) != 0) {
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

    long long limit = 0, batch_tokens = 0;
    const char *value;
    if (((value = option_value(options, n_options, "--limit")) &&
         parse_int_option("--limit", value, 1, INT64_MAX, &limit) != 0) ||
        ((value = option_value(options, n_options, "--batch-tokens")) &&
         parse_int_option("--batch-tokens", value, 1, 1 << 20, &batch_tokens) != 0)) {
        return 2;
    }

    char *quant_copy = xstrdup(quant ? quant : "fp32");
    char *probes_copy = xstrdup(probes ? probes : "stereoset,redditbias,crows_pairs");
    const char *specs[MAX_LIST_ITEMS], *probe_list[MAX_LIST_ITEMS];
    EvalOptions eval = {
        .model = model,
        .out_dir = out,
        .data_dir = option_value(options, n_options, "--data-dir"),
        .specs = specs,
        .n_specs = split_list(quant_copy, specs, MAX_LIST_ITEMS),
        .probes = probe_list,
        .n_probes = split_list(probes_copy, probe_list, MAX_LIST_ITEMS),
        .limit = limit,
        .batch_tokens = (int)batch_tokens,
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
    "  --model, -m MODEL     a GGUF file, or a bundled model name (e.g. stories260K)\n"
    "  --quant, -q LIST      comma-separated variants (default fp32): fp32, rtn:w8g128, ...\n"
    "  --probes LIST         comma-separated probes (default all)\n"
    "  --out, -o DIR         run directory (created if missing)\n"
    "  --limit N             score only the first N items of each probe\n"
    "  --threads N           threads for every thread pool (default: all cores)\n"
    "  --data-dir DIR        look for data sets in DIR/<name>/ first (also $QBIAS_DATA_DIR)\n"
    "  --batch-tokens N      tokens per forward batch (default 2048; results do not depend on it)\n"
    "  --quiet               do not print summary.md when done\n";

static const Command commands[] = {
    {"eval", cmd_eval, "score bias probes on a model and its quantized variants", EVAL_USAGE},
    {"info", cmd_info, "print a model's architecture, tokenizer and tensors",
     "usage: qbias info MODEL\n\nMODEL is a GGUF file or a bundled model name.\n"},
    {"tokenize", cmd_tokenize, "print the token ids and pieces of a text",
     "usage: qbias tokenize MODEL TEXT [--no-special] [--parse-special]\n"
     "\n  --no-special      do not add BOS/EOS\n"
     "  --parse-special   match special-token texts such as <s> in TEXT\n"},
    {"bench", bench_main, "measure the machine and the kernels; time random models of real shapes",
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
        printf("  %-10s %s\n", commands[i].name, commands[i].summary);
    }
    printf("\nprobes: %s\n", probe_names());
    printf("quantization specs: %s\n", QUANT_SPEC_FORMS);
    printf("kernel paths on this CPU: %s (force one with QBIAS_KERNELS)\n", kernels_supported());
    printf("\n'qbias help COMMAND' shows a command's options.\n");
}

int main(int argc, char **argv) {
    if (argc < 2 || strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "-h") == 0) {
        if (argc >= 3) {
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
        if (strcmp(commands[i].name, argv[1]) == 0) {
            return commands[i].run(argc - 2, argv + 2);
        }
    }
    fprintf(stderr, "error: unknown command '%s'; run 'qbias help' for the list\n", argv[1]);
    return 2;
}
