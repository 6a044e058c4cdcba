// jinja.h: a Jinja2 template interpreter for Hugging Face chat templates.
//
// The target is the environment that transformers 4.48 builds for `apply_chat_template`:
// jinja2.sandbox.ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
// extensions=[loopcontrols]), the globals raise_exception(msg) and strftime_now(fmt), and a tojson
// filter that is Python's json.dumps(x, ensure_ascii=False, indent=None, separators=None,
// sort_keys=False). A template that renders here renders to the same bytes as in that environment
// (jinja2 3.1). A construct this interpreter does not implement is an error that names the template
// line and column, never a different output.
//
// Example:
//
//     JinjaTemplate *t = jinja_compile(source, strlen(source));
//     if (!t) { fprintf(stderr, "%s\n", err_msg()); ... }
//     cJSON *vars = cJSON_Parse("{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}]}");
//     char *text;
//     if (jinja_render(t, vars, NULL, &text, NULL) != 0) { fprintf(stderr, "%s\n", err_msg()); ... }
//     ... free(text); cJSON_Delete(vars); jinja_free(t);
//
// Limitations (each one is an error, not a different output):
// - No template loading: include, import, from, extends and block are rejected.
// - Python integers are 64-bit here, so arithmetic that leaves the int64 range is an error.
// - Case mapping of non-ASCII text uses the C library's Unicode tables (C.UTF-8 locale), and the
//   characters whose Python mapping is not one-to-one (for example 'ß'.upper() == 'SS') are an error.
// - The autoescape tag and the filters filesizeformat, forceescape, pprint, random, slice, striptags,
//   urlencode, urlize, wordcount, wordwrap and xmlattr are not implemented.
// See docs/chat-templates.md for the full list.
#ifndef QBIAS_JINJA_H
#define QBIAS_JINJA_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include <cjson/cJSON.h>

// jinja_render() returns this (and not -1) when the template called raise_exception(msg): err_msg()
// is then exactly msg, as transformers' TemplateError carries it.
#define JINJA_RAISED (-2)

typedef struct JinjaTemplate JinjaTemplate;

typedef struct {
    // Time that strftime_now(fmt) formats (local time). NULL: the current local time.
    const struct tm *now;
    // Upper bound on the memory one render may use (template values and output), in bytes.
    // 0: 256 MiB. Exceeding it is an error.
    size_t max_bytes;
    // Upper bound on evaluation steps (expressions and statements). 0: 50 million. It turns a
    // runaway loop into an error instead of a hang.
    long long max_steps;
} JinjaRenderOptions;

// Parses `len` bytes of template source (UTF-8). Returns the compiled template, which is read-only and
// may be rendered any number of times, also from several threads at once; free it with jinja_free().
// Returns NULL with an error "template line L, column C: ..." for invalid UTF-8, a syntax error, an
// unknown filter or test, or a construct this interpreter does not implement.
JinjaTemplate *jinja_compile(const char *source, size_t len);
void jinja_free(JinjaTemplate *t);

// Renders the template. `vars` is a cJSON object whose members become the template's variables (JSON
// null is Python None; a name that is not a member is undefined); it may be NULL. opt may be NULL for
// the defaults. On success stores a newly allocated NUL-terminated string in *out (free it with
// free()), its length in *out_len when out_len is not NULL, and returns 0. The text may contain NUL
// bytes only when the template writes them ('\x00').
// Returns JINJA_RAISED when the template called raise_exception (err_msg() is its message), or -1 with
// an error "template line L: ..." for a runtime error (an undefined value used in arithmetic, a type
// error, a limit exceeded) or input that cannot be converted (a string that is not valid UTF-8).
int jinja_render(const JinjaTemplate *t, const cJSON *vars, const JinjaRenderOptions *opt, char **out,
                 size_t *out_len);

// Stores the bounds [*begin, *end) of s[0..len) (UTF-8) without leading and trailing whitespace as
// Python's str.strip() defines it (Unicode whitespace included).
void jinja_strip_bounds(const char *s, size_t len, size_t *begin, size_t *end);

#endif
