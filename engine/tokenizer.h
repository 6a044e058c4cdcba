// tokenizer.h: text <-> token ids for the vocabularies of GGUF files, Hugging Face folders
// (tokenizer.json, or vocab.txt for BERT) and tiktoken rank files.
//
// The layer has two parts. tokenizer.c is family-independent: it stores the vocabulary (texts,
// scores, token types, special-token ids and the add_bos/add_eos/add_sep/add_space_prefix flags),
// splits the input around special-token texts, adds BOS/EOS/SEP, decodes ids back to text and
// describes the tokenizer. Each tokenizer family (GGUF key tokenizer.ggml.model) lives in its own
// file and plugs in through a TokenizerFamily table:
//
//   "llama"  SentencePiece BPE with byte fallback           tok_spm.c
//   "gpt2"   BPE with merge ranks: byte-level (GPT-2, Llama 3, Qwen2) or, from tokenizer.json,
//            the SentencePiece layout with byte fallback    tok_bpe.c
//   "bert"   WordPiece with BERT's basic tokenizer         tok_wordpiece.c
//
// Loaders: tokenizer_load_gguf (here), tokenizer_load_hf (tokenizer_json.c) and
// tokenizer_load_tiktoken (tok_tiktoken.c).
//
// The targets are Hugging Face's tokenizers and, for GGUF files, llama.cpp's src/llama-vocab.cpp
// (commit c392e509), which agree on the test vectors except where a test names the difference.
//
// Limitations:
// - llama.cpp also marks some tokens as control tokens by their text (for example "<|eot_id|>")
//   and keeps a list of end-of-generation tokens. This layer uses the token types as stored.
// - Special tokens are cut out of the input longest first, as llama.cpp does. Hugging Face
//   matches its added tokens leftmost-longest; the two differ only when special texts overlap.
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

// Builds a tokenizer from a Hugging Face folder: tokenizer.json (model BPE or WordPiece) with
// tokenizer_config.json when present, else vocab.txt with tokenizer_config.json for a BERT
// WordPiece vocabulary. BOS/EOS are added as set by tokenizer_config.json's
// add_bos_token/add_eos_token, else by the post_processor's template. Returns NULL with an error naming the file and
// the JSON path for a missing file, malformed JSON or a component this build does not support.
Tokenizer *tokenizer_load_hf(const char *folder);

// Settings for a tiktoken rank file, which stores only the ranked byte strings.
typedef struct {
    const char *pre;                   // pre-tokenizer, a tokenizer.ggml.pre name, e.g. "llama-bpe"
    const char *const *special_tokens; // texts of the control tokens with ids n_ranks, n_ranks+1, ...
    int n_special_tokens;
    const char *bos_token, *eos_token; // texts among the special tokens, or NULL for none
    bool add_bos;
    bool ignore_merges;                // a piece that is one token is not merged (Llama 3)
} TiktokenOptions;

// Returns the settings of Meta's Llama 3.1 tokenizer: pre-tokenizer "llama-bpe", the 256 special
// tokens <|begin_of_text|> (id 128000) to <|reserved_special_token_247|>, BOS <|begin_of_text|>,
// EOS <|eot_id|> (as Llama-3.1-8B-Instruct's configuration), add_bos true, ignore_merges true.
TiktokenOptions tokenizer_tiktoken_llama3_options(void);

// Builds a byte-level BPE tokenizer from a tiktoken file: one "<base64 bytes> <rank>" line per
// token, ranks 0..n-1 in order. Merges are derived from the ranks as Hugging Face's converter
// does: every split of a token into two tokens is a merge, ordered by the rank of the result,
// then by the rank of the left part. Returns NULL with an error naming the file and line.
Tokenizer *tokenizer_load_tiktoken(const char *path, const TiktokenOptions *options);

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
//
// When the configuration sets it (tokenizer_config.json clean_up_tokenization_spaces, or a
// WordPiece vocabulary), the text is then cleaned as transformers' decode does: the space before
// . ? ! , and before the contractions 's 've 're 'm n't is removed, and " ' " becomes "'".
int tokenizer_decode(const Tokenizer *t, const int *ids, int n, bool skip_special, StrBuf *out);

// Appends the text of one token to `out`, for streaming output (never cleaned as above). prev_id is the token before it, or
// -1 at the start of a sequence. When the vocabulary adds a space prefix, one leading space of the
// piece is dropped at the start of a sequence and after a special token (control, user-defined or
// unknown, BOS included), because the encoder put it there. This is llama2.c's rule ("after BOS,
// drop the leading space") extended to every place where llama.cpp's encoder adds the prefix.
// WordPiece pieces start with a space unless they continue a word ("##"); the same rule drops it.
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
int tokenizer_sep_id(const Tokenizer *t); // BERT's [SEP], appended after EOS when add_sep is set
bool tokenizer_add_bos(const Tokenizer *t);
bool tokenizer_add_eos(const Tokenizer *t);
bool tokenizer_add_sep(const Tokenizer *t);
bool tokenizer_add_space_prefix(const Tokenizer *t);
// tokenizer.ggml.model, e.g. "llama"; for Hugging Face folders and tiktoken files the GGUF name of
// the same family ("gpt2" for BPE, "bert" for WordPiece).
const char *tokenizer_family_name(const Tokenizer *t);
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
    int bos_id, eos_id, unk_id, sep_id; // -1: none
    bool add_bos, add_eos, add_sep, add_space_prefix;
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
    // Appends family-specific lines to tokenizer_describe's output (may be NULL).
    void (*describe)(const Tokenizer *t, StrBuf *out);
    // Pieces of word-initial tokens start with a space that decoding drops at the start of the
    // text (WordPiece), whatever the value of add_space_prefix.
    bool strip_first_space;
} TokenizerFamily;

extern const TokenizerFamily tok_family_spm;
extern const TokenizerFamily tok_family_bpe;
extern const TokenizerFamily tok_family_wordpiece;

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

    int bos_id, eos_id, unk_id, sep_id;
    bool add_bos, add_eos, add_sep, add_space_prefix;
    // Origin of each value above, for tokenizer_describe.
    TokenizerKeySource bos_source, eos_source, unk_source, sep_source;
    TokenizerKeySource add_bos_source, add_eos_source, add_space_prefix_source;
    bool clean_spaces; // tokenizer_decode applies transformers' clean_up_tokenization
    char *source;      // "GGUF", "tokenizer.json", "vocab.txt" or "tiktoken", for the description

    void *family_state; // owned by the family, freed by family->free_state
};

// Returns the id of the token whose text is exactly text[0..len), or -1.
int tokenizer_lookup(const Tokenizer *t, const char *text, size_t len);

// Steps shared by the loaders, in call order:
// 1. tokenizer_new(family, source), then tokenizer_set_vocab: copies the texts (an empty text is
//    renamed "[EMPTY_<id>]"), builds the index and allocates scores (0), types (normal) and flags
//    (0). Returns -1 with an error naming `path` for a duplicate text.
// 2. The loader sets types, flags, special ids and the family state.
// 3. tokenizer_finish: lists the special tokens and builds the decoded pieces.
// On failure the loader frees the tokenizer with tokenizer_free.
Tokenizer *tokenizer_new(const TokenizerFamily *family, const char *source);
int tokenizer_set_vocab(Tokenizer *t, const GGUFString *texts, int n_vocab, const char *path);
void tokenizer_finish(Tokenizer *t);

// Parses a "<0xNN>" byte-token text; returns the byte or -1.
int tokenizer_parse_byte_token(const char *text, size_t len);

// Family set-up for the other loaders (cJSON objects are from <cjson/cJSON.h>).
struct cJSON;
// Reads model (BPE), normalizer, pre_tokenizer and decoder of a parsed tokenizer.json.
int tok_bpe_setup_hf(Tokenizer *t, const struct cJSON *root, const char *path);
// Sets byte-level BPE with the GGUF pre-tokenizer `pre` and merges given as (left, right) id pairs
// in rank order (2 * n_merges ids).
int tok_bpe_setup_ranked(Tokenizer *t, const char *pre, const int32_t *pairs, int n_merges,
                         bool ignore_merges, const char *path);

// Appends bytes written in GPT-2's byte-to-unicode alphabet (the text form of byte-level tokens).
void tok_byte_level_append(const char *bytes, size_t n, StrBuf *out);

// WordPiece settings (BERT's tokenizer_config.json / tokenizer.json BertNormalizer).
typedef struct {
    bool clean_text;          // drop control characters, map whitespace to spaces
    bool handle_chinese_chars; // put spaces around CJK ideographs
    bool strip_accents;       // NFD, then drop nonspacing marks (Mn)
    bool lowercase;
    const char *continuing_subword_prefix; // "##"
    int max_input_chars_per_word;          // longer words become the unknown token (100)
} WordPieceOptions;
int tok_wordpiece_setup(Tokenizer *t, const WordPieceOptions *options, const char *path);

#endif
