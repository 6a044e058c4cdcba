// tok_wordpiece.c: BERT's WordPiece tokenizer (GGUF tokenizer.ggml.model = "bert", Hugging Face
// model "WordPiece" or a vocab.txt folder), as Hugging Face's tokenizers crate does it
// (normalizers/bert.rs, pre_tokenizers/bert.rs, models/wordpiece).
//
// Encoding one span of text (special tokens are already cut out):
//   1. Normalize (BertNormalizer), in this order. Drop U+0000, U+FFFD and control characters
//      (category C* except tab, LF, CR) and turn whitespace into spaces. Put spaces around CJK
//      ideographs. Strip accents (NFD, then drop category Mn). Lower-case each character.
//   2. Split at whitespace (dropped) and around punctuation (ASCII !-/ :-@ [-` {-~ and category
//      P*, each its own word).
//   3. WordPiece on each word: a word of more than max_input_chars_per_word characters is the
//      unknown token. Otherwise take the longest vocabulary match from the left, later pieces
//      with the continuation prefix "##"; if some position has no match, the whole word is the
//      unknown token.
//
// GGUF files store BERT vocabularies in llama.cpp's "phantom space" form: "▁word" for a token that
// starts a word, the bare piece for a "##" continuation, and "[X]" tokens unchanged. Lookups here
// use that form for GGUF vocabularies and vocab.txt's form otherwise.
#include "tokenizer.h"
#include "unicode.h"

#include <stdlib.h>
#include <string.h>

#define PHANTOM_SPACE "\xe2\x96\x81"

typedef struct {
    WordPieceOptions options;
    char *prefix;       // continuation prefix, owned copy of options.continuing_subword_prefix
    bool phantom_space; // GGUF form of the vocabulary (see the file comment)
} WordPieceState;

// CJK Unified Ideographs blocks as Hugging Face's tokenizers lists them. Its fifth range starts
// at 0x2B920 where Google's BERT has 0x2B820, and Hugging Face is the reference here.
static bool is_chinese_char(uint32_t cp) {
    return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) ||
           (cp >= 0x20000 && cp <= 0x2A6DF) || (cp >= 0x2A700 && cp <= 0x2B73F) ||
           (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B920 && cp <= 0x2CEAF) ||
           (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}

static bool is_bert_whitespace(uint32_t cp) {
    return cp == '\t' || cp == '\n' || cp == '\r' || unicode_is_whitespace(cp);
}

static bool is_bert_control(uint32_t cp) {
    return cp != '\t' && cp != '\n' && cp != '\r' && unicode_is_other(cp);
}

// Rust's char::is_ascii_punctuation or a Unicode punctuation category.
static bool is_bert_punctuation(uint32_t cp) {
    bool ascii = (cp >= 33 && cp <= 47) || (cp >= 58 && cp <= 64) || (cp >= 91 && cp <= 96) ||
                 (cp >= 123 && cp <= 126);
    return ascii || unicode_is_punctuation(cp);
}

static void append_cp(StrBuf *out, uint32_t cp) {
    char bytes[4];
    sb_append_n(out, bytes, utf8_encode(cp, bytes));
}

// Step 1. Invalid UTF-8 bytes are dropped: Hugging Face only takes valid strings.
static int normalize(const WordPieceOptions *o, const char *text, size_t len, StrBuf *out) {
    StrBuf cleaned;
    sb_init(&cleaned);
    for (size_t i = 0; i < len;) {
        size_t n;
        int32_t cp = utf8_decode(text + i, len - i, &n);
        i += n;
        if (cp < 0) {
            continue;
        }
        uint32_t c = (uint32_t)cp;
        if (o->clean_text) {
            if (c == 0 || c == 0xFFFD || is_bert_control(c)) {
                continue;
            }
            if (is_bert_whitespace(c)) {
                c = ' ';
            }
        }
        if (o->handle_chinese_chars && is_chinese_char(c)) {
            sb_append_n(&cleaned, " ", 1);
            append_cp(&cleaned, c);
            sb_append_n(&cleaned, " ", 1);
        } else {
            append_cp(&cleaned, c);
        }
    }

    StrBuf decomposed;
    sb_init(&decomposed);
    const StrBuf *source = &cleaned;
    if (o->strip_accents) {
        if (unicode_normalize(cleaned.data, cleaned.len, UNICODE_NFD, &decomposed) != 0) {
            sb_free(&cleaned);
            sb_free(&decomposed);
            return -1;
        }
        source = &decomposed;
    }
    for (size_t i = 0; i < source->len;) {
        size_t n;
        int32_t cp = utf8_decode(source->data + i, source->len - i, &n);
        i += n;
        if (cp < 0 || (o->strip_accents && unicode_is_nonspacing_mark((uint32_t)cp))) {
            continue;
        }
        if (o->lowercase) {
            unicode_append_lower((uint32_t)cp, out);
        } else {
            append_cp(out, (uint32_t)cp);
        }
    }
    sb_free(&cleaned);
    sb_free(&decomposed);
    return 0;
}

// Looks up text[0..len) as a word start (`continuation` false) or as a continuation piece.
static int lookup_piece(const Tokenizer *t, const WordPieceState *st, const char *text,
                        size_t len, bool continuation, StrBuf *scratch) {
    const char *prefix = st->phantom_space ? (continuation ? "" : PHANTOM_SPACE)
                                           : (continuation ? st->prefix : "");
    if (prefix[0] == '\0') {
        return tokenizer_lookup(t, text, len);
    }
    scratch->len = 0;
    sb_append(scratch, prefix);
    sb_append_n(scratch, text, len);
    return tokenizer_lookup(t, scratch->data, scratch->len);
}

// Step 3 for one word (valid UTF-8 after normalization).
static void wordpiece_word(const Tokenizer *t, const WordPieceState *st, const char *word,
                           size_t len, StrBuf *scratch, TokenIds *out) {
    size_t n_chars = 0;
    for (size_t i = 0; i < len; i++) {
        n_chars += ((unsigned char)word[i] & 0xC0) != 0x80;
    }
    int first = out->n;
    if (n_chars <= (size_t)st->options.max_input_chars_per_word) {
        for (size_t start = 0; start < len;) {
            int id = -1;
            size_t end = len;
            // Longest match first: shrink from the right one character at a time.
            while (end > start) {
                id = lookup_piece(t, st, word + start, end - start, start > 0, scratch);
                if (id >= 0) {
                    break;
                }
                do {
                    end--;
                } while (end > start && ((unsigned char)word[end] & 0xC0) == 0x80);
            }
            if (id < 0) {
                out->n = first; // the word has no spelling: it becomes the unknown token
                break;
            }
            token_ids_push(out, id);
            start = end;
        }
        if (out->n > first) {
            return;
        }
    }
    if (t->unk_id >= 0) {
        token_ids_push(out, t->unk_id);
    }
}

static int wordpiece_encode_text(const Tokenizer *t, const char *text, size_t len,
                                 bool after_special, TokenIds *out) {
    (void)after_special;
    const WordPieceState *st = t->family_state;
    StrBuf normalized, scratch;
    sb_init(&normalized);
    sb_init(&scratch);
    if (normalize(&st->options, text, len, &normalized) != 0) {
        sb_free(&normalized);
        sb_free(&scratch);
        return -1;
    }

    // Step 2: words end at whitespace; each punctuation character is a word of its own.
    size_t word_start = 0;
    for (size_t i = 0; i <= normalized.len;) {
        size_t n = 1;
        int32_t cp = i < normalized.len ? utf8_decode(normalized.data + i, normalized.len - i, &n)
                                        : ' ';
        bool space = cp >= 0 && unicode_is_whitespace((uint32_t)cp);
        bool punct = cp >= 0 && is_bert_punctuation((uint32_t)cp);
        if (space || punct) {
            if (i > word_start) {
                wordpiece_word(t, st, normalized.data + word_start, i - word_start, &scratch, out);
            }
            if (punct) {
                wordpiece_word(t, st, normalized.data + i, n, &scratch, out);
            }
            word_start = i + n;
        }
        i += n;
    }
    sb_free(&normalized);
    sb_free(&scratch);
    return 0;
}

// Pieces: a word-start token is " word", a continuation is the bare piece, and special tokens are
// " [CLS]" like words, as Hugging Face's WordPiece decoder joins tokens. The space at the start of
// the text is dropped by tokenizer_append_piece (strip_first_space).
static void wordpiece_make_piece(const Tokenizer *t, int id, StrBuf *out) {
    const WordPieceState *st = t->family_state;
    const char *text = t->texts + t->text_offset[id];
    size_t len = t->text_len[id];
    if (t->types[id] == TOKEN_TYPE_UNUSED || t->types[id] == TOKEN_TYPE_UNDEFINED) {
        return;
    }
    if (t->types[id] != TOKEN_TYPE_NORMAL) {
        sb_append_n(out, " ", 1);
        sb_append_n(out, text, len);
        return;
    }
    if (st->phantom_space) {
        size_t phantom = strlen(PHANTOM_SPACE);
        bool bracketed = len >= 2 && text[0] == '[' && text[len - 1] == ']';
        if (len >= phantom && memcmp(text, PHANTOM_SPACE, phantom) == 0) {
            sb_append_n(out, " ", 1);
            sb_append_n(out, text + phantom, len - phantom);
        } else if (bracketed) {
            sb_append_n(out, " ", 1);
            sb_append_n(out, text, len);
        } else {
            sb_append_n(out, text, len);
        }
        return;
    }
    size_t prefix_len = strlen(st->prefix);
    if (prefix_len > 0 && len >= prefix_len && memcmp(text, st->prefix, prefix_len) == 0) {
        sb_append_n(out, text + prefix_len, len - prefix_len);
    } else {
        sb_append_n(out, " ", 1);
        sb_append_n(out, text, len);
    }
}

static void wordpiece_free_state(Tokenizer *t) {
    WordPieceState *st = t->family_state;
    if (st) {
        free(st->prefix);
        free(st);
    }
    t->family_state = NULL;
}

static void wordpiece_describe(const Tokenizer *t, StrBuf *out) {
    const WordPieceState *st = t->family_state;
    const WordPieceOptions *o = &st->options;
    sb_printf(out,
              "wordpiece: lowercase %s, strip_accents %s, clean_text %s, "
              "handle_chinese_chars %s, max_input_chars_per_word %d, vocabulary form %s\n",
              o->lowercase ? "true" : "false", o->strip_accents ? "true" : "false",
              o->clean_text ? "true" : "false", o->handle_chinese_chars ? "true" : "false",
              o->max_input_chars_per_word, st->phantom_space ? "GGUF phantom space" : "##");
}

int tok_wordpiece_setup(Tokenizer *t, const WordPieceOptions *options, const char *path) {
    if (options->max_input_chars_per_word <= 0) {
        return err_set("%s: max_input_chars_per_word is %d, expected a positive number", path,
                       options->max_input_chars_per_word);
    }
    WordPieceState *st = xcalloc(1, sizeof *st);
    st->options = *options;
    st->prefix = xstrdup(options->continuing_subword_prefix ? options->continuing_subword_prefix
                                                            : "##");
    st->options.continuing_subword_prefix = st->prefix;
    t->family_state = st;
    t->clean_spaces = true;
    return 0;
}

// GGUF: BERT uncased settings (GGUF files store no normalizer flags; llama.cpp always lower-cases).
// BOS is the [CLS] token (tokenizer.ggml.cls_token_id) unless tokenizer.ggml.bos_token_id is set.
static int wordpiece_prepare(Tokenizer *t, const GGUFFile *f, const char *path) {
    int64_t cls = 0;
    int found = gguf_get_int(f, "tokenizer.ggml.cls_token_id", &cls);
    if (found < 0) {
        return -1;
    }
    if (found && t->bos_source == TOK_KEY_ABSENT) {
        if (cls < 0 || cls >= t->n_vocab) {
            return err_set("%s: tokenizer.ggml.cls_token_id is %lld, outside the vocabulary of %d "
                           "tokens",
                           path, (long long)cls, t->n_vocab);
        }
        t->bos_id = (int)cls;
        t->bos_source = TOK_KEY_SET;
    }
    if (t->unk_id < 0) {
        return err_set("%s: a WordPiece vocabulary needs an unknown token (set "
                       "tokenizer.ggml.unknown_token_id)",
                       path);
    }
    // NOTE: cased BERT models need lowercase and strip_accents off, which GGUF cannot express.
    WordPieceOptions options = {
        .clean_text = true,
        .handle_chinese_chars = true,
        .strip_accents = true,
        .lowercase = true,
        .continuing_subword_prefix = "##",
        .max_input_chars_per_word = 100,
    };
    if (tok_wordpiece_setup(t, &options, path) != 0) {
        return -1;
    }
    ((WordPieceState *)t->family_state)->phantom_space = true;
    return 0;
}

// Defaults for the "bert" model in llama.cpp's llama_vocab::impl::load: [CLS] 101 as BOS,
// [UNK] 100, [SEP] 102 appended, no EOS.
const TokenizerFamily tok_family_wordpiece = {
    .model = "bert",
    .description = "WordPiece",
    .defaults = {.bos_id = 101, .eos_id = -1, .unk_id = 100, .sep_id = 102,
                 .add_bos = true, .add_eos = false, .add_sep = true, .add_space_prefix = false},
    .prepare = wordpiece_prepare,
    .encode_text = wordpiece_encode_text,
    .make_piece = wordpiece_make_piece,
    .free_state = wordpiece_free_state,
    .describe = wordpiece_describe,
    .strip_first_space = true,
};
