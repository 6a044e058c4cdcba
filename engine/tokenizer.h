// tokenizer.h: text <-> token ids for the vocabularies stored in GGUF files.
//
// The layer has two parts. tokenizer.c is family-independent: it loads the vocabulary (texts,
// scores, token types, special-token ids and the add_bos/add_eos/add_space_prefix flags) from the
// GGUF metadata, splits the input around special-token texts, adds BOS/EOS, decodes ids back to
// text and describes the tokenizer. Each tokenizer family (GGUF key tokenizer.ggml.model) lives in
// its own file and plugs in through a TokenizerFamily table:
//
//   "llama"  SentencePiece BPE with byte fallback   tok_spm.c
//
// The target is token-for-token agreement with llama.cpp's src/llama-vocab.cpp. The tests compare
// with ids that llama.cpp commit c392e509 produced.
//
// Limitations:
// - Only the "llama" family is implemented. Byte-level BPE ("gpt2") and WordPiece ("bert") are
//   rejected at load with an error that names the family.
// - llama.cpp also marks some tokens as control tokens by their text (for example "<|eot_id|>")
//   and keeps a list of end-of-generation tokens. This layer uses the token types as stored.
#ifndef QBIAS_TOKENIZER_H
#define QBIAS_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gguf.h"
#include "util.h"

// Token types as stored in tokenizer.ggml.token_type (llama.cpp's llama_token_type).
typedef enum {
    TOKEN_TYPE_UNDEFINED = 0,
    TOKEN_TYPE_NORMAL = 1,
    TOKEN_TYPE_UNKNOWN = 2,      // the <unk> token
    TOKEN_TYPE_CONTROL = 3,      // <s>, </s> and chat markers: matched in input only with parse_special
    TOKEN_TYPE_USER_DEFINED = 4, // added tokens: always matched in input, decoded verbatim
    TOKEN_TYPE_UNUSED = 5,
    TOKEN_TYPE_BYTE = 6,         // byte fallback "<0xNN>"
} TokenType;

typedef struct Tokenizer Tokenizer;

// ----------------------------------------------------------------------------
// Public API

// Builds a tokenizer from the metadata of an open GGUF file. Everything needed is copied, so the
// file may be closed afterwards. Free the result with tokenizer_free().
// Returns NULL with an error naming the file, the key and the problem when the vocabulary is
// missing or inconsistent. Examples: no tokens array, scores or token types of another length, a
// special-token id outside the vocabulary, a malformed byte token, a duplicate token text, or an
// unsupported tokenizer.ggml.model.
Tokenizer *tokenizer_load_gguf(const GGUFFile *f);
void tokenizer_free(Tokenizer *t);

// Encodes `len` bytes of `text` (UTF-8; invalid sequences become byte tokens).
// add_special adds BOS in front when add_bos is set and EOS at the end when add_eos is set.
// parse_special matches the texts of control and unknown tokens ("<s>", "<|end|>") in the input
// and emits their ids. User-defined tokens are matched even without it, as in llama.cpp.
// On success stores a newly allocated array in *ids (free it with free(); never NULL, also for an
// empty result) and its length in *n_ids, and returns 0. Returns -1 with an error when the text is
// longer than INT_MAX / 4 bytes or a byte has no token (no byte token and no unknown token).
int tokenizer_encode(const Tokenizer *t, const char *text, size_t len, bool add_special,
                     bool parse_special, int **ids, int *n_ids);

// Appends the text of `n` ids to `out`. skip_special drops the texts of control and unknown tokens
// ("<s>", "</s>"); user-defined tokens are always written. The leading space that encoding adds as
// a dummy prefix is dropped (see tokenizer_append_piece). Returns 0, or -1 with an error for an id
// outside the vocabulary (out then contains the text of the ids before it).
int tokenizer_decode(const Tokenizer *t, const int *ids, int n, bool skip_special, StrBuf *out);

// Appends the text of one token to `out`, for streaming output. prev_id is the token before it, or
// -1 at the start of a sequence. When the vocabulary adds a space prefix, one leading space of the
// piece is dropped at the start of a sequence and after a special token (control, user-defined or
// unknown, BOS included), because the encoder put it there. This is llama2.c's rule ("after BOS,
// drop the leading space") extended to every place where llama.cpp's encoder adds the prefix.
// Byte tokens append one raw byte, which may be part of a UTF-8 sequence. Returns 0, or -1 with an
// error for an id outside the vocabulary.
int tokenizer_append_piece(const Tokenizer *t, int prev_id, int id, bool skip_special,
                           StrBuf *out);

// Appends a multi-line description for `qbias info`: family, vocabulary size, BOS/EOS/UNK ids and
// texts and the add_* flags, each marked when its GGUF key is absent and llama.cpp's default applies.
void tokenizer_describe(const Tokenizer *t, StrBuf *out);

// Accessors. Ids are -1 when the vocabulary has no such token.
int tokenizer_vocab_size(const Tokenizer *t);
int tokenizer_bos_id(const Tokenizer *t);
int tokenizer_eos_id(const Tokenizer *t);
int tokenizer_unk_id(const Tokenizer *t);
bool tokenizer_add_bos(const Tokenizer *t);
bool tokenizer_add_eos(const Tokenizer *t);
bool tokenizer_add_space_prefix(const Tokenizer *t);
const char *tokenizer_family_name(const Tokenizer *t); // tokenizer.ggml.model, e.g. "llama"
// Returns the stored text of a token (NUL-terminated; "▁" for spaces in SentencePiece
// vocabularies), or NULL for an id outside the vocabulary. Valid until tokenizer_free().
const char *tokenizer_token_text(const Tokenizer *t, int id);
// Returns the token's type, or TOKEN_TYPE_UNDEFINED for an id outside the vocabulary.
TokenType tokenizer_token_type(const Tokenizer *t, int id);

// ----------------------------------------------------------------------------
// For tokenizer family implementations (tok_*.c). Callers of the public API do not need this.

// Growable array of token ids.
typedef struct {
    int *data;
    int n;
    int cap;
} TokenIds;

void token_ids_push(TokenIds *v, int id);

// Per-token flags beside the type (llama.cpp's LLAMA_TOKEN_ATTR_LSTRIP / _RSTRIP).
enum {
    TOKEN_FLAG_LSTRIP = 1, // when matched as a special token, drop whitespace before it
    TOKEN_FLAG_RSTRIP = 2, // when matched as a special token, drop whitespace after it
};

// Defaults a family applies when a GGUF key is absent (llama.cpp's per-model defaults).
typedef struct {
    int bos_id, eos_id, unk_id; // -1: none
    bool add_bos, add_eos, add_space_prefix;
} TokenizerDefaults;

typedef struct TokenizerFamily {
    const char *model;       // value of tokenizer.ggml.model
    const char *description; // for tokenizer_describe
    TokenizerDefaults defaults;
    // Checks and prepares family-specific state after the vocabulary is loaded (may be NULL).
    // Returns 0, or -1 with an error naming `path`.
    int (*prepare)(Tokenizer *t, const GGUFFile *f, const char *path);
    // Encodes one span of plain text (no special tokens in it) and appends the ids to `out`.
    // after_special is true at the start of the input and after a special token.
    int (*encode_text)(const Tokenizer *t, const char *text, size_t len, bool after_special,
                       TokenIds *out);
    // Appends the decoded text of a normal, user-defined or byte token to `out` (the piece that
    // tokenizer_append_piece uses before its space rule).
    void (*make_piece)(const Tokenizer *t, int id, StrBuf *out);
    void (*free_state)(Tokenizer *t); // may be NULL
} TokenizerFamily;

extern const TokenizerFamily tok_family_spm;

// Where a setting came from.
typedef enum {
    TOK_KEY_ABSENT = 0, // the GGUF key is absent: the family default applies
    TOK_KEY_SET,        // the GGUF key's value is used
    TOK_KEY_NONE_MARK,  // the id key is -1 or 4294967295 ("none"), so the default applies as in llama.cpp
} TokenizerKeySource;

// Hash map from token text to id (open addressing, linear probing).
typedef struct {
    int32_t *slots; // cap entries, -1 = empty
    size_t cap;     // power of two
} TokenIndex;

struct Tokenizer {
    const TokenizerFamily *family;
    int n_vocab;

    // Token texts, NUL-terminated, in one arena: text of id i = texts + text_offset[i].
    char *texts;
    size_t *text_offset; // (n_vocab)
    uint32_t *text_len;  // (n_vocab) bytes, without the NUL
    float *scores;       // (n_vocab) SentencePiece log-probabilities; 0 when absent
    uint8_t *types;      // (n_vocab) TokenType
    uint8_t *flags;      // (n_vocab) TOKEN_FLAG_*
    uint32_t max_token_len;
    TokenIndex index;

    // Decoded text of every token (before the space rule), arena like texts.
    char *pieces;
    size_t *piece_offset; // (n_vocab + 1): piece i = pieces[piece_offset[i] .. piece_offset[i+1])

    // Tokens matched as whole units in the input: control, user-defined and unknown tokens, longest
    // text first (ties by id).
    int *special_ids;
    int n_special;

    int bos_id, eos_id, unk_id;
    bool add_bos, add_eos, add_space_prefix;
    // Origin of each value above, for tokenizer_describe.
    TokenizerKeySource bos_source, eos_source, unk_source;
    TokenizerKeySource add_bos_source, add_eos_source, add_space_prefix_source;

    void *family_state; // owned by the family, freed by family->free_state
};

// Returns the id of the token whose text is exactly text[0..len), or -1.
int tokenizer_lookup(const Tokenizer *t, const char *text, size_t len);

#endif
