// calib_data.c: calibration token sequences from text (see calib_data.h).
#include "calib_data.h"

#include <cjson/cJSON.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "unicode.h"
#include "util.h"

// The default calibration text: manifest name and file.
#define DEFAULT_MANIFEST "c4_validation"
#define DEFAULT_FILE "c4_validation_2k.jsonl"

// WikiText-2 raw test split (wiki.test.raw in wikitext-2-raw-v1.zip), the evaluation text.
#define WIKITEXT2_TEST_SHA256 "173c87a53759e0201f33e0ccf978e510c2042d7f2cb78229d9a50d79b9e7dd08"
#define WIKITEXT2_TEST_NAME "wiki.test.raw"

void calib_options_default(QuantAlgo algo, CalibOptions *out) {
    memset(out, 0, sizeof *out);
    out->seed = 42;
    switch (algo) {
    case QUANT_ALGO_GPTQ:
        out->n_samples = 128;
        out->seq_len = 2048;
        out->sampling = CALIB_SAMPLING_WINDOWS;
        break;
    case QUANT_ALGO_SQ:
        out->n_samples = 512;
        out->seq_len = 512;
        out->sampling = CALIB_SAMPLING_TRUNCATED;
        break;
    default:
        out->n_samples = 128;
        out->seq_len = 512;
        out->sampling = CALIB_SAMPLING_PACKED;
        break;
    }
}

const char *calib_sampling_name(CalibSampling sampling) {
    switch (sampling) {
    case CALIB_SAMPLING_WINDOWS:
        return "windows";
    case CALIB_SAMPLING_PACKED:
        return "packed";
    case CALIB_SAMPLING_TRUNCATED:
        return "truncated";
    }
    return "?";
}

// ----------------------------------------------------------------------------
// Random numbers: SplitMix64 (Steele, Lea, Flood 2014), small and fully specified.

static uint64_t rng_next(uint64_t *state) {
    uint64_t z = (*state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

// Uniform integer in [0, n), by rejection so that no value is favored.
static uint64_t rng_below(uint64_t *state, uint64_t n) {
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t r;
    do {
        r = rng_next(state);
    } while (r >= limit);
    return r % n;
}

// Returns the indices 0..n-1 in an order shuffled by Fisher-Yates; the caller frees it.
static int *shuffled_order(int n, uint64_t seed) {
    int *order = xmalloc((size_t)n * sizeof(int));
    for (int i = 0; i < n; i++) {
        order[i] = i;
    }
    uint64_t state = seed;
    for (int i = n - 1; i > 0; i--) {
        int j = (int)rng_below(&state, (uint64_t)i + 1);
        int tmp = order[i];
        order[i] = order[j];
        order[j] = tmp;
    }
    return order;
}

// ----------------------------------------------------------------------------
// Documents

typedef struct {
    char **texts;
    int n;
} Documents;

static void documents_free(Documents *d) {
    for (int i = 0; i < d->n; i++) {
        free(d->texts[i]);
    }
    free(d->texts);
}

static bool has_suffix(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

static bool is_blank(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\f' && s[i] != '\v') {
            return false;
        }
    }
    return true;
}

// Splits `data` into lines (LF or CRLF). Plain text: each line is a document, a whitespace-only
// line an empty one. JSON Lines: each non-blank line's "text" string.
static int read_documents(const char *path, const char *data, size_t len, Documents *out) {
    bool jsonl = has_suffix(path, ".jsonl") || has_suffix(path, ".json");
    int cap = 0;
    out->texts = NULL;
    out->n = 0;
    size_t pos = 0;
    for (long line_no = 1; pos < len; line_no++) {
        const char *line = data + pos;
        const char *nl = memchr(line, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - line) : len - pos;
        pos += n + (nl ? 1 : 0);
        if (n > 0 && line[n - 1] == '\r') {
            n--;
        }

        char *text = NULL;
        if (!jsonl) {
            text = is_blank(line, n) ? xstrdup("") : xstrndup(line, n);
        } else if (!is_blank(line, n)) {
            const char *parse_end = NULL;
            cJSON *value = cJSON_ParseWithLengthOpts(line, n, &parse_end, false);
            if (!value) {
                documents_free(out);
                return err_set("%s:%ld: invalid JSON at byte %ld of the line (a JSON Lines "
                               "calibration file needs one {\"text\": \"...\"} object per line)",
                               path, line_no, parse_end ? (long)(parse_end - line) + 1 : 1L);
            }
            cJSON *field = cJSON_GetObjectItemCaseSensitive(value, "text");
            if (!cJSON_IsString(field)) {
                cJSON_Delete(value);
                documents_free(out);
                return err_set("%s:%ld: the record has no \"text\" string field (a JSON Lines "
                               "calibration file needs one {\"text\": \"...\"} object per line)",
                               path, line_no);
            }
            text = xstrdup(field->valuestring);
            cJSON_Delete(value);
        } else {
            continue;
        }
        if (out->n == cap) {
            cap = cap ? 2 * cap : 1024;
            out->texts = xrealloc(out->texts, (size_t)cap * sizeof(char *));
        }
        out->texts[out->n++] = text;
    }
    if (out->n == 0) {
        return err_set("%s: the calibration file contains no text", path);
    }
    return 0;
}

// Rejects the evaluation text, by content hash or by its canonical file name.
static int check_not_evaluation_text(const char *path, const char *sha256) {
    const char *slash = strrchr(path, '/');
    const char *name = slash ? slash + 1 : path;
    if (strcmp(sha256, WIKITEXT2_TEST_SHA256) == 0 || strcmp(name, WIKITEXT2_TEST_NAME) == 0) {
        return err_set("%s: this is WikiText-2 test, the text perplexity is evaluated on; "
                       "calibrating on it would leak the evaluation data into the quantized "
                       "model. Use WikiText-2 train, Pile validation or the default C4 subset",
                       path);
    }
    return 0;
}

// ----------------------------------------------------------------------------
// Sampling

typedef struct {
    TokenIds tokens;
    int *offsets;
    int n_samples, cap;
} SampleBuilder;

static void builder_add(SampleBuilder *b, const int *ids, int n) {
    if (b->n_samples + 1 >= b->cap) {
        b->cap = b->cap ? 2 * b->cap : 64;
        b->offsets = xrealloc(b->offsets, (size_t)b->cap * sizeof(int));
    }
    if (b->n_samples == 0) {
        b->offsets[0] = 0;
    }
    for (int i = 0; i < n; i++) {
        token_ids_push(&b->tokens, ids[i]);
    }
    b->offsets[++b->n_samples] = b->tokens.n;
}

static int encode(const Tokenizer *tok, const char *text, size_t len, int **ids, int *n) {
    return tokenizer_encode(tok, text, len, true, false, ids, n);
}

static int sample_windows(const Tokenizer *tok, const Documents *docs, const CalibOptions *o,
                          int seq_len, SampleBuilder *b) {
    StrBuf joined;
    sb_init(&joined);
    for (int i = 0; i < docs->n; i++) {
        if (i > 0) {
            sb_append(&joined, "\n\n");
        }
        sb_append(&joined, docs->texts[i]);
    }
    int *ids = NULL, n = 0;
    int rc = encode(tok, joined.data, joined.len, &ids, &n);
    sb_free(&joined);
    if (rc != 0) {
        return -1;
    }
    if (n < 2) {
        free(ids);
        return err_set("the calibration text has %d token(s); at least 2 are needed", n);
    }
    // The reference draws start = randint(0, n - seq_len - 1), so it needs n > seq_len.
    if (n <= seq_len) {
        log_warn("calibration text has %d tokens, too few for windows of %d; using windows of %d",
                 n, seq_len, n - 1);
        seq_len = n - 1;
    }
    if ((int64_t)n < (int64_t)o->n_samples * seq_len) {
        log_warn("calibration text has %d tokens for %d windows of %d; the windows overlap", n,
                 o->n_samples, seq_len);
    }
    uint64_t state = o->seed;
    for (int s = 0; s < o->n_samples; s++) {
        int start = (int)rng_below(&state, (uint64_t)(n - seq_len));
        builder_add(b, ids + start, seq_len);
    }
    free(ids);
    return 0;
}

// Returns the bounds of s[0..n) without surrounding whitespace (Python's str.strip for ASCII).
static void strip(const char *s, size_t n, size_t *begin, size_t *end) {
    size_t a = 0, z = n;
    while (a < z && (s[a] == ' ' || (s[a] >= '\t' && s[a] <= '\r'))) {
        a++;
    }
    while (z > a && (s[z - 1] == ' ' || (s[z - 1] >= '\t' && s[z - 1] <= '\r'))) {
        z--;
    }
    *begin = a;
    *end = z;
}

// A fingerprint of WikiText-2 test that survives renaming, line-end changes, JSON Lines exports
// and partial copies: 64 of the 1,724 lines of wiki.test.raw (SHA-256 above) that are 200 bytes
// or longer once stripped of ASCII whitespace, taken evenly (line i * 1724 / 64 for i = 0..63),
// each as its stripped length and the first 16 hex digits of its SHA-256.
static const struct {
    size_t length;
    char sha256_prefix[17];
} WIKITEXT2_TEST_LINES[] = {
    {856, "8a4e51a896e52e4d"},
    {520, "d19affbdb1271d87"},
    {1125, "9c100ebc6af2fc29"},
    {1238, "3b6a73e928296505"},
    {595, "f4f638f1d1e76fcc"},
    {590, "df4d264eb4edad0f"},
    {667, "f33eef770ddcc874"},
    {910, "a9f41310ee382bc9"},
    {399, "f9b4ca7fcdd6ef5c"},
    {511, "5e49f29fbcb4dfab"},
    {411, "307d8ad70bc9128d"},
    {495, "0dab2942e75b9c03"},
    {465, "ef9d359b66f40b31"},
    {760, "21f192f9445e64a0"},
    {898, "fc06336492f3a37d"},
    {1268, "11a61ffb28a394c7"},
    {227, "90f915437a8fb7eb"},
    {471, "9d1d49e31a85d87d"},
    {846, "0243cf9031a07322"},
    {477, "0564a655270cf7fd"},
    {739, "fce0495a2092670d"},
    {739, "5eeb25d480af2d7a"},
    {1179, "57b29060aa7f33fa"},
    {853, "d4773cacd307f0e7"},
    {1145, "dcebb24bb69aa66f"},
    {400, "b0b60eef7492b77a"},
    {1044, "67be94ae49195eaa"},
    {614, "732b8c9f02dcc333"},
    {1352, "4ed5c2b592606253"},
    {596, "6d988c941ce342bd"},
    {1551, "497548bcf7022b66"},
    {843, "8b01bc98975eacd1"},
    {1084, "833404baa8215e42"},
    {1090, "95fdb46b919a6b33"},
    {406, "cab2cbd0d468763c"},
    {432, "a50cfee7fd64ba4c"},
    {580, "d373d5d95f6be4a9"},
    {484, "82925dbfeb11e1dd"},
    {1039, "008762bb42eb4302"},
    {482, "ac0f4a06e37bd8e1"},
    {500, "e50301692fc13060"},
    {661, "ad1d4b3704a9dee7"},
    {345, "9c1b4b2bb429a748"},
    {454, "1985bce9611d405c"},
    {288, "11eb80699fb2923a"},
    {869, "b22e49219357bcf4"},
    {675, "9ef551c70b088bf8"},
    {887, "26859b784c0cfef7"},
    {550, "58d6b682ae4d1aac"},
    {939, "81cc1ced0750f85a"},
    {1139, "b80d5c600775260d"},
    {717, "8b68a23b481e2108"},
    {243, "473f5a310163dde6"},
    {211, "3a81534b55bd879a"},
    {906, "127a21899472ae6a"},
    {635, "61cf2ee0089051b0"},
    {619, "8e2263c167aa9942"},
    {947, "aa9af99eab5bede4"},
    {429, "a49d869a08694ec7"},
    {744, "36e5d413b63ee605"},
    {319, "e770ac2c955db17e"},
    {563, "77e1fdd8261c494b"},
    {653, "0f1b102de335e1d9"},
    {688, "25c89a3cef0d20d8"},
};

// Rejects documents that contain a fingerprinted line of WikiText-2 test. Only lines whose length
// matches a fingerprint are hashed, so large files cost little.
static int check_no_evaluation_lines(const char *path, const Documents *docs) {
    for (int i = 0; i < docs->n; i++) {
        const char *line = docs->texts[i];
        while (*line) {
            const char *newline = strchr(line, '\n');
            size_t n = newline ? (size_t)(newline - line) : strlen(line);
            size_t begin, end;
            strip(line, n, &begin, &end);
            char sha256[65] = "";
            for (size_t k = 0; k < ARRAY_LEN(WIKITEXT2_TEST_LINES); k++) {
                if (end - begin != WIKITEXT2_TEST_LINES[k].length) {
                    continue;
                }
                if (!sha256[0]) {
                    sha256_bytes(line + begin, end - begin, sha256);
                }
                if (strncmp(sha256, WIKITEXT2_TEST_LINES[k].sha256_prefix, 16) == 0) {
                    return err_set("%s: document %d contains a paragraph of WikiText-2 test, the "
                                   "text perplexity is evaluated on; calibrating on it would leak "
                                   "the evaluation data into the quantized model. Use WikiText-2 "
                                   "train, Pile validation or the default C4 subset",
                                   path, i + 1);
                }
            }
            line += newline ? n + 1 : n;
        }
    }
    return 0;
}

// Rejects documents that are all whitespace: they would calibrate on BOS and newline tokens only.
static int check_has_text(const char *path, const Documents *docs) {
    for (int i = 0; i < docs->n; i++) {
        size_t begin, end;
        strip(docs->texts[i], strlen(docs->texts[i]), &begin, &end);
        if (begin < end) {
            return 0;
        }
    }
    return err_set("%s: the calibration file contains no text, only %d blank document(s)", path,
                   docs->n);
}

static int sample_packed(const Tokenizer *tok, const Documents *docs, const CalibOptions *o,
                         int seq_len, SampleBuilder *b) {
    int *order = shuffled_order(docs->n, o->seed);

    TokenIds all = {0};
    int kept = 0;
    for (int i = 0; i < docs->n && kept < o->n_samples; i++) {
        const char *text = docs->texts[order[i]];
        size_t begin, end;
        strip(text, strlen(text), &begin, &end);
        int *ids = NULL, n = 0;
        if (encode(tok, text + begin, end - begin, &ids, &n) != 0) {
            free(order);
            free(all.data);
            return -1;
        }
        // The reference skips empty encodings; with BOS an empty text still gives one token.
        if (n <= seq_len && n > 0) {
            for (int t = 0; t < n; t++) {
                token_ids_push(&all, ids[t]);
            }
            kept++;
        }
        free(ids);
    }
    free(order);
    if (kept < o->n_samples) {
        log_warn("only %d of %d requested documents encode to 1..%d tokens", kept,
                 o->n_samples, seq_len);
    }
    if (all.n == 0) {
        return err_set("no calibration document encodes to 1..%d tokens, the most a packed sample "
                       "takes from one document; raise the sequence length (--calib-seqlen)",
                       seq_len);
    }
    int n_split = all.n / seq_len;
    if (n_split == 0) {
        log_warn("calibration text has %d tokens, fewer than one sample of %d; using one sample "
                 "of %d tokens", all.n, seq_len, all.n);
        builder_add(b, all.data, all.n);
    }
    for (int s = 0; s < n_split; s++) {
        builder_add(b, all.data + (size_t)s * seq_len, seq_len);
    }
    free(all.data);
    return 0;
}

static int sample_truncated(const Tokenizer *tok, const Documents *docs, const CalibOptions *o,
                            int seq_len, SampleBuilder *b) {
    int *order = shuffled_order(docs->n, o->seed);
    int n_samples = o->n_samples < docs->n ? o->n_samples : docs->n;
    if (n_samples < o->n_samples) {
        log_warn("calibration text has %d documents for %d samples; using %d", docs->n,
                 o->n_samples, n_samples);
    }
    for (int i = 0; i < n_samples; i++) {
        const char *text = docs->texts[order[i]];
        int *ids = NULL, n = 0;
        if (encode(tok, text, strlen(text), &ids, &n) != 0) {
            free(order);
            return -1;
        }
        if (n > 0) {
            builder_add(b, ids, n < seq_len ? n : seq_len);
        }
        free(ids);
    }
    free(order);
    if (b->n_samples == 0) {
        return err_set("every calibration document encodes to zero tokens");
    }
    return 0;
}

static CalibrationSet *finish_set(SampleBuilder *b) {
    CalibrationSet *set = xcalloc(1, sizeof *set);
    set->n_samples = b->n_samples;
    set->offsets = b->offsets;
    set->tokens = b->tokens.data;
    set->n_tokens = b->tokens.n;
    for (int i = 0; i < set->n_samples; i++) {
        int len = set->offsets[i + 1] - set->offsets[i];
        set->max_len = len > set->max_len ? len : set->max_len;
    }
    return set;
}

char *calib_find_text(const CalibOptions *options, const Resolver *resolver) {
    if (options->path) {
        return xstrdup(options->path);
    }
    if (!resolver) {
        err_set("no calibration file given and no resolver to find the default C4 subset");
        return NULL;
    }
    char *path = resolver_find(resolver, DEFAULT_MANIFEST, DEFAULT_FILE);
    if (!path) {
        err_prefix("cannot find the default calibration text (use --calib FILE)");
    }
    return path;
}

CalibrationSet *calib_set_load(const Tokenizer *tok, int max_seq_len, const Resolver *resolver,
                               const CalibOptions *options) {
    if (options->n_samples <= 0 || options->seq_len <= 0) {
        err_set("invalid calibration size: %d samples of %d tokens; both must be positive",
                options->n_samples, options->seq_len);
        return NULL;
    }
    int seq_len = options->seq_len;
    if (max_seq_len > 0 && seq_len > max_seq_len) {
        log_warn("calibration sequence length %d exceeds the model's context of %d; using %d",
                 seq_len, max_seq_len, max_seq_len);
        seq_len = max_seq_len;
    }
    // A set indexes its tokens with int offsets.
    int64_t max_tokens = (int64_t)options->n_samples * seq_len;
    if (max_tokens > INT_MAX) {
        err_set("%d calibration samples of %d tokens are %lld tokens, more than the %d a "
                "calibration set holds; lower the sample count (--calib-samples) or the sequence "
                "length (--calib-seqlen)",
                options->n_samples, seq_len, (long long)max_tokens, INT_MAX);
        return NULL;
    }

    char *path = calib_find_text(options, resolver);
    if (!path) {
        return NULL;
    }

    // A device or FIFO would never end (/dev/zero) or block until a writer comes, so only a
    // regular file is read. stat follows symbolic links.
    struct stat st;
    bool regular = stat(path, &st) != 0 || S_ISREG(st.st_mode);
    if (!regular) {
        const char *kind = S_ISDIR(st.st_mode) ? "is a folder"
                                               : "is not a regular file (a device, FIFO or socket)";
        err_set("%s %s; give a calibration text file (.txt, or .jsonl with a \"text\" field)", path,
                kind);
        free(path);
        return NULL;
    }

    char sha256[65];
    char *data = NULL;
    size_t len = 0;
    Documents docs = {0};
    if (sha256_file(path, sha256) != 0 || check_not_evaluation_text(path, sha256) != 0 ||
        file_read_all(path, &data, &len) != 0 || text_check_utf8(path, data, len,
                        "calibration text (plain text, or JSON Lines with a \"text\" field)") != 0 ||
        read_documents(path, data, len, &docs) != 0) {
        free(data);
        free(path);
        return NULL;
    }
    free(data);
    if (check_has_text(path, &docs) != 0 || check_no_evaluation_lines(path, &docs) != 0) {
        documents_free(&docs);
        free(path);
        return NULL;
    }

    SampleBuilder b = {0};
    int rc;
    switch (options->sampling) {
    case CALIB_SAMPLING_WINDOWS:
        rc = sample_windows(tok, &docs, options, seq_len, &b);
        break;
    case CALIB_SAMPLING_PACKED:
        rc = sample_packed(tok, &docs, options, seq_len, &b);
        break;
    default:
        rc = sample_truncated(tok, &docs, options, seq_len, &b);
        break;
    }
    documents_free(&docs);
    if (rc != 0) {
        err_prefix("%s", path);
        free(b.tokens.data);
        free(b.offsets);
        free(path);
        return NULL;
    }

    CalibrationSet *set = finish_set(&b);
    set->source = path;
    memcpy(set->sha256, sha256, sizeof sha256);
    set->options = *options;
    set->options.path = set->source;
    set->options.seq_len = seq_len;
    return set;
}

CalibrationSet *calib_set_from_tokens(const int *tokens, const int *lengths, int n_samples) {
    SampleBuilder b = {0};
    size_t offset = 0;
    for (int i = 0; i < n_samples; i++) {
        builder_add(&b, tokens + offset, lengths[i]);
        offset += (size_t)lengths[i];
    }
    CalibrationSet *set = finish_set(&b);
    set->source = xstrdup("(tokens)");
    set->options.path = set->source;
    set->options.n_samples = n_samples;
    set->options.seq_len = set->max_len;
    return set;
}

void calib_set_free(CalibrationSet *set) {
    if (!set) {
        return;
    }
    free(set->offsets);
    free(set->tokens);
    free(set->source);
    free(set);
}
