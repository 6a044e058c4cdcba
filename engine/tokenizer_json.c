// tokenizer_json.c: loads a tokenizer from a Hugging Face folder (tokenizer_load_hf):
// tokenizer.json with tokenizer_config.json, or vocab.txt with tokenizer_config.json for BERT.
//
// This file reads the vocabulary, the added tokens, the special-token settings and the
// post-processor; tok_bpe.c and tok_wordpiece.c read their model's own sections.
//
// Mapping to the tokenizer layer:
// - model.vocab and added_tokens give the texts; ids must cover 0..n-1 without gaps.
// - An added token with "special": true is a control token, which the input matches only with
//   parse_special (Hugging Face always matches its special tokens). One without it is
//   user-defined and always matched. lstrip/rstrip become the strip flags.
//   NOTE: "normalized" and "single_word" are not applied: added tokens match the raw text.
// - BOS/EOS: tokenizer_config.json's add_bos_token/add_eos_token and bos_token/eos_token when
//   present, else the special tokens the post_processor's TemplateProcessing (or BertProcessing,
//   RobertaProcessing) puts around the text.
#include "tokenizer.h"

#include <cjson/cJSON.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

static const char *json_string(const cJSON *obj, const char *key) {
    return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(obj, key));
}

// Reads and parses a JSON file. Returns NULL with an error naming the file and the position.
static cJSON *json_read(const char *path) {
    char *text;
    size_t len;
    if (file_read_all(path, &text, &len) != 0) {
        return NULL;
    }
    cJSON *root = cJSON_ParseWithLength(text, len);
    if (!root) {
        const char *at = cJSON_GetErrorPtr();
        size_t offset = at && at >= text && at <= text + len ? (size_t)(at - text) : 0;
        err_set("%s: invalid JSON near byte %zu", path, offset);
    } else if (!cJSON_IsObject(root)) {
        err_set("%s: the top level is not a JSON object", path);
        cJSON_Delete(root);
        root = NULL;
    }
    free(text);
    return root;
}

// A special-token setting of tokenizer_config.json: a string or an object with "content".
static const char *config_token_text(const cJSON *config, const char *key) {
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(config, key);
    if (cJSON_IsString(item)) {
        return item->valuestring;
    }
    return json_string(item, "content");
}

// Sets *id to the token named by tokenizer_config.json's `key` when it names one.
static int config_token_id(const Tokenizer *t, const cJSON *config, const char *key, int *id,
                           TokenizerKeySource *source, const char *path) {
    const char *text = config_token_text(config, key);
    if (!text) {
        return 0;
    }
    int found = tokenizer_lookup(t, text, strlen(text));
    if (found < 0) {
        return err_set("%s: %s \"%s\" is not in the vocabulary", path, key, text);
    }
    *id = found;
    *source = TOK_KEY_SET;
    return 0;
}

static int config_flag(const cJSON *config, const char *key, bool *value,
                       TokenizerKeySource *source) {
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(config, key);
    if (!cJSON_IsBool(item)) {
        return 0;
    }
    *value = cJSON_IsTrue(item);
    if (source) {
        *source = TOK_KEY_SET;
    }
    return 1;
}

// Marks a token as special the way added tokens are: control, with its strip flags.
static void mark_special(Tokenizer *t, int id, const cJSON *added) {
    bool special = !cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(added, "special"));
    t->types[id] = special ? TOKEN_TYPE_CONTROL : TOKEN_TYPE_USER_DEFINED;
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(added, "lstrip"))) {
        t->flags[id] |= TOKEN_FLAG_LSTRIP;
    }
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(added, "rstrip"))) {
        t->flags[id] |= TOKEN_FLAG_RSTRIP;
    }
}

// ----------------------------------------------------------------------------
// Post-processor: which special tokens go around a single text

typedef struct {
    int before, after; // token ids, -1 for none
} Template;

static int template_special_id(const Tokenizer *t, const cJSON *processor, const char *name,
                               const char *path) {
    const cJSON *entry = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(processor, "special_tokens"), name);
    const cJSON *ids = cJSON_GetObjectItemCaseSensitive(entry, "ids");
    if (cJSON_GetArraySize(ids) == 1 && cJSON_IsNumber(cJSON_GetArrayItem(ids, 0))) {
        int id = cJSON_GetArrayItem(ids, 0)->valueint;
        if (id >= 0 && id < t->n_vocab) {
            return id;
        }
    }
    int id = tokenizer_lookup(t, name, strlen(name));
    if (id < 0) {
        err_set("%s: tokenizer.json post_processor names the special token \"%s\", which is not "
                "in the vocabulary",
                path, name);
    }
    return id;
}

// Reads [text, id] pairs of BertProcessing and RobertaProcessing.
static int processor_pair_id(const Tokenizer *t, const cJSON *processor, const char *key,
                             const char *path) {
    const cJSON *pair = cJSON_GetObjectItemCaseSensitive(processor, key);
    const cJSON *id = cJSON_GetArrayItem(pair, 1);
    if (!cJSON_IsNumber(id) || id->valueint < 0 || id->valueint >= t->n_vocab) {
        return err_set("%s: tokenizer.json post_processor.%s is not a [text, id] pair with an id "
                       "in the vocabulary",
                       path, key);
    }
    return id->valueint;
}

static int read_template(const Tokenizer *t, const cJSON *processor, Template *out,
                         const char *path) {
    const char *type = json_string(processor, "type");
    if (!type) {
        return 0;
    }
    if (strcmp(type, "Sequence") == 0) {
        const cJSON *item;
        cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(processor, "processors")) {
            if (read_template(t, item, out, path) != 0) {
                return -1;
            }
        }
        return 0;
    }
    if (strcmp(type, "BertProcessing") == 0 || strcmp(type, "RobertaProcessing") == 0) {
        out->before = processor_pair_id(t, processor, "cls", path);
        out->after = processor_pair_id(t, processor, "sep", path);
        return out->before < 0 || out->after < 0 ? -1 : 0;
    }
    if (strcmp(type, "TemplateProcessing") != 0) {
        return 0; // ByteLevel and others add no tokens
    }

    bool seen_sequence = false;
    const cJSON *item;
    cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(processor, "single")) {
        const cJSON *special = cJSON_GetObjectItemCaseSensitive(item, "SpecialToken");
        if (!special) {
            seen_sequence = true;
            continue;
        }
        int *slot = seen_sequence ? &out->after : &out->before;
        if (*slot >= 0) {
            return err_set("%s: tokenizer.json post_processor adds more than one special token "
                           "%s the text, which qbias does not support",
                           path, seen_sequence ? "after" : "before");
        }
        const char *name = json_string(special, "id");
        if (!name) {
            return err_set("%s: tokenizer.json post_processor has a SpecialToken without an id",
                           path);
        }
        *slot = template_special_id(t, processor, name, path);
        if (*slot < 0) {
            return -1;
        }
    }
    return 0;
}

// Applies the template, then tokenizer_config.json's settings, which take precedence as
// transformers' tokenizer classes rebuild the template from them.
static int apply_special_settings(Tokenizer *t, const cJSON *root, const cJSON *config,
                                  const char *path, const char *config_path) {
    Template tpl = {-1, -1};
    if (root && read_template(t, cJSON_GetObjectItemCaseSensitive(root, "post_processor"), &tpl,
                              path) != 0) {
        return -1;
    }
    bool wordpiece = t->family == &tok_family_wordpiece;
    if (tpl.before >= 0) {
        t->bos_id = tpl.before;
        t->add_bos = true;
        t->bos_source = t->add_bos_source = TOK_KEY_SET;
    }
    if (tpl.after >= 0) {
        // BERT's closing token is its separator; for the other families it is an EOS.
        if (wordpiece) {
            t->sep_id = tpl.after;
            t->add_sep = true;
            t->sep_source = TOK_KEY_SET;
        } else {
            t->eos_id = tpl.after;
            t->add_eos = true;
            t->eos_source = t->add_eos_source = TOK_KEY_SET;
        }
    }

    if (config_token_id(t, config, wordpiece ? "cls_token" : "bos_token", &t->bos_id,
                        &t->bos_source, config_path) != 0 ||
        config_token_id(t, config, "eos_token", &t->eos_id, &t->eos_source, config_path) != 0 ||
        config_token_id(t, config, "sep_token", &t->sep_id, &t->sep_source, config_path) != 0 ||
        config_token_id(t, config, "unk_token", &t->unk_id, &t->unk_source, config_path) != 0) {
        return -1;
    }
    config_flag(config, "add_bos_token", &t->add_bos, &t->add_bos_source);
    config_flag(config, "add_eos_token", &t->add_eos, &t->add_eos_source);
    config_flag(config, "clean_up_tokenization_spaces", &t->clean_spaces, NULL);

    if (t->add_bos && t->bos_id < 0) {
        return err_set("%s: the configuration adds a BOS token but names none (set bos_token in "
                       "tokenizer_config.json)",
                       config_path);
    }
    if (t->add_eos && t->eos_id < 0) {
        return err_set("%s: the configuration adds an EOS token but names none (set eos_token in "
                       "tokenizer_config.json)",
                       config_path);
    }
    if (t->unk_id >= 0 && t->types[t->unk_id] == TOKEN_TYPE_NORMAL) {
        t->types[t->unk_id] = TOKEN_TYPE_UNKNOWN;
    }
    return 0;
}

// ----------------------------------------------------------------------------
// tokenizer.json

// Collects id -> text from model.vocab and added_tokens. Returns the number of tokens, or -1.
static int collect_texts(const cJSON *root, GGUFString **out, const char *path) {
    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(root, "model"), "vocab");
    const cJSON *added = cJSON_GetObjectItemCaseSensitive(root, "added_tokens");
    if (!cJSON_IsObject(vocab)) {
        return err_set("%s: tokenizer.json model.vocab is missing or not an object of token -> id",
                       path);
    }

    // The largest id sets the vocabulary size.
    long max_id = -1;
    const cJSON *item;
    cJSON_ArrayForEach(item, vocab) {
        if (!cJSON_IsNumber(item) || item->valuedouble < 0 || item->valuedouble >= INT32_MAX) {
            return err_set("%s: tokenizer.json model.vocab[\"%s\"] is not an id from 0 to %d",
                           path, item->string, INT32_MAX - 1);
        }
        max_id = item->valueint > max_id ? item->valueint : max_id;
    }
    cJSON_ArrayForEach(item, added) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(item, "id");
        if (!cJSON_IsNumber(id) || id->valuedouble < 0 || id->valuedouble >= INT32_MAX ||
            !json_string(item, "content")) {
            return err_set("%s: tokenizer.json added_tokens has an entry without a valid id and "
                           "content",
                           path);
        }
        max_id = id->valueint > max_id ? id->valueint : max_id;
    }

    int n = (int)(max_id + 1);
    GGUFString *texts = xcalloc((size_t)n + 1, sizeof *texts);
    cJSON_ArrayForEach(item, vocab) {
        if (texts[item->valueint].data) {
            err_set("%s: tokenizer.json model.vocab gives id %d to both \"%s\" and \"%s\"", path,
                    item->valueint, texts[item->valueint].data, item->string);
            free(texts);
            return -1;
        }
        texts[item->valueint] = (GGUFString){item->string, strlen(item->string)};
    }
    // An added token's content is what Hugging Face decodes for its id.
    cJSON_ArrayForEach(item, added) {
        int id = cJSON_GetObjectItemCaseSensitive(item, "id")->valueint;
        const char *content = json_string(item, "content");
        texts[id] = (GGUFString){content, strlen(content)};
    }
    for (int id = 0; id < n; id++) {
        if (!texts[id].data) {
            free(texts);
            return err_set("%s: tokenizer.json has no token with id %d, but ids up to %d; qbias "
                           "needs ids without gaps",
                           path, id, n - 1);
        }
    }
    *out = texts;
    return n;
}

static int setup_wordpiece_json(Tokenizer *t, const cJSON *root, const char *path) {
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    const cJSON *normalizer = cJSON_GetObjectItemCaseSensitive(root, "normalizer");
    const cJSON *pre = cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer");
    const char *norm_type = json_string(normalizer, "type");
    const char *pre_type = json_string(pre, "type");
    if (!norm_type || strcmp(norm_type, "BertNormalizer") != 0 || !pre_type ||
        strcmp(pre_type, "BertPreTokenizer") != 0) {
        return err_set("%s: a WordPiece tokenizer.json needs normalizer BertNormalizer and "
                       "pre_tokenizer BertPreTokenizer (found %s and %s)",
                       path, norm_type ? norm_type : "none", pre_type ? pre_type : "none");
    }

    const cJSON *max_chars = cJSON_GetObjectItemCaseSensitive(model, "max_input_chars_per_word");
    const cJSON *strip = cJSON_GetObjectItemCaseSensitive(normalizer, "strip_accents");
    bool lowercase = !cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(normalizer, "lowercase"));
    const char *prefix = json_string(model, "continuing_subword_prefix");
    WordPieceOptions options = {
        .clean_text = !cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(normalizer, "clean_text")),
        .handle_chinese_chars =
            !cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(normalizer, "handle_chinese_chars")),
        // strip_accents null follows lowercase, as in Hugging Face's BertNormalizer.
        .strip_accents = cJSON_IsBool(strip) ? cJSON_IsTrue(strip) : lowercase,
        .lowercase = lowercase,
        .continuing_subword_prefix = prefix ? prefix : "##",
        .max_input_chars_per_word = cJSON_IsNumber(max_chars) ? max_chars->valueint : 100,
    };
    const char *unk = json_string(model, "unk_token");
    int unk_id = unk ? tokenizer_lookup(t, unk, strlen(unk)) : -1;
    if (unk_id < 0) {
        return err_set("%s: tokenizer.json model.unk_token \"%s\" is not in the vocabulary", path,
                       unk ? unk : "(missing)");
    }
    t->unk_id = unk_id;
    t->unk_source = TOK_KEY_SET;
    if (tok_wordpiece_setup(t, &options, path) != 0) {
        return -1;
    }
    // The WordPiece decoder's own cleanup removes the space before punctuation too.
    const cJSON *decoder = cJSON_GetObjectItemCaseSensitive(root, "decoder");
    t->clean_spaces = !cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(decoder, "cleanup"));
    return 0;
}

static Tokenizer *load_tokenizer_json(const char *path, const cJSON *config,
                                      const char *config_path) {
    cJSON *root = json_read(path);
    if (!root) {
        return NULL;
    }
    const char *type = json_string(cJSON_GetObjectItemCaseSensitive(root, "model"), "type");
    const TokenizerFamily *family = NULL;
    if (type && strcmp(type, "BPE") == 0) {
        family = &tok_family_bpe;
    } else if (type && strcmp(type, "WordPiece") == 0) {
        family = &tok_family_wordpiece;
    } else {
        err_set("%s: tokenizer.json model.type is \"%s\"; qbias supports BPE and WordPiece", path,
                type ? type : "(missing)");
        cJSON_Delete(root);
        return NULL;
    }

    GGUFString *texts = NULL;
    int n = collect_texts(root, &texts, path);
    Tokenizer *t = tokenizer_new(family, "tokenizer.json");
    int rc = n < 0 ? -1 : tokenizer_set_vocab(t, texts, n, path);
    free(texts);

    if (rc == 0) {
        const cJSON *item;
        cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(root, "added_tokens")) {
            mark_special(t, cJSON_GetObjectItemCaseSensitive(item, "id")->valueint, item);
        }
        rc = family == &tok_family_bpe ? tok_bpe_setup_hf(t, root, path)
                                       : setup_wordpiece_json(t, root, path);
    }
    if (rc == 0) {
        rc = apply_special_settings(t, root, config, path, config_path);
    }
    cJSON_Delete(root);
    if (rc != 0) {
        tokenizer_free(t);
        return NULL;
    }
    tokenizer_finish(t);
    return t;
}

// ----------------------------------------------------------------------------
// vocab.txt (BERT without tokenizer.json)

// Reads one token per line (the line number is the id); "\r\n" line ends are accepted.
static int read_vocab_lines(const char *path, char **data, GGUFString **out) {
    size_t len;
    if (file_read_all(path, data, &len) != 0) {
        return -1;
    }
    int n = 0, cap = 1024;
    GGUFString *texts = xmalloc((size_t)cap * sizeof *texts);
    for (size_t pos = 0; pos < len;) {
        char *nl = memchr(*data + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - *data) : len;
        size_t line_end = end > pos && (*data)[end - 1] == '\r' ? end - 1 : end;
        if (n == INT32_MAX - 1) {
            free(texts);
            return err_set("%s: more lines than a vocabulary can have", path);
        }
        if (n == cap) {
            cap *= 2;
            texts = xrealloc(texts, (size_t)cap * sizeof *texts);
        }
        texts[n++] = (GGUFString){*data + pos, line_end - pos};
        pos = end + 1;
    }
    *out = texts;
    return n;
}

static bool config_bool(const cJSON *config, const char *key, bool fallback) {
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(config, key);
    return cJSON_IsBool(item) ? cJSON_IsTrue(item) : fallback;
}

static Tokenizer *load_vocab_txt(const char *path, const cJSON *config, const char *config_path) {
    char *data = NULL;
    GGUFString *texts = NULL;
    int n = read_vocab_lines(path, &data, &texts);
    Tokenizer *t = tokenizer_new(&tok_family_wordpiece, "vocab.txt");
    int rc = n < 0 ? -1 : tokenizer_set_vocab(t, texts, n, path);
    free(texts);
    free(data);

    // BertTokenizer's defaults: uncased, accents follow lower-casing, CJK split.
    bool lowercase = config_bool(config, "do_lower_case", true);
    const cJSON *strip = cJSON_GetObjectItemCaseSensitive(config, "strip_accents");
    WordPieceOptions options = {
        .clean_text = true,
        .handle_chinese_chars = config_bool(config, "tokenize_chinese_chars", true),
        .strip_accents = cJSON_IsBool(strip) ? cJSON_IsTrue(strip) : lowercase,
        .lowercase = lowercase,
        .continuing_subword_prefix = "##",
        .max_input_chars_per_word = 100,
    };
    if (rc == 0) {
        rc = tok_wordpiece_setup(t, &options, path);
    }

    if (rc == 0) {
        // The named special tokens, with BertTokenizer's default texts.
        static const char *const keys[][2] = {
            {"unk_token", "[UNK]"}, {"sep_token", "[SEP]"}, {"pad_token", "[PAD]"},
            {"cls_token", "[CLS]"}, {"mask_token", "[MASK]"},
        };
        for (size_t i = 0; i < ARRAY_LEN(keys); i++) {
            const char *text = config_token_text(config, keys[i][0]);
            text = text ? text : keys[i][1];
            int id = tokenizer_lookup(t, text, strlen(text));
            if (id >= 0) {
                t->types[id] = TOKEN_TYPE_CONTROL;
            }
        }
        const cJSON *item;
        cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(config, "added_tokens_decoder")) {
            long id = strtol(item->string, NULL, 10);
            if (id >= 0 && id < t->n_vocab) {
                mark_special(t, (int)id, item);
            }
        }
        t->unk_id = tokenizer_lookup(t, "[UNK]", 5);
        t->bos_id = tokenizer_lookup(t, "[CLS]", 5);
        t->sep_id = tokenizer_lookup(t, "[SEP]", 5);
        t->clean_spaces = true;
        rc = apply_special_settings(t, NULL, config, path, config_path);
    }
    if (rc == 0 && (t->unk_id < 0 || t->bos_id < 0 || t->sep_id < 0)) {
        rc = err_set("%s: a BERT vocabulary needs [UNK], [CLS] and [SEP] tokens (or unk_token, "
                     "cls_token and sep_token in tokenizer_config.json)",
                     path);
    }
    if (rc != 0) {
        tokenizer_free(t);
        return NULL;
    }
    t->add_bos = true;
    t->add_sep = true;
    t->bos_source = t->add_bos_source = t->sep_source = TOK_KEY_SET;
    tokenizer_finish(t);
    return t;
}

Tokenizer *tokenizer_load_hf(const char *folder) {
    if (!dir_exists(folder)) {
        err_set("%s: not a directory; pass a Hugging Face model folder", folder);
        return NULL;
    }
    char *json_path = path_join(folder, "tokenizer.json");
    char *config_path = path_join(folder, "tokenizer_config.json");
    char *vocab_path = path_join(folder, "vocab.txt");
    cJSON *config = NULL;
    Tokenizer *t = NULL;

    if (file_exists(config_path) && !(config = json_read(config_path))) {
        goto done;
    }
    if (file_exists(json_path)) {
        t = load_tokenizer_json(json_path, config, config_path);
    } else if (file_exists(vocab_path)) {
        t = load_vocab_txt(vocab_path, config, config_path);
    } else {
        err_set("%s: the folder has neither tokenizer.json nor vocab.txt, so there is no "
                "tokenizer to load",
                folder);
    }

done:
    cJSON_Delete(config);
    free(json_path);
    free(config_path);
    free(vocab_path);
    return t;
}
