// chat_template.c: the variables transformers 4.48 passes to a chat template, and its
// continue_final_message cut (tokenization_utils_base.py, apply_chat_template).
#include "chat_template.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

struct ChatTemplate {
    JinjaTemplate *jinja;
};

ChatTemplate *chat_template_compile(const char *template_text) {
    if (!template_text) {
        err_set("chat_template_compile: the template text is NULL");
        return NULL;
    }
    JinjaTemplate *jinja = jinja_compile(template_text, strlen(template_text));
    if (!jinja) {
        err_prefix("chat template");
        return NULL;
    }
    ChatTemplate *t = xmalloc(sizeof *t);
    t->jinja = jinja;
    return t;
}

void chat_template_free(ChatTemplate *t) {
    if (!t) {
        return;
    }
    jinja_free(t->jinja);
    free(t);
}

// Adds `item` to `vars` under `name` without copying it (a cJSON reference; vars does not own it).
static void add_reference(cJSON *vars, const char *name, const cJSON *item) {
    cJSON_AddItemReferenceToObject(vars, name, (cJSON *)item);
}

// Builds the render variables in the order transformers passes them.
static int build_vars(const cJSON *messages, const ChatTemplateOptions *opt, cJSON **vars_out) {
    static const char *const fixed[] = {"messages", "tools", "documents", "add_generation_prompt"};
    cJSON *vars = cJSON_CreateObject();
    add_reference(vars, "messages", messages);
    if (opt->tools) {
        add_reference(vars, "tools", opt->tools);
    } else {
        cJSON_AddNullToObject(vars, "tools");
    }
    if (opt->documents) {
        add_reference(vars, "documents", opt->documents);
    } else {
        cJSON_AddNullToObject(vars, "documents");
    }
    cJSON_AddBoolToObject(vars, "add_generation_prompt", opt->add_generation_prompt);

    if (opt->extra_vars && !cJSON_IsObject(opt->extra_vars)) {
        cJSON_Delete(vars);
        return err_set("chat template: extra_vars must be a JSON object of variable names to values");
    }
    const cJSON *extra_bos = opt->extra_vars ? cJSON_GetObjectItemCaseSensitive(opt->extra_vars, "bos_token") : NULL;
    const cJSON *extra_eos = opt->extra_vars ? cJSON_GetObjectItemCaseSensitive(opt->extra_vars, "eos_token") : NULL;
    if (opt->bos_token && !extra_bos) {
        cJSON_AddStringToObject(vars, "bos_token", opt->bos_token);
    }
    if (opt->eos_token && !extra_eos) {
        cJSON_AddStringToObject(vars, "eos_token", opt->eos_token);
    }
    for (const cJSON *item = opt->extra_vars ? opt->extra_vars->child : NULL; item; item = item->next) {
        for (size_t i = 0; i < ARRAY_LEN(fixed); i++) {
            if (!strcmp(item->string, fixed[i])) {
                cJSON_Delete(vars);
                return err_set("chat template: the extra variable '%s' repeats a variable that the "
                               "renderer sets itself; use the option for it instead",
                               item->string);
            }
        }
        add_reference(vars, item->string, item);
    }
    *vars_out = vars;
    return 0;
}

// Returns the text whose end marks the end of the final message: its content, or for a list
// content the "text" of the last block (transformers 4.48). NULL with an error when there is none.
static const char *final_message_text(const cJSON *messages) {
    int n = cJSON_GetArraySize(messages);
    if (n == 0) {
        err_set("continue_final_message: the conversation is empty, so there is no final message to "
                "continue");
        return NULL;
    }
    const cJSON *last = cJSON_GetArrayItem(messages, n - 1);
    const cJSON *content = cJSON_IsObject(last) ? cJSON_GetObjectItemCaseSensitive(last, "content") : NULL;
    if (!content) {
        err_set("continue_final_message: the final message has no \"content\"");
        return NULL;
    }
    if (cJSON_IsArray(content)) {
        int blocks = cJSON_GetArraySize(content);
        const cJSON *block = blocks > 0 ? cJSON_GetArrayItem(content, blocks - 1) : NULL;
        content = cJSON_IsObject(block) ? cJSON_GetObjectItemCaseSensitive(block, "text") : NULL;
        if (!content) {
            err_set("continue_final_message: the final message's content is a list whose last block "
                    "has no \"text\"");
            return NULL;
        }
    }
    if (!cJSON_IsString(content)) {
        err_set("continue_final_message: the final message's content must be a string (or a list of "
                "blocks ending in a text block)");
        return NULL;
    }
    return content->valuestring;
}

// Offset just after the last occurrence of needle[0..n) in text[0..len), or -1. An empty needle
// matches at the end, as Python's str.rindex("") does.
static long long end_of_last(const char *text, size_t len, const char *needle, size_t n) {
    if (n > len) {
        return -1;
    }
    for (size_t at = len - n + 1; at-- > 0;) {
        if (memcmp(text + at, needle, n) == 0) {
            return (long long)(at + n);
        }
    }
    return -1;
}

int chat_template_apply(const ChatTemplate *t, const cJSON *messages, const ChatTemplateOptions *opt,
                        char **out) {
    static const ChatTemplateOptions defaults = {0};
    *out = NULL;
    if (!opt) {
        opt = &defaults;
    }
    if (!cJSON_IsArray(messages)) {
        return err_set("chat template: messages must be a JSON array of message objects");
    }
    if (opt->continue_final_message && opt->add_generation_prompt) {
        return err_set("continue_final_message and add_generation_prompt are not compatible. Use "
                       "continue_final_message when you want the model to continue the final message, "
                       "and add_generation_prompt when you want to add a header that will prompt it to "
                       "start a new assistant message instead.");
    }
    const char *final_text = NULL;
    if (opt->continue_final_message) {
        final_text = final_message_text(messages);
        if (!final_text) {
            return -1;
        }
    }

    cJSON *vars = NULL;
    if (build_vars(messages, opt, &vars) != 0) {
        return -1;
    }
    JinjaRenderOptions render_opt = {.now = opt->now};
    char *text;
    size_t len;
    int rc = jinja_render(t->jinja, vars, &render_opt, &text, &len);
    cJSON_Delete(vars);
    if (rc != 0) {
        if (rc != JINJA_RAISED) {
            err_prefix("chat template");
        }
        return rc;
    }
    if (strlen(text) != len) {
        free(text);
        return err_set("chat template: the rendered text contains a NUL character, which a C string "
                       "cannot hold");
    }

    if (final_text) {
        // transformers 4.48: cut after the last occurrence of the content; when the template changed
        // the content (trimmed it), search for the stripped content instead.
        size_t n = strlen(final_text);
        long long end = end_of_last(text, len, final_text, n);
        if (end < 0) {
            size_t b, e;
            jinja_strip_bounds(final_text, n, &b, &e);
            end = end_of_last(text, len, final_text + b, e - b);
        }
        if (end < 0) {
            free(text);
            return err_set("continue_final_message: the final message's content does not occur in the "
                           "rendered template (not even stripped of surrounding whitespace), so the end "
                           "of the message cannot be found");
        }
        text[end] = '\0';
    }
    *out = text;
    return 0;
}

int chat_template_render(const char *template_text, const cJSON *messages, const ChatTemplateOptions *opt,
                         char **out) {
    *out = NULL;
    ChatTemplate *t = chat_template_compile(template_text);
    if (!t) {
        return -1;
    }
    int rc = chat_template_apply(t, messages, opt, out);
    chat_template_free(t);
    return rc;
}
