// tok_bpe.c: BPE with merge ranks (GGUF tokenizer.ggml.model = "gpt2", Hugging Face model "BPE"),
// as in Hugging Face's tokenizers (models/bpe) and llama.cpp's llm_tokenizer_bpe_session.
//
// Encoding one span of text (special tokens are already cut out):
//   1. Normalizers, in order (tokenizer.json only): NFC/NFD/NFKC/NFKD, Lowercase, Prepend,
//      Replace, Strip.
//   2. Pre-tokenizers, in order, each splitting every piece of the previous step:
//      - Split: a regex or literal pattern with Hugging Face's behaviors (Isolated, Removed,
//        MergedWithPrevious, MergedWithNext, Contiguous) and invert;
//      - ByteLevel: optionally prepend a space, optionally split with GPT-2's regex, then write
//        every byte as one character of GPT-2's byte-to-unicode alphabet;
//      - Digits, Whitespace, WhitespaceSplit and Punctuation, as Split with the equivalent regex.
//      A GGUF file names its pre-tokenizer in tokenizer.ggml.pre. Each name maps to llama.cpp's
//      list of regexes (each an Isolated Split), followed by ByteLevel without a regex.
//   3. BPE on each piece: with ignore_merges, a piece that is a token is emitted whole. Otherwise
//      every character becomes a symbol (its token; else its <0xNN> byte tokens with
//      byte_fallback; else the unknown token, consecutive ones fused with fuse_unk; else it is
//      dropped, as Hugging Face does). Adjacent pairs with a merge go into a min-heap ordered by
//      merge rank, then position. Popped pairs whose symbols changed are skipped; the others merge
//      and queue the pairs with their new neighbors. Each merge costs O(log n), so a piece of n
//      characters takes O(n log n).
//
// Regexes run on PCRE2 (UTF and Unicode properties, invalid UTF-8 allowed in the subject, JIT when
// available). Patterns from tokenizer.json are written for Oniguruma or Rust's regex crate; the
// constructs they use (\p{..}, (?i:..), (?!..), possessive-free quantifiers) mean the same in
// PCRE2. \s is widened to Unicode White_Space (PCRE2 leaves out U+0085).
#include "tokenizer.h"
#include "unicode.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <cjson/cJSON.h>
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

// GPT-2's pre-tokenizer regex (Hugging Face's ByteLevel with use_regex).
#define REGEX_GPT2 "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"

// Llama 3's regex, as in Meta's tokenizer.json and tiktoken tokenizer.py.
#define REGEX_LLAMA3                                                                               \
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|" \
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"

// Qwen2's regex: Llama 3's with single digits.
#define REGEX_QWEN2                                                                                \
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|" \
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"

// GPT-2's regex without the final \s+, as llama.cpp lists it for the other pre-tokenizers.
#define REGEX_GPT2_SHORT "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)"

// GGUF pre-tokenizer names and their regexes, from llama.cpp's llama_vocab::impl::load and
// llm_tokenizer_bpe (commit c392e509).
typedef struct {
    const char *names[10];
    const char *regexes[4];
    bool ignore_merges; // llama.cpp also makes add_bos the default for these
} GgufPreType;

static const GgufPreType gguf_pre_types[] = {
    {{"default"},
     {"[\\p{P}\\$\\+<=>\\^~\\|]+", REGEX_GPT2_SHORT, "\\p{N}+", "[0-9][0-9][0-9]"},
     false},
    {{"llama3", "llama-v3", "llama-bpe", "falcon3"}, {REGEX_LLAMA3}, true},
    {{"dbrx", "smaug-bpe"}, {REGEX_LLAMA3}, false},
    {{"gpt-2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v1-en", "jina-v2-es", "jina-v2-de",
      "jina-v2-code", "roberta-bpe"},
     {REGEX_GPT2},
     false},
    {{"mpt", "olmo", "jais"}, {REGEX_GPT2}, false},
    {{"qwen2", "deepseek-r1-qwen", "stablelm2", "megrez"}, {REGEX_QWEN2}, false},
    {{"starcoder", "refact", "command-r", "smollm", "codeshell"}, {"\\p{N}", REGEX_GPT2_SHORT},
     false},
    {{"falcon"}, {"[\\p{P}\\$\\+<=>\\^~\\|`]+", REGEX_GPT2_SHORT, "[0-9][0-9][0-9]"}, false},
};

// ----------------------------------------------------------------------------
// Configuration

typedef enum {
    SPLIT_REMOVED,
    SPLIT_ISOLATED,
    SPLIT_MERGED_WITH_PREVIOUS,
    SPLIT_MERGED_WITH_NEXT,
    SPLIT_CONTIGUOUS,
} SplitBehavior;

typedef enum { PRE_SPLIT, PRE_BYTE_LEVEL } PreKind;

typedef struct {
    PreKind kind;
    pcre2_code *regex; // PRE_SPLIT; PRE_BYTE_LEVEL when it splits with GPT-2's regex, else NULL
    SplitBehavior behavior;
    bool invert;           // the pieces between matches are the delimiters
    bool add_prefix_space; // PRE_BYTE_LEVEL: prepend " " to a piece that does not start with one
    char *pattern;         // for tokenizer_describe
} PreStep;

typedef enum {
    NORM_NFC,
    NORM_NFD,
    NORM_NFKC,
    NORM_NFKD,
    NORM_LOWERCASE,
    NORM_PREPEND,
    NORM_REPLACE,
    NORM_STRIP,
} NormKind;

typedef struct {
    NormKind kind;
    char *text;          // NORM_PREPEND: the prefix; NORM_REPLACE: the replacement
    pcre2_code *pattern; // NORM_REPLACE
    bool strip_left, strip_right;
} NormStep;

typedef enum {
    DECODE_BYTE_LEVEL,    // characters of the byte-level alphabet back to bytes
    DECODE_SENTENCEPIECE, // "▁" to space, <0xNN> byte tokens to bytes
    DECODE_VERBATIM,      // token texts unchanged
} DecodeKind;

// Merge table entry: (left, right) -> (rank, result). key UINT64_MAX marks an empty slot.
typedef struct {
    uint64_t key;
    int32_t rank;
    int32_t result;
} MergeSlot;

typedef struct {
    NormStep *norms;
    int n_norms;
    PreStep *pres;
    int n_pres;

    MergeSlot *merges;
    size_t merge_cap; // power of two
    int n_merges;

    bool ignore_merges, byte_fallback, fuse_unk;
    int unk_id; // the model's unknown token for characters outside the vocabulary, or -1
    DecodeKind decode;
    int byte_tokens[256]; // <0xNN> token of each byte for byte_fallback, -1 when absent

    // GPT-2's byte-to-unicode alphabet: byte b is written as byte_chars[b] (1 or 2 UTF-8 bytes).
    char byte_chars[256][2];
    uint8_t byte_char_len[256];
    int16_t char_to_byte[0x144]; // the inverse, by code point; -1 for other code points

    char *pre_name; // GGUF name, or "tokenizer.json"
} BpeState;

static uint64_t merge_key(int left, int right) {
    return ((uint64_t)(uint32_t)left << 32) | (uint32_t)right;
}

static size_t merge_slot(uint64_t key, size_t cap) {
    // 64-bit mix (splitmix64 finalizer) so that ids that differ in few bits spread out.
    key ^= key >> 33;
    key *= 0xff51afd7ed558ccdull;
    key ^= key >> 33;
    return (size_t)key & (cap - 1);
}

// Returns the slot of (left, right), or NULL.
static const MergeSlot *merge_find(const BpeState *st, int left, int right) {
    if (st->n_merges == 0) {
        return NULL;
    }
    uint64_t key = merge_key(left, right);
    for (size_t i = merge_slot(key, st->merge_cap);; i = (i + 1) & (st->merge_cap - 1)) {
        const MergeSlot *slot = &st->merges[i];
        if (slot->key == key) {
            return slot;
        }
        if (slot->key == UINT64_MAX) {
            return NULL;
        }
    }
}

static void merges_reserve(BpeState *st, int n) {
    size_t cap = 16;
    while (cap < 2 * (size_t)n) {
        cap *= 2;
    }
    st->merge_cap = cap;
    st->merges = xmalloc(cap * sizeof *st->merges);
    for (size_t i = 0; i < cap; i++) {
        st->merges[i].key = UINT64_MAX;
    }
}

// Adds a merge; a pair listed twice keeps its first (lowest) rank, as in Hugging Face.
static void merges_add(BpeState *st, int left, int right, int result, int rank) {
    uint64_t key = merge_key(left, right);
    size_t i = merge_slot(key, st->merge_cap);
    while (st->merges[i].key != UINT64_MAX) {
        if (st->merges[i].key == key) {
            return;
        }
        i = (i + 1) & (st->merge_cap - 1);
    }
    st->merges[i] = (MergeSlot){key, rank, result};
    st->n_merges++;
}

// GPT-2's bytes_to_unicode: bytes '!'..'~', 0xA1..0xAC and 0xAE..0xFF are written as the code
// point of the same value, the other 68 bytes (0x00..0x20, 0x7F..0xA0, 0xAD) as U+0100, U+0101,
// ... in byte order.
static uint32_t byte_level_char(unsigned char b) {
    if (b <= 0x20) {
        return 0x100 + b;
    }
    if (b >= 0x7F && b <= 0xA0) {
        return 0x100 + 33 + (b - 0x7F);
    }
    if (b == 0xAD) {
        return 0x100 + 33 + 34;
    }
    return b;
}

static void byte_level_init(BpeState *st) {
    for (int cp = 0; cp < 0x144; cp++) {
        st->char_to_byte[cp] = -1;
    }
    for (int b = 0; b < 256; b++) {
        uint32_t cp = byte_level_char((unsigned char)b);
        char utf8[4];
        size_t n = utf8_encode(cp, utf8);
        memcpy(st->byte_chars[b], utf8, n);
        st->byte_char_len[b] = (uint8_t)n;
        st->char_to_byte[cp] = (int16_t)b;
    }
}

static BpeState *bpe_state_new(const char *pre_name) {
    BpeState *st = xcalloc(1, sizeof *st);
    st->pre_name = xstrdup(pre_name);
    st->decode = DECODE_BYTE_LEVEL;
    st->unk_id = -1;
    for (int b = 0; b < 256; b++) {
        st->byte_tokens[b] = -1;
    }
    byte_level_init(st);
    return st;
}

static void bpe_free_state(Tokenizer *t) {
    BpeState *st = t->family_state;
    if (!st) {
        return;
    }
    for (int i = 0; i < st->n_norms; i++) {
        free(st->norms[i].text);
        pcre2_code_free(st->norms[i].pattern);
    }
    for (int i = 0; i < st->n_pres; i++) {
        pcre2_code_free(st->pres[i].regex);
        free(st->pres[i].pattern);
    }
    free(st->norms);
    free(st->pres);
    free(st->merges);
    free(st->pre_name);
    free(st);
    t->family_state = NULL;
}

// Rewrites \s and \S to Unicode's White_Space set: PCRE2's \s with UCP leaves out U+0085, which
// Rust's regex, Oniguruma and llama.cpp count as whitespace.
static char *widen_whitespace_classes(const char *pattern) {
    StrBuf out;
    sb_init(&out);
    bool in_class = false;
    for (const char *p = pattern; *p; p++) {
        if (p[0] == '\\' && p[1] != '\0') {
            if (p[1] == 's') {
                sb_append(&out, in_class ? "\\s\\x{85}" : "[\\s\\x{85}]");
            } else if (p[1] == 'S' && !in_class) {
                sb_append(&out, "[^\\s\\x{85}]");
            } else {
                sb_append_n(&out, p, 2);
            }
            p++;
            continue;
        }
        if (*p == '[' && !in_class) {
            in_class = true;
            sb_append_n(&out, p, 1);
            // A ']' right after '[' or '[^' is a literal.
            if (p[1] == '^') {
                sb_append_n(&out, ++p, 1);
            }
            if (p[1] == ']') {
                sb_append_n(&out, ++p, 1);
            }
            continue;
        }
        if (*p == ']' && in_class) {
            in_class = false;
        }
        sb_append_n(&out, p, 1);
    }
    return out.data;
}

// Compiles a pattern (a regex, or a literal string when `literal`). Returns NULL with an error that
// names `where` and the position of the problem.
static pcre2_code *regex_compile(const char *pattern, bool literal, const char *where) {
    uint32_t options = PCRE2_UTF | PCRE2_MATCH_INVALID_UTF;
    char *source = NULL;
    if (literal) {
        options |= PCRE2_LITERAL;
        source = xstrdup(pattern);
    } else {
        options |= PCRE2_UCP;
        source = widen_whitespace_classes(pattern);
    }
    int error = 0;
    PCRE2_SIZE offset = 0;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)source, PCRE2_ZERO_TERMINATED, options, &error,
                                   &offset, NULL);
    free(source);
    if (!re) {
        PCRE2_UCHAR message[256];
        pcre2_get_error_message(error, message, sizeof message);
        err_set("%s: the regex \"%s\" does not compile at offset %zu: %s", where, pattern,
                (size_t)offset, (const char *)message);
        return NULL;
    }
    // JIT is only faster; without it (unsupported CPU, no executable memory) the interpreter runs.
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
    return re;
}

static PreStep *pre_add(BpeState *st) {
    st->pres = xrealloc(st->pres, (size_t)(st->n_pres + 1) * sizeof *st->pres);
    PreStep *step = &st->pres[st->n_pres++];
    memset(step, 0, sizeof *step);
    return step;
}

static int pre_add_split(BpeState *st, const char *pattern, bool literal, SplitBehavior behavior,
                         bool invert, const char *where) {
    pcre2_code *re = regex_compile(pattern, literal, where);
    if (!re) {
        return -1;
    }
    PreStep *step = pre_add(st);
    step->kind = PRE_SPLIT;
    step->regex = re;
    step->behavior = behavior;
    step->invert = invert;
    step->pattern = xstrdup(pattern);
    return 0;
}

static int pre_add_byte_level(BpeState *st, bool add_prefix_space, bool use_regex,
                              const char *where) {
    pcre2_code *re = NULL;
    if (use_regex && !(re = regex_compile(REGEX_GPT2, false, where))) {
        return -1;
    }
    PreStep *step = pre_add(st);
    step->kind = PRE_BYTE_LEVEL;
    step->regex = re;
    step->behavior = SPLIT_ISOLATED;
    step->add_prefix_space = add_prefix_space;
    step->pattern = xstrdup(use_regex ? "ByteLevel (GPT-2 regex)" : "ByteLevel");
    return 0;
}

// ----------------------------------------------------------------------------
// Pieces: a list of byte ranges in one text buffer

typedef struct {
    StrBuf text;
    size_t *start, *len;
    size_t n, cap;
} PieceList;

static void pieces_init(PieceList *p) {
    memset(p, 0, sizeof *p);
    sb_init(&p->text);
}

static void pieces_free(PieceList *p) {
    sb_free(&p->text);
    free(p->start);
    free(p->len);
}

static void pieces_grow(PieceList *p) {
    if (p->n == p->cap) {
        p->cap = p->cap ? 2 * p->cap : 16;
        p->start = xrealloc(p->start, p->cap * sizeof *p->start);
        p->len = xrealloc(p->len, p->cap * sizeof *p->len);
    }
}

// Appends a piece (empty pieces are dropped, as Hugging Face's splits drop them).
static void pieces_push(PieceList *p, const char *s, size_t n) {
    if (n == 0) {
        return;
    }
    pieces_grow(p);
    p->start[p->n] = p->text.len;
    p->len[p->n] = n;
    sb_append_n(&p->text, s, n);
    p->n++;
}

// Appends bytes to the last piece.
static void pieces_extend(PieceList *p, const char *s, size_t n) {
    p->len[p->n - 1] += n;
    sb_append_n(&p->text, s, n);
}

// A part of a piece: a match of the pattern or the text between matches.
typedef struct {
    size_t start, end;
    bool is_match;
} Segment;

typedef struct {
    Segment *data;
    size_t n, cap;
} SegmentList;

static void segments_push(SegmentList *v, size_t start, size_t end, bool is_match) {
    if (v->n == v->cap) {
        v->cap = v->cap ? 2 * v->cap : 16;
        v->data = xrealloc(v->data, v->cap * sizeof *v->data);
    }
    v->data[v->n++] = (Segment){start, end, is_match};
}

// Covers s[0..n) with matches of `re` and the gaps between them (Hugging Face's find_matches).
static void find_matches(const pcre2_code *re, pcre2_match_data *md, const char *s, size_t n,
                         SegmentList *out) {
    out->n = 0;
    size_t pos = 0, prev = 0;
    while (pos <= n) {
        int rc = pcre2_match(re, (PCRE2_SPTR)s, n, pos, 0, md, NULL);
        if (rc < 0) {
            break; // PCRE2_ERROR_NOMATCH, or a resource limit: the rest is one gap
        }
        PCRE2_SIZE *ovector = pcre2_get_ovector_pointer(md);
        size_t start = ovector[0], end = ovector[1];
        if (start > prev) {
            segments_push(out, prev, start, false);
        }
        if (end > start) {
            segments_push(out, start, end, true);
            pos = prev = end;
            continue;
        }
        // An empty match: step over one character so that the search advances.
        prev = start;
        if (start >= n) {
            break;
        }
        size_t char_len;
        utf8_decode(s + start, n - start, &char_len);
        pos = start + char_len;
    }
    if (prev < n) {
        segments_push(out, prev, n, false);
    }
}

// Splits s[0..n) by the segments as Hugging Face's SplitDelimiterBehavior does, into `out`.
static void split_by_behavior(const char *s, SegmentList *segs, SplitBehavior behavior,
                              bool invert, PieceList *out) {
    if (invert) {
        for (size_t i = 0; i < segs->n; i++) {
            segs->data[i].is_match = !segs->data[i].is_match;
        }
    }
    size_t first = out->n;
    bool previous_match = false;
    switch (behavior) {
    case SPLIT_REMOVED:
        for (size_t i = 0; i < segs->n; i++) {
            if (!segs->data[i].is_match) {
                pieces_push(out, s + segs->data[i].start, segs->data[i].end - segs->data[i].start);
            }
        }
        break;
    case SPLIT_ISOLATED:
        for (size_t i = 0; i < segs->n; i++) {
            pieces_push(out, s + segs->data[i].start, segs->data[i].end - segs->data[i].start);
        }
        break;
    case SPLIT_MERGED_WITH_PREVIOUS:
    case SPLIT_CONTIGUOUS:
        for (size_t i = 0; i < segs->n; i++) {
            const Segment *g = &segs->data[i];
            bool join = behavior == SPLIT_CONTIGUOUS ? g->is_match == previous_match
                                                     : g->is_match && !previous_match;
            if (join && out->n > first) {
                pieces_extend(out, s + g->start, g->end - g->start);
            } else {
                pieces_push(out, s + g->start, g->end - g->start);
            }
            previous_match = g->is_match;
        }
        break;
    case SPLIT_MERGED_WITH_NEXT: {
        // A match joins the piece after it: walk backwards, then emit in order.
        size_t(*spans)[2] = xmalloc((segs->n + 1) * sizeof *spans);
        size_t n_spans = 0;
        for (size_t i = segs->n; i-- > 0;) {
            const Segment *g = &segs->data[i];
            if (g->is_match && !previous_match && n_spans > 0) {
                spans[n_spans - 1][0] = g->start;
            } else {
                spans[n_spans][0] = g->start;
                spans[n_spans][1] = g->end;
                n_spans++;
            }
            previous_match = g->is_match;
        }
        for (size_t k = n_spans; k-- > 0;) {
            pieces_push(out, s + spans[k][0], spans[k][1] - spans[k][0]);
        }
        free(spans);
        break;
    }
    }
}

// Appends s[0..n) as a new piece with every byte written as its character of the byte-level
// alphabet.
static void pieces_push_byte_level(PieceList *p, const BpeState *st, const char *s, size_t n) {
    if (n == 0) {
        return;
    }
    pieces_grow(p);
    p->start[p->n] = p->text.len;
    for (size_t i = 0; i < n; i++) {
        unsigned char b = (unsigned char)s[i];
        sb_append_n(&p->text, st->byte_chars[b], st->byte_char_len[b]);
    }
    p->len[p->n] = p->text.len - p->start[p->n];
    p->n++;
}

static void pre_apply(const BpeState *st, const PreStep *step, pcre2_match_data *md,
                      const PieceList *in, PieceList *out, SegmentList *segs) {
    StrBuf scratch;
    sb_init(&scratch);
    for (size_t i = 0; i < in->n; i++) {
        const char *s = in->text.data + in->start[i];
        size_t n = in->len[i];

        if (step->kind == PRE_SPLIT) {
            find_matches(step->regex, md, s, n, segs);
            split_by_behavior(s, segs, step->behavior, step->invert, out);
            continue;
        }

        // ByteLevel: the prefix space, the optional GPT-2 split, then the byte mapping.
        scratch.len = 0;
        if (step->add_prefix_space && (n == 0 || s[0] != ' ')) {
            sb_append_n(&scratch, " ", 1);
        }
        sb_append_n(&scratch, s, n);
        segs->n = 0;
        if (step->regex) {
            find_matches(step->regex, md, scratch.data, scratch.len, segs);
        } else {
            segments_push(segs, 0, scratch.len, false);
        }
        for (size_t j = 0; j < segs->n; j++) {
            pieces_push_byte_level(out, st, scratch.data + segs->data[j].start,
                                   segs->data[j].end - segs->data[j].start);
        }
    }
    sb_free(&scratch);
}

// ----------------------------------------------------------------------------
// Normalizers

// Replaces every match of `re` in text with `replacement`.
static void replace_all(const pcre2_code *re, pcre2_match_data *md, const char *replacement,
                        const StrBuf *in, StrBuf *out, SegmentList *segs) {
    find_matches(re, md, in->data, in->len, segs);
    for (size_t i = 0; i < segs->n; i++) {
        const Segment *g = &segs->data[i];
        if (g->is_match) {
            sb_append(out, replacement);
        } else {
            sb_append_n(out, in->data + g->start, g->end - g->start);
        }
    }
}

static int norm_apply(const NormStep *step, pcre2_match_data *md, const StrBuf *in, StrBuf *out,
                      SegmentList *segs) {
    switch (step->kind) {
    case NORM_NFC: return unicode_normalize(in->data, in->len, UNICODE_NFC, out);
    case NORM_NFD: return unicode_normalize(in->data, in->len, UNICODE_NFD, out);
    case NORM_NFKC: return unicode_normalize(in->data, in->len, UNICODE_NFKC, out);
    case NORM_NFKD: return unicode_normalize(in->data, in->len, UNICODE_NFKD, out);
    case NORM_LOWERCASE:
        for (size_t i = 0; i < in->len;) {
            size_t n;
            int32_t cp = utf8_decode(in->data + i, in->len - i, &n);
            if (cp < 0) {
                sb_append_n(out, in->data + i, n);
            } else {
                unicode_append_lower((uint32_t)cp, out);
            }
            i += n;
        }
        return 0;
    case NORM_PREPEND:
        // Hugging Face prepends only to non-empty text.
        if (in->len > 0) {
            sb_append(out, step->text);
        }
        sb_append_n(out, in->data, in->len);
        return 0;
    case NORM_REPLACE:
        replace_all(step->pattern, md, step->text, in, out, segs);
        return 0;
    case NORM_STRIP: {
        size_t start = 0, end = in->len;
        while (step->strip_left && start < end) {
            size_t n;
            int32_t cp = utf8_decode(in->data + start, end - start, &n);
            if (cp < 0 || !unicode_is_whitespace((uint32_t)cp)) {
                break;
            }
            start += n;
        }
        while (step->strip_right && end > start) {
            size_t lead = end - 1;
            while (lead > start && ((unsigned char)in->data[lead] & 0xC0) == 0x80) {
                lead--;
            }
            size_t n;
            int32_t cp = utf8_decode(in->data + lead, end - lead, &n);
            if (cp < 0 || !unicode_is_whitespace((uint32_t)cp)) {
                break;
            }
            end = lead;
        }
        sb_append_n(out, in->data + start, end - start);
        return 0;
    }
    }
    return 0;
}

// ----------------------------------------------------------------------------
// BPE on one piece

typedef struct {
    int id;
    int prev, next; // neighbor symbols, -1 at the ends
    size_t len;     // bytes of the piece covered; 0 once merged into its left neighbor
} BpeSymbol;

typedef struct {
    int32_t rank;
    int32_t pos;    // left symbol
    int32_t result; // merged token, to detect a pair that changed after queueing
} BpeMerge;

typedef struct {
    BpeMerge *data;
    size_t n, cap;
} MergeHeap;

// True when `a` merges before `b`: lower rank first, then the leftmost (Hugging Face's Merge order).
static bool merge_before(const BpeMerge *a, const BpeMerge *b) {
    if (a->rank != b->rank) {
        return a->rank < b->rank;
    }
    return a->pos < b->pos;
}

static void heap_push(MergeHeap *h, BpeMerge m) {
    if (h->n == h->cap) {
        h->cap = h->cap ? 2 * h->cap : 64;
        h->data = xrealloc(h->data, h->cap * sizeof *h->data);
    }
    size_t i = h->n++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!merge_before(&m, &h->data[parent])) {
            break;
        }
        h->data[i] = h->data[parent];
        i = parent;
    }
    h->data[i] = m;
}

static BpeMerge heap_pop(MergeHeap *h) {
    BpeMerge top = h->data[0];
    BpeMerge last = h->data[--h->n];
    size_t i = 0;
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= h->n) {
            break;
        }
        if (child + 1 < h->n && merge_before(&h->data[child + 1], &h->data[child])) {
            child++;
        }
        if (!merge_before(&h->data[child], &last)) {
            break;
        }
        h->data[i] = h->data[child];
        i = child;
    }
    if (h->n > 0) {
        h->data[i] = last;
    }
    return top;
}

typedef struct {
    BpeSymbol *data;
    int n, cap;
} SymbolList;

static void symbols_push(SymbolList *v, int id, size_t len) {
    if (v->n == v->cap) {
        v->cap = v->cap ? 2 * v->cap : 64;
        v->data = xrealloc(v->data, (size_t)v->cap * sizeof *v->data);
    }
    v->data[v->n] = (BpeSymbol){id, v->n - 1, -1, len};
    if (v->n > 0) {
        v->data[v->n - 1].next = v->n;
    }
    v->n++;
}

static void queue_pair(const BpeState *st, const SymbolList *syms, int left, MergeHeap *heap) {
    int right = left >= 0 ? syms->data[left].next : -1;
    if (right < 0) {
        return;
    }
    const MergeSlot *m = merge_find(st, syms->data[left].id, syms->data[right].id);
    if (m) {
        heap_push(heap, (BpeMerge){m->rank, left, m->result});
    }
}

// Splits a piece into initial symbols (Hugging Face's BPE::merge_word before merging).
static void initial_symbols(const Tokenizer *t, const BpeState *st, const char *s, size_t n,
                            SymbolList *syms) {
    int unk_pending = -1; // bytes covered by the unknown token being fused, or -1
    for (size_t i = 0; i < n;) {
        size_t char_len;
        utf8_decode(s + i, n - i, &char_len);
        int id = tokenizer_lookup(t, s + i, char_len);
        if (id >= 0) {
            if (unk_pending >= 0) {
                symbols_push(syms, st->unk_id, (size_t)unk_pending);
                unk_pending = -1;
            }
            symbols_push(syms, id, char_len);
            i += char_len;
            continue;
        }

        bool all_bytes = st->byte_fallback;
        for (size_t k = 0; all_bytes && k < char_len; k++) {
            all_bytes = st->byte_tokens[(unsigned char)s[i + k]] >= 0;
        }
        if (all_bytes) {
            // NOTE: as in Hugging Face, a pending unknown token is emitted only at the next
            // character that is a token, so it can follow these byte tokens.
            for (size_t k = 0; k < char_len; k++) {
                symbols_push(syms, st->byte_tokens[(unsigned char)s[i + k]], 1);
            }
        } else if (st->unk_id >= 0) {
            if (unk_pending >= 0 && !st->fuse_unk) {
                symbols_push(syms, st->unk_id, (size_t)unk_pending);
                unk_pending = -1;
            }
            unk_pending = (unk_pending < 0 ? 0 : unk_pending) + (int)char_len;
        }
        // Without byte fallback and unknown token, Hugging Face drops the character.
        i += char_len;
    }
    if (unk_pending >= 0) {
        symbols_push(syms, st->unk_id, (size_t)unk_pending);
    }
}

static void bpe_piece(const Tokenizer *t, const BpeState *st, const char *s, size_t n,
                      SymbolList *syms, MergeHeap *heap, TokenIds *out) {
    if (st->ignore_merges) {
        int id = tokenizer_lookup(t, s, n);
        if (id >= 0) {
            token_ids_push(out, id);
            return;
        }
    }

    syms->n = 0;
    heap->n = 0;
    initial_symbols(t, st, s, n, syms);
    for (int i = 0; i + 1 < syms->n; i++) {
        queue_pair(st, syms, i, heap);
    }

    while (heap->n > 0) {
        BpeMerge m = heap_pop(heap);
        BpeSymbol *left = &syms->data[m.pos];
        if (left->len == 0 || left->next < 0) {
            continue;
        }
        BpeSymbol *right = &syms->data[left->next];
        const MergeSlot *current = merge_find(st, left->id, right->id);
        if (!current || current->result != m.result) {
            continue;
        }
        left->id = m.result;
        left->len += right->len;
        right->len = 0;
        left->next = right->next;
        if (left->next >= 0) {
            syms->data[left->next].prev = m.pos;
        }
        queue_pair(st, syms, left->prev, heap);
        queue_pair(st, syms, m.pos, heap);
    }

    for (int i = syms->n > 0 ? 0 : -1; i >= 0; i = syms->data[i].next) {
        token_ids_push(out, syms->data[i].id);
    }
}

static int bpe_encode_text(const Tokenizer *t, const char *text, size_t len, bool after_special,
                           TokenIds *out) {
    (void)after_special; // normalizers and pre-tokenizers treat every span alike
    const BpeState *st = t->family_state;
    pcre2_match_data *md = pcre2_match_data_create(1, NULL);
    SegmentList segs = {0};
    int rc = 0;

    // 1. Normalizers.
    StrBuf current, next;
    sb_init(&current);
    sb_init(&next);
    sb_append_n(&current, text, len);
    for (int i = 0; i < st->n_norms && rc == 0; i++) {
        next.len = 0;
        next.data[0] = '\0';
        rc = norm_apply(&st->norms[i], md, &current, &next, &segs);
        StrBuf swap = current;
        current = next;
        next = swap;
    }

    // 2. Pre-tokenizers.
    PieceList pieces, next_pieces;
    pieces_init(&pieces);
    pieces_init(&next_pieces);
    pieces_push(&pieces, current.data, current.len);
    for (int i = 0; i < st->n_pres && rc == 0; i++) {
        next_pieces.n = 0;
        next_pieces.text.len = 0;
        pre_apply(st, &st->pres[i], md, &pieces, &next_pieces, &segs);
        PieceList swap = pieces;
        pieces = next_pieces;
        next_pieces = swap;
    }

    // 3. BPE on each piece.
    SymbolList syms = {0};
    MergeHeap heap = {0};
    for (size_t i = 0; i < pieces.n && rc == 0; i++) {
        bpe_piece(t, st, pieces.text.data + pieces.start[i], pieces.len[i], &syms, &heap, out);
    }

    free(syms.data);
    free(heap.data);
    pieces_free(&pieces);
    pieces_free(&next_pieces);
    sb_free(&current);
    sb_free(&next);
    free(segs.data);
    pcre2_match_data_free(md);
    return rc;
}

// ----------------------------------------------------------------------------
// Decoding

// Appends the bytes of a byte-level token text. As Hugging Face's ByteLevel decoder does, a text
// with a character outside the alphabet is written unchanged.
static void append_from_byte_level(const BpeState *st, const char *text, size_t len,
                                   StrBuf *out) {
    size_t start = out->len;
    for (size_t i = 0; i < len;) {
        size_t n;
        int32_t cp = utf8_decode(text + i, len - i, &n);
        if (cp < 0 || cp >= 0x144 || st->char_to_byte[cp] < 0) {
            out->len = start;
            out->data[start] = '\0';
            sb_append_n(out, text, len);
            return;
        }
        char b = (char)st->char_to_byte[cp];
        sb_append_n(out, &b, 1);
        i += n;
    }
}

static void bpe_make_piece(const Tokenizer *t, int id, StrBuf *out) {
    const BpeState *st = t->family_state;
    const char *text = t->texts + t->text_offset[id];
    size_t len = t->text_len[id];
    switch ((TokenType)t->types[id]) {
    case TOKEN_TYPE_NORMAL:
        if (st->decode == DECODE_BYTE_LEVEL) {
            append_from_byte_level(st, text, len, out);
        } else if (st->decode == DECODE_SENTENCEPIECE) {
            for (size_t i = 0; i < len; i++) {
                if (i + 3 <= len && memcmp(text + i, "\xe2\x96\x81", 3) == 0) {
                    sb_append_n(out, " ", 1);
                    i += 2;
                } else {
                    sb_append_n(out, text + i, 1);
                }
            }
        } else {
            sb_append_n(out, text, len);
        }
        break;
    case TOKEN_TYPE_BYTE: {
        char byte = (char)tokenizer_parse_byte_token(text, len);
        sb_append_n(out, &byte, 1);
        break;
    }
    case TOKEN_TYPE_CONTROL:
    case TOKEN_TYPE_UNKNOWN:
    case TOKEN_TYPE_USER_DEFINED:
        sb_append_n(out, text, len);
        break;
    case TOKEN_TYPE_UNUSED:
    case TOKEN_TYPE_UNDEFINED:
        break;
    }
}

void tok_byte_level_append(const char *bytes, size_t n, StrBuf *out) {
    for (size_t i = 0; i < n; i++) {
        char utf8[4];
        sb_append_n(out, utf8, utf8_encode(byte_level_char((unsigned char)bytes[i]), utf8));
    }
}

static void bpe_describe(const Tokenizer *t, StrBuf *out) {
    const BpeState *st = t->family_state;
    sb_printf(out, "pre-tokenizer: %s\n", st->pre_name);
    for (int i = 0; i < st->n_pres; i++) {
        sb_printf(out, "  step %d: ", i + 1);
        sb_append_json_string(out, st->pres[i].pattern);
        sb_append(out, "\n");
    }
    sb_printf(out, "merges: %d, ignore_merges: %s, byte_fallback: %s\n", st->n_merges,
              st->ignore_merges ? "true" : "false", st->byte_fallback ? "true" : "false");
}

// ----------------------------------------------------------------------------
// Set-up

// Finds the <0xNN> tokens for byte_fallback and marks them as byte tokens.
static void find_byte_tokens(Tokenizer *t, BpeState *st) {
    for (int b = 0; b < 256; b++) {
        char hex[7];
        snprintf(hex, sizeof hex, "<0x%02X>", b);
        int id = tokenizer_lookup(t, hex, 6);
        st->byte_tokens[b] = id;
        if (id >= 0 && t->types[id] == TOKEN_TYPE_NORMAL) {
            t->types[id] = TOKEN_TYPE_BYTE;
        }
    }
}

static const GgufPreType *gguf_pre_find(const char *name) {
    for (size_t i = 0; i < ARRAY_LEN(gguf_pre_types); i++) {
        for (size_t j = 0; j < ARRAY_LEN(gguf_pre_types[i].names) && gguf_pre_types[i].names[j]; j++) {
            if (strcmp(gguf_pre_types[i].names[j], name) == 0) {
                return &gguf_pre_types[i];
            }
        }
    }
    return NULL;
}

static void list_gguf_pre_names(StrBuf *out) {
    for (size_t i = 0; i < ARRAY_LEN(gguf_pre_types); i++) {
        for (size_t j = 0; j < ARRAY_LEN(gguf_pre_types[i].names) && gguf_pre_types[i].names[j]; j++) {
            sb_printf(out, "%s%s", out->len ? ", " : "", gguf_pre_types[i].names[j]);
        }
    }
}

// Adds the regex list of a GGUF pre-tokenizer name followed by the byte mapping.
static int setup_gguf_pre(Tokenizer *t, BpeState *st, const char *pre, const char *path) {
    const GgufPreType *type = gguf_pre_find(pre);
    if (!type) {
        StrBuf names;
        sb_init(&names);
        list_gguf_pre_names(&names);
        err_set("%s: tokenizer.ggml.pre is \"%s\", which qbias does not support (supported: %s)",
                path, pre, names.data);
        sb_free(&names);
        return -1;
    }
    char where[512];
    snprintf(where, sizeof where, "%s: pre-tokenizer \"%s\"", path, pre);
    for (size_t i = 0; i < ARRAY_LEN(type->regexes) && type->regexes[i]; i++) {
        if (pre_add_split(st, type->regexes[i], false, SPLIT_ISOLATED, false, where) != 0) {
            return -1;
        }
    }
    if (pre_add_byte_level(st, false, false, where) != 0) {
        return -1;
    }
    // llama.cpp makes BOS the default for Llama 3's pre-tokenizers.
    if (type->ignore_merges && t->add_bos_source == TOK_KEY_ABSENT && t->bos_id >= 0) {
        t->add_bos = true;
    }
    return 0;
}

int tok_bpe_setup_ranked(Tokenizer *t, const char *pre, const int32_t *pairs, int n_merges,
                         bool ignore_merges, const char *path) {
    BpeState *st = bpe_state_new(pre);
    t->family_state = st;
    if (setup_gguf_pre(t, st, pre, path) != 0) {
        return -1;
    }
    st->ignore_merges = ignore_merges || gguf_pre_find(pre)->ignore_merges;

    merges_reserve(st, n_merges);
    StrBuf joined;
    sb_init(&joined);
    for (int i = 0; i < n_merges; i++) {
        int left = pairs[2 * i], right = pairs[2 * i + 1];
        joined.len = 0;
        sb_append_n(&joined, t->texts + t->text_offset[left], t->text_len[left]);
        sb_append_n(&joined, t->texts + t->text_offset[right], t->text_len[right]);
        int result = tokenizer_lookup(t, joined.data, joined.len);
        if (result < 0) {
            err_set("%s: merge %d joins tokens %d and %d into \"%s\", which is not in the "
                    "vocabulary; the merges do not fit the vocabulary",
                    path, i, left, right, joined.data);
            sb_free(&joined);
            return -1;
        }
        merges_add(st, left, right, result, i);
    }
    sb_free(&joined);
    return 0;
}

// Parses merges "left right" (split at the first space after the first byte, as llama.cpp does)
// into id pairs. Returns the number of merges, or -1 with an error.
static int parse_merge_text(const Tokenizer *t, const char *text, size_t len, int32_t pair[2]) {
    const char *space = len > 1 ? memchr(text + 1, ' ', len - 1) : NULL;
    if (!space) {
        return -1;
    }
    pair[0] = tokenizer_lookup(t, text, (size_t)(space - text));
    pair[1] = tokenizer_lookup(t, space + 1, len - (size_t)(space - text) - 1);
    return pair[0] >= 0 && pair[1] >= 0 ? 0 : -1;
}

static int bpe_prepare(Tokenizer *t, const GGUFFile *f, const char *path) {
    char *pre = NULL;
    if (gguf_get_string(f, "tokenizer.ggml.pre", &pre) < 0) {
        return -1;
    }
    if (!pre) {
        log_warn("%s: tokenizer.ggml.pre is missing; using the \"default\" pre-tokenizer as "
                 "llama.cpp does",
                 path);
        pre = xstrdup("default");
    }

    const GGUFArray *merges = NULL;
    int found = gguf_get_array(f, "tokenizer.ggml.merges", &merges);
    if (found <= 0 || merges->elem_type != GGUF_TYPE_STRING) {
        free(pre);
        return found < 0 ? -1
                         : err_set("%s: tokenizer.ggml.merges is missing or not an array of "
                                   "strings; a BPE vocabulary needs its merges, so re-convert "
                                   "the model",
                                   path);
    }
    if (merges->n > INT32_MAX / 2) {
        free(pre);
        return err_set("%s: tokenizer.ggml.merges has %llu entries, more than qbias supports",
                       path, (unsigned long long)merges->n);
    }

    int n = (int)merges->n;
    int32_t *pairs = xmalloc((size_t)(2 * n + 1) * sizeof *pairs);
    for (int i = 0; i < n; i++) {
        const GGUFString *m = &merges->strings[i];
        if (parse_merge_text(t, m->data, m->len, pairs + 2 * i) != 0) {
            err_set("%s: tokenizer.ggml.merges[%d] \"%.*s\" is not two vocabulary tokens "
                    "separated by a space",
                    path, i, (int)(m->len > 200 ? 200 : m->len), m->data);
            free(pairs);
            free(pre);
            return -1;
        }
    }
    int rc = tok_bpe_setup_ranked(t, pre, pairs, n, false, path);
    free(pairs);
    free(pre);
    return rc;
}

// ----------------------------------------------------------------------------
// tokenizer.json

static const char *json_string(const cJSON *obj, const char *key) {
    return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(obj, key));
}

static bool json_bool(const cJSON *obj, const char *key, bool fallback) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsBool(v) ? cJSON_IsTrue(v) : fallback;
}

// Reads a {"String": ...} or {"Regex": ...} pattern. Returns the text and sets *literal.
static const char *json_pattern(const cJSON *obj, bool *literal) {
    const cJSON *pattern = cJSON_GetObjectItemCaseSensitive(obj, "pattern");
    const char *s = json_string(pattern, "String");
    if (s) {
        *literal = true;
        return s;
    }
    *literal = false;
    return json_string(pattern, "Regex");
}

static int parse_behavior(const char *name, SplitBehavior *out) {
    static const struct {
        const char *name;
        SplitBehavior behavior;
    } behaviors[] = {
        {"Removed", SPLIT_REMOVED},
        {"Isolated", SPLIT_ISOLATED},
        {"MergedWithPrevious", SPLIT_MERGED_WITH_PREVIOUS},
        {"MergedWithNext", SPLIT_MERGED_WITH_NEXT},
        {"Contiguous", SPLIT_CONTIGUOUS},
    };
    for (size_t i = 0; name && i < ARRAY_LEN(behaviors); i++) {
        if (strcmp(name, behaviors[i].name) == 0) {
            *out = behaviors[i].behavior;
            return 0;
        }
    }
    return -1;
}

static int setup_pre_json(BpeState *st, const cJSON *node, const char *path, const char *where) {
    if (!node || cJSON_IsNull(node)) {
        return 0;
    }
    const char *type = json_string(node, "type");
    char here[256];
    snprintf(here, sizeof here, "%s: tokenizer.json %s (%s)", path, where, type ? type : "?");

    if (type && strcmp(type, "Sequence") == 0) {
        const cJSON *item;
        int i = 0;
        cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(node, "pretokenizers")) {
            char inner[128];
            snprintf(inner, sizeof inner, "%s.pretokenizers[%d]", where, i++);
            if (setup_pre_json(st, item, path, inner) != 0) {
                return -1;
            }
        }
        return 0;
    }
    if (type && strcmp(type, "ByteLevel") == 0) {
        return pre_add_byte_level(st, json_bool(node, "add_prefix_space", true),
                                  json_bool(node, "use_regex", true), here);
    }
    if (type && strcmp(type, "Split") == 0) {
        bool literal;
        const char *pattern = json_pattern(node, &literal);
        SplitBehavior behavior;
        if (!pattern || parse_behavior(json_string(node, "behavior"), &behavior) != 0) {
            return err_set("%s: a Split needs a pattern (String or Regex) and a behavior "
                           "(Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous)",
                           here);
        }
        return pre_add_split(st, pattern, literal, behavior, json_bool(node, "invert", false),
                             here);
    }
    if (type && strcmp(type, "Digits") == 0) {
        // Hugging Face's Digits isolates each digit, or each run of digits (char::is_numeric).
        bool individual = json_bool(node, "individual_digits", false);
        return pre_add_split(st, individual ? "\\p{N}" : "\\p{N}+", false, SPLIT_ISOLATED, false,
                             here);
    }
    if (type && strcmp(type, "Whitespace") == 0) {
        return pre_add_split(st, "\\w+|[^\\w\\s]+", false, SPLIT_REMOVED, true, here);
    }
    if (type && strcmp(type, "WhitespaceSplit") == 0) {
        return pre_add_split(st, "\\s+", false, SPLIT_REMOVED, false, here);
    }
    if (type && strcmp(type, "Punctuation") == 0) {
        SplitBehavior behavior = SPLIT_ISOLATED;
        const char *name = json_string(node, "behavior");
        if (name && parse_behavior(name, &behavior) != 0) {
            return err_set("%s: unknown behavior \"%s\"", here, name);
        }
        return pre_add_split(st, "[\\p{P}!-/:-@\\[-`{-~]", false, behavior, false, here);
    }
    return err_set("%s: the pre-tokenizer type \"%s\" is not supported (supported: Sequence, "
                   "ByteLevel, Split, Digits, Whitespace, WhitespaceSplit, Punctuation)",
                   here, type ? type : "(missing)");
}

static NormStep *norm_add(BpeState *st, NormKind kind) {
    st->norms = xrealloc(st->norms, (size_t)(st->n_norms + 1) * sizeof *st->norms);
    NormStep *step = &st->norms[st->n_norms++];
    memset(step, 0, sizeof *step);
    step->kind = kind;
    return step;
}

static int setup_norm_json(Tokenizer *t, BpeState *st, const cJSON *node, const char *path,
                           const char *where) {
    if (!node || cJSON_IsNull(node)) {
        return 0;
    }
    const char *type = json_string(node, "type");
    char here[256];
    snprintf(here, sizeof here, "%s: tokenizer.json %s (%s)", path, where, type ? type : "?");

    static const struct {
        const char *name;
        NormKind kind;
    } simple[] = {
        {"NFC", NORM_NFC}, {"NFD", NORM_NFD}, {"NFKC", NORM_NFKC},
        {"NFKD", NORM_NFKD}, {"Lowercase", NORM_LOWERCASE},
    };
    for (size_t i = 0; type && i < ARRAY_LEN(simple); i++) {
        if (strcmp(type, simple[i].name) == 0) {
            norm_add(st, simple[i].kind);
            return 0;
        }
    }
    if (type && strcmp(type, "Sequence") == 0) {
        const cJSON *item;
        int i = 0;
        cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(node, "normalizers")) {
            char inner[128];
            snprintf(inner, sizeof inner, "%s.normalizers[%d]", where, i++);
            if (setup_norm_json(t, st, item, path, inner) != 0) {
                return -1;
            }
        }
        return 0;
    }
    if (type && strcmp(type, "Prepend") == 0) {
        const char *prepend = json_string(node, "prepend");
        if (!prepend) {
            return err_set("%s: \"prepend\" is missing", here);
        }
        norm_add(st, NORM_PREPEND)->text = xstrdup(prepend);
        // The decoder then drops the space this adds at the start of the text.
        t->add_space_prefix = true;
        return 0;
    }
    if (type && strcmp(type, "Replace") == 0) {
        bool literal;
        const char *pattern = json_pattern(node, &literal);
        const char *content = json_string(node, "content");
        if (!pattern || !content) {
            return err_set("%s: a Replace needs a pattern (String or Regex) and a content", here);
        }
        pcre2_code *re = regex_compile(pattern, literal, here);
        if (!re) {
            return -1;
        }
        NormStep *step = norm_add(st, NORM_REPLACE);
        step->pattern = re;
        step->text = xstrdup(content);
        return 0;
    }
    if (type && strcmp(type, "Strip") == 0) {
        NormStep *step = norm_add(st, NORM_STRIP);
        step->strip_left = json_bool(node, "strip_left", true);
        step->strip_right = json_bool(node, "strip_right", true);
        return 0;
    }
    return err_set("%s: the normalizer type \"%s\" is not supported for BPE (supported: "
                   "Sequence, NFC, NFD, NFKC, NFKD, Lowercase, Prepend, Replace, Strip)",
                   here, type ? type : "(missing)");
}

// Picks the piece decoding from the decoder section: ByteLevel, the SentencePiece layout
// (Replace "▁" -> " " with ByteFallback), or the token texts unchanged.
static void setup_decoder_json(Tokenizer *t, BpeState *st, const cJSON *node) {
    st->decode = DECODE_VERBATIM;
    const char *type = json_string(node, "type");
    if (!type) {
        return;
    }
    if (strcmp(type, "ByteLevel") == 0) {
        st->decode = DECODE_BYTE_LEVEL;
    } else if (strcmp(type, "Metaspace") == 0) {
        st->decode = DECODE_SENTENCEPIECE;
    } else if (strcmp(type, "Replace") == 0) {
        bool literal;
        const char *pattern = json_pattern(node, &literal);
        if (pattern && strcmp(pattern, "\xe2\x96\x81") == 0) {
            st->decode = DECODE_SENTENCEPIECE;
        }
    } else if (strcmp(type, "Strip") == 0) {
        const cJSON *start = cJSON_GetObjectItemCaseSensitive(node, "start");
        if (cJSON_IsNumber(start) && start->valuedouble >= 1) {
            t->add_space_prefix = true;
        }
    } else if (strcmp(type, "Sequence") == 0) {
        DecodeKind found = DECODE_VERBATIM;
        const cJSON *item;
        cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(node, "decoders")) {
            setup_decoder_json(t, st, item);
            if (st->decode != DECODE_VERBATIM) {
                found = st->decode;
            }
        }
        st->decode = found;
    }
}

static int setup_merges_json(Tokenizer *t, BpeState *st, const cJSON *merges, const char *path) {
    int n = cJSON_GetArraySize(merges);
    merges_reserve(st, n);
    StrBuf joined;
    sb_init(&joined);
    int i = 0;
    const cJSON *item;
    cJSON_ArrayForEach(item, merges) {
        int32_t pair[2] = {-1, -1};
        const char *text = cJSON_GetStringValue(item);
        bool ok;
        if (text) {
            ok = parse_merge_text(t, text, strlen(text), pair) == 0;
        } else {

            // Newer files write a merge as ["left", "right"], which allows spaces in tokens.
            const char *left = cJSON_GetStringValue(cJSON_GetArrayItem(item, 0));
            const char *right = cJSON_GetStringValue(cJSON_GetArrayItem(item, 1));
            ok = left && right && cJSON_GetArraySize(item) == 2;
            if (ok) {
                pair[0] = tokenizer_lookup(t, left, strlen(left));
                pair[1] = tokenizer_lookup(t, right, strlen(right));
                ok = pair[0] >= 0 && pair[1] >= 0;
            }
        }

        if (!ok) {
            char *printed = cJSON_PrintUnformatted(item);
            err_set("%s: tokenizer.json model.merges[%d] %s is not two vocabulary tokens", path,
                    i, printed ? printed : "?");
            free(printed);
            sb_free(&joined);
            return -1;
        }
        joined.len = 0;
        sb_append_n(&joined, t->texts + t->text_offset[pair[0]], t->text_len[pair[0]]);
        sb_append_n(&joined, t->texts + t->text_offset[pair[1]], t->text_len[pair[1]]);
        int result = tokenizer_lookup(t, joined.data, joined.len);
        if (result < 0) {
            err_set("%s: tokenizer.json model.merges[%d] makes \"%s\", which is not in the "
                    "vocabulary",
                    path, i, joined.data);
            sb_free(&joined);
            return -1;
        }
        merges_add(st, pair[0], pair[1], result, i);
        i++;
    }
    sb_free(&joined);
    return 0;
}

int tok_bpe_setup_hf(Tokenizer *t, const cJSON *root, const char *path) {
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    BpeState *st = bpe_state_new("tokenizer.json");
    t->family_state = st;

    const cJSON *dropout = cJSON_GetObjectItemCaseSensitive(model, "dropout");
    if (cJSON_IsNumber(dropout) && dropout->valuedouble > 0) {
        return err_set("%s: tokenizer.json model.dropout is %g; BPE dropout is random, so qbias "
                       "supports only null or 0",
                       path, dropout->valuedouble);
    }
    const char *affixes[] = {"continuing_subword_prefix", "end_of_word_suffix"};
    for (size_t i = 0; i < ARRAY_LEN(affixes); i++) {
        const char *value = json_string(model, affixes[i]);
        if (value && value[0]) {
            return err_set("%s: tokenizer.json model.%s is \"%s\"; qbias supports BPE without "
                           "subword affixes only",
                           path, affixes[i], value);
        }
    }
    st->byte_fallback = json_bool(model, "byte_fallback", false);
    st->ignore_merges = json_bool(model, "ignore_merges", false);
    st->fuse_unk = json_bool(model, "fuse_unk", false);
    if (st->byte_fallback) {
        find_byte_tokens(t, st);
    }

    const char *unk = json_string(model, "unk_token");
    if (unk) {
        int id = tokenizer_lookup(t, unk, strlen(unk));
        if (id < 0) {
            return err_set("%s: tokenizer.json model.unk_token \"%s\" is not in the vocabulary",
                           path, unk);
        }
        st->unk_id = t->unk_id = id;
        t->unk_source = TOK_KEY_SET;
        t->types[id] = TOKEN_TYPE_UNKNOWN;
    }

    const cJSON *merges = cJSON_GetObjectItemCaseSensitive(model, "merges");
    if (!cJSON_IsArray(merges)) {
        return err_set("%s: tokenizer.json model.merges is missing or not an array", path);
    }
    if (setup_merges_json(t, st, merges, path) != 0 ||
        setup_norm_json(t, st, cJSON_GetObjectItemCaseSensitive(root, "normalizer"), path,
                        "normalizer") != 0 ||
        setup_pre_json(st, cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer"), path,
                       "pre_tokenizer") != 0) {
        return -1;
    }
    setup_decoder_json(t, st, cJSON_GetObjectItemCaseSensitive(root, "decoder"));
    return 0;
}

// Defaults for the "gpt2" model in llama.cpp's llama_vocab::impl::load: BOS and EOS 11, no
// unknown token, no BOS added, no space prefix.
const TokenizerFamily tok_family_bpe = {
    .model = "gpt2",
    .description = "BPE with merge ranks",
    .defaults = {.bos_id = 11, .eos_id = 11, .unk_id = -1, .sep_id = -1,
                 .add_bos = false, .add_eos = false, .add_space_prefix = false},
    .prepare = bpe_prepare,
    .encode_text = bpe_encode_text,
    .make_piece = bpe_make_piece,
    .free_state = bpe_free_state,
    .describe = bpe_describe,
};
