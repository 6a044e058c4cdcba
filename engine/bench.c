// bench.c: `qbias bench` (bench.h).
//
// Weights are random: the speed of these kernels does not depend on the values. Packed matrices
// are filled with random codes directly, so no fp32 copy of a large model ever exists.
#include "bench.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../kernels/half.h"
#include "../kernels/kernels.h"
#include "../quant/spec_methods.h"
#include "forward.h"
#include "resolver.h"
#include "util.h"
#include "variants.h"

// ----------------------------------------------------------------------------
// Options, formats and model shapes

typedef struct {
    const char *name; // as given to --formats
    int bits;         // code bits; 0 for fp32 weights
    bool int8_acts;
} BenchFormat;

static const BenchFormat all_formats[] = {
    {"f32", 0, false},   {"w8a8", 8, true},   {"w4a8", 4, true},
    {"w8a16", 8, false}, {"w4a16", 4, false}, {"w3a16", 3, false},
};

// Hyper-parameters of released models (their config.json files). Qwen2.5's q/k/v biases are left
// out because qbias's llama architecture has none; Qwen2.5-0.5B has 27,648 of them, under 0.01% of
// its weights.
typedef struct {
    const char *name;
    int n_embd, n_layer, n_head, n_head_kv, head_dim, n_ff, n_vocab;
    bool tied_output;
    float rope_freq_base;
} ModelShape;

static const ModelShape all_shapes[] = {
    {"tiny", 64, 2, 4, 2, 16, 172, 512, true, 10000.0f},
    {"smollm2-135m", 576, 30, 9, 3, 64, 1536, 49152, true, 100000.0f},
    {"qwen2.5-0.5b", 896, 24, 14, 2, 64, 4864, 151936, true, 1000000.0f},
    {"llama-3.2-1b", 2048, 16, 32, 8, 64, 8192, 128256, true, 500000.0f},
    {"llama-3.1-8b", 4096, 32, 32, 8, 128, 14336, 128256, false, 500000.0f},
};

typedef struct {
    int threads;              // 0: all cores
    const char *kernels;      // NULL: the default path
    bool json;
    double min_seconds;       // minimum timed duration per measurement
    int group;                // columns per group of the packed formats (0: whole row)
    bool fp16_scales;
    const char *shapes;       // "NxK,NxK", "none"
    const char *formats;      // names from all_formats, comma-separated, or "all"
    const char *models;       // names from all_shapes, comma-separated, or "none"
    bool models_given;        // --models was on the command line
    const char *model_file;   // --model: a GGUF file, Hugging Face folder or bundled name, or NULL
    bool quantize_head;
    int prefill_tokens;
    int decode_tokens;
    int gemm_rows;
    const char *write_gguf;     // path of a GGUF file to write the random model to, or NULL
    const char *tokenizer_from; // GGUF file whose tokenizer the written model copies
} BenchOptions;

static const char usage[] =
    "usage: qbias bench [options]\n"
    "  --threads N        threads of every pool (default: all cores)\n"
    "  --kernels NAME     kernel path: scalar, avx2, avxvnni, avx512, neon (default: best)\n"
    "  --json             print JSON instead of a table\n"
    "  --formats LIST     f32,w8a8,w4a8,w8a16,w4a16,w3a16 or all (default: all)\n"
    "  --shapes LIST      matrix shapes OUTxIN, or none\n"
    "                     (default: 4096x14336,14336x4096,896x4864,2048x8192)\n"
    "  --models LIST      smollm2-135m, qwen2.5-0.5b, llama-3.2-1b, llama-3.1-8b, tiny, or none\n"
    "                     (default: qwen2.5-0.5b)\n"
    "  --model PATH       time this model instead of random ones: a GGUF file, a Hugging Face\n"
    "                     folder or a bundled name (stories260K); each packed format is its RTN\n"
    "                     recipe (w4a8 with G = 128 and fp16 scales is rtn:w4g128a8-f16), f32\n"
    "                     the matrices as stored (the row shows their type, e.g. f16); the\n"
    "                     head stays as stored\n"
    "  --group G          columns per group of the packed formats: a multiple of 32, or 0 for\n"
    "                     one group per row (default: 128)\n"
    "  --fp32-scales      store scales in fp32 (default: fp16)\n"
    "  --quantize-head    store the output head in the measured format (default: fp32)\n"
    "  --prefill N        prompt tokens of the prefill measurement (default: 512)\n"
    "  --decode N         tokens of the decode measurement (default: 32)\n"
    "  --gemm-rows N      activation rows of the matrix-matrix measurement (default: 512)\n"
    "  --seconds S        minimum timed seconds per measurement (default: 0.5)\n"
    "  --write-gguf PATH  also write the random model of --models (one name) as a GGUF file with\n"
    "                     F16 matrices, for timing other engines on the same file\n"
    "  --tokenizer-from F GGUF file whose tokenizer (and vocabulary size) --write-gguf copies\n";

// Returns whether `name` is an item of the comma-separated `list` ("all" lists everything).
static bool list_has(const char *list, const char *name) {
    if (strcmp(list, "all") == 0) {
        return true;
    }
    size_t n = strlen(name);
    for (const char *p = list; *p;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == n && strncmp(p, name, n) == 0) {
            return true;
        }
        p += len + (end ? 1 : 0);
    }
    return false;
}

// Checks that every item of `list` is one of `names`. Returns 0, or -1 with an error.
static int check_list(const char *option, const char *list, const char *const *names, int n_names) {
    if (strcmp(list, "all") == 0 || strcmp(list, "none") == 0) {
        return 0;
    }
    // strtok skips empty items, so an empty list or a doubled comma would go unnoticed.
    size_t len = strlen(list);
    if (len == 0 || list[0] == ',' || list[len - 1] == ',' || strstr(list, ",,")) {
        return err_set("%s: empty name in '%s'; give names separated by single commas, or none",
                       option, list);
    }
    char *copy = xstrdup(list);
    int rc = 0;
    for (char *item = strtok(copy, ","); item && rc == 0; item = strtok(NULL, ",")) {
        bool known = false;
        for (int i = 0; i < n_names; i++) {
            known = known || strcmp(item, names[i]) == 0;
        }
        if (!known) {
            rc = err_set("%s: unknown name '%s'; run qbias bench --help for the accepted names",
                         option, item);
        }
    }
    free(copy);
    return rc;
}

static int parse_int_arg(const char *option, const char *value, int min, int max, int *out) {
    char *end = NULL;
    long v = strtol(value, &end, 10);
    if (!*value || *end || v < min || v > max) {
        return err_set("%s: invalid value '%s'; expected an integer %d..%d", option, value, min,
                       max);
    }
    *out = (int)v;
    return 0;
}

static int parse_options(int argc, char **argv, BenchOptions *o) {
    *o = (BenchOptions){.min_seconds = 0.5,
                        .group = 128,
                        .fp16_scales = true,
                        .shapes = "4096x14336,14336x4096,896x4864,2048x8192",
                        .formats = "all",
                        .models = "qwen2.5-0.5b",
                        .prefill_tokens = 512,
                        .decode_tokens = 32,
                        .gemm_rows = 512};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *value = i + 1 < argc ? argv[i + 1] : NULL;
        bool takes_value = true;
        int rc = 0;
        if (strcmp(a, "--json") == 0) {
            o->json = true;
            takes_value = false;
        } else if (strcmp(a, "--fp32-scales") == 0) {
            o->fp16_scales = false;
            takes_value = false;
        } else if (strcmp(a, "--quantize-head") == 0) {
            o->quantize_head = true;
            takes_value = false;
        } else if (strncmp(a, "--", 2) != 0) {
            return err_set("unexpected argument '%s' (options start with --, and --json, "
                           "--fp32-scales and --quantize-head take no value)\n%s",
                           a, usage);
        } else if (!value) {
            return err_set("%s: missing value, or unknown option\n%s", a, usage);
        } else if (strcmp(a, "--threads") == 0) {
            rc = parse_int_arg(a, value, 1, 4096, &o->threads);
        } else if (strcmp(a, "--write-gguf") == 0) {
            o->write_gguf = value;
        } else if (strcmp(a, "--tokenizer-from") == 0) {
            o->tokenizer_from = value;
        } else if (strcmp(a, "--kernels") == 0) {
            o->kernels = value;
        } else if (strcmp(a, "--formats") == 0) {
            o->formats = value;
        } else if (strcmp(a, "--shapes") == 0) {
            o->shapes = value;
        } else if (strcmp(a, "--models") == 0) {
            o->models = value;
            o->models_given = true;
        } else if (strcmp(a, "--model") == 0) {
            o->model_file = value;
        } else if (strcmp(a, "--group") == 0) {
            rc = parse_int_arg(a, value, 0, 1 << 20, &o->group);
            if (rc == 0 && o->group % KQ_BLOCK_COLS != 0) {
                rc = err_set("--group: %d is not a multiple of 32 (use 0 for one group per row)",
                             o->group);
            }
        } else if (strcmp(a, "--prefill") == 0) {
            rc = parse_int_arg(a, value, 1, 1 << 16, &o->prefill_tokens);
        } else if (strcmp(a, "--decode") == 0) {
            rc = parse_int_arg(a, value, 1, 1 << 16, &o->decode_tokens);
        } else if (strcmp(a, "--gemm-rows") == 0) {
            rc = parse_int_arg(a, value, 1, 1 << 16, &o->gemm_rows);
        } else if (strcmp(a, "--seconds") == 0) {
            char *end = NULL;
            o->min_seconds = strtod(value, &end);
            if (*end || !(o->min_seconds > 0 && o->min_seconds <= 600)) {
                rc = err_set("--seconds: invalid value '%s'; expected 0 < S <= 600", value);
            }
        } else {
            return err_set("unknown option '%s'\n%s", a, usage);
        }
        if (rc < 0) {
            return -1;
        }
        i += takes_value ? 1 : 0;
    }

    const char *format_names[ARRAY_LEN(all_formats)], *model_names[ARRAY_LEN(all_shapes)];
    for (size_t i = 0; i < ARRAY_LEN(all_formats); i++) {
        format_names[i] = all_formats[i].name;
    }
    for (size_t i = 0; i < ARRAY_LEN(all_shapes); i++) {
        model_names[i] = all_shapes[i].name;
    }
    if (check_list("--formats", o->formats, format_names, (int)ARRAY_LEN(all_formats)) < 0 ||
        check_list("--models", o->models, model_names, (int)ARRAY_LEN(all_shapes)) < 0) {
        return -1;
    }
    if (o->model_file && (o->models_given || o->quantize_head || o->write_gguf)) {
        return err_set("--model times one model file and cannot be combined with --models, "
                       "--quantize-head (the recipes keep a real model's head as stored) or "
                       "--write-gguf");
    }
    if (o->model_file) {
        o->models = "none";
    }
    if (o->write_gguf && (!o->tokenizer_from || strchr(o->models, ',') ||
                          strcmp(o->models, "all") == 0 || strcmp(o->models, "none") == 0)) {
        return err_set("--write-gguf needs --tokenizer-from GGUF and exactly one name in --models");
    }
    return 0;
}

// ----------------------------------------------------------------------------
// Random weights

// splitmix64: fast, and seeded per block so threads fill in parallel reproducibly.
static uint64_t next_random(uint64_t *state) {
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void fill_random_bytes(uint8_t *p, size_t n, uint64_t seed) {
    const size_t block = 1 << 20;
    long n_blocks = (long)((n + block - 1) / block);
#pragma omp parallel for schedule(static) if (n_blocks > 1)
    for (long b = 0; b < n_blocks; b++) {
        uint64_t state = seed ^ ((uint64_t)b * 0x632be59bd9b4e019ull);
        size_t end = (size_t)(b + 1) * block < n ? (size_t)(b + 1) * block : n;
        for (size_t i = (size_t)b * block; i < end; i += 8) {
            uint64_t r = next_random(&state);
            memcpy(p + i, &r, end - i < 8 ? end - i : 8);
        }
    }
}

// Uniform values in [-limit, limit].
static void fill_random_floats(float *p, size_t n, float limit, uint64_t seed) {
    const size_t block = 1 << 18;
    long n_blocks = (long)((n + block - 1) / block);
#pragma omp parallel for schedule(static) if (n_blocks > 1)
    for (long b = 0; b < n_blocks; b++) {
        uint64_t state = seed ^ ((uint64_t)b * 0x632be59bd9b4e019ull);
        size_t end = (size_t)(b + 1) * block < n ? (size_t)(b + 1) * block : n;
        for (size_t i = (size_t)b * block; i < end; i++) {
            double u = (double)(next_random(&state) >> 11) / 9007199254740992.0;
            p[i] = (float)((2.0 * u - 1.0) * limit);
        }
    }
}

// The packed format of a bench format under the options.
static QFormat bench_qformat(const BenchFormat *f, const BenchOptions *o) {
    return (QFormat){.code_bits = f->bits,
                     .group = o->group,
                     .symmetric = true,
                     .fp16_scales = o->fp16_scales,
                     .int8_acts = f->int8_acts};
}

// Bytes a [rows, cols] weight takes in a format.
static double weight_bytes(int rows, int cols, const BenchFormat *f, const BenchOptions *o) {
    if (f->bits == 0) {
        return 4.0 * rows * cols;
    }
    QFormat q = bench_qformat(f, o);
    return qformat_bits_per_weight(&q, rows, cols) / 8.0 * rows * cols;
}

// Makes a random [rows, cols] weight in a format, with values of standard deviation about
// 1 / sqrt(cols) so activations keep their scale through a model. Returns -1 with an error when
// memory runs out.
static int random_weight(Weight *w, const char *name, int rows, int cols, const BenchFormat *f,
                         const BenchOptions *o, uint64_t seed) {
    *w = (Weight){.name = name, .rows = rows, .cols = cols, .type = GGML_TYPE_F32};
    // Uniform on [-a, a] has standard deviation a / sqrt(3).
    float limit = sqrtf(3.0f / (float)cols);
    if (f->bits == 0) {
        float *values = malloc((size_t)rows * (size_t)cols * sizeof(float));
        if (!values) {
            return err_set("cannot allocate %.2f GB for a %dx%d fp32 weight", 4e-9 * rows * cols,
                           rows, cols);
        }
        fill_random_floats(values, (size_t)rows * (size_t)cols, limit, seed);
        w->data = w->owned = values;
        return 0;
    }

    QFormat format = bench_qformat(f, o);
    QMatrix *m = qmatrix_new(rows, cols, &format);
    if (!m) {
        return err_set("cannot allocate %.2f GB for a %dx%d %s weight",
                       weight_bytes(rows, cols, f, o) / 1e9, rows, cols, f->name);
    }
    KQuantMatrix *v = &m->view;
    size_t code_bytes = (size_t)((const uint8_t *)v->scales - v->codes);
    fill_random_bytes((uint8_t *)v->codes, code_bytes, seed);
    // Codes are uniform on [0, 2^b), so u - z has standard deviation about 2^b / sqrt(12).
    float scale = limit / sqrtf(3.0f) * sqrtf(12.0f) / (float)(1 << f->bits);
    size_t n_scales = (m->nbytes - (size_t)((const unsigned char *)v->scales - (const unsigned char *)m)) /
                      (format.fp16_scales ? 2 : 4);
    for (size_t i = 0; i < n_scales; i++) {
        if (format.fp16_scales) {
            ((uint16_t *)v->scales)[i] = fp32_to_fp16(scale);
        } else {
            ((float *)v->scales)[i] = scale;
        }
    }
    w->packed = m;
    w->data = w->owned = m;
    return 0;
}

// ----------------------------------------------------------------------------
// The machine

// Size of the largest cache that Linux lists for CPU 0 (sysfs). glibc's sysconf value can be
// wrong under virtualization (384 MiB for a 32 MiB L3, glibc 2.36 on an AMD EPYC guest).
static size_t last_level_cache_bytes(void) {
    size_t best = 0;
    for (int index = 0; index < 8; index++) {
        char path[96];
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/size", index);
        FILE *f = fopen(path, "r");
        if (!f) {
            continue;
        }
        unsigned long size = 0;
        char unit = 0;
        if (fscanf(f, "%lu%c", &size, &unit) >= 1) {
            if (unit == 'K') {
                size *= 1024ul;
            } else if (unit == 'M') {
                size *= 1048576ul;
            }
            best = size > best ? size : best;
        }
        fclose(f);
    }
    // NOTE: without sysfs, 32 MiB is assumed (a server-class L3).
    return best ? best : (size_t)32 << 20;
}

// A buffer 16 times the last-level cache that all threads read to measure the read bandwidth.
typedef struct {
    uint64_t *buffer;
    size_t n;     // 64-bit words
    int threads;
} BandwidthProbe;

static BandwidthProbe bandwidth_probe_new(int threads) {
    BandwidthProbe p = {.n = last_level_cache_bytes() * 16 / sizeof(uint64_t), .threads = threads};
    p.buffer = xmalloc(p.n * sizeof(uint64_t));
    fill_random_bytes((uint8_t *)p.buffer, p.n * sizeof(uint64_t), 1);
    return p;
}

// Returns the read rate (bytes/s) of one pass of all threads over the buffer.
static double bandwidth_pass(const BandwidthProbe *p) {
    uint64_t total = 0;
    const uint64_t *buffer = p->buffer;
    size_t n = p->n;
    double t0 = now_seconds();
    // Eight independent XOR chains per thread; the compiler may vectorize them, which only makes
    // the loop keep up with memory better.
#pragma omp parallel num_threads(p->threads) reduction(^ : total)
    {
        uint64_t acc[8] = {0};
#pragma omp for schedule(static)
        for (size_t i = 0; i < n; i += 8) {
            for (int j = 0; j < 8; j++) {
                acc[j] ^= buffer[i + j];
            }
        }
        for (int j = 0; j < 8; j++) {
            total ^= acc[j];
        }
    }
    double seconds = now_seconds() - t0;
    // The result feeds a volatile so the reads cannot be removed.
    volatile uint64_t sink = total;
    (void)sink;
    return (double)(n * sizeof(uint64_t)) / seconds;
}

// Best read rate over at least 3 passes and min_seconds (at most 51 passes).
static double measure_bandwidth(const BandwidthProbe *p, double min_seconds) {
    double best = 0, start = now_seconds();
    for (int pass = 0; pass < 3 || now_seconds() - start < min_seconds; pass++) {
        best = fmax(best, bandwidth_pass(p));
        if (pass > 50) {
            break;
        }
    }
    return best;
}

// Operations per second of the table's int8 or fp32 throughput loop on every thread.
static double measure_peak(const KernelTable *table, int threads, bool int8, double min_seconds) {
    long iterations = 1 << 20;
    double best = 0, start = now_seconds();
    while (now_seconds() - start < min_seconds) {
        double ops = 0, t0 = now_seconds();
#pragma omp parallel num_threads(threads) reduction(+ : ops)
        {
            int32_t int_sink = 0;
            float float_sink = 0;
            ops += int8 ? table->peak_int8(iterations, &int_sink)
                        : table->peak_fp32(iterations, &float_sink);
            volatile float keep = (float)int_sink + float_sink;
            (void)keep;
        }
        double seconds = now_seconds() - t0;
        best = fmax(best, ops / seconds);
        if (seconds < 0.05) {
            iterations *= 2;
        }
    }
    return best;
}

// ----------------------------------------------------------------------------
// Kernels on matrix shapes

typedef struct {
    int rows, cols;
    const BenchFormat *format;
    double bytes;        // bytes of one weight matrix
    int copies;          // matrices the matrix-vector loop rotates through
    double gemv_seconds; // per product: the best round (one pass over the copies)
    double bandwidth;    // bytes/s: the best bandwidth pass between those rounds
    double gemm_seconds; // per product of gemm_rows rows
} KernelResult;

static void free_weight(Weight *w) {
    free(w->owned);
    w->owned = NULL;
}

#define MAX_COPIES 512

static int bench_shape(int rows, int cols, const BenchFormat *f, const BenchOptions *o,
                       const BandwidthProbe *probe, KernelResult *r) {
    *r = (KernelResult){.rows = rows, .cols = cols, .format = f};
    r->bytes = weight_bytes(rows, cols, f, o);
    // Copies totalling at least four times the last-level cache, so each product reads memory.
    // NOTE: a matrix under 4 x LLC / 512 bytes (256 KB with a 32 MiB LLC) gets only 512 copies.
    // Part of its reads may then hit the cache, and the table shows the count.
    double target = 4.0 * (double)last_level_cache_bytes();
    r->copies = (int)ceil(target / r->bytes);
    if (r->copies < 1) {
        r->copies = 1;
    } else if (r->copies > MAX_COPIES) {
        r->copies = MAX_COPIES;
    }
    Weight *w = xcalloc((size_t)r->copies, sizeof(Weight));
    int rc = 0;
    for (int c = 0; c < r->copies && rc == 0; c++) {
        rc = random_weight(&w[c], "bench", rows, cols, f, o, 1000 + (uint64_t)c);
    }
    int m = o->gemm_rows;
    float *x = xmalloc((size_t)m * (size_t)cols * sizeof(float));
    float *y = xmalloc((size_t)m * (size_t)rows * sizeof(float));
    fill_random_floats(x, (size_t)m * (size_t)cols, 1.0f, 7);

    if (rc == 0) {
        // Matrix-vector: one round over the copies to warm up, then timed rounds, each after a
        // bandwidth pass. Memory speed drifts on shared machines (runs minutes apart on one
        // virtual machine measured 45 to 71 GB/s), so the ratio compares the best round with the
        // best bandwidth of the same moments, not with the bandwidth at the start.
        for (int c = 0; c < r->copies; c++) {
            linear_forward(&w[c], x, 1, y);
        }
        r->gemv_seconds = INFINITY;
        double start = now_seconds();
        for (int round = 0; round < 3 || now_seconds() - start < o->min_seconds; round++) {
            r->bandwidth = fmax(r->bandwidth, bandwidth_pass(probe));
            double t0 = now_seconds();
            for (int c = 0; c < r->copies; c++) {
                linear_forward(&w[c], x, 1, y);
            }
            r->gemv_seconds = fmin(r->gemv_seconds, (now_seconds() - t0) / r->copies);
        }

        // Matrix-matrix on one copy, after one untimed product.
        linear_forward(&w[0], x, m, y);
        long count = 0;
        start = now_seconds();
        while (now_seconds() - start < o->min_seconds || count < 1) {
            linear_forward(&w[0], x, m, y);
            count++;
        }
        r->gemm_seconds = (now_seconds() - start) / (double)count;
    }
    for (int c = 0; c < r->copies; c++) {
        free_weight(&w[c]);
    }
    free(w);
    free(x);
    free(y);
    return rc;
}

// ----------------------------------------------------------------------------
// End-to-end models

typedef struct {
    const char *model;       // a shape's name, or the --model argument
    const BenchFormat *format;
    const char *format_name; // the format's, or for --model's unpacked row the stored type (f16)
    const char *embeddings_type; // storage of the embeddings: "f32" in random models
    const char *head_type;       // of the head: "f32" or the --quantize-head format in random models
    bool skipped;         // the model does not fit in memory
    double weight_bytes;  // every matrix the decode of one token reads (blocks and head)
    double total_bytes;   // the model in memory, embeddings included
    double prefill_tok_s;
    double decode_tok_s;
    double bandwidth;     // bytes/s: the best of 3 bandwidth passes just before the decode
} ModelResult;

// Bytes of a model in a format: the blocks' matrices, the head, and the embeddings.
static void model_bytes(const ModelShape *s, const BenchFormat *f, const BenchOptions *o,
                        double *read_per_token, double *total) {
    int q_dim = s->n_head * s->head_dim, kv_dim = s->n_head_kv * s->head_dim;
    double block = weight_bytes(q_dim, s->n_embd, f, o) + 2 * weight_bytes(kv_dim, s->n_embd, f, o) +
                   weight_bytes(s->n_embd, q_dim, f, o) + 2 * weight_bytes(s->n_ff, s->n_embd, f, o) +
                   weight_bytes(s->n_embd, s->n_ff, f, o);
    const BenchFormat f32 = {"f32", 0, false};
    double head = weight_bytes(s->n_vocab, s->n_embd, o->quantize_head ? f : &f32, o);
    double embeddings = 4.0 * s->n_vocab * s->n_embd;
    *read_per_token = block * s->n_layer + head;
    *total = block * s->n_layer + embeddings + (s->tied_output && !o->quantize_head ? 0 : head);
}

static void bench_model_free(Model *m) {
    if (!m) {
        return;
    }
    for (int l = 0; m->layers && l < m->config.n_layer; l++) {
        Layer *layer = &m->layers[l];
        Weight *weights[] = {&layer->attn_q,   &layer->attn_k, &layer->attn_v, &layer->attn_output,
                             &layer->ffn_gate, &layer->ffn_up, &layer->ffn_down};
        for (size_t i = 0; i < ARRAY_LEN(weights); i++) {
            free_weight(weights[i]);
        }
    }
    if (m->output.owned != m->token_embd.owned) {
        free_weight(&m->output);
    }
    free_weight(&m->token_embd);
    free(m->layers);
    for (int i = 0; i < m->n_owned_vectors; i++) {
        free(m->owned_vectors[i]);
    }
    free(m->owned_vectors);
    free(m->variant);
    free(m);
}

// Builds a random model of a shape directly in a format. Embeddings are fp32; the head is fp32
// (tied to the embeddings where the real model ties them) unless the options quantize it.
static Model *random_model(const ModelShape *s, const BenchFormat *f, const BenchOptions *o) {
    Model *m = xcalloc(1, sizeof *m);
    m->variant = xstrdup(f->name);
    ModelConfig *c = &m->config;
    *c = (ModelConfig){.arch = ARCH_LLAMA,
                       .n_vocab = s->n_vocab,
                       .n_embd = s->n_embd,
                       .n_layer = s->n_layer,
                       .n_head = s->n_head,
                       .n_head_kv = s->n_head_kv,
                       .head_dim = s->head_dim,
                       .n_ff = s->n_ff,
                       .n_ctx_train = 4096,
                       .rope_dim = s->head_dim,
                       .rope_freq_base = s->rope_freq_base,
                       .norm_eps = 1e-5f,
                       .tied_output = s->tied_output && !o->quantize_head};
    snprintf(c->arch_name, sizeof c->arch_name, "llama");
    model_config_set_llama_rules(c);

    size_t n_floats = (size_t)s->n_embd * (1 + 2 * (size_t)s->n_layer);
    float *norms = xmalloc(n_floats * sizeof(float));
    for (size_t i = 0; i < n_floats; i++) {
        norms[i] = 1.0f;
    }
    model_own_vector(m, norms);
    m->output_norm = norms;
    m->layers = xcalloc((size_t)s->n_layer, sizeof(Layer));

    const BenchFormat f32 = {"f32", 0, false};
    int q_dim = s->n_head * s->head_dim, kv_dim = s->n_head_kv * s->head_dim;
    uint64_t seed = 1;
    int rc = random_weight(&m->token_embd, "token_embd.weight", s->n_vocab, s->n_embd, &f32, o,
                           seed++);
    if (rc == 0 && c->tied_output) {
        m->output = m->token_embd;
    } else if (rc == 0) {
        rc = random_weight(&m->output, "output.weight", s->n_vocab, s->n_embd,
                           o->quantize_head ? f : &f32, o, seed++);
    }
    for (int l = 0; l < s->n_layer && rc == 0; l++) {
        Layer *layer = &m->layers[l];
        layer->attn_norm = norms + (size_t)s->n_embd * (1 + 2 * (size_t)l);
        layer->ffn_norm = layer->attn_norm + s->n_embd;
        rc = random_weight(&layer->attn_q, "attn_q", q_dim, s->n_embd, f, o, seed++);
        rc = rc ? rc : random_weight(&layer->attn_k, "attn_k", kv_dim, s->n_embd, f, o, seed++);
        rc = rc ? rc : random_weight(&layer->attn_v, "attn_v", kv_dim, s->n_embd, f, o, seed++);
        rc = rc ? rc : random_weight(&layer->attn_output, "attn_output", s->n_embd, q_dim, f, o, seed++);
        rc = rc ? rc : random_weight(&layer->ffn_gate, "ffn_gate", s->n_ff, s->n_embd, f, o, seed++);
        rc = rc ? rc : random_weight(&layer->ffn_up, "ffn_up", s->n_ff, s->n_embd, f, o, seed++);
        rc = rc ? rc : random_weight(&layer->ffn_down, "ffn_down", s->n_embd, s->n_ff, f, o, seed++);
    }
    if (rc < 0) {
        bench_model_free(m);
        return NULL;
    }
    return m;
}

static long available_memory_bytes(void) {
    long pages = sysconf(_SC_AVPHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    return pages > 0 && page > 0 ? pages * page : -1;
}

// Runs one prefill of prefill_tokens and a decode of decode_tokens on m (each from an empty cache,
// as llama-bench's pp and tg tests do) and stores their speeds and the bandwidth in r. Logits are
// computed for the last prompt token and for every decoded token.
static int time_model(const Model *m, const BenchOptions *o, const BandwidthProbe *probe,
                      ModelResult *r) {
    const ModelConfig *c = &m->config;
    int n_ctx = o->prefill_tokens > o->decode_tokens ? o->prefill_tokens : o->decode_tokens;
    KVCache *kv = kv_cache_new(c, 1, n_ctx);
    if (!kv) {
        return -1;
    }
    int n = o->prefill_tokens;
    int *tokens = xmalloc((size_t)n * sizeof(int)), *pos = xmalloc((size_t)n * sizeof(int));
    int *seq = xcalloc((size_t)n, sizeof(int));
    uint64_t state = 5;
    for (int i = 0; i < n; i++) {
        tokens[i] = (int)(next_random(&state) % (uint64_t)c->n_vocab);
        pos[i] = i;
    }
    float *hidden = xmalloc((size_t)n * (size_t)c->n_embd * sizeof(float));
    float *logits = xmalloc((size_t)c->n_vocab * sizeof(float));
    int rc = 0;

    // Prefill: one batch of n tokens.
    Batch batch = {.n_tokens = n, .tokens = tokens, .pos = pos, .seq = seq};
    double t0 = now_seconds();
    rc = model_forward(m, kv, &batch, hidden);
    if (rc == 0) {
        model_logits(m, hidden + (size_t)(n - 1) * c->n_embd, 1, logits);
        r->prefill_tok_s = n / (now_seconds() - t0);
    }

    // Decode: one token per step, each the argmax of the last logits. Its roofline uses the
    // bandwidth measured just before, for the reason given at bench_shape.
    kv_cache_clear(kv, -1);
    r->bandwidth = measure_bandwidth(probe, 0);
    int token = tokens[0];
    t0 = now_seconds();
    for (int i = 0; i < o->decode_tokens && rc == 0; i++) {
        Batch one = {.n_tokens = 1, .tokens = &token, .pos = &i, .seq = seq};
        rc = model_forward(m, kv, &one, hidden);
        model_logits(m, hidden, 1, logits);
        int best = 0;
        for (int v = 1; v < c->n_vocab; v++) {
            best = logits[v] > logits[best] ? v : best;
        }
        token = best;
    }
    if (rc == 0) {
        r->decode_tok_s = o->decode_tokens / (now_seconds() - t0);
    }

    free(tokens);
    free(pos);
    free(seq);
    free(hidden);
    free(logits);
    kv_cache_free(kv);
    return rc;
}

// Times a random model of shape s built directly in format f.
static int bench_model(const ModelShape *s, const BenchFormat *f, const BenchOptions *o,
                       const BandwidthProbe *probe, ModelResult *r) {
    *r = (ModelResult){.model = s->name,
                       .format = f,
                       .format_name = f->name,
                       .embeddings_type = "f32",
                       .head_type = o->quantize_head ? f->name : "f32"};
    model_bytes(s, f, o, &r->weight_bytes, &r->total_bytes);
    long available = available_memory_bytes();
    if (available > 0 && r->total_bytes > 0.85 * (double)available) {
        log_warn("bench: %s in %s needs %.1f GB but %.1f GB are available; skipped", s->name,
                 f->name, r->total_bytes / 1e9, (double)available / 1e9);
        r->skipped = true;
        return 0;
    }
    Model *m = random_model(s, f, o);
    if (!m) {
        return -1;
    }
    int rc = time_model(m, o, probe, r);
    bench_model_free(m);
    return rc;
}

// ----------------------------------------------------------------------------
// A model file (--model)

// Stores pointers to the 7 block matrices of layer l in weights.
static void layer_weights(const Model *m, int l, const Weight *weights[7]) {
    const Layer *layer = &m->layers[l];
    const Weight *all[7] = {&layer->attn_q,   &layer->attn_k, &layer->attn_v, &layer->attn_output,
                            &layer->ffn_gate, &layer->ffn_up, &layer->ffn_down};
    memcpy(weights, all, sizeof all);
}

// Computes the bytes of m's matrices that one decoded token reads (blocks and head), and of all its
// matrices (embeddings included, a tied head once).
static void loaded_model_bytes(const Model *m, double *read_per_token, double *total) {
    double blocks = 0;
    for (int l = 0; l < m->config.n_layer; l++) {
        const Weight *weights[7];
        layer_weights(m, l, weights);
        for (int i = 0; i < 7; i++) {
            blocks += (double)weight_nbytes(weights[i]);
        }
    }
    double head = (double)weight_nbytes(&m->output);
    double embeddings = (double)weight_nbytes(&m->token_embd);
    *read_per_token = blocks + head;
    *total = blocks + embeddings + (m->output.data == m->token_embd.data ? 0 : head);
}

// Writes the recipe that packs a real model in format f: round-to-nearest with the bench's group
// and scales, e.g. rtn:w4g128a8-f16.
static void format_recipe(const BenchFormat *f, const BenchOptions *o, char *text, size_t size) {
    char group[24] = "c";
    if (o->group > 0) {
        snprintf(group, sizeof group, "g%d", o->group);
    }
    snprintf(text, size, "rtn:w%d%s%s%s", f->bits, group, f->int8_acts ? "a8" : "",
             o->fp16_scales ? "-f16" : "");
}

// Times the --model base in format f: the base itself for f32, else its RTN variant.
static int bench_file_model(const Model *base, const BenchFormat *f, const BenchOptions *o,
                            const BandwidthProbe *probe, ModelResult *r) {
    *r = (ModelResult){.model = o->model_file,
                       .format = f,
                       .format_name = f->name,
                       .embeddings_type = ggml_type_name(base->token_embd.type),
                       .head_type = base->output.packed ? "packed" : ggml_type_name(base->output.type)};
    if (f->bits == 0) {
        // The blocks as stored, which for F16 or BF16 files are not f32: the row shows their type.
        r->format_name = ggml_type_name(base->layers[0].attn_q.type);
        loaded_model_bytes(base, &r->weight_bytes, &r->total_bytes);
        return time_model(base, o, probe, r);
    }

    // The packed matrices must fit next to the base model (already loaded).
    double packed = 0;
    QFormat format = bench_qformat(f, o);
    for (int l = 0; l < base->config.n_layer; l++) {
        const Weight *weights[7];
        layer_weights(base, l, weights);
        for (int i = 0; i < 7; i++) {
            if (weights[i]->rows > 0) {
                packed += qformat_bits_per_weight(&format, weights[i]->rows, weights[i]->cols) / 8 *
                          weights[i]->rows * weights[i]->cols;
            }
        }
    }
    long available = available_memory_bytes();
    if (available > 0 && packed > 0.85 * (double)available) {
        log_warn("bench: %s in %s needs %.1f GB more but %.1f GB are available; skipped",
                 o->model_file, f->name, packed / 1e9, (double)available / 1e9);
        loaded_model_bytes(base, &r->weight_bytes, &r->total_bytes);
        r->skipped = true;
        return 0;
    }

    char text[64];
    format_recipe(f, o, text, sizeof text);
    QuantRecipe recipe;
    char error[512];
    if (quant_recipe_parse(text, &recipe, error, sizeof error) != 0) {
        return err_set("bench: the recipe %s of format %s is invalid (%s)", text, f->name, error);
    }
    VariantOptions vo;
    variant_options_default(&vo);
    Model *variant = variant_build(base, &recipe, &vo, NULL, NULL);
    if (!variant) {
        return -1;
    }
    loaded_model_bytes(variant, &r->weight_bytes, &r->total_bytes);
    int rc = time_model(variant, o, probe, r);
    model_free(variant);
    return rc;
}

// Opens --model as the other commands do: a Hugging Face folder, or a GGUF file or bundled name
// that the resolver finds. Only an unquantized model can be timed in every format.
static Model *open_bench_model(const char *arg) {
    Resolver *resolver = resolver_new(NULL);
    char *path = dir_exists(arg) ? xstrdup(arg) : resolver_find_model(resolver, arg);
    resolver_free(resolver);
    if (!path) {
        return NULL;
    }
    Model *m = model_open(path);
    free(path);
    if (!m) {
        return NULL;
    }
    if (strcmp(m->variant, "fp32") != 0) {
        err_set("--model %s: this file holds the quantized variant %s, which bench cannot pack "
                "again; give the unquantized model it was made from",
                arg, m->variant);
        model_free(m);
        return NULL;
    }
    return m;
}

// ----------------------------------------------------------------------------
// A random model as a GGUF file

// Adds a random F16 matrix [rows, cols] (ggml shape [cols, rows]) to the writer; the caller keeps
// *data until the file is written.
static void add_random_f16(GGUFWriter *w, const char *name, int rows, int cols, uint64_t seed,
                           uint16_t **data) {
    // Standard deviation 1 / sqrt(cols), as random_weight's.
    size_t n = (size_t)rows * (size_t)cols;
    float *values = xmalloc(n * sizeof(float));
    fill_random_floats(values, n, sqrtf(3.0f / (float)cols), seed);
    *data = xmalloc(n * sizeof(uint16_t));
    for (size_t i = 0; i < n; i++) {
        (*data)[i] = fp32_to_fp16(values[i]);
    }
    free(values);
    int64_t ne[2] = {cols, rows};
    gguf_writer_add_tensor(w, name, GGML_TYPE_F16, 2, ne, *data);
}

// Writes a random model of shape s with the tokenizer of o->tokenizer_from, whose vocabulary size
// replaces the shape's. Matrices are F16 and norms F32 (all ones), so another engine can load the
// file and quantize it itself. Returns 0, or -1 with an error.
static int write_random_gguf(const ModelShape *shape, const BenchOptions *o) {
    GGUFFile *tokenizer = gguf_open(o->tokenizer_from);
    if (!tokenizer) {
        return -1;
    }
    const GGUFArray *tokens = NULL;
    if (gguf_get_array(tokenizer, "tokenizer.ggml.tokens", &tokens) <= 0) {
        err_set("%s: no tokenizer.ggml.tokens array; --tokenizer-from needs a GGUF with a "
                "tokenizer", o->tokenizer_from);
        gguf_close(tokenizer);
        return -1;
    }
    ModelShape s = *shape;
    s.n_vocab = (int)tokens->n;
    if (s.n_vocab != shape->n_vocab) {
        log_warn("bench: the written %s model has the %d-token vocabulary of %s instead of %d",
                 s.name, s.n_vocab, o->tokenizer_from, shape->n_vocab);
    }
    double bytes = 2.0 * ((double)s.n_vocab * s.n_embd * (s.tied_output ? 1 : 2) +
                          (double)s.n_layer * s.n_embd *
                              (2.0 * s.n_head * s.head_dim + 2.0 * s.n_head_kv * s.head_dim + 3.0 * s.n_ff));
    long available = available_memory_bytes();
    if (available > 0 && bytes > 0.85 * (double)available) {
        gguf_close(tokenizer);
        return err_set("--write-gguf: the F16 %s model needs %.1f GB in memory but %.1f GB are "
                       "available; choose a smaller model",
                       s.name, bytes / 1e9, (double)available / 1e9);
    }

    GGUFWriter *w = gguf_writer_new();
    gguf_writer_set_string(w, "general.architecture", "llama");
    gguf_writer_set_string(w, "general.name", s.name);
    gguf_writer_set_u32(w, "llama.context_length", 4096);
    gguf_writer_set_u32(w, "llama.embedding_length", (uint32_t)s.n_embd);
    gguf_writer_set_u32(w, "llama.block_count", (uint32_t)s.n_layer);
    gguf_writer_set_u32(w, "llama.feed_forward_length", (uint32_t)s.n_ff);
    gguf_writer_set_u32(w, "llama.attention.head_count", (uint32_t)s.n_head);
    gguf_writer_set_u32(w, "llama.attention.head_count_kv", (uint32_t)s.n_head_kv);
    gguf_writer_set_u32(w, "llama.attention.key_length", (uint32_t)s.head_dim);
    gguf_writer_set_u32(w, "llama.attention.value_length", (uint32_t)s.head_dim);
    gguf_writer_set_u32(w, "llama.rope.dimension_count", (uint32_t)s.head_dim);
    gguf_writer_set_f32(w, "llama.rope.freq_base", s.rope_freq_base);
    gguf_writer_set_f32(w, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
    for (uint64_t i = 0; i < tokenizer->n_kv; i++) {
        if (strncmp(tokenizer->kv[i].key, "tokenizer.", 10) == 0) {
            gguf_writer_copy_key(w, tokenizer, tokenizer->kv[i].key);
        }
    }

    // Every matrix stays allocated until the file is written; the writer copies the names.
    int n_buffers = 2 + 7 * s.n_layer, n = 0;
    uint16_t **buffers = xcalloc((size_t)n_buffers, sizeof(uint16_t *));
    float *ones = xmalloc((size_t)s.n_embd * sizeof(float));
    for (int i = 0; i < s.n_embd; i++) {
        ones[i] = 1.0f;
    }
    int64_t norm_ne[1] = {s.n_embd};
    uint64_t seed = 100;
    add_random_f16(w, "token_embd.weight", s.n_vocab, s.n_embd, seed++, &buffers[n++]);
    if (!s.tied_output) {
        add_random_f16(w, "output.weight", s.n_vocab, s.n_embd, seed++, &buffers[n++]);
    }
    gguf_writer_add_tensor(w, "output_norm.weight", GGML_TYPE_F32, 1, norm_ne, ones);

    int q_dim = s.n_head * s.head_dim, kv_dim = s.n_head_kv * s.head_dim;
    const char *suffixes[7] = {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up",
                               "ffn_down"};
    const int rows[7] = {q_dim, kv_dim, kv_dim, s.n_embd, s.n_ff, s.n_ff, s.n_embd};
    const int cols[7] = {s.n_embd, s.n_embd, s.n_embd, q_dim, s.n_embd, s.n_embd, s.n_ff};
    for (int l = 0; l < s.n_layer; l++) {
        char name[96];
        for (int i = 0; i < 7; i++) {
            snprintf(name, sizeof name, "blk.%d.%s.weight", l, suffixes[i]);
            add_random_f16(w, name, rows[i], cols[i], seed++, &buffers[n++]);
        }
        snprintf(name, sizeof name, "blk.%d.attn_norm.weight", l);
        gguf_writer_add_tensor(w, name, GGML_TYPE_F32, 1, norm_ne, ones);
        snprintf(name, sizeof name, "blk.%d.ffn_norm.weight", l);
        gguf_writer_add_tensor(w, name, GGML_TYPE_F32, 1, norm_ne, ones);
    }

    log_info("bench: writing %s (%.2f GB)", o->write_gguf, bytes / 1e9);
    int rc = gguf_writer_write(w, o->write_gguf);
    gguf_writer_free(w);
    for (int i = 0; i < n; i++) {
        free(buffers[i]);
    }
    free(buffers);
    free(ones);
    gguf_close(tokenizer);
    return rc;
}

// ----------------------------------------------------------------------------
// The command

typedef struct {
    const char *kernels;
    int threads;
    double load_average; // 1-minute load average when the run started (-1 if unknown)
    double bandwidth;  // bytes/s
    double peak_int8;  // ops/s
    double peak_fp32;  // flop/s
    KernelResult *kernel_results;
    int n_kernel_results;
    ModelResult *model_results;
    int n_model_results;
} BenchReport;

static void print_table(const BenchReport *b, const BenchOptions *o) {
    printf("machine: %d threads, kernels %s (supported: %s), last-level cache %.0f MiB, load "
           "average %.2f at the start\n",
           b->threads, b->kernels, kernels_supported(), last_level_cache_bytes() / 1048576.0,
           b->load_average);
    printf("  read bandwidth   %8.1f GB/s\n", b->bandwidth / 1e9);
    printf("  peak int8        %8.1f GOPS\n", b->peak_int8 / 1e9);
    printf("  peak fp32        %8.1f GFLOPS\n", b->peak_fp32 / 1e9);

    if (b->n_kernel_results > 0) {
        char group[32];
        snprintf(group, sizeof group, o->group ? "group %d" : "one group per row", o->group);
        printf("\nkernels (%s, %s scales, symmetric; GEMV rotates copies over >= 4x the LLC; "
               "GEMM has %d rows)\n",
               group, o->fp16_scales ? "fp16" : "fp32", o->gemm_rows);
        printf("%-12s %-6s %8s %7s %10s %8s %7s  %10s %8s\n", "shape", "format", "bits/w",
               "copies", "GEMV GB/s", "BW GB/s", "of BW", "GEMM GOPS", "of peak");
        bool any_capped = false;
        for (int i = 0; i < b->n_kernel_results; i++) {
            const KernelResult *r = &b->kernel_results[i];
            char shape[32];
            snprintf(shape, sizeof shape, "%dx%d", r->rows, r->cols);
            double gbs = r->bytes / r->gemv_seconds;
            double gops = 2.0 * o->gemm_rows * r->rows * r->cols / r->gemm_seconds;
            double peak = r->format->int8_acts ? b->peak_int8 : b->peak_fp32;
            bool capped = r->copies * r->bytes < 4.0 * (double)last_level_cache_bytes();
            any_capped = any_capped || capped;
            printf("%-12s %-6s %8.3f %7d %10.1f %8.1f %7.2f%s %10.1f %8.2f\n", shape,
                   r->format->name, r->bytes * 8 / ((double)r->rows * r->cols), r->copies,
                   gbs / 1e9, r->bandwidth / 1e9, gbs / r->bandwidth, capped ? "*" : " ",
                   gops / 1e9, gops / peak);
        }
        if (any_capped) {
            printf("* marks a matrix whose %d copies total less than 4x the LLC: part of its reads "
                   "may come from the cache\n",
                   MAX_COPIES);
        }
    }

    if (b->n_model_results > 0) {
        if (o->model_file) {
            const ModelResult *r = &b->model_results[0];
            printf("\nend to end (%s; packed formats are RTN variants; embeddings %s; output head "
                   "%s; prefill %d tokens, decode %d tokens, each from an empty cache)\n",
                   o->model_file, r->embeddings_type, r->head_type, o->prefill_tokens,
                   o->decode_tokens);
        } else {
            printf("\nend to end (random weights; embeddings fp32; output head %s; prefill %d "
                   "tokens, decode %d tokens, each from an empty cache)\n",
                   o->quantize_head ? "in the measured format" : "fp32", o->prefill_tokens,
                   o->decode_tokens);
        }
        printf("%-14s %-6s %9s %9s %14s %13s %8s %15s %8s\n", "model", "format", "size GB",
               "read/tok", "prefill tok/s", "decode tok/s", "BW GB/s", "roofline tok/s",
               "of roof");
        for (int i = 0; i < b->n_model_results; i++) {
            const ModelResult *r = &b->model_results[i];
            if (r->skipped) {
                printf("%-14s %-6s %9.2f  skipped: does not fit in the available memory\n",
                       r->model, r->format_name, r->total_bytes / 1e9);
                continue;
            }
            double roofline = r->bandwidth / r->weight_bytes;
            printf("%-14s %-6s %9.2f %8.2fG %14.1f %13.1f %8.1f %15.1f %8.2f\n", r->model,
                   r->format_name, r->total_bytes / 1e9, r->weight_bytes / 1e9, r->prefill_tok_s,
                   r->decode_tok_s, r->bandwidth / 1e9, roofline, r->decode_tok_s / roofline);
        }
    }
}

static void print_json(const BenchReport *b, const BenchOptions *o) {
    cJSON *root = cJSON_CreateObject();
    cJSON *machine = cJSON_AddObjectToObject(root, "machine");
    cJSON_AddStringToObject(machine, "kernels", b->kernels);
    cJSON_AddStringToObject(machine, "kernels_supported", kernels_supported());
    cJSON_AddNumberToObject(machine, "threads", b->threads);
    cJSON_AddNumberToObject(machine, "load_average", b->load_average);
    cJSON_AddNumberToObject(machine, "llc_bytes", (double)last_level_cache_bytes());
    cJSON_AddNumberToObject(machine, "read_bandwidth_gb_s", b->bandwidth / 1e9);
    cJSON_AddNumberToObject(machine, "peak_int8_gops", b->peak_int8 / 1e9);
    cJSON_AddNumberToObject(machine, "peak_fp32_gflops", b->peak_fp32 / 1e9);

    cJSON *settings = cJSON_AddObjectToObject(root, "settings");
    cJSON_AddNumberToObject(settings, "group", o->group);
    cJSON_AddBoolToObject(settings, "fp16_scales", o->fp16_scales);
    cJSON_AddNumberToObject(settings, "gemm_rows", o->gemm_rows);
    cJSON_AddBoolToObject(settings, "quantize_head", o->quantize_head);
    cJSON_AddNumberToObject(settings, "prefill_tokens", o->prefill_tokens);
    cJSON_AddNumberToObject(settings, "decode_tokens", o->decode_tokens);

    cJSON *kernels = cJSON_AddArrayToObject(root, "kernels");
    for (int i = 0; i < b->n_kernel_results; i++) {
        const KernelResult *r = &b->kernel_results[i];
        cJSON *item = cJSON_CreateObject();
        double gbs = r->bytes / r->gemv_seconds;
        double gops = 2.0 * o->gemm_rows * r->rows * r->cols / r->gemm_seconds;
        double peak = r->format->int8_acts ? b->peak_int8 : b->peak_fp32;
        cJSON_AddNumberToObject(item, "rows", r->rows);
        cJSON_AddNumberToObject(item, "cols", r->cols);
        cJSON_AddStringToObject(item, "format", r->format->name);
        cJSON_AddNumberToObject(item, "bits_per_weight", r->bytes * 8 / ((double)r->rows * r->cols));
        cJSON_AddNumberToObject(item, "copies", r->copies);
        cJSON_AddBoolToObject(item, "copies_below_4x_llc",
                              r->copies * r->bytes < 4.0 * (double)last_level_cache_bytes());
        cJSON_AddNumberToObject(item, "gemv_gb_s", gbs / 1e9);
        cJSON_AddNumberToObject(item, "bandwidth_gb_s", r->bandwidth / 1e9);
        cJSON_AddNumberToObject(item, "gemv_of_bandwidth", gbs / r->bandwidth);
        cJSON_AddNumberToObject(item, "gemm_gops", gops / 1e9);
        cJSON_AddNumberToObject(item, "gemm_of_peak", gops / peak);
        cJSON_AddItemToArray(kernels, item);
    }

    cJSON *models = cJSON_AddArrayToObject(root, "models");
    for (int i = 0; i < b->n_model_results; i++) {
        const ModelResult *r = &b->model_results[i];
        cJSON *item = cJSON_CreateObject();
        cJSON_AddStringToObject(item, "model", r->model);
        cJSON_AddStringToObject(item, "format", r->format_name);
        cJSON_AddStringToObject(item, "embeddings", r->embeddings_type);
        cJSON_AddStringToObject(item, "head", r->head_type);
        cJSON_AddNumberToObject(item, "size_gb", r->total_bytes / 1e9);
        cJSON_AddNumberToObject(item, "read_per_token_gb", r->weight_bytes / 1e9);
        cJSON_AddBoolToObject(item, "skipped", r->skipped);
        if (!r->skipped) {
            double roofline = r->bandwidth / r->weight_bytes;
            cJSON_AddNumberToObject(item, "prefill_tok_s", r->prefill_tok_s);
            cJSON_AddNumberToObject(item, "decode_tok_s", r->decode_tok_s);
            cJSON_AddNumberToObject(item, "bandwidth_gb_s", r->bandwidth / 1e9);
            cJSON_AddNumberToObject(item, "roofline_tok_s", roofline);
            cJSON_AddNumberToObject(item, "decode_of_roofline", r->decode_tok_s / roofline);
        }
        cJSON_AddItemToArray(models, item);
    }
    char *text = cJSON_Print(root);
    printf("%s\n", text);
    free(text);
    cJSON_Delete(root);
}

// Parses "NxK,NxK" into shapes; returns the count, or -1 with an error.
static int parse_shapes(const char *list, int (**shapes)[2]) {
    *shapes = NULL;
    if (strcmp(list, "none") == 0) {
        return 0;
    }
    int n = 0;
    char *copy = xstrdup(list);
    for (char *item = strtok(copy, ","); item; item = strtok(NULL, ",")) {
        int rows = 0, cols = 0;
        char tail = 0;
        if (sscanf(item, "%dx%d%c", &rows, &cols, &tail) != 2 || rows < 1 || cols < 1 ||
            rows > (1 << 20) || cols > (1 << 20)) {
            err_set("--shapes: invalid shape '%s'; expected OUTxIN, e.g. 4096x14336", item);
            free(copy);
            free(*shapes);
            *shapes = NULL;
            return -1;
        }
        *shapes = xrealloc(*shapes, (size_t)(n + 1) * sizeof **shapes);
        (*shapes)[n][0] = rows;
        (*shapes)[n][1] = cols;
        n++;
    }
    free(copy);
    return n;
}

int bench_main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("%s", usage);
            return 0;
        }
    }
    BenchOptions o;
    int (*shapes)[2] = NULL;
    int n_shapes = 0;
    if (parse_options(argc, argv, &o) < 0 || (n_shapes = parse_shapes(o.shapes, &shapes)) < 0) {
        fprintf(stderr, "error: %s\n", err_msg());
        return 2;
    }
    if (o.kernels && !kernels_select(o.kernels)) {
        fprintf(stderr, "error: --kernels %s: unknown or not supported by this CPU (supported: %s)\n",
                o.kernels, kernels_supported());
        free(shapes);
        return 2;
    }
    kernels_set_threads(o.threads);

    // Other processes on the cores slow every measurement, and spinning OpenMP threads suffer most:
    // the load average goes into the report.
    double load[1] = {-1};
    getloadavg(load, 1);
    BenchReport b = {.kernels = kernels_get()->name, .threads = kernels_threads(), .load_average = load[0]};
    log_info("bench: measuring the machine (%d threads, kernels %s)", b.threads, b.kernels);
    BandwidthProbe probe = bandwidth_probe_new(b.threads);
    b.bandwidth = measure_bandwidth(&probe, o.min_seconds);
    b.peak_int8 = measure_peak(kernels_get(), b.threads, true, o.min_seconds);
    b.peak_fp32 = measure_peak(kernels_get(), b.threads, false, o.min_seconds);

    int rc = 0;
    if (o.write_gguf) {
        for (size_t i = 0; i < ARRAY_LEN(all_shapes) && rc == 0; i++) {
            if (strcmp(o.models, all_shapes[i].name) == 0) {
                rc = write_random_gguf(&all_shapes[i], &o);
            }
        }
    }
    b.kernel_results = xcalloc((size_t)n_shapes * ARRAY_LEN(all_formats) + 1, sizeof(KernelResult));
    for (int s = 0; s < n_shapes && rc == 0; s++) {
        for (size_t f = 0; f < ARRAY_LEN(all_formats) && rc == 0; f++) {
            if (!list_has(o.formats, all_formats[f].name)) {
                continue;
            }
            log_info("bench: %dx%d %s", shapes[s][0], shapes[s][1], all_formats[f].name);
            rc = bench_shape(shapes[s][0], shapes[s][1], &all_formats[f], &o, &probe,
                             &b.kernel_results[b.n_kernel_results++]);
        }
    }

    b.model_results = xcalloc((ARRAY_LEN(all_shapes) + 1) * ARRAY_LEN(all_formats), sizeof(ModelResult));
    Model *file_model = NULL;
    if (o.model_file && rc == 0) {
        log_info("bench: loading %s", o.model_file);
        file_model = open_bench_model(o.model_file);
        rc = file_model ? 0 : -1;
    }
    for (size_t f = 0; f < ARRAY_LEN(all_formats) && file_model && rc == 0; f++) {
        if (list_has(o.formats, all_formats[f].name)) {
            log_info("bench: %s %s", o.model_file, all_formats[f].name);
            rc = bench_file_model(file_model, &all_formats[f], &o, &probe,
                                  &b.model_results[b.n_model_results++]);
        }
    }
    model_free(file_model);
    for (size_t s = 0; s < ARRAY_LEN(all_shapes) && rc == 0; s++) {
        if (strcmp(o.models, "all") != 0 && !list_has(o.models, all_shapes[s].name)) {
            continue;
        }
        for (size_t f = 0; f < ARRAY_LEN(all_formats) && rc == 0; f++) {
            if (!list_has(o.formats, all_formats[f].name)) {
                continue;
            }
            log_info("bench: %s %s", all_shapes[s].name, all_formats[f].name);
            rc = bench_model(&all_shapes[s], &all_formats[f], &o, &probe,
                             &b.model_results[b.n_model_results++]);
        }
    }

    if (rc == 0) {
        if (o.json) {
            print_json(&b, &o);
        } else {
            print_table(&b, &o);
        }
    } else {
        fprintf(stderr, "error: %s\n", err_msg());
    }
    free(b.kernel_results);
    free(b.model_results);
    free(shapes);
    free(probe.buffer);
    return rc == 0 ? 0 : 1;
}
