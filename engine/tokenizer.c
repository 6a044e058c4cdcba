// tokenizer.c: the family-independent part of the tokenizer layer (see tokenizer.h): vocabulary
// storage, GGUF loading, the text-to-id index, special-token splitting, BOS/EOS/SEP, decoding and
// the description.
//
// The rules follow llama.cpp's src/llama-vocab.cpp: llama_vocab::impl::load for defaults and
// checks, tokenizer_st_partition for special tokens, tokenize for BOS/EOS and token_to_piece for
// decoding.
#include "tokenizer.h"

#include <ctype.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

// Families known to this build, looked up by tokenizer.ggml.model.
static const TokenizerFamily *const families[] = {
    &tok_family_spm,
    &tok_family_bpe,
    &tok_family_wordpiece,
};

void token_ids_push(TokenIds *v, int id) {
    if (v->n == v->cap) {
        v->cap = v->cap ? 2 * v->cap : 64;
        v->data = xrealloc(v->data, (size_t)v->cap * sizeof *v->data);
    }
    v->data[v->n++] = id;
}

// ----------------------------------------------------------------------------
// Text-to-id index

// FNV-1a, 64 bit.
static uint64_t hash_bytes(const char *s, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

static bool token_text_equals(const Tokenizer *t, int id, const char *text, size_t len) {
    return t->text_len[id] == len && memcmp(t->texts + t->text_offset[id], text, len) == 0;
}

int tokenizer_lookup(const Tokenizer *t, const char *text, size_t len) {
    if (len > t->max_token_len) {
        return -1;
    }
    size_t mask = t->index.cap - 1;
    for (size_t slot = hash_bytes(text, len) & mask;; slot = (slot + 1) & mask) {
        int32_t id = t->index.slots[slot];
        if (id < 0) {
            return -1;
        }
        if (token_text_equals(t, id, text, len)) {
            return id;
        }
    }
}

// Adds every token to the index. Returns 0, or -1 with an error for a duplicate text (llama.cpp
// asserts that every text maps to one id).
static int index_build(Tokenizer *t, const char *path) {
    size_t cap = 16;
    while (cap < 2 * (size_t)t->n_vocab) {
        cap *= 2;
    }
    t->index.cap = cap;
    t->index.slots = xmalloc(cap * sizeof *t->index.slots);
    memset(t->index.slots, 0xff, cap * sizeof *t->index.slots);

    for (int id = 0; id < t->n_vocab; id++) {
        const char *text = t->texts + t->text_offset[id];
        size_t slot = hash_bytes(text, t->text_len[id]) & (cap - 1);
        while (t->index.slots[slot] >= 0) {
            int other = t->index.slots[slot];
            if (token_text_equals(t, other, text, t->text_len[id])) {
                return err_set("%s: the vocabulary has the text \"%s\" twice, at ids %d and %d; "
                               "a vocabulary needs distinct texts, so re-convert the model",
                               path, text, other, id);
            }
            slot = (slot + 1) & (cap - 1);
        }
        t->index.slots[slot] = id;
    }
    return 0;
}

// ----------------------------------------------------------------------------
// Loading

static const TokenizerFamily *family_find(const char *model) {
    for (size_t i = 0; i < ARRAY_LEN(families); i++) {
        if (strcmp(families[i]->model, model) == 0) {
            return families[i];
        }
    }
    return NULL;
}

Tokenizer *tokenizer_new(const TokenizerFamily *family, const char *source) {
    Tokenizer *t = xcalloc(1, sizeof *t);
    t->family = family;
    t->source = xstrdup(source);
    t->bos_id = t->eos_id = t->unk_id = t->sep_id = -1;
    return t;
}

int tokenizer_set_vocab(Tokenizer *t, const GGUFString *texts, int n_vocab, const char *path) {
    if (n_vocab <= 0) {
        return err_set("%s: the vocabulary is empty", path);
    }
    t->n_vocab = n_vocab;
    size_t total = 0;
    for (int id = 0; id < n_vocab; id++) {
        uint64_t len = texts[id].len;
        if (len > UINT32_MAX / 2) {
            return err_set("%s: token %d is %llu bytes long, longer than any token can be", path,
                           id, (unsigned long long)len);
        }
        total += (len ? len : 32) + 1;
    }

    // Empty texts are renamed "[EMPTY_<id>]" as llama.cpp does, so that every token has a text
    // that can be matched and printed.
    t->texts = xmalloc(total);
    t->text_offset = xmalloc((size_t)n_vocab * sizeof *t->text_offset);
    t->text_len = xmalloc((size_t)n_vocab * sizeof *t->text_len);
    size_t pos = 0;
    for (int id = 0; id < n_vocab; id++) {
        const GGUFString *text = &texts[id];
        t->text_offset[id] = pos;
        if (text->len == 0) {
            log_warn("%s: token %d is empty; naming it [EMPTY_%d] as llama.cpp does", path, id, id);
            int n = snprintf(t->texts + pos, 32, "[EMPTY_%d]", id);
            t->text_len[id] = (uint32_t)n;
        } else {
            memcpy(t->texts + pos, text->data, text->len);
            t->text_len[id] = (uint32_t)text->len;
        }
        pos += t->text_len[id];
        t->texts[pos++] = '\0';
        if (t->text_len[id] > t->max_token_len) {
            t->max_token_len = t->text_len[id];
        }
    }

    t->scores = xcalloc((size_t)n_vocab, sizeof *t->scores);
    t->types = xmalloc((size_t)n_vocab);
    memset(t->types, TOKEN_TYPE_NORMAL, (size_t)n_vocab);
    t->flags = xcalloc((size_t)n_vocab, 1);
    return index_build(t, path);
}

static int load_texts(Tokenizer *t, const GGUFFile *f) {
    const GGUFArray *tokens = NULL;
    int found = gguf_get_array(f, "tokenizer.ggml.tokens", &tokens);
    if (found < 0) {
        return -1;
    }
    if (found == 0) {
        return err_set("%s: tokenizer.ggml.tokens is missing, so the file has no vocabulary; use a "
                       "GGUF converted with its tokenizer",
                       f->path);
    }
    if (tokens->elem_type != GGUF_TYPE_STRING) {
        return err_set("%s: tokenizer.ggml.tokens is an array of %s, expected an array of strings",
                       f->path, gguf_type_name(tokens->elem_type));
    }
    if (tokens->n == 0 || tokens->n > INT32_MAX) {
        return err_set("%s: tokenizer.ggml.tokens has %llu entries, expected 1 to %d", f->path,
                       (unsigned long long)tokens->n, INT32_MAX);
    }
    return tokenizer_set_vocab(t, tokens->strings, (int)tokens->n, f->path);
}

// Loads an optional per-token numeric array of exactly n_vocab entries. Returns 1 when present,
// 0 when absent, -1 with an error.
static int load_token_array(const GGUFFile *f, const char *key, int n_vocab, bool integer,
                            const GGUFArray **out) {
    int found = gguf_get_array(f, key, out);
    if (found <= 0) {
        return found;
    }
    GGUFType type = (*out)->elem_type;
    bool is_int = type <= GGUF_TYPE_INT32 || type == GGUF_TYPE_UINT64 || type == GGUF_TYPE_INT64;
    bool is_float = type == GGUF_TYPE_FLOAT32 || type == GGUF_TYPE_FLOAT64;
    if (!(is_int || (is_float && !integer))) {
        return err_set("%s: %s is an array of %s, expected an array of %s", f->path, key,
                       gguf_type_name(type), integer ? "integers" : "numbers");
    }
    if ((*out)->n != (uint64_t)n_vocab) {
        return err_set("%s: %s has %llu entries but tokenizer.ggml.tokens has %d; the two must "
                       "have one entry per token, so the file is inconsistent (re-convert it)",
                       f->path, key, (unsigned long long)(*out)->n, n_vocab);
    }
    return 1;
}

// A byte token's text must be "<0xNN>" (llama.cpp reads the two hex digits at offset 3).
int tokenizer_parse_byte_token(const char *text, size_t len) {
    if (len != 6 || memcmp(text, "<0x", 3) != 0 || !isxdigit((unsigned char)text[3]) ||
        !isxdigit((unsigned char)text[4]) || text[5] != '>') {
        return -1;
    }
    return (int)strtol((char[3]){text[3], text[4], '\0'}, NULL, 16);
}

static int load_scores_and_types(Tokenizer *t, const GGUFFile *f) {
    const GGUFArray *scores = NULL;
    const GGUFArray *types = NULL;
    int has_scores = load_token_array(f, "tokenizer.ggml.scores", t->n_vocab, false, &scores);
    if (has_scores < 0) {
        return -1;
    }
    int has_types = load_token_array(f, "tokenizer.ggml.token_type", t->n_vocab, true, &types);
    if (has_types < 0) {
        return -1;
    }

    for (int id = 0; id < t->n_vocab; id++) {
        if (has_scores) {
            t->scores[id] = (float)gguf_array_get_float(scores, (uint64_t)id);
        }
        int64_t type = has_types ? gguf_array_get_int(types, (uint64_t)id) : TOKEN_TYPE_NORMAL;
        // llama.cpp maps values outside the enum to "undefined": such tokens decode to nothing.
        t->types[id] = (type >= 0 && type <= TOKEN_TYPE_BYTE) ? (uint8_t)type : TOKEN_TYPE_UNDEFINED;

        const char *text = t->texts + t->text_offset[id];
        if (t->types[id] == TOKEN_TYPE_BYTE && tokenizer_parse_byte_token(text, t->text_len[id]) < 0) {
            return err_set("%s: token %d \"%s\" has type byte (6) in tokenizer.ggml.token_type, "
                           "but a byte token's text must be <0xNN>",
                           f->path, id, text);
        }
    }
    return 0;
}

static bool is_none_mark(int64_t value) {
    return value == -1 || value == (int64_t)UINT32_MAX;
}

// Reads a special-token id key into *id, which contains the family default. An id outside the
// vocabulary is an error, except the "none" values -1 and 4294967295, which keep the default.
static int load_special_id(Tokenizer *t, const GGUFFile *f, const char *key, int *id,
                           TokenizerKeySource *source) {
    // llama.cpp disables a default id that the vocabulary does not reach.
    if (*id >= t->n_vocab) {
        *id = -1;
    }
    int64_t value = 0;
    int found = gguf_get_int(f, key, &value);
    if (found < 0) {
        return -1;
    }
    if (found == 0) {
        *source = TOK_KEY_ABSENT;
        return 0;
    }
    if (is_none_mark(value)) {
        *source = TOK_KEY_NONE_MARK;
        return 0;
    }
    if (value < 0 || value >= t->n_vocab) {
        return err_set("%s: %s is %lld, outside the vocabulary of %d tokens; fix the key with "
                       "gguf-py's gguf_set_metadata.py or re-convert the model",
                       f->path, key, (long long)value, t->n_vocab);
    }
    *id = (int)value;
    *source = TOK_KEY_SET;
    return 0;
}

static int load_flag(const GGUFFile *f, const char *key, bool *value, TokenizerKeySource *source) {
    int found = gguf_get_bool(f, key, value);
    if (found < 0) {
        return -1;
    }
    *source = found ? TOK_KEY_SET : TOK_KEY_ABSENT;
    return 0;
}

static int load_specials_and_flags(Tokenizer *t, const GGUFFile *f) {
    const TokenizerDefaults *d = &t->family->defaults;
    t->bos_id = d->bos_id;
    t->eos_id = d->eos_id;
    t->unk_id = d->unk_id;
    t->sep_id = d->sep_id;
    t->add_bos = d->add_bos;
    t->add_eos = d->add_eos;
    t->add_sep = d->add_sep;
    t->add_space_prefix = d->add_space_prefix;

    // "seperator" is llama.cpp's spelling of the key.
    if (load_special_id(t, f, "tokenizer.ggml.bos_token_id", &t->bos_id, &t->bos_source) != 0 ||
        load_special_id(t, f, "tokenizer.ggml.eos_token_id", &t->eos_id, &t->eos_source) != 0 ||
        load_special_id(t, f, "tokenizer.ggml.unknown_token_id", &t->unk_id, &t->unk_source) != 0 ||
        load_special_id(t, f, "tokenizer.ggml.seperator_token_id", &t->sep_id, &t->sep_source) != 0 ||
        load_flag(f, "tokenizer.ggml.add_bos_token", &t->add_bos, &t->add_bos_source) != 0 ||
        load_flag(f, "tokenizer.ggml.add_eos_token", &t->add_eos, &t->add_eos_source) != 0 ||
        load_flag(f, "tokenizer.ggml.add_space_prefix", &t->add_space_prefix,
                  &t->add_space_prefix_source) != 0) {
        return -1;
    }

    if (t->add_bos && t->bos_id < 0) {
        return err_set("%s: tokenizer.ggml.add_bos_token is true, but the vocabulary has no BOS "
                       "token (set tokenizer.ggml.bos_token_id)",
                       f->path);
    }
    if (t->add_eos && t->eos_id < 0) {
        return err_set("%s: tokenizer.ggml.add_eos_token is true, but the vocabulary has no EOS "
                       "token (set tokenizer.ggml.eos_token_id)",
                       f->path);
    }
    if (t->add_sep && t->sep_id < 0) {
        return err_set("%s: the %s tokenizer appends a separator token, but the vocabulary has "
                       "none (set tokenizer.ggml.seperator_token_id)",
                       f->path, t->family->model);
    }
    return 0;
}

static bool is_special_type(uint8_t type) {
    return type == TOKEN_TYPE_CONTROL || type == TOKEN_TYPE_USER_DEFINED ||
           type == TOKEN_TYPE_UNKNOWN;
}

typedef struct {
    uint32_t len;
    int id;
} SpecialEntry;

// Longest text first, ties by id.
static int compare_special(const void *a, const void *b) {
    const SpecialEntry *x = a, *y = b;
    if (x->len != y->len) {
        return x->len > y->len ? -1 : 1;
    }
    return x->id < y->id ? -1 : 1;
}

static void set_flag_by_text(Tokenizer *t, const char *text, uint8_t flag, bool on) {
    int id = tokenizer_lookup(t, text, strlen(text));
    if (id < 0) {
        return;
    }
    t->flags[id] = on ? (uint8_t)(t->flags[id] | flag) : (uint8_t)(t->flags[id] & ~flag);
}

// Builds the list of tokens matched as units in the input.
static void build_special_list(Tokenizer *t) {
    SpecialEntry *entries = xmalloc((size_t)t->n_vocab * sizeof *entries);
    for (int id = 0; id < t->n_vocab; id++) {
        if (is_special_type(t->types[id])) {
            entries[t->n_special++] = (SpecialEntry){t->text_len[id], id};
        }
    }
    // NOTE: llama.cpp sorts by length only, with std::sort (not stable); equal-length special
    // texts that overlap in the input may therefore split differently there.
    qsort(entries, (size_t)t->n_special, sizeof *entries, compare_special);
    t->special_ids = xmalloc(((size_t)t->n_special + 1) * sizeof *t->special_ids);
    for (int i = 0; i < t->n_special; i++) {
        t->special_ids[i] = entries[i].id;
    }
    free(entries);
}

// llama.cpp sets strip flags by model name, because GGUF files do not store them. Phi-3's
// special tokens drop the whitespace after them, except <unk>, <s> and <|endoftext|>.
static int set_gguf_strip_flags(Tokenizer *t, const GGUFFile *f) {
    char *name = NULL;
    if (gguf_get_string(f, "general.name", &name) < 0) {
        return -1;
    }
    if (name) {
        for (char *p = name; *p; p++) {
            *p = (char)tolower((unsigned char)*p);
        }
        if (strstr(name, "phi-3") || strstr(name, "phi3")) {
            for (int id = 0; id < t->n_vocab; id++) {
                if (is_special_type(t->types[id])) {
                    t->flags[id] |= TOKEN_FLAG_RSTRIP;
                }
            }
            set_flag_by_text(t, "</s>", TOKEN_FLAG_RSTRIP, true);
            set_flag_by_text(t, "<unk>", TOKEN_FLAG_RSTRIP, false);
            set_flag_by_text(t, "<s>", TOKEN_FLAG_RSTRIP, false);
            set_flag_by_text(t, "<|endoftext|>", TOKEN_FLAG_RSTRIP, false);
        }
        free(name);
    }
    return 0;
}

void tokenizer_finish(Tokenizer *t) {
    build_special_list(t);

    StrBuf all;
    sb_init(&all);
    t->piece_offset = xmalloc(((size_t)t->n_vocab + 1) * sizeof *t->piece_offset);
    for (int id = 0; id < t->n_vocab; id++) {
        t->piece_offset[id] = all.len;
        t->family->make_piece(t, id, &all);
    }
    t->piece_offset[t->n_vocab] = all.len;
    t->pieces = all.data;
}

Tokenizer *tokenizer_load_gguf(const GGUFFile *f) {
    char *model = NULL;
    int found = gguf_get_string(f, "tokenizer.ggml.model", &model);
    if (found < 0) {
        return NULL;
    }
    if (found == 0) {
        err_set("%s: tokenizer.ggml.model is missing, so the tokenizer family is unknown; use a "
                "GGUF converted with its tokenizer",
                f->path);
        return NULL;
    }
    const TokenizerFamily *family = family_find(model);
    if (!family) {
        err_set("%s: tokenizer.ggml.model is \"%s\", which qbias does not support yet (supported: "
                "\"llama\", \"gpt2\", \"bert\")",
                f->path, model);
        free(model);
        return NULL;
    }
    free(model);

    Tokenizer *t = tokenizer_new(family, "GGUF");
    if (load_texts(t, f) != 0 || load_scores_and_types(t, f) != 0 ||
        load_specials_and_flags(t, f) != 0 || set_gguf_strip_flags(t, f) != 0 ||
        (family->prepare && family->prepare(t, f, f->path) != 0)) {
        tokenizer_free(t);
        return NULL;
    }
    tokenizer_finish(t);
    return t;
}

void tokenizer_free(Tokenizer *t) {
    if (!t) {
        return;
    }
    if (t->family && t->family->free_state) {
        t->family->free_state(t);
    }
    free(t->texts);
    free(t->text_offset);
    free(t->text_len);
    free(t->scores);
    free(t->types);
    free(t->flags);
    free(t->index.slots);
    free(t->pieces);
    free(t->piece_offset);
    free(t->special_ids);
    free(t->source);
    free(t);
}

// ----------------------------------------------------------------------------
// Encoding

// A piece of the input: a special token (token >= 0) or a span of plain text.
typedef struct {
    int token;
    size_t offset, len;
} Fragment;

typedef struct {
    Fragment *data;
    size_t n, cap;
} FragmentList;

static void fragments_push(FragmentList *v, int token, size_t offset, size_t len) {
    if (v->n == v->cap) {
        v->cap = v->cap ? 2 * v->cap : 16;
        v->data = xrealloc(v->data, v->cap * sizeof *v->data);
    }
    v->data[v->n++] = (Fragment){token, offset, len};
}

// llama.cpp strips with isspace() in the C locale.
static bool is_c_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

// Splits one text span at every occurrence of the special token `id`, left to right, into `out`.
static void split_span(const Tokenizer *t, const char *text, Fragment span, int id,
                       FragmentList *out) {
    const char *needle = t->texts + t->text_offset[id];
    size_t needle_len = t->text_len[id];
    size_t pos = span.offset, end = span.offset + span.len;

    while (pos < end) {
        const char *hit = memmem(text + pos, end - pos, needle, needle_len);
        if (!hit) {
            fragments_push(out, -1, pos, end - pos);
            return;
        }
        size_t match = (size_t)(hit - text);

        size_t left_end = match;
        if (t->flags[id] & TOKEN_FLAG_LSTRIP) {
            while (left_end > pos && is_c_space(text[left_end - 1])) {
                left_end--;
            }
        }
        if (left_end > pos) {
            fragments_push(out, -1, pos, left_end - pos);
        }
        fragments_push(out, id, 0, 0);

        pos = match + needle_len;
        if (t->flags[id] & TOKEN_FLAG_RSTRIP) {
            while (pos < end && is_c_space(text[pos])) {
                pos++;
            }
        }
    }
}

// Splits the input into special tokens and text spans (llama.cpp's tokenizer_st_partition): each
// special token in turn, longest first, is cut out of every remaining text span.
static FragmentList partition_special(const Tokenizer *t, const char *text, size_t len,
                                      bool parse_special) {
    FragmentList current = {0};
    if (len > 0) {
        fragments_push(&current, -1, 0, len);
    }
    for (int i = 0; i < t->n_special && current.n > 0; i++) {
        int id = t->special_ids[i];
        // Without parse_special, only user-defined tokens are matched (like Hugging Face added
        // tokens, which are split out before everything else).
        if (!parse_special && t->types[id] != TOKEN_TYPE_USER_DEFINED) {
            continue;
        }
        FragmentList next = {0};
        for (size_t j = 0; j < current.n; j++) {
            if (current.data[j].token >= 0) {
                fragments_push(&next, current.data[j].token, 0, 0);
            } else {
                split_span(t, text, current.data[j], id, &next);
            }
        }
        free(current.data);
        current = next;
    }
    return current;
}

int tokenizer_encode(const Tokenizer *t, const char *text, size_t len, bool add_special,
                     bool parse_special, int **ids, int *n_ids) {
    // Symbol indices inside a family are int, and SentencePiece escaping can triple the size.
    if (len > INT_MAX / 4) {
        return err_set("cannot tokenize a text of %zu bytes: the limit is %d bytes; split the text",
                       len, INT_MAX / 4);
    }

    TokenIds out = {0};
    if (add_special && t->add_bos) {
        token_ids_push(&out, t->bos_id);
    }

    FragmentList fragments = partition_special(t, text, len, parse_special);
    bool after_special = true;
    for (size_t i = 0; i < fragments.n; i++) {
        const Fragment *fr = &fragments.data[i];
        if (fr->token >= 0) {
            token_ids_push(&out, fr->token);
            after_special = true;
            continue;
        }
        if (t->family->encode_text(t, text + fr->offset, fr->len, after_special, &out) != 0) {
            free(fragments.data);
            free(out.data);
            return -1;
        }
        after_special = false;
    }
    free(fragments.data);

    if (add_special && t->add_eos) {
        token_ids_push(&out, t->eos_id);
    }
    if (add_special && t->add_sep) {
        token_ids_push(&out, t->sep_id);
    }
    if (!out.data) {
        out.data = xmalloc(sizeof *out.data);
    }
    *ids = out.data;
    *n_ids = out.n;
    return 0;
}

// ----------------------------------------------------------------------------
// Decoding

static int check_id(const Tokenizer *t, int id) {
    if (id < 0 || id >= t->n_vocab) {
        return err_set("token id %d is outside the vocabulary of %d tokens", id, t->n_vocab);
    }
    return 0;
}

int tokenizer_append_piece(const Tokenizer *t, int prev_id, int id, bool skip_special,
                           StrBuf *out) {
    if (check_id(t, id) != 0 || (prev_id >= 0 && check_id(t, prev_id) != 0)) {
        return -1;
    }
    if (skip_special && (t->types[id] == TOKEN_TYPE_CONTROL || t->types[id] == TOKEN_TYPE_UNKNOWN)) {
        return 0;
    }
    const char *piece = t->pieces + t->piece_offset[id];
    size_t len = t->piece_offset[id + 1] - t->piece_offset[id];

    // The encoder adds a space prefix at the start and after each special token. WordPiece pieces
    // carry the space between words, which only the first one drops.
    bool after_prefix_point = prev_id < 0 || (!t->family->strip_first_space &&
                                              is_special_type(t->types[prev_id]));
    bool strip = t->add_space_prefix || t->family->strip_first_space;
    if (strip && after_prefix_point && len > 0 && piece[0] == ' ') {
        piece++;
        len--;
    }
    sb_append_n(out, piece, len);
    return 0;
}

// transformers' PreTrainedTokenizerBase.clean_up_tokenization (version 4.48), in its order.
static void clean_up_tokenization(StrBuf *text, size_t start) {
    static const char *const rules[][2] = {
        {" .", "."}, {" ?", "?"}, {" !", "!"}, {" ,", ","}, {" ' ", "'"},
        {" n't", "n't"}, {" 'm", "'m"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"},
    };
    for (size_t r = 0; r < ARRAY_LEN(rules); r++) {
        size_t from_len = strlen(rules[r][0]), to_len = strlen(rules[r][1]);
        size_t read = start, write = start;
        while (read < text->len) {
            if (read + from_len <= text->len && memcmp(text->data + read, rules[r][0], from_len) == 0) {
                // The replacement is never longer than the pattern, so it fits in place.
                memmove(text->data + write, rules[r][1], to_len);
                write += to_len;
                read += from_len;
            } else {
                text->data[write++] = text->data[read++];
            }
        }
        text->len = write;
        text->data[write] = '\0';
    }
}

int tokenizer_decode(const Tokenizer *t, const int *ids, int n, bool skip_special, StrBuf *out) {
    size_t start = out->len;
    int prev = -1;
    for (int i = 0; i < n; i++) {
        if (tokenizer_append_piece(t, prev, ids[i], skip_special, out) != 0) {
            return err_prefix("decoding token %d of %d", i, n);
        }
        // Hugging Face removes skipped special tokens before joining WordPiece pieces, so the
        // first piece written is the one that loses its space.
        bool skipped = skip_special && (t->types[ids[i]] == TOKEN_TYPE_CONTROL ||
                                        t->types[ids[i]] == TOKEN_TYPE_UNKNOWN);
        if (!(t->family->strip_first_space && skipped)) {
            prev = ids[i];
        }
    }
    if (t->clean_spaces) {
        clean_up_tokenization(out, start);
    }
    return 0;
}

// ----------------------------------------------------------------------------
// Description and accessors

static const char *source_note(TokenizerKeySource source) {
    switch (source) {
    case TOK_KEY_ABSENT: return " (key absent, llama.cpp default)";
    case TOK_KEY_NONE_MARK: return " (key holds the \"none\" value, llama.cpp default)";
    case TOK_KEY_SET: return "";
    }
    return "";
}

static void describe_id(const Tokenizer *t, StrBuf *out, const char *key, int id,
                        TokenizerKeySource source) {
    sb_printf(out, "%s: ", key);
    if (id < 0) {
        sb_append(out, "none");
    } else {
        sb_printf(out, "%d ", id);
        sb_append_json_string(out, tokenizer_token_text(t, id));
    }
    sb_printf(out, "%s\n", source_note(source));
}

static void describe_flag(StrBuf *out, const char *key, bool value, TokenizerKeySource source) {
    sb_printf(out, "%s: %s%s\n", key, value ? "true" : "false", source_note(source));
}

void tokenizer_describe(const Tokenizer *t, StrBuf *out) {
    int counts[TOKEN_TYPE_BYTE + 1] = {0};
    for (int id = 0; id < t->n_vocab; id++) {
        counts[t->types[id]]++;
    }
    sb_printf(out, "tokenizer: %s (%s)\n", t->family->model, t->family->description);
    sb_printf(out, "source: %s\n", t->source);
    sb_printf(out,
              "vocabulary: %d tokens (%d normal, %d byte, %d control, %d user-defined, "
              "%d unknown, %d unused, %d undefined)\n",
              t->n_vocab, counts[TOKEN_TYPE_NORMAL], counts[TOKEN_TYPE_BYTE],
              counts[TOKEN_TYPE_CONTROL], counts[TOKEN_TYPE_USER_DEFINED],
              counts[TOKEN_TYPE_UNKNOWN], counts[TOKEN_TYPE_UNUSED], counts[TOKEN_TYPE_UNDEFINED]);
    describe_id(t, out, "bos_token_id", t->bos_id, t->bos_source);
    describe_id(t, out, "eos_token_id", t->eos_id, t->eos_source);
    describe_id(t, out, "unknown_token_id", t->unk_id, t->unk_source);
    if (t->sep_id >= 0 || t->add_sep) {
        describe_id(t, out, "seperator_token_id", t->sep_id, t->sep_source);
        sb_printf(out, "add_sep_token: %s\n", t->add_sep ? "true" : "false");
    }
    describe_flag(out, "add_bos_token", t->add_bos, t->add_bos_source);
    describe_flag(out, "add_eos_token", t->add_eos, t->add_eos_source);
    describe_flag(out, "add_space_prefix", t->add_space_prefix, t->add_space_prefix_source);
    if (t->clean_spaces) {
        sb_append(out, "clean_up_tokenization_spaces: true\n");
    }
    if (t->family->describe) {
        t->family->describe(t, out);
    }
}

int tokenizer_vocab_size(const Tokenizer *t) { return t->n_vocab; }
int tokenizer_bos_id(const Tokenizer *t) { return t->bos_id; }
int tokenizer_eos_id(const Tokenizer *t) { return t->eos_id; }
int tokenizer_unk_id(const Tokenizer *t) { return t->unk_id; }
int tokenizer_sep_id(const Tokenizer *t) { return t->sep_id; }
bool tokenizer_add_bos(const Tokenizer *t) { return t->add_bos; }
bool tokenizer_add_eos(const Tokenizer *t) { return t->add_eos; }
bool tokenizer_add_sep(const Tokenizer *t) { return t->add_sep; }
bool tokenizer_add_space_prefix(const Tokenizer *t) { return t->add_space_prefix; }
const char *tokenizer_family_name(const Tokenizer *t) { return t->family->model; }

const char *tokenizer_token_text(const Tokenizer *t, int id) {
    if (id < 0 || id >= t->n_vocab) {
        return NULL;
    }
    return t->texts + t->text_offset[id];
}

TokenType tokenizer_token_type(const Tokenizer *t, int id) {
    if (id < 0 || id >= t->n_vocab) {
        return TOKEN_TYPE_UNDEFINED;
    }
    return (TokenType)t->types[id];
}
