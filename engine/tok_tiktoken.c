// tok_tiktoken.c: loads a byte-level BPE tokenizer from a tiktoken rank file
// (tokenizer_load_tiktoken), such as Meta's Llama 3 tokenizer.model.
//
// The file has one "<base64 token bytes> <rank>" line per token. Token `rank` gets id `rank`, its
// text is the bytes in GPT-2's byte-to-unicode alphabet (as in GGUF and tokenizer.json files), and
// the special tokens follow the ranks. Merges come from the ranks as in transformers'
// TikTokenConverter (convert_slow_tokenizer.py): for each token in rank order, every split into
// two parts that are both tokens is a merge, ordered by the rank of the left part.
#include "tokenizer.h"

#include <openssl/evp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

// Llama 3.1's special tokens, ids 128000..128255 (Meta's llama3 tokenizer.py and the
// Llama-3.1 tokenizer.json).
#define LLAMA3_N_SPECIAL 256
static char llama3_reserved[LLAMA3_N_SPECIAL][40];
static const char *llama3_special[LLAMA3_N_SPECIAL];
static pthread_once_t llama3_once = PTHREAD_ONCE_INIT;

static void llama3_specials_init(void) {
    static const char *const named[][2] = {
        {"0", "<|begin_of_text|>"}, {"1", "<|end_of_text|>"},
        {"4", "<|finetune_right_pad_id|>"}, {"6", "<|start_header_id|>"},
        {"7", "<|end_header_id|>"}, {"8", "<|eom_id|>"},
        {"9", "<|eot_id|>"}, {"10", "<|python_tag|>"},
    };
    int reserved = 0;
    for (int i = 0; i < LLAMA3_N_SPECIAL; i++) {
        llama3_special[i] = NULL;
        for (size_t k = 0; k < ARRAY_LEN(named); k++) {
            if (atoi(named[k][0]) == i) {
                llama3_special[i] = named[k][1];
            }
        }
        if (!llama3_special[i]) {
            snprintf(llama3_reserved[i], sizeof llama3_reserved[i],
                     "<|reserved_special_token_%d|>", reserved++);
            llama3_special[i] = llama3_reserved[i];
        }
    }
}

TiktokenOptions tokenizer_tiktoken_llama3_options(void) {
    pthread_once(&llama3_once, llama3_specials_init);
    return (TiktokenOptions){
        .pre = "llama-bpe",
        .special_tokens = llama3_special,
        .n_special_tokens = LLAMA3_N_SPECIAL,
        .bos_token = "<|begin_of_text|>",
        .eos_token = "<|eot_id|>",
        .add_bos = true,
        .ignore_merges = true,
    };
}

// Decodes one base64 field. Returns the byte count, or -1 for invalid base64.
static int decode_base64(const char *text, size_t len, unsigned char *out) {
    if (len == 0 || len % 4 != 0 || len > INT32_MAX) {
        return -1;
    }
    int n = EVP_DecodeBlock(out, (const unsigned char *)text, (int)len);
    if (n < 0) {
        return -1;
    }
    // EVP_DecodeBlock counts the bytes that '=' padding stands for.
    n -= (text[len - 1] == '=') + (text[len - 2] == '=');
    return n;
}

// Reads the ranked tokens as byte-level texts into `texts` (one arena, offsets in `offsets`).
static int read_ranks(const char *path, const char *data, size_t len, StrBuf *texts,
                      size_t **offsets, int *n_ranks) {
    size_t cap = 1024;
    *offsets = xmalloc(cap * sizeof **offsets);
    int n = 0, line_no = 0;
    unsigned char *bytes = NULL;
    size_t bytes_cap = 0;
    for (size_t pos = 0; pos < len;) {
        const char *line = data + pos;
        const char *nl = memchr(line, '\n', len - pos);
        size_t line_len = nl ? (size_t)(nl - line) : len - pos;
        pos += line_len + 1;
        line_no++;
        if (line_len == 0) {
            continue;
        }
        const char *space = memchr(line, ' ', line_len);
        char *end = NULL;
        long rank = space ? strtol(space + 1, &end, 10) : -1;
        if (!space || end == space + 1 || rank != n) {
            free(bytes);
            return err_set("%s:%d: expected \"<base64 token> %d\" (ranks in order from 0)", path,
                           line_no, n);
        }
        size_t b64_len = (size_t)(space - line);
        if (b64_len + 3 > bytes_cap) {
            bytes_cap = 2 * b64_len + 16;
            bytes = xrealloc(bytes, bytes_cap);
        }
        int n_bytes = decode_base64(line, b64_len, bytes);
        if (n_bytes <= 0) {
            free(bytes);
            return err_set("%s:%d: the token is not valid base64", path, line_no);
        }
        if ((size_t)n + 1 >= cap) {
            cap *= 2;
            *offsets = xrealloc(*offsets, cap * sizeof **offsets);
        }
        (*offsets)[n] = texts->len;
        tok_byte_level_append((const char *)bytes, (size_t)n_bytes, texts);
        n++;
        (*offsets)[n] = texts->len;
    }
    free(bytes);
    if (n == 0) {
        return err_set("%s: the file has no ranks", path);
    }
    *n_ranks = n;
    return 0;
}

typedef struct {
    int32_t left_rank, left, right;
} Split;

static int compare_split(const void *a, const void *b) {
    const Split *x = a, *y = b;
    return (x->left_rank > y->left_rank) - (x->left_rank < y->left_rank);
}

// Derives the merges (see the file comment) as id pairs in rank order.
static int32_t *derive_merges(const Tokenizer *t, int n_ranks, int *n_merges) {
    size_t cap = 1024, n = 0;
    int32_t *pairs = xmalloc(2 * cap * sizeof *pairs);
    Split *splits = xmalloc((t->max_token_len + 1) * sizeof *splits);
    for (int rank = 0; rank < n_ranks; rank++) {
        const char *text = t->texts + t->text_offset[rank];
        size_t len = t->text_len[rank];
        size_t n_splits = 0;
        // Split between characters: each character of the text is one byte of the token.
        for (size_t k = 1; k < len; k++) {
            if (((unsigned char)text[k] & 0xC0) == 0x80) {
                continue;
            }
            int left = tokenizer_lookup(t, text, k);
            int right = tokenizer_lookup(t, text + k, len - k);
            if (left >= 0 && left < n_ranks && right >= 0 && right < n_ranks) {
                splits[n_splits++] = (Split){left, left, right};
            }
        }
        qsort(splits, n_splits, sizeof *splits, compare_split);
        for (size_t i = 0; i < n_splits; i++) {
            if (n == cap) {
                cap *= 2;
                pairs = xrealloc(pairs, 2 * cap * sizeof *pairs);
            }
            pairs[2 * n] = splits[i].left;
            pairs[2 * n + 1] = splits[i].right;
            n++;
        }
    }
    free(splits);
    *n_merges = (int)n;
    return pairs;
}

static int find_option_token(const Tokenizer *t, const char *text, const char *what,
                             const char *path) {
    int id = tokenizer_lookup(t, text, strlen(text));
    if (id < 0) {
        err_set("%s: the %s token \"%s\" is neither ranked nor among the special tokens", path,
                what, text);
    }
    return id;
}

Tokenizer *tokenizer_load_tiktoken(const char *path, const TiktokenOptions *options) {
    char *data;
    size_t len;
    if (file_read_all(path, &data, &len) != 0) {
        return NULL;
    }
    StrBuf arena;
    sb_init(&arena);
    size_t *offsets = NULL;
    int n_ranks = 0;
    int rc = read_ranks(path, data, len, &arena, &offsets, &n_ranks);
    free(data);

    Tokenizer *t = tokenizer_new(&tok_family_bpe, "tiktoken");
    if (rc == 0) {
        int n = n_ranks + options->n_special_tokens;
        GGUFString *texts = xmalloc((size_t)n * sizeof *texts);
        for (int i = 0; i < n_ranks; i++) {
            texts[i] = (GGUFString){arena.data + offsets[i], offsets[i + 1] - offsets[i]};
        }
        for (int i = 0; i < options->n_special_tokens; i++) {
            const char *s = options->special_tokens[i];
            texts[n_ranks + i] = (GGUFString){s, strlen(s)};
        }
        rc = tokenizer_set_vocab(t, texts, n, path);
        free(texts);
    }
    free(offsets);
    sb_free(&arena);

    if (rc == 0) {
        for (int i = 0; i < options->n_special_tokens; i++) {
            t->types[n_ranks + i] = TOKEN_TYPE_CONTROL;
        }
        if (options->bos_token) {
            t->bos_id = find_option_token(t, options->bos_token, "BOS", path);
            t->bos_source = TOK_KEY_SET;
        }
        if (options->eos_token) {
            t->eos_id = find_option_token(t, options->eos_token, "EOS", path);
            t->eos_source = TOK_KEY_SET;
        }
        if ((options->bos_token && t->bos_id < 0) || (options->eos_token && t->eos_id < 0)) {
            rc = -1;
        } else if (options->add_bos && t->bos_id < 0) {
            rc = err_set("%s: add_bos is set but no BOS token is given", path);
        }
        t->add_bos = options->add_bos;
        t->add_bos_source = t->add_eos_source = TOK_KEY_SET;
    }
    if (rc == 0) {
        int n_merges = 0;
        int32_t *pairs = derive_merges(t, n_ranks, &n_merges);
        rc = tok_bpe_setup_ranked(t, options->pre, pairs, n_merges, options->ignore_merges, path);
        free(pairs);
    }
    if (rc != 0) {
        tokenizer_free(t);
        return NULL;
    }
    tokenizer_finish(t);
    return t;
}
