// test_chat_template.c: chat_template_render() against the strings that transformers 4.48's
// apply_chat_template(tokenize=False) produced (jinja2 3.1.2) for 9 real chat templates and 8
// conversations each, plus the continue_final_message cut rule and its error cases.
#include "test.h"

#include <cjson/cJSON.h>
#include <stdlib.h>

#include "../engine/chat_template.h"
#include "../engine/util.h"

#define CASES_JSON "reference/chat-templates/cases.json"

// ----------------------------------------------------------------------------
// Helpers

static char *read_shared(const char *relative) {
    char *data;
    size_t len;
    REQUIRE_OK(file_read_all(test_shared_path(relative), &data, &len));
    return data;
}

static cJSON *load_cases(void) {
    char *text = read_shared(CASES_JSON);
    cJSON *root = cJSON_Parse(text);
    free(text);
    REQUIRE_MSG(root != NULL, "%s is not valid JSON", CASES_JSON);
    return root;
}

// Returns the template text of a case (file named in the "templates" table); the caller frees it.
static char *load_template(const cJSON *root, const char *name) {
    const cJSON *entry = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(root, "templates"), name);
    const cJSON *file = cJSON_GetObjectItemCaseSensitive(entry, "file");
    REQUIRE_MSG(cJSON_IsString(file), "no template file listed for %s", name);
    char relative[512];
    snprintf(relative, sizeof relative, "reference/chat-templates/templates/%s", file->valuestring);
    return read_shared(relative);
}

static const char *string_or_null(const cJSON *obj, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static ChatTemplateOptions case_options(const cJSON *c) {
    const cJSON *tokens = cJSON_GetObjectItemCaseSensitive(c, "special_tokens");
    return (ChatTemplateOptions){
        .add_generation_prompt = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(c, "add_generation_prompt")),
        .continue_final_message = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(c, "continue_final_message")),
        .bos_token = string_or_null(tokens, "bos_token"),
        .eos_token = string_or_null(tokens, "eos_token"),
    };
}

// Returns the position of the first differing byte, for failure messages.
static size_t first_difference(const char *a, const char *b) {
    size_t i = 0;
    while (a[i] && a[i] == b[i]) {
        i++;
    }
    return i;
}

static void check_render(const char *what, const char *got, const char *expected) {
    size_t at = first_difference(got, expected);
    CHECK_MSG(strcmp(got, expected) == 0,
              "%s: rendered text differs at byte %zu\n    got:      \"%.80s\"\n    expected: \"%.80s\"", what,
              at, got + at, expected + at);
}

// ----------------------------------------------------------------------------
// The reference cases

TEST(chat_template_reference_cases) {
    cJSON *root = load_cases();
    const cJSON *cases = cJSON_GetObjectItemCaseSensitive(root, "cases");
    REQUIRE(cJSON_GetArraySize(cases) == 72);
    int n_rendered = 0, n_errors = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, cases) {
        const char *name = string_or_null(c, "template");
        char what[256];
        snprintf(what, sizeof what, "%s / %s", name, string_or_null(c, "case"));
        char *source = load_template(root, name);
        ChatTemplateOptions opt = case_options(c);
        const cJSON *messages = cJSON_GetObjectItemCaseSensitive(c, "messages");
        char *out = NULL;
        int rc = chat_template_render(source, messages, &opt, &out);

        const char *expected = string_or_null(c, "rendered");
        const char *error = string_or_null(c, "error");
        if (expected) {
            CHECK_MSG(rc == 0, "%s: render failed: %s", what, err_msg());
            if (rc == 0) {
                check_render(what, out, expected);
                n_rendered++;
            }
        } else {
            // The reference records the Python exception as "TemplateError: <message>".
            const char *prefix = "TemplateError: ";
            REQUIRE_MSG(error && !strncmp(error, prefix, strlen(prefix)), "%s: unexpected error record", what);
            CHECK_MSG(rc == CHAT_TEMPLATE_RAISED, "%s: expected raise_exception, got rc %d (%s)", what, rc,
                      rc == 0 ? out : err_msg());
            if (rc == CHAT_TEMPLATE_RAISED) {
                CHECK_STR(err_msg(), error + strlen(prefix));
                n_errors++;
            }
        }
        free(out);

        // The continue cases also record the text before the cut: rendering without
        // continue_final_message must give it.
        const char *before_cut = string_or_null(c, "rendered_before_cut");
        if (before_cut) {
            opt.continue_final_message = false;
            REQUIRE_MSG(chat_template_render(source, messages, &opt, &out) == 0, "%s (before cut): %s", what,
                        err_msg());
            check_render(what, out, before_cut);
            free(out);
        }
        free(source);
    }
    CHECK_EQ_INT(n_rendered, 71);
    CHECK_EQ_INT(n_errors, 1);
    cJSON_Delete(root);
}

// ----------------------------------------------------------------------------
// Tools, extra variables and continue_final_message edge cases

// Expected strings from jinja2 3.1.2 with transformers 4.48's apply_chat_template logic (render, then
// the continue_final_message cut). `options` contains add_generation_prompt, continue_final_message,
// tools, bos_token and eos_token; any other member is an extra variable.
typedef struct {
    const char *template_name;
    const char *what;
    const char *messages;
    const char *options;
    const char *expected;
} ChatCase;

static const ChatCase CHAT_CASES[] = {
    {"llama-3.1-instruct", "tools in the user message",
     "[{\"role\": \"user\", \"content\": \"Weather in Zürich\?\"}]",
     "{\"add_generation_prompt\": true, \"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"description\": \"Get the weather in a city\", \"parameters\": {\"type\": \"object\", \"properties\": {\"city\": {\"type\": \"string\", \"description\": \"City name, e.g. Zürich\"}}, \"required\": [\"city\"]}}}], \"bos_token\": \"<|begin_of_text|>\", \"eos_token\": \"<|eot_id|>\"}",
     "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nEnvironment: ipython\nCutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nGiven the following functions, please respond with a JSON for a function call with its proper arguments that best answers the given prompt.\n\nRespond in the format {\"name\": function name, \"parameters\": dictionary of argument name and its value}.Do not use variables.\n\n{\n    \"type\": \"function\",\n    \"function\": {\n        \"name\": \"get_weather\",\n        \"description\": \"Get the weather in a city\",\n        \"parameters\": {\n            \"type\": \"object\",\n            \"properties\": {\n                \"city\": {\n                    \"type\": \"string\",\n                    \"description\": \"City name, e.g. Zürich\"\n                }\n            },\n            \"required\": [\n                \"city\"\n            ]\n        }\n    }\n}\n\nWeather in Zürich\?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"},
    {"llama-3.1-instruct", "tool call and tool result",
     "[{\"role\": \"user\", \"content\": \"Weather in Zürich\?\"}, {\"role\": \"assistant\", \"tool_calls\": [{\"id\": \"call12345\", \"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"arguments\": {\"city\": \"Zürich\"}}}]}, {\"role\": \"tool\", \"tool_call_id\": \"call12345\", \"content\": \"{\\\"temp\\\": 21}\"}, {\"role\": \"assistant\", \"content\": \"It is 21 degrees.\"}]",
     "{\"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"description\": \"Get the weather in a city\", \"parameters\": {\"type\": \"object\", \"properties\": {\"city\": {\"type\": \"string\", \"description\": \"City name, e.g. Zürich\"}}, \"required\": [\"city\"]}}}], \"bos_token\": \"<|begin_of_text|>\", \"eos_token\": \"<|eot_id|>\"}",
     "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nEnvironment: ipython\nCutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nGiven the following functions, please respond with a JSON for a function call with its proper arguments that best answers the given prompt.\n\nRespond in the format {\"name\": function name, \"parameters\": dictionary of argument name and its value}.Do not use variables.\n\n{\n    \"type\": \"function\",\n    \"function\": {\n        \"name\": \"get_weather\",\n        \"description\": \"Get the weather in a city\",\n        \"parameters\": {\n            \"type\": \"object\",\n            \"properties\": {\n                \"city\": {\n                    \"type\": \"string\",\n                    \"description\": \"City name, e.g. Zürich\"\n                }\n            },\n            \"required\": [\n                \"city\"\n            ]\n        }\n    }\n}\n\nWeather in Zürich\?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Zürich\"}}<|eot_id|><|start_header_id|>ipython<|end_header_id|>\n\n\"{\\\"temp\\\": 21}\"<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nIt is 21 degrees.<|eot_id|>"},
    {"llama-3.1-instruct", "date_string variable",
     "[{\"role\": \"user\", \"content\": \"Weather in Zürich\?\"}]",
     "{\"add_generation_prompt\": true, \"date_string\": \"01 Jan 2025\", \"bos_token\": \"<|begin_of_text|>\", \"eos_token\": \"<|eot_id|>\"}",
     "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: 01 Jan 2025\n\n<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nWeather in Zürich\?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"},
    {"qwen2.5-instruct", "tools and tool calls",
     "[{\"role\": \"system\", \"content\": \"You help.\"}, {\"role\": \"user\", \"content\": \"Weather in Zürich\?\"}, {\"role\": \"assistant\", \"tool_calls\": [{\"id\": \"call12345\", \"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"arguments\": {\"city\": \"Zürich\"}}}]}, {\"role\": \"tool\", \"tool_call_id\": \"call12345\", \"content\": \"{\\\"temp\\\": 21}\"}, {\"role\": \"assistant\", \"content\": \"It is 21 degrees.\"}]",
     "{\"add_generation_prompt\": true, \"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"description\": \"Get the weather in a city\", \"parameters\": {\"type\": \"object\", \"properties\": {\"city\": {\"type\": \"string\", \"description\": \"City name, e.g. Zürich\"}}, \"required\": [\"city\"]}}}], \"eos_token\": \"<|im_end|>\"}",
     "<|im_start|>system\nYou help.\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>\n{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"description\": \"Get the weather in a city\", \"parameters\": {\"type\": \"object\", \"properties\": {\"city\": {\"type\": \"string\", \"description\": \"City name, e.g. Zürich\"}}, \"required\": [\"city\"]}}}\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n<|im_start|>user\nWeather in Zürich\?<|im_end|>\n<|im_start|>assistant\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Zürich\"}}\n</tool_call><|im_end|>\n<|im_start|>user\n<tool_response>\n{\"temp\": 21}\n</tool_response><|im_end|>\n<|im_start|>assistant\nIt is 21 degrees.<|im_end|>\n<|im_start|>assistant\n"},
    {"mistral-7b-instruct-v0.3", "tools and tool calls",
     "[{\"role\": \"user\", \"content\": \"Weather in Zürich\?\"}, {\"role\": \"assistant\", \"tool_calls\": [{\"id\": \"call12345\", \"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"arguments\": {\"city\": \"Zürich\"}}}]}, {\"role\": \"tool\", \"tool_call_id\": \"call12345\", \"content\": \"{\\\"temp\\\": 21}\"}, {\"role\": \"assistant\", \"content\": \"It is 21 degrees.\"}, {\"role\": \"user\", \"content\": \"Thanks\"}]",
     "{\"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"description\": \"Get the weather in a city\", \"parameters\": {\"type\": \"object\", \"properties\": {\"city\": {\"type\": \"string\", \"description\": \"City name, e.g. Zürich\"}}, \"required\": [\"city\"]}}}], \"bos_token\": \"<s>\", \"eos_token\": \"</s>\"}",
     "<s>[INST] Weather in Zürich\?[/INST][TOOL_CALLS] [{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Zürich\"}, \"id\": \"call12345\"}]</s>[TOOL_RESULTS] {\"content\": {\"temp\": 21}, \"call_id\": \"call12345\"}[/TOOL_RESULTS] It is 21 degrees.</s>[AVAILABLE_TOOLS] [{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"description\": \"Get the weather in a city\", \"parameters\": {\"type\": \"object\", \"properties\": {\"city\": {\"type\": \"string\", \"description\": \"City name, e.g. Zürich\"}}, \"required\": [\"city\"]}}}][/AVAILABLE_TOOLS][INST] Thanks[/INST]"},
    {"deepseek-r1-distill-qwen", "tool calls and outputs",
     "[{\"role\": \"user\", \"content\": \"Weather in Zürich\?\"}, {\"role\": \"assistant\", \"content\": null, \"tool_calls\": [{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"arguments\": \"{\\\"city\\\": \\\"Z\\\"}\"}}]}, {\"role\": \"tool\", \"content\": \"21\"}]",
     "{\"add_generation_prompt\": true, \"bos_token\": \"<｜begin▁of▁sentence｜>\", \"eos_token\": \"<｜end▁of▁sentence｜>\"}",
     "<｜begin▁of▁sentence｜><｜User｜>Weather in Zürich\?<｜Assistant｜><｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n```json\n{\"city\": \"Z\"}\n```<｜tool▁call▁end｜><｜tool▁outputs▁begin｜><｜tool▁output▁begin｜>21<｜tool▁output▁end｜><｜tool▁outputs▁end｜>"},
    {"qwen2.5-instruct", "continue an empty prefill",
     "[{\"role\": \"user\", \"content\": \"Hi\"}, {\"role\": \"assistant\", \"content\": \"\"}]",
     "{\"continue_final_message\": true, \"eos_token\": \"<|im_end|>\"}",
     "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<|im_end|>\n"},
    {"gemma-2-it", "continue a padded prefill",
     "[{\"role\": \"user\", \"content\": \"Hi\"}, {\"role\": \"assistant\", \"content\": \"  Sure, \\n\"}]",
     "{\"continue_final_message\": true, \"bos_token\": \"<bos>\", \"eos_token\": \"<eos>\"}",
     "<bos><start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\nSure,"},
};

static const char *template_file(const char *name) {
    static char relative[256];
    snprintf(relative, sizeof relative, "reference/chat-templates/templates/%s.jinja", name);
    return relative;
}

TEST(chat_template_tools_and_variables) {
    for (size_t i = 0; i < ARRAY_LEN(CHAT_CASES); i++) {
        const ChatCase *c = &CHAT_CASES[i];
        char what[256];
        snprintf(what, sizeof what, "%s / %s", c->template_name, c->what);
        char *source = read_shared(template_file(c->template_name));
        cJSON *messages = cJSON_Parse(c->messages);
        cJSON *options = cJSON_Parse(c->options);
        REQUIRE(messages != NULL);
        REQUIRE(options != NULL);

        ChatTemplateOptions opt = {
            .add_generation_prompt = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(options, "add_generation_prompt")),
            .continue_final_message = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(options, "continue_final_message")),
            .bos_token = string_or_null(options, "bos_token"),
            .eos_token = string_or_null(options, "eos_token"),
            .tools = cJSON_GetObjectItemCaseSensitive(options, "tools"),
        };
        cJSON *extra = cJSON_CreateObject();
        const cJSON *item;
        cJSON_ArrayForEach(item, options) {
            static const char *const known[] = {"add_generation_prompt", "continue_final_message", "tools",
                                                "bos_token", "eos_token"};
            bool is_known = false;
            for (size_t k = 0; k < ARRAY_LEN(known); k++) {
                is_known |= !strcmp(item->string, known[k]);
            }
            if (!is_known) {
                cJSON_AddItemToObject(extra, item->string, cJSON_Duplicate(item, true));
            }
        }
        opt.extra_vars = extra;

        char *out = NULL;
        int rc = chat_template_render(source, messages, &opt, &out);
        CHECK_MSG(rc == 0, "%s: render failed: %s", what, err_msg());
        if (rc == 0) {
            check_render(what, out, c->expected);
        }
        free(out);
        cJSON_Delete(extra);
        cJSON_Delete(options);
        cJSON_Delete(messages);
        free(source);
    }
}

// Renders `source` with messages given as JSON text; returns the return code.
static int render_messages(const char *source, const char *messages_json, const ChatTemplateOptions *opt,
                           char **out) {
    cJSON *messages = cJSON_Parse(messages_json);
    REQUIRE_MSG(messages != NULL, "invalid test JSON: %s", messages_json);
    int rc = chat_template_render(source, messages, opt, out);
    cJSON_Delete(messages);
    return rc;
}

TEST(chat_template_continue_list_content) {
    // For a list content, the cut follows the "text" of the last block.
    const char *source = "{% for m in messages %}{{ m.role }}: {% for b in m.content %}{{ b.text }}{% endfor %}|{% endfor %}";
    const char *messages = "[{\"role\": \"user\", \"content\": [{\"type\": \"text\", \"text\": \"a\"}]},"
                           " {\"role\": \"assistant\", \"content\": [{\"type\": \"text\", \"text\": \"x\"},"
                           " {\"type\": \"text\", \"text\": \"yz\"}]}]";
    ChatTemplateOptions opt = {.continue_final_message = true};
    char *out;
    REQUIRE_OK(render_messages(source, messages, &opt, &out));
    CHECK_STR(out, "user: a|assistant: xyz");
    free(out);
}

TEST(chat_template_continue_errors) {
    const char *source = "{% for m in messages %}<{{ m.role }}>{{ m.content }}</s>{% endfor %}";
    char *out;
    ChatTemplateOptions both = {.continue_final_message = true, .add_generation_prompt = true};
    CHECK_EQ_INT(render_messages(source, "[{\"role\": \"user\", \"content\": \"a\"}]", &both, &out), -1);
    CHECK(strstr(err_msg(), "not compatible") != NULL);

    ChatTemplateOptions cont = {.continue_final_message = true};
    CHECK_EQ_INT(render_messages(source, "[]", &cont, &out), -1);
    CHECK(strstr(err_msg(), "conversation is empty") != NULL);

    CHECK_EQ_INT(render_messages(source, "[{\"role\": \"assistant\", \"content\": null}]", &cont, &out), -1);
    CHECK(strstr(err_msg(), "must be a string") != NULL);

    CHECK_EQ_INT(render_messages(source, "[{\"role\": \"assistant\"}]", &cont, &out), -1);
    CHECK(strstr(err_msg(), "has no \"content\"") != NULL);

    // A template that does not print the final content gives nothing to cut at.
    const char *roles_only = "{% for m in messages %}<{{ m.role }}>{% endfor %}";
    CHECK_EQ_INT(render_messages(roles_only, "[{\"role\": \"assistant\", \"content\": \"xyz\"}]", &cont, &out), -1);
    CHECK(strstr(err_msg(), "does not occur in the rendered template") != NULL);
}

TEST(chat_template_continue_cuts_last_occurrence) {
    // The cut is after the last occurrence, and the stripped content is searched only when the
    // exact content is absent.
    const char *source = "{% for m in messages %}<{{ m.role }}>{{ m.content|trim }}</s>{% endfor %}";
    ChatTemplateOptions cont = {.continue_final_message = true};
    char *out;
    REQUIRE_OK(render_messages(source, "[{\"role\": \"user\", \"content\": \"ok\"}, {\"role\": \"assistant\", \"content\": \" ok \"}]",
                               &cont, &out));
    CHECK_STR(out, "<user>ok</s><assistant>ok");
    free(out);
    REQUIRE_OK(render_messages(source, "[{\"role\": \"user\", \"content\": \"ok then\"}, {\"role\": \"assistant\", \"content\": \"ok\"}]",
                               &cont, &out));
    CHECK_STR(out, "<user>ok then</s><assistant>ok");
    free(out);
}

TEST(chat_template_special_tokens_and_options) {
    const char *messages = "[{\"role\": \"user\", \"content\": \"hi\"}]";
    char *out;

    // A NULL token is not passed, so it is undefined in the template (printed as nothing).
    ChatTemplateOptions none = {0};
    REQUIRE_OK(render_messages("[{{ bos_token }}]{{ bos_token is defined }}", messages, &none, &out));
    CHECK_STR(out, "[]False");
    free(out);

    // Extra variables override the special tokens, as transformers' keyword arguments do.
    cJSON *extra = cJSON_Parse("{\"bos_token\": \"<B>\", \"date_string\": \"1 May\"}");
    ChatTemplateOptions with_extra = {.bos_token = "<s>", .eos_token = "</s>", .extra_vars = extra};
    REQUIRE_OK(render_messages("{{ bos_token }}{{ eos_token }}{{ date_string }}{{ tools }}{{ documents }}"
                               "{{ add_generation_prompt }}",
                               messages, &with_extra, &out));
    CHECK_STR(out, "<B></s>1 MayNoneNoneFalse");
    free(out);
    cJSON_Delete(extra);

    // An extra variable may not replace one the renderer sets.
    cJSON *clash = cJSON_Parse("{\"messages\": []}");
    ChatTemplateOptions clashing = {.extra_vars = clash};
    CHECK_EQ_INT(render_messages("x", messages, &clashing, &out), -1);
    CHECK(strstr(err_msg(), "'messages'") != NULL);
    cJSON_Delete(clash);

    // strftime_now formats the injected time.
    struct tm tm = {.tm_year = 125, .tm_mon = 0, .tm_mday = 2, .tm_hour = 3};
    ChatTemplateOptions clock = {.now = &tm};
    REQUIRE_OK(render_messages("{{ strftime_now('%d %b %Y') }}", messages, &clock, &out));
    CHECK_STR(out, "02 Jan 2025");
    free(out);

    // messages must be a JSON array.
    CHECK_EQ_INT(render_messages("x", "{\"role\": \"user\"}", &none, &out), -1);
    CHECK(strstr(err_msg(), "must be a JSON array") != NULL);
}

TEST(chat_template_errors_name_line) {
    char *out;
    CHECK_EQ_INT(render_messages("ok\n{% include 'x' %}", "[]", NULL, &out), -1);
    CHECK_STR(err_msg(), "chat template: template line 2, column 4: the 'include' tag is not supported: chat "
                         "templates are rendered without a template loader or inheritance");
    CHECK_EQ_INT(render_messages("{{ messages[0].content.x.y }}", "[{\"role\": \"user\", \"content\": \"a\"}]", NULL,
                                 &out),
                 -1);
    CHECK_STR(err_msg(), "chat template: template line 1: 'str object' has no attribute 'x'");
}

TEST(chat_template_compile_once_render_many) {
    char *source = read_shared("reference/chat-templates/templates/qwen2.5-instruct.jinja");
    ChatTemplate *t = chat_template_compile(source);
    free(source);
    REQUIRE_MSG(t != NULL, "compile failed: %s", err_msg());
    cJSON *messages = cJSON_Parse("[{\"role\": \"user\", \"content\": \"Hi\"}]");
    ChatTemplateOptions opt = {.add_generation_prompt = true, .eos_token = "<|im_end|>"};
    for (int i = 0; i < 3; i++) {
        char *out;
        REQUIRE_OK(chat_template_apply(t, messages, &opt, &out));
        CHECK_STR(out, "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant."
                       "<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
        free(out);
    }
    cJSON_Delete(messages);
    chat_template_free(t);
}
