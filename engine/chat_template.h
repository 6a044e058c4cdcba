// chat_template.h: renders a Hugging Face chat template as transformers 4.48's
// tokenizer.apply_chat_template(messages, tokenize=False, ...) does, byte for byte.
//
// The template runs in the Jinja interpreter of jinja.h with the variables transformers passes:
// messages, tools (None unless given), documents (None unless given), add_generation_prompt, the
// special tokens bos_token and eos_token (a NULL token is not passed, as transformers leaves out a
// token that is null in tokenizer_config.json), and any extra variables.
//
// continue_final_message follows transformers 4.48: the conversation is rendered with
// add_generation_prompt false, then cut right after the last occurrence of the final message's
// content (for a list content, the "text" of its last block). When the template changed that
// content (Llama 3.1, Mistral, Gemma and Llama 2 trim it), the content stripped of Python whitespace
// is searched instead. Nothing is stripped from the end of the result, so a prefill's trailing space
// survives only where the template keeps it. transformers 4.50 and later changed this rule; see
// docs/chat-templates.md.
#ifndef QBIAS_CHAT_TEMPLATE_H
#define QBIAS_CHAT_TEMPLATE_H

#include <stdbool.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "jinja.h"

// Returned when the template called raise_exception(msg); err_msg() is then exactly msg
// (for example "System role not supported" from Gemma's template).
#define CHAT_TEMPLATE_RAISED JINJA_RAISED

typedef struct {
    bool add_generation_prompt;
    // Leave the final (assistant) message open so that generation continues it. Requires
    // add_generation_prompt false, as transformers 4.48 does.
    bool continue_final_message;
    const char *bos_token; // NULL: not passed, so it is undefined in the template
    const char *eos_token; // NULL: not passed
    const cJSON *tools;     // the `tools` variable (a JSON array of schemas); NULL: None
    const cJSON *documents; // the `documents` variable; NULL: None
    // A JSON object whose members become further variables, for example {"date_string": "26 Jul
    // 2024"} or other special tokens. They override bos_token and eos_token, as transformers'
    // keyword arguments override the tokenizer's special tokens. NULL: none.
    const cJSON *extra_vars;
    // The time strftime_now() formats (local time). NULL: the current local time.
    const struct tm *now;
} ChatTemplateOptions;

typedef struct ChatTemplate ChatTemplate;

// Compiles a chat template (the "chat_template" string of tokenizer_config.json). Returns NULL with an
// error naming the template line and column on a syntax error or an unsupported construct. The
// compiled template is read-only, so several threads may render it at once. Free it with
// chat_template_free().
ChatTemplate *chat_template_compile(const char *template_text);
void chat_template_free(ChatTemplate *t);

// Renders a conversation: messages is a JSON array of message objects ({"role": ..., "content": ...}).
// opt may be NULL (all options off). On success stores the newly allocated text in *out (free it
// with free()) and returns 0.
// Returns CHAT_TEMPLATE_RAISED when the template raised an exception (err_msg() is its message), or
// -1 with an error for invalid options (continue_final_message with add_generation_prompt, messages
// that are not an array, an extra variable that repeats a fixed one), a template runtime error, or a
// continue_final_message whose final content cannot be found in the rendered text.
int chat_template_apply(const ChatTemplate *t, const cJSON *messages, const ChatTemplateOptions *opt,
                        char **out);

// Compiles template_text, renders it with chat_template_apply() and frees it. Callers that render
// many conversations with one template should compile it once instead.
int chat_template_render(const char *template_text, const cJSON *messages, const ChatTemplateOptions *opt,
                         char **out);

#endif
