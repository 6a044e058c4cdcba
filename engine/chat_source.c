// chat_source.c: chat templates from GGUF files and Hugging Face folders (see chat_source.h).
#include "chat_source.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "gguf.h"
#include "tokenizer.h"
#include "util.h"

// A special token in tokenizer_config.json is a string or an object with "content".
static char *token_text(const cJSON *config, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(config, key);
    if (cJSON_IsString(v)) {
        return xstrdup(v->valuestring);
    }
    const cJSON *content = cJSON_GetObjectItemCaseSensitive(v, "content");
    return cJSON_IsString(content) ? xstrdup(content->valuestring) : NULL;
}

static int read_hf(const char *folder, char **template_text, char **bos, char **eos) {
    char *path = path_join(folder, "tokenizer_config.json");
    char *text = NULL;
    size_t len = 0;
    if (file_read_all(path, &text, &len) != 0) {
        free(path);
        return -1;
    }
    cJSON *config = cJSON_Parse(text);
    free(text);
    int rc = 0;
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(config, "chat_template");
    if (cJSON_IsString(t)) {
        *template_text = xstrdup(t->valuestring);
    } else if (cJSON_IsArray(t)) {
        // Several named templates: transformers uses the one named "default".
        const cJSON *entry;
        cJSON_ArrayForEach(entry, t) {
            const cJSON *name = cJSON_GetObjectItemCaseSensitive(entry, "name");
            const cJSON *body = cJSON_GetObjectItemCaseSensitive(entry, "template");
            if (cJSON_IsString(name) && strcmp(name->valuestring, "default") == 0 &&
                cJSON_IsString(body)) {
                *template_text = xstrdup(body->valuestring);
            }
        }
    }
    if (!*template_text) {
        rc = err_set("%s has no chat_template (a base model without a chat format?)", path);
    } else {
        *bos = token_text(config, "bos_token");
        *eos = token_text(config, "eos_token");
    }
    cJSON_Delete(config);
    free(path);
    return rc;
}

static int read_gguf(const char *path, char **template_text, char **bos, char **eos) {
    GGUFFile *f = gguf_open(path);
    if (!f) {
        return -1;
    }
    int found = gguf_get_string(f, "tokenizer.chat_template", template_text);
    int rc = 0;
    if (found <= 0) {
        rc = found < 0 ? -1
                       : err_set("%s has no tokenizer.chat_template (a base model without a chat "
                                 "format?)",
                                 path);
    }
    Tokenizer *tok = rc == 0 ? tokenizer_load_gguf(f) : NULL;
    if (rc == 0 && !tok) {
        rc = -1;
    }
    if (tok) {
        int bos_id = tokenizer_bos_id(tok), eos_id = tokenizer_eos_id(tok);
        *bos = bos_id >= 0 ? xstrdup(tokenizer_token_text(tok, bos_id)) : NULL;
        *eos = eos_id >= 0 ? xstrdup(tokenizer_token_text(tok, eos_id)) : NULL;
        tokenizer_free(tok);
    }
    gguf_close(f);
    return rc;
}

int chat_source_read(const char *path, char **template_text, char **bos, char **eos) {
    *template_text = *bos = *eos = NULL;
    int rc = dir_exists(path) ? read_hf(path, template_text, bos, eos)
                              : read_gguf(path, template_text, bos, eos);
    if (rc != 0) {
        free(*template_text);
        free(*bos);
        free(*eos);
        *template_text = *bos = *eos = NULL;
    }
    return rc;
}
