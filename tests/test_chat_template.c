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
