// tok_spm.c: the SentencePiece BPE tokenizer (GGUF tokenizer.ggml.model = "llama"), as in
// llama.cpp's src/llama-vocab.cpp llm_tokenizer_spm_session.
//
// Encoding one span of text:
//   1. Prepend a space when add_space_prefix is set and the span starts the input or follows a
//      special token, then replace every space with U+2581 "▁" (SentencePiece's escaped space).
//   2. Split the escaped text into symbols, one per UTF-8 character (a truncated character at
//      the end and a stray continuation byte are symbols of their own).
//   3. Put every adjacent pair whose concatenation is a token into a priority queue ordered by
//      that token's score, highest first, ties by leftmost position. Pop pairs, skip those whose
//      symbols have changed since they were queued, merge the rest and queue the new neighbor pairs.
//   4. Emit each final symbol's token; a symbol with no token (a single character outside the
//      vocabulary) becomes one byte-fallback token <0xNN> per UTF-8 byte.
// Each merge costs O(log n) queue work and lookups go through a hash map, so a span of n bytes takes
// O(n log n) time.
#include "tokenizer.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    int byte_ids[256]; // token of each byte for the fallback, -1 when the vocabulary has none
} SpmState;

// A run of the escaped text; n == 0 once it has been merged into its left neighbor.
typedef struct {
    int prev, next; // neighbor symbols, -1 at the ends
    size_t start;   // byte offset in the escaped text
    size_t n;       // length in bytes
} Symbol;

// A candidate merge of two adjacent symbols.
typedef struct {
    int left, right;
    float score; // score of the merged token
    size_t size; // bytes of the merged text, to detect that a symbol changed after queueing
} Bigram;

// Binary max-heap of bigrams.
typedef struct {
    Bigram *data;
    size_t n, cap;
} BigramHeap;

// True when `a` is merged before `b`: higher score first, then the leftmost (llama.cpp's
// llm_bigram_spm::comparator).
static bool bigram_before(const Bigram *a, const Bigram *b) {
    if (a->score != b->score) {
        return a->score > b->score;
    }
    return a->left < b->left;
}

static void heap_push(BigramHeap *h, Bigram b) {
    if (h->n == h->cap) {
        h->cap = h->cap ? 2 * h->cap : 64;
        h->data = xrealloc(h->data, h->cap * sizeof *h->data);
    }
    size_t i = h->n++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!bigram_before(&b, &h->data[parent])) {
            break;
        }
        h->data[i] = h->data[parent];
        i = parent;
    }
    h->data[i] = b;
}

static Bigram heap_pop(BigramHeap *h) {
    Bigram top = h->data[0];
    Bigram last = h->data[--h->n];
    size_t i = 0;
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= h->n) {
            break;
        }
        if (child + 1 < h->n && bigram_before(&h->data[child + 1], &h->data[child])) {
            child++;
        }
        if (!bigram_before(&h->data[child], &last)) {
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

// Bytes of the UTF-8 sequence that starts with `lead`, from its top four bits (llama.cpp's
// unicode_len_utf8: continuation bytes count as 1).
static size_t utf8_sequence_len(unsigned char lead) {
    static const size_t lengths[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return lengths[lead >> 4];
}

typedef struct {
    const Tokenizer *t;
    const char *text; // escaped text
    Symbol *symbols;
    BigramHeap queue;
} SpmSession;

static void try_add_bigram(SpmSession *s, int left, int right) {
    if (left < 0 || right < 0) {
        return;
    }
    const Symbol *l = &s->symbols[left];
    size_t size = l->n + s->symbols[right].n;
    int id = tokenizer_lookup(s->t, s->text + l->start, size);
    if (id < 0) {
        return;
    }
    heap_push(&s->queue, (Bigram){left, right, s->t->scores[id], size});
}

// Replaces spaces with U+2581 and prepends one when `prefix` is set.
static char *escape_spaces(const char *text, size_t len, bool prefix, size_t *out_len) {
    static const char escaped_space[3] = {'\xe2', '\x96', '\x81'};
    size_t n_spaces = 0;
    for (size_t i = 0; i < len; i++) {
        n_spaces += text[i] == ' ';
    }
    size_t n_out = len + 2 * n_spaces + (prefix ? 3 : 0);
    char *out = xmalloc(n_out + 1);
    size_t pos = 0;
    if (prefix) {
        memcpy(out, escaped_space, 3);
        pos = 3;
    }
    for (size_t i = 0; i < len; i++) {
        if (text[i] == ' ') {
            memcpy(out + pos, escaped_space, 3);
            pos += 3;
        } else {
            out[pos++] = text[i];
        }
    }
    out[pos] = '\0';
    *out_len = pos;
    return out;
}

// Emits the token of a final symbol, or its bytes through the byte fallback.
//
// NOTE: llama.cpp's resegment() also looks the text up in the merges it queued and splits it
// again. That branch never runs: a merged symbol is always a token, and an unmerged symbol is one
// UTF-8 character, which is shorter than any queued pair that starts with the same byte.
static int emit_symbol(const Tokenizer *t, const char *text, size_t n, TokenIds *out) {
    int id = tokenizer_lookup(t, text, n);
    if (id >= 0) {
        token_ids_push(out, id);
        return 0;
    }
    const SpmState *state = t->family_state;
    for (size_t i = 0; i < n; i++) {
        unsigned char byte = (unsigned char)text[i];
        int byte_id = state->byte_ids[byte];
        // llama.cpp aborts here. SentencePiece emits <unk>, which is what we do when there is one.
        if (byte_id < 0) {
            byte_id = t->unk_id;
        }
        if (byte_id < 0) {
            return err_set("cannot tokenize byte 0x%02X: the vocabulary has neither a <0x%02X> "
                           "byte token, a token for the byte itself nor an unknown token",
                           byte, byte);
        }
        token_ids_push(out, byte_id);
    }
    return 0;
}

static int spm_encode_text(const Tokenizer *t, const char *raw, size_t raw_len, bool after_special,
                           TokenIds *out) {
    size_t len = 0;
    char *text = escape_spaces(raw, raw_len, t->add_space_prefix && after_special, &len);

    // One symbol per UTF-8 character.
    SpmSession s = {.t = t, .text = text};
    s.symbols = xmalloc((len + 1) * sizeof *s.symbols);
    int n_symbols = 0;
    for (size_t pos = 0; pos < len;) {
        size_t n = utf8_sequence_len((unsigned char)text[pos]);
        if (n > len - pos) {
            n = len - pos;
        }
        s.symbols[n_symbols] = (Symbol){n_symbols - 1, pos + n == len ? -1 : n_symbols + 1, pos, n};
        n_symbols++;
        pos += n;
    }

    for (int i = 1; i < n_symbols; i++) {
        try_add_bigram(&s, i - 1, i);
    }

    // Merge the best pair until no queued pair is still valid.
    while (s.queue.n > 0) {
        Bigram b = heap_pop(&s.queue);
        Symbol *left = &s.symbols[b.left];
        Symbol *right = &s.symbols[b.right];
        if (left->n == 0 || right->n == 0 || left->n + right->n != b.size) {
            continue;
        }
        left->n += right->n;
        right->n = 0;
        left->next = right->next;
        if (right->next >= 0) {
            s.symbols[right->next].prev = b.left;
        }
        try_add_bigram(&s, left->prev, b.left);
        try_add_bigram(&s, b.left, left->next);
    }

    int rc = 0;
    for (int i = n_symbols > 0 ? 0 : -1; i >= 0 && rc == 0; i = s.symbols[i].next) {
        rc = emit_symbol(t, text + s.symbols[i].start, s.symbols[i].n, out);
    }

    free(s.queue.data);
    free(s.symbols);
    free(text);
    return rc;
}

// Finds the byte-fallback token of every byte: "<0xNN>" with upper-case hex digits, else a token
// whose text is the byte itself (llama.cpp's byte_to_token).
static int spm_prepare(Tokenizer *t, const GGUFFile *f, const char *path) {
    (void)f;
    (void)path;
    SpmState *state = xmalloc(sizeof *state);
    for (int byte = 0; byte < 256; byte++) {
        char hex[7];
        snprintf(hex, sizeof hex, "<0x%02X>", byte);
        int id = tokenizer_lookup(t, hex, 6);
        if (id < 0) {
            char c = (char)byte;
            id = tokenizer_lookup(t, &c, 1);
        }
        state->byte_ids[byte] = id;
    }
    t->family_state = state;
    return 0;
}

static void spm_free_state(Tokenizer *t) {
    free(t->family_state);
    t->family_state = NULL;
}

// Decoded text of a token (llama.cpp token_to_piece for SPM): normal tokens with "▁" turned back
// into spaces, byte tokens as their byte, control, unknown and user-defined tokens verbatim, unused
// and undefined tokens as nothing.
static void spm_make_piece(const Tokenizer *t, int id, StrBuf *out) {
    const char *text = t->texts + t->text_offset[id];
    size_t len = t->text_len[id];
    switch ((TokenType)t->types[id]) {
    case TOKEN_TYPE_NORMAL:
        for (size_t i = 0; i < len; i++) {
            if (i + 3 <= len && memcmp(text + i, "\xe2\x96\x81", 3) == 0) {
                sb_append_n(out, " ", 1);
                i += 2;
            } else {
                sb_append_n(out, text + i, 1);
            }
        }
        break;
    case TOKEN_TYPE_BYTE: {
        // The text was checked at load to be <0xNN>.
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

// Defaults for the "llama" model in llama.cpp's llama_vocab::impl::load: BOS 1, EOS 2, UNK 0,
// add BOS, no EOS, add a space prefix.
const TokenizerFamily tok_family_spm = {
    .model = "llama",
    .description = "SentencePiece BPE with byte fallback",
    .defaults = {.bos_id = 1, .eos_id = 2, .unk_id = 0, .sep_id = -1,
                 .add_bos = true, .add_eos = false, .add_space_prefix = true},
    .prepare = spm_prepare,
    .encode_text = spm_encode_text,
    .make_piece = spm_make_piece,
    .free_state = spm_free_state,
};
