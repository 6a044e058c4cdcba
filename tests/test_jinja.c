// test_jinja.c: the Jinja interpreter (engine/jinja*.c). Statements, whitespace control, scopes,
// macros, filters, tests, tojson, string methods and operators are compared with strings that jinja2
// 3.1.2 rendered in the environment transformers 4.48 builds for chat templates. That environment is
// an ImmutableSandboxedEnvironment with trim_blocks, lstrip_blocks and loopcontrols, transformers'
// tojson, and here strftime_now with its clock at 2024-07-26 13:05:09. Also: errors with line numbers for
// unsupported and malformed templates, runtime errors, limits, concurrent renders, and truncated or
// mangled real templates that must give an error or a render, never a crash.
#include "test.h"

#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "../engine/jinja.h"
#include "../engine/util.h"

typedef struct {
    const char *name;
    const char *source;
    const char *vars; // JSON object, or NULL for no variables
    const char *expected;
} RenderCase;

// ----------------------------------------------------------------------------
// Helpers

// 2024-07-26 13:05:09 (local time): the time strftime_now() formats in these tests.
static const struct tm *test_clock(void) {
    static struct tm tm;
    tm = (struct tm){.tm_year = 124, .tm_mon = 6, .tm_mday = 26, .tm_hour = 13, .tm_min = 5, .tm_sec = 9};
    tm.tm_isdst = -1;
    mktime(&tm);
    return &tm;
}

// Compiles and renders source with the given variables (JSON text or NULL). Returns the render's
// return code, or -1 when the template does not compile; *out is NULL unless the render succeeded.
static int render_with(const char *source, const char *vars_json, const JinjaRenderOptions *opt, char **out) {
    *out = NULL;
    cJSON *vars = vars_json ? cJSON_Parse(vars_json) : NULL;
    REQUIRE_MSG(!vars_json || vars, "test variables are not valid JSON: %s", vars_json);
    JinjaTemplate *t = jinja_compile(source, strlen(source));
    int rc = -1;
    if (t) {
        JinjaRenderOptions options = opt ? *opt : (JinjaRenderOptions){0};
        options.now = test_clock();
        rc = jinja_render(t, vars, &options, out, NULL);
        jinja_free(t);
    }
    cJSON_Delete(vars);
    return rc;
}

static void check_cases(const RenderCase *cases, size_t n) {
    for (size_t i = 0; i < n; i++) {
        char *out;
        int rc = render_with(cases[i].source, cases[i].vars, NULL, &out);
        CHECK_MSG(rc == 0, "%s: render failed: %s", cases[i].name, err_msg());
        if (rc == 0) {
            CHECK_MSG(strcmp(out, cases[i].expected) == 0, "%s:\n    got:      \"%s\"\n    expected: \"%s\"",
                      cases[i].name, out, cases[i].expected);
        }
        free(out);
    }
}

// Checks that rendering fails (rc -1) with a message that starts with `prefix` and contains `part`.
static void check_error(const char *source, const char *vars, const char *prefix, const char *part) {
    char *out;
    int rc = render_with(source, vars, NULL, &out);
    CHECK_MSG(rc == -1, "%s: expected an error, got rc %d and \"%s\"", source, rc, out ? out : "");
    free(out);
    if (rc != -1) {
        return;
    }
    const char *msg = err_msg();
    CHECK_MSG(strncmp(msg, prefix, strlen(prefix)) == 0, "%s: message \"%s\" does not start with \"%s\"", source,
              msg, prefix);
    CHECK_MSG(strstr(msg, part) != NULL, "%s: message \"%s\" does not contain \"%s\"", source, msg, part);
}

// ----------------------------------------------------------------------------
// Renders compared with jinja2 3.1.2

static const RenderCase WHITESPACE_CASES[] = {
    {"trim_blocks drops the newline after a block tag", "{% if true %}\nA\n{% endif %}\nB", NULL,
     "A\nB"},
    {"lstrip_blocks removes indentation before a block tag", "x\n    {% if true %}\n    A\n    {% endif %}\ny", NULL,
     "x\n    A\ny"},
    {"lstrip_blocks keeps text before a tag on the same line", "x  {% if true %}A{% endif %}  \ny", NULL,
     "x  A  \ny"},
    {"lstrip_blocks strips Unicode spaces too", "x\n\u3000\u00a0{% if true %}A{% endif %}", NULL,
     "x\nA"},
    {"lstrip_blocks does not apply to print tags", "x\n    {{ 1 }}\n", NULL,
     "x\n    1"},
    {"minus strips all whitespace around", "a \n\n {%- if true -%} \n\n b \n {{- 'c' -}} \n d {%- endif %}", NULL,
     "abcd"},
    {"plus disables lstrip and trim", "a\n  {%+ if true +%}\nb{% endif %}", NULL,
     "a\n  \nb"},
    {"comments follow the block rules", "a\n  {# note #}\nb {#- x -#} c", NULL,
     "a\nbc"},
    {"raw block keeps tags as text", "{% raw %}{{ x }}{% if %}{% endraw %}\nz", NULL,
     "{{ x }}{% if %}z"},
    {"CRLF source becomes LF", "a\r\nb\r{% if true %}\r\nc{% endif %}", NULL,
     "a\nb\nc"},
    {"one trailing newline is dropped", "line\n\n", NULL,
     "line\n"},
    {"print tags never trim the newline after", "{{ 'a' }}\nb", NULL,
     "a\nb"},
};

static const RenderCase LOOP_CASES[] = {
    {"loop variables", "{% for x in ['a', 'b', 'c'] %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.revindex0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }}{{ loop.previtem }}{{ loop.nextitem }};{% endfor %}", NULL,
     "1032TrueFalse3b;2121FalseFalse3ac;3210FalseTrue3b;"},
    {"loop else runs for an empty sequence", "{% for x in [] %}x{% else %}empty{% endfor %}", NULL,
     "empty"},
    {"loop filter counts only kept items", "{% for m in messages if m.role != 'system' %}{{ loop.index }}/{{ loop.length }} {{ m.role }}{{ ',' if not loop.last }}{% endfor %}", "{\"messages\": [{\"role\": \"system\", \"content\": \"Be brief.\"}, {\"role\": \"user\", \"content\": \"Hi\"}, {\"role\": \"assistant\", \"content\": \"Hello\"}]}",
     "1/2 user,2/2 assistant"},
    {"tuple unpacking over items", "{% for k, v in {'a': 1, 'b': 2}.items() %}{{ k }}={{ v }} {% endfor %}", NULL,
     "a=1 b=2 "},
    {"iterating a dict gives keys, a string gives characters", "{% for k in {'x': 1, 'y': 2} %}{{ k }}{% endfor %}|{% for c in 'ab' %}[{{ c }}]{% endfor %}", NULL,
     "xy|[a][b]"},
    {"break and continue", "{% for i in range(10) %}{% if i == 1 %}{% continue %}{% endif %}{% if i == 4 %}{% break %}{% endif %}{{ i }}{% endfor %}", NULL,
     "023"},
    {"nested loops shadow loop", "{% for a in [1, 2] %}{% for b in [1, 2, 3] %}{{ loop.length }}{% endfor %}{{ loop.length }}|{% endfor %}", NULL,
     "3332|3332|"},
    {"recursive loop", "{% for x in [1, [2, [3]], 4] recursive %}{% if x is iterable %}({{ loop(x) }}){% else %}{{ x }}@{{ loop.depth }}{% endif %}{% endfor %}", NULL,
     "1@1(2@2(3@3))4@1"},
    {"cycle and changed", "{% for i in [1, 1, 2, 3, 3] %}{{ loop.cycle('a', 'b') }}{% if loop.changed(i) %}{{ i }}{% endif %}{% endfor %}", NULL,
     "a1ba2b3a"},
    {"set inside a loop does not leak", "{% set x = 'outer' %}{% for i in [1, 2] %}{{ x }}{% set x = i %}{{ x }} {% endfor %}{{ x }}", NULL,
     "outer1 outer2 outer"},
};

static const RenderCase SCOPE_CASES[] = {
    {"namespace carries state out of a loop", "{% set ns = namespace(found=false, count=0) %}{% for m in messages %}{% if m.role == 'user' %}{% set ns.found = true %}{% endif %}{% set ns.count = ns.count + 1 %}{% endfor %}{{ ns.found }} {{ ns.count }} {{ ns }}", "{\"messages\": [{\"role\": \"system\", \"content\": \"Be brief.\"}, {\"role\": \"user\", \"content\": \"Hi\"}, {\"role\": \"assistant\", \"content\": \"Hello\"}]}",
     "True 3 <Namespace {'found': True, 'count': 3}>"},
    {"set in an if block is visible after it", "{% if true %}{% set y = 2 %}{% endif %}{{ y }}", NULL,
     "2"},
    {"block set and its filter", "{% set greeting | upper %}hello {{ 'you' }}{% endset %}{{ greeting }}", NULL,
     "HELLO YOU"},
    {"tuple set", "{% set a, b = 'xy' %}{{ b }}{{ a }}{% set t = 1, 2 %}{{ t }}", NULL,
     "yx(1, 2)"},
    {"with block scope", "{% with a = 2, b = 3 %}{{ a * b }}{% endwith %}[{{ a }}]", NULL,
     "6[]"},
    {"filter block", "{% filter upper %}abc {{ 'd' }}{% endfilter %}", NULL,
     "ABC D"},
    {"macro defaults and keywords", "{% macro tag(name, value='v', sep=name) %}{{ name }}{{ sep }}{{ value }}{% endmacro %}{{ tag('a') }} {{ tag('b', sep='=') }} {{ tag(value=1, name='c') }}", NULL,
     "aav b=v cc1"},
    {"macro varargs and kwargs", "{% macro m(a) %}{{ a }}{{ varargs }}{{ kwargs }}{% endmacro %}{{ m(1, 2, 3, k='v') }}", NULL,
     "1(2, 3){'k': 'v'}"},
    {"missing macro argument is undefined", "{% macro m(a, b) %}[{{ a }}][{{ b }}]{% endmacro %}{{ m(1) }}", NULL,
     "[1][]"},
    {"call block with caller arguments", "{% macro each(items) %}{% for i in items %}<{{ caller(i) }}>{% endfor %}{% endmacro %}{% call(x) each([1, 2]) %}item {{ x }}{% endcall %}", NULL,
     "<item 1><item 2>"},
    {"macros see later top-level sets", "{% macro m() %}{{ v }}{% endmacro %}{% set v = 'late' %}{{ m() }}", NULL,
     "late"},
    {"recursive macro", "{% macro count(n) %}{% if n > 0 %}{{ n }}{{ count(n - 1) }}{% endif %}{% endmacro %}{{ count(4) }}", NULL,
     "4321"},
};

static const RenderCase FILTER_CASES[] = {
    {"trim, length, first, last", "[{{ '  \\t pad \\n'|trim }}] {{ 'héllo'|length }} {{ [3, 4]|first }} {{ 'xyz'|last }} {{ []|first }}|", NULL,
     "[pad] 5 3 z |"},
    {"trim strips Unicode whitespace like str.strip", "[{{ '\\u3000\\u00a0x\\u2028\\x85'|trim }}]", NULL,
     "[x]"},
    {"join, list, string, int, float", "{{ [1, 'a', none]|join(', ') }} {{ 'ab'|list }} {{ 5|string ~ '!' }} {{ '42'|int + 1 }} {{ '4.7'|int }} {{ 'x'|int }} {{ '2.5'|float }}", NULL,
     "1, a, None ['a', 'b'] 5! 43 4 0 2.5"},
    {"lower, upper, capitalize, title, replace", "{{ 'MiXed'|lower }} {{ 'MiXed'|upper }} {{ 'hELLO world'|capitalize }} {{ 'hello-world (x)'|title }} {{ 'aaa'|replace('a', 'b', 2) }}", NULL,
     "mixed MIXED Hello world Hello-World (X) bba"},
    {"default keeps defined values", "{{ missing|default('d') }} {{ none|default('d') }} {{ ''|default('d', true) }} {{ missing|d }}|", NULL,
     "d None d |"},
    {"items and dictsort", "{{ {'b': 1, 'a': 2}|items|list }} {{ {'b': 1, 'A': 2}|dictsort }} {{ {'b': 1, 'a': 2}|dictsort(by='value', reverse=true) }}", NULL,
     "[('b', 1), ('a', 2)] [('A', 2), ('b', 1)] [('a', 2), ('b', 1)]"},
    {"selectattr and rejectattr", "{{ messages|selectattr('role', 'equalto', 'user')|map(attribute='content')|list }} {{ messages|rejectattr('role', 'in', ['user', 'system'])|map(attribute='role')|join }}", "{\"messages\": [{\"role\": \"system\", \"content\": \"Be brief.\"}, {\"role\": \"user\", \"content\": \"Hi\"}, {\"role\": \"assistant\", \"content\": \"Hello\"}]}",
     "['Hi'] assistant"},
    {"select, reject and map with a filter", "{{ [1, 2, 3, 4]|select('odd')|list }} {{ [1, 2, 3]|reject('equalto', 2)|list }} {{ ['a', 'b']|map('upper')|join }} {{ [0, 1, '', 'x']|select|list }}", NULL,
     "[1, 3] [1, 3] AB [1, 'x']"},
    {"map attribute with default", "{{ [{'a': 1}, {}]|map(attribute='a', default='-')|list }}", NULL,
     "[1, '-']"},
    {"reverse, sort, unique, min, max, sum", "{{ [1, 3, 2]|reverse|list }} {{ 'abc'|reverse }} {{ ['b', 'A', 'c']|sort }} {{ [3, 1, 2]|sort(reverse=true) }} {{ [{'n': 2}, {'n': 1}]|sort(attribute='n') }} {{ [1, 2, 1, 'a', 'A']|unique|list }} {{ [4, 9, 2]|min }} {{ ['b', 'C']|max }} {{ [1, 2, 3]|sum }}", NULL,
     "[2, 3, 1] cba ['A', 'b', 'c'] [3, 2, 1] [{'n': 1}, {'n': 2}] [1, 2, 'a'] 2 C 6"},
    {"indent", "{{ 'a\\nb\\n\\nc'|indent(2) }}|{{ 'a\\nb'|indent(first=true) }}|{{ 'a\\n\\nb'|indent('> ', blank=true) }}", NULL,
     "a\n  b\n\n  c|    a\n    b|a\n> \n> b"},
    {"round, abs, batch, truncate, center, format", "{{ 2.5|round }} {{ 2.675|round(2) }} {{ 3.14159|round(2, 'floor') }} {{ -3|abs }} {{ [1, 2, 3]|batch(2)|list }} {{ 'hello world'|truncate(8, leeway=0) }} [{{ 'ab'|center(6) }}] {{ '%s-%03d'|format('a', 7) }}", NULL,
     "2.0 2.67 3.14 3 [[1, 2], [3]] hello... [  ab  ] a-007"},
    {"escape and safe", "{{ '<a href=\"x\">'|e }} {{ ('<b>'|safe + '<i>') }} {{ '&'|escape is escaped }}", NULL,
     "&lt;a href=&#34;x&#34;&gt; <b>&lt;i&gt; True"},
};

static const RenderCase TOJSON_CASES[] = {
    {"tojson keeps non-ASCII text", "{{ {'text': 'Café 日本 😀', 'n': [1, 2.5, none, true]}|tojson }}", NULL,
     "{\"text\": \"Café 日本 😀\", \"n\": [1, 2.5, null, true]}"},
    {"tojson escapes control characters and quotes", "{{ 'a\"b\\\\c\\n\\t\\x01\\x7f\\u2028'|tojson }}", NULL,
     "\"a\\\"b\\\\c\\n\\t\\u0001\177\u2028\""},
    {"tojson indent formats nested values", "{{ {'a': [1, {'b': []}], 'c': {}}|tojson(indent=4) }}", NULL,
     "{\n    \"a\": [\n        1,\n        {\n            \"b\": []\n        }\n    ],\n    \"c\": {}\n}"},
    {"tojson options", "{{ {'b': 1, 'a': [1, 2]}|tojson(sort_keys=true, separators=(',', ':')) }} {{ 'é😀'|tojson(ensure_ascii=true) }} {{ {1: 'i', 2.5: 'f', true: 'b', none: 'n'}|tojson }}", NULL,
     "{\"a\":[1,2],\"b\":1} \"\\u00e9\\ud83d\\ude00\" {\"1\": \"b\", \"2.5\": \"f\", \"null\": \"n\"}"},
    {"tojson of floats", "{{ [1.0, 0.1, 1e16, 1e-07, 123456.789]|tojson }}", NULL,
     "[1.0, 0.1, 1e+16, 1e-07, 123456.789]"},
    {"tojson of message objects", "{{ messages[1]|tojson }}", "{\"messages\": [{\"role\": \"system\", \"content\": \"Be brief.\"}, {\"role\": \"user\", \"content\": \"Hi\"}, {\"role\": \"assistant\", \"content\": \"Hello\"}]}",
     "{\"role\": \"user\", \"content\": \"Hi\"}"},
};

static const RenderCase TEST_CASES[] = {
    {"type tests", "{{ none is none }}{{ 1 is number }}{{ true is number }}{{ 1.0 is integer }}{{ true is integer }}{{ 'a' is string }}{{ {} is mapping }}{{ [] is mapping }}{{ 1 is iterable }}{{ 'a' is iterable }}{{ {} is sequence }}{{ 1.5 is float }}{{ true is boolean }}", NULL,
     "TrueTrueTrueFalseFalseTrueTrueFalseFalseTrueTrueTrueTrue"},
    {"defined and undefined", "{{ x is defined }}{{ x is undefined }}{{ x is iterable }}{{ x is sequence }}{{ x is callable }}{{ messages[0].tool_calls is defined }}", "{\"messages\": [{\"role\": \"system\", \"content\": \"Be brief.\"}, {\"role\": \"user\", \"content\": \"Hi\"}, {\"role\": \"assistant\", \"content\": \"Hello\"}]}",
     "FalseTrueTrueTrueTrueFalse"},
    {"value tests", "{{ 3 is odd }}{{ 4 is even }}{{ 9 is divisibleby 3 }}{{ true is true }}{{ 1 is true }}{{ false is false }}{{ 'abc' is lower }}{{ 'ABC' is upper }}{{ 1 is in [1, 2] }}{{ 2 is gt 1 }}{{ 'a' is eq 'a' }}{{ 'a' is ne 'a' }}{{ none is sameas none }}{{ 'upper' is filter }}{{ 'odd' is test }}", NULL,
     "TrueTrueTrueTrueFalseTrueTrueTrueTrueTrueTrueFalseTrueTrueTrue"},
};

static const RenderCase STRING_CASES[] = {
    {"strip family", "[{{ '  a  '.strip() }}][{{ 'xxayy'.strip('xy') }}][{{ '  a'.lstrip() }}][{{ 'a  '.rstrip() }}]", NULL,
     "[a][a][a][a]"},
    {"split family", "{{ 'a b  c'.split() }} {{ 'a,b,,c'.split(',') }} {{ 'a b c'.split(' ', 1) }} {{ 'a b c'.rsplit(' ', 1) }} {{ 'x</think>y</think>z'.split('</think>')[-1] }} {{ 'a\\nb\\r\\nc'.splitlines() }}", NULL,
     "['a', 'b', 'c'] ['a', 'b', '', 'c'] ['a', 'b c'] ['a b', 'c'] z ['a', 'b', 'c']"},
    {"search methods", "{{ 'hello'.startswith('he') }}{{ 'hello'.endswith(('x', 'lo')) }}{{ 'hello'.find('l') }}{{ 'hello'.rfind('l') }}{{ 'hello'.count('l') }}{{ 'hello'.index('o') }}", NULL,
     "TrueTrue2324"},
    {"case methods", "{{ 'hello world'.title() }} {{ 'ab'.upper() }} {{ 'AB'.lower() }} {{ 'aB'.swapcase() }} {{ 'école'.capitalize() }} {{ 'ÉCOLE'.lower() }}", NULL,
     "Hello World AB ab Ab École école"},
    {"other methods", "{{ 'a-b'.replace('-', '+') }} {{ ', '.join(['x', 'y']) }} {{ 'ab'.center(6, '*') }} {{ '7'.zfill(3) }} {{ 'a:b:c'.partition(':') }} {{ 'pre_x'.removeprefix('pre_') }} {{ '123'.isdigit() }}", NULL,
     "a+b x, y **ab** 007 ('a', ':', 'b:c') x True"},
    {"format and percent", "{{ '{} + {} = {sum}'.format(1, 2, sum=3) }} {{ '{:>5}|{:<3}|{:^5}|{:.2f}'.format('a', 'b', 'c', 3.14159) }} {{ '%s is %d%%' % ('x', 50) }} {{ '%(a)s' % {'a': 1} }}", NULL,
     "1 + 2 = 3     a|b  |  c  |3.14 x is 50% 1"},
    {"dict methods", "{{ {'a': 1}.get('a') }} {{ {'a': 1}.get('b') }} {{ {'a': 1}.get('b', 2) }} {{ {'a': 1, 'b': 2}.keys()|list }} {{ {'a': 1}.values()|list }} {{ {'a': 1}.items() }}", NULL,
     "1 None 2 ['a', 'b'] [1] dict_items([('a', 1)])"},
};

static const RenderCase EXPRESSION_CASES[] = {
    {"literals", "{{ 42 }} {{ -1.5 }} {{ 1e3 }} {{ 0x1F }} {{ 1_000 }} {{ 'it''s' }} {{ \"q\" }} {{ [1, 'a', none, true] }} {{ {'k': [1]} }} {{ (1,) }} {{ (1, 2) }} {{ () }}", NULL,
     "42 -1.5 1000.0 31 1000 its q [1, 'a', None, True] {'k': [1]} (1,) (1, 2) ()"},
    {"string escapes", "{{ 'a\\tb\\u00e9\\x41\\101\\\\n\\q' }}", NULL,
     "a\tbéAA\\n\\q"},
    {"arithmetic", "{{ 7 + 2 }} {{ 7 - 2 }} {{ 7 * 2 }} {{ 7 / 2 }} {{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }} {{ 2 ** 10 }} {{ 2 ** -1 }} {{ 7.5 // 2 }} {{ 0.1 + 0.2 }} {{ 1 / 3 }} {{ true + 1 }}", NULL,
     "9 5 14 3.5 3 -4 1 2 1024 0.5 3.0 0.30000000000000004 0.3333333333333333 2"},
    {"strings and lists", "{{ 'ab' + 'c' }} {{ 'ab' * 3 }} {{ [1] + [2] }} {{ [0] * 3 }} {{ 'a' ~ 1 ~ none ~ 2.0 }}", NULL,
     "abc ababab [1, 2] [0, 0, 0] a1None2.0"},
    {"comparisons and logic", "{{ 1 < 2 < 3 }} {{ 1 == 1.0 }} {{ 'a' < 'b' }} {{ [1, 2] < [1, 3] }} {{ 'b' in 'abc' }} {{ 'x' not in {'x': 1} }} {{ 0 or 'd' }} {{ 1 and 'y' }} {{ not none }} {{ none == false }}", NULL,
     "True True True True True False d y True False"},
    {"precedence", "{{ -2 ** 2 }} {{ 2 ** 3 ** 2 }} {{ 'ab'|upper + 'c' }} {{ not 1 is none }} {{ 1 + 2 * 3 }} {{ (1 + 2) * 3 }} {{ 'a' if false else 'b' if true else 'c' }}", NULL,
     "4 64 ABc True 7 9 b"},
    {"subscripts and slices", "{{ messages[1].content }} {{ messages[-1]['role'] }} {{ messages[1:]|length }} {{ 'hello'[1:-1] }} {{ 'hello'[::-1] }} {{ [1, 2, 3, 4][::2] }} {{ 'héllo'[1] }} {{ [1, 2][5] }}|", "{\"messages\": [{\"role\": \"system\", \"content\": \"Be brief.\"}, {\"role\": \"user\", \"content\": \"Hi\"}, {\"role\": \"assistant\", \"content\": \"Hello\"}]}",
     "Hi assistant 2 ell olleh [1, 3] é |"},
    {"undefined values print empty", "[{{ missing }}][{{ messages[0].missing }}][{{ none.attr }}][{{ 'abc'.attr }}][{{ missing ~ 'x' }}][{{ missing|length }}][{% for x in missing %}x{% endfor %}]", "{\"messages\": [{\"role\": \"system\", \"content\": \"Be brief.\"}, {\"role\": \"user\", \"content\": \"Hi\"}, {\"role\": \"assistant\", \"content\": \"Hello\"}]}",
     "[][][][][x][0][]"},
    {"dict attribute lookup prefers methods", "{{ {'items': 5}['items'] }} {{ {'a': 1}.items()|list }}", NULL,
     "5 [('a', 1)]"},
    {"strftime_now uses the injected clock", "{{ strftime_now('%Y-%m-%d %H:%M:%S') }} {{ strftime_now('%d %b %Y') }}", NULL,
     "2024-07-26 13:05:09 26 Jul 2024"},
};

TEST(jinja_whitespace_control) {
    check_cases(WHITESPACE_CASES, ARRAY_LEN(WHITESPACE_CASES));
}

TEST(jinja_for_loops) {
    check_cases(LOOP_CASES, ARRAY_LEN(LOOP_CASES));
}

TEST(jinja_scopes_and_macros) {
    check_cases(SCOPE_CASES, ARRAY_LEN(SCOPE_CASES));
}

TEST(jinja_filters) {
    check_cases(FILTER_CASES, ARRAY_LEN(FILTER_CASES));
}

TEST(jinja_tojson_formatting) {
    check_cases(TOJSON_CASES, ARRAY_LEN(TOJSON_CASES));
}

TEST(jinja_is_tests) {
    check_cases(TEST_CASES, ARRAY_LEN(TEST_CASES));
}

TEST(jinja_string_methods) {
    check_cases(STRING_CASES, ARRAY_LEN(STRING_CASES));
}

TEST(jinja_literals_and_operators) {
    check_cases(EXPRESSION_CASES, ARRAY_LEN(EXPRESSION_CASES));
}

// ----------------------------------------------------------------------------
// Errors

TEST(jinja_unsupported_tags_name_line) {
    check_error("line 1\n{% include 'other.jinja' %}", NULL, "template line 2, column 4: ",
                "the 'include' tag is not supported");
    check_error("{% extends 'base.jinja' %}", NULL, "template line 1, column 4: ", "'extends' tag is not supported");
    check_error("{% import 'm' as m %}", NULL, "template line 1, column 4: ", "'import' tag is not supported");
    check_error("{% from 'm' import x %}", NULL, "template line 1, column 4: ", "'from' tag is not supported");
    check_error("{% block b %}x{% endblock %}", NULL, "template line 1, column 4: ", "'block' tag is not supported");
    check_error("{% autoescape true %}x{% endautoescape %}", NULL, "template line 1, column 4: ",
                "'autoescape' tag is not supported");
    check_error("{% do x %}", NULL, "template line 1, column 4: ", "unknown tag 'do'");
}

TEST(jinja_unknown_filters_and_tests) {
    check_error("a\nb\n{{ x | nofilter }}", NULL, "template line 3, column 8: ", "no filter named 'nofilter'");
    check_error("{{ x is notatest }}", NULL, "template line 1, column 9: ", "no test named 'notatest'");
    // jinja2 filters that this interpreter leaves out are named as such.
    check_error("{{ x|wordwrap(5) }}", NULL, "template line 1, column 6: ",
                "the filter 'wordwrap' is not supported");
    check_error("{{ [1]|map('nofilter')|list }}", NULL, "template line 1: ", "No filter named 'nofilter'");
}

TEST(jinja_malformed_templates) {
    check_error("{{ x ", NULL, "template line 1, column 6: ", "unexpected end of template, expected end of print statement");
    check_error("{% if x %}abc", NULL, "template line 1, column 14: ",
                "Jinja was looking for the following tags: 'elif' or 'else' or 'endif'. The innermost block "
                "that needs to be closed is 'if' (line 1).");
    check_error("{% for x in y %}\n{% endif %}", NULL, "template line 2, column 4: ", "unknown tag 'endif'");
    check_error("{# abc", NULL, "template line 1, column 1: ", "missing end of comment tag");
    check_error("{% raw %}abc", NULL, "template line 1, column 1: ", "missing end of raw directive");
    check_error("{{ 'abc }}", NULL, "template line 1, column 4: ", "unterminated string literal");
    check_error("{% foo %}", NULL, "template line 1, column 4: ", "unknown tag 'foo'");
    check_error("{% endfor %}", NULL, "template line 1, column 4: ", "unknown tag 'endfor'");
    check_error("{{ a ! b }}", NULL, "template line 1, column 6: ", "unexpected character '!'");
    check_error("{{ x }}\n\n  {{ (1 }}", NULL, "template line 3, column 9: ", "unexpected '}', expected ')'");
    check_error("{{ 1 + }}", NULL, "template line 1, column 8: ", "expected an expression");
    check_error("{% break %}", NULL, "template line 1, column 4: ", "'break' outside a for loop");
    check_error("{% set 1 = 2 %}", NULL, "template line 1, column 8: ", "can't assign");
    check_error("{% macro m(a=1, b) %}{% endmacro %}", NULL, "template line 1, column 18: ",
                "non-default argument follows default argument");
    check_error("{{ 'caf\xc3' }}", NULL, "template line 1: ", "invalid UTF-8");
    check_error("{{ '\\N{BULLET}' }}", NULL, "template line 1, column 4: ", "\\N{...} escapes");
}

TEST(jinja_nesting_limit) {
    // Deeper nesting than the parser allows is an error, not a C stack overflow.
    char source[4096] = "{{ ";
    for (int i = 0; i < 1000; i++) {
        strcat(source, "(");
    }
    check_error(source, NULL, "template line 1, column ", "nested more than 300 levels deep");
}

TEST(jinja_runtime_errors_name_line) {
    const char *vars = "{\"m\": {\"a\": 1}}";
    check_error("x\n{{ 1 / 0 }}", vars, "template line 2: ", "ZeroDivisionError: division by zero");
    check_error("{{ undefined_var.attr }}", vars, "template line 1: ", "'undefined_var' is undefined");
    check_error("{{ m.missing.attr }}", vars, "template line 1: ", "'dict object' has no attribute 'missing'");
    check_error("{{ x < 1 }}", vars, "template line 1: ", "'x' is undefined");
    check_error("{{ 1 + 'a' }}", vars, "template line 1: ", "unsupported operand type(s) for +: 'int' and 'str'");
    check_error("{{ 'a' + 1 }}", vars, "template line 1: ", "can only concatenate str (not \"int\") to str");
    check_error("{{ 1 in 5 }}", vars, "template line 1: ", "argument of type 'int' is not iterable");
    check_error("{% set l = [1] %}{{ l.append(2) }}", vars, "template line 1: ",
                "access to attribute 'append' of 'list' object is unsafe.");
    check_error("{% set x = 1 %}{% set x.a = 2 %}", vars, "template line 1: ",
                "cannot assign attribute on non-namespace object");
    check_error("{% set a, b = [1] %}", vars, "template line 1: ", "not enough values to unpack (expected 2, got 1)");
    check_error("{% macro m(a) %}{% endmacro %}{{ m(1, 2) }}", vars, "template line 1: ",
                "macro 'm' takes not more than 1 argument(s)");
}

TEST(jinja_differences_are_errors) {
    // Where Python would print something this interpreter cannot reproduce, the render fails
    // instead of printing something else.
    check_error("{{ 2 ** 64 }}", NULL, "template line 1: ", "outside the 64-bit range");
    check_error("{{ [1, 2]|reverse }}", NULL, "template line 1: ", "cannot convert a 'list_reverseiterator' object");
    check_error("{{ 'abc'.upper }}", NULL, "template line 1: ", "cannot convert a 'builtin_function_or_method'");
    check_error("{{ 'ß'|upper }}", NULL, "template line 1: ", "case mapping of U+00DF is not supported");
    check_error("{{ 'abc'.zfill(5) ~ 'x'.expandtabs() }}", NULL, "template line 1: ",
                "the method str.expandtabs() is not supported");
}

TEST(jinja_raise_exception_message) {
    char *out;
    int rc = render_with("{% if true %}\n{{ raise_exception('Conversation roles must alternate') }}{% endif %}", NULL,
                         NULL, &out);
    CHECK_EQ_INT(rc, JINJA_RAISED);
    CHECK_STR(err_msg(), "Conversation roles must alternate");
    CHECK(out == NULL);
}

TEST(jinja_strftime_now_clock) {
    char *out;
    REQUIRE_OK(render_with("{{ strftime_now('%d %B %Y, %A') }}", NULL, NULL, &out));
    CHECK_STR(out, "26 July 2024, Friday");
    free(out);
}

// ----------------------------------------------------------------------------
// Limits

TEST(jinja_step_limit_stops_runaway_loops) {
    JinjaRenderOptions opt = {.max_steps = 200000};
    char *out;
    int rc = render_with("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", NULL,
                         &opt, &out);
    CHECK_EQ_INT(rc, -1);
    CHECK(strstr(err_msg(), "evaluation steps") != NULL);
}

TEST(jinja_memory_limit) {
    JinjaRenderOptions opt = {.max_bytes = (size_t)16 << 20};
    char *out;
    int rc = render_with("{% set s = 'x' * 1000000 %}{% for i in range(100) %}{{ s }}{% endfor %}", NULL, &opt, &out);
    CHECK_EQ_INT(rc, -1);
    CHECK(strstr(err_msg(), "bytes of memory") != NULL);
}

TEST(jinja_recursion_limit) {
    char *out;
    int rc = render_with("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", NULL, NULL, &out);
    CHECK_EQ_INT(rc, -1);
    CHECK(strstr(err_msg(), "macro calls nested more than 200 deep") != NULL);
}

TEST(jinja_range_sandbox_limit) {
    check_error("{{ range(100001)|length }}", NULL, "template line 1: ", "Range too big");
}

// ----------------------------------------------------------------------------
// Concurrency

typedef struct {
    const JinjaTemplate *t;
    cJSON *vars;
    int failures;
} RenderJob;

static void *render_many(void *arg) {
    RenderJob *job = arg;
    for (int i = 0; i < 200; i++) {
        char *out;
        if (jinja_render(job->t, job->vars, NULL, &out, NULL) != 0 || strcmp(out, "2:user,assistant|x") != 0) {
            job->failures++;
        }
        free(out);
    }
    return NULL;
}

TEST(jinja_concurrent_renders) {
    // One compiled template rendered by several threads at once: each render has its own state.
    const char *source = "{% set ns = namespace(n=0) %}{% for m in messages %}{% set ns.n = ns.n + 1 %}{% endfor %}"
                         "{{ ns.n }}:{{ messages|map(attribute='role')|join(',') }}|{{ 'X'|lower }}";
    JinjaTemplate *t = jinja_compile(source, strlen(source));
    REQUIRE(t != NULL);
    cJSON *vars = cJSON_Parse("{\"messages\": [{\"role\": \"user\"}, {\"role\": \"assistant\"}]}");
    RenderJob jobs[4];
    pthread_t threads[4];
    for (int i = 0; i < 4; i++) {
        jobs[i] = (RenderJob){.t = t, .vars = vars};
        REQUIRE(pthread_create(&threads[i], NULL, render_many, &jobs[i]) == 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(threads[i], NULL);
        CHECK_EQ_INT(jobs[i].failures, 0);
    }
    cJSON_Delete(vars);
    jinja_free(t);
}

// ----------------------------------------------------------------------------
// Truncated and mangled real templates

static const char *const REAL_TEMPLATES[] = {
    "llama-3.1-instruct.jinja",       "qwen2.5-instruct.jinja",
    "deepseek-r1-distill-llama.jinja", "deepseek-r1-distill-qwen-hist-20250130.jinja",
    "mistral-7b-instruct-v0.3.jinja", "llama-2-chat.jinja",
    "gemma-2-it.jinja",
};

static const char *const FUZZ_VARS =
    "{\"messages\": [{\"role\": \"system\", \"content\": \"Sys\"}, {\"role\": \"user\", \"content\": \"Hi\"},"
    " {\"role\": \"assistant\", \"content\": \"Yo\"}], \"tools\": null, \"add_generation_prompt\": true,"
    " \"bos_token\": \"<s>\", \"eos_token\": \"</s>\"}";

static char *load_real_template(const char *file) {
    char relative[256];
    snprintf(relative, sizeof relative, "reference/chat-templates/templates/%s", file);
    char *text;
    size_t len;
    REQUIRE_OK(file_read_all(test_shared_path(relative), &text, &len));
    return text;
}

// Compiles and renders text[0..len); any outcome but a crash is acceptable. Counts the outcomes.
static void render_fragment(const char *text, size_t len, const cJSON *vars, int *n_rendered, int *n_failed) {
    JinjaTemplate *t = jinja_compile(text, len);
    if (!t) {
        (*n_failed)++;
        return;
    }
    char *out;
    JinjaRenderOptions opt = {.max_steps = 200000};
    int rc = jinja_render(t, vars, &opt, &out, NULL);
    if (rc == 0) {
        (*n_rendered)++;
        free(out);
    } else {
        (*n_failed)++;
    }
    jinja_free(t);
}

TEST(jinja_truncated_templates_never_crash) {
    cJSON *vars = cJSON_Parse(FUZZ_VARS);
    REQUIRE(vars != NULL);
    for (size_t k = 0; k < ARRAY_LEN(REAL_TEMPLATES); k++) {
        char *text = load_real_template(REAL_TEMPLATES[k]);
        size_t len = strlen(text);
        int n_rendered = 0, n_failed = 0;
        // Every prefix, including cuts inside multi-byte characters.
        for (size_t cut = 0; cut <= len; cut++) {
            render_fragment(text, cut, vars, &n_rendered, &n_failed);
        }
        // The empty prefix and the whole template render; most cuts leave a tag open.
        CHECK_MSG(n_rendered >= 2, "%s: only %d prefixes rendered", REAL_TEMPLATES[k], n_rendered);
        CHECK_MSG(n_failed > 0, "%s: no prefix failed", REAL_TEMPLATES[k]);
        free(text);
    }
    cJSON_Delete(vars);
}

TEST(jinja_mangled_templates_never_crash) {
    // Deterministic edits of real templates: deleted spans, duplicated spans and swapped bytes.
    cJSON *vars = cJSON_Parse(FUZZ_VARS);
    REQUIRE(vars != NULL);
    uint64_t state = 0x9E3779B97F4A7C15ULL;
    int n_rendered = 0, n_failed = 0;
    for (size_t k = 0; k < ARRAY_LEN(REAL_TEMPLATES); k++) {
        char *text = load_real_template(REAL_TEMPLATES[k]);
        size_t len = strlen(text);
        char *edited = xmalloc(2 * len + 1);
        for (int round = 0; round < 400; round++) {
            // xorshift64: a fixed pseudo-random sequence, so failures reproduce.
            state ^= state << 13, state ^= state >> 7, state ^= state << 17;
            size_t a = state % len, b = (state >> 20) % len;
            if (a > b) {
                size_t tmp = a;
                a = b;
                b = tmp;
            }
            size_t n = 0;
            switch (round % 3) {
            case 0: // delete text[a..b)
                memcpy(edited, text, a);
                memcpy(edited + a, text + b, len - b);
                n = len - (b - a);
                break;
            case 1: // repeat text[a..b)
                memcpy(edited, text, b);
                memcpy(edited + b, text + a, b - a);
                memcpy(edited + b + (b - a), text + b, len - b);
                n = len + (b - a);
                break;
            default: // swap two bytes
                memcpy(edited, text, len);
                edited[a] = text[b];
                edited[b] = text[a];
                n = len;
            }
            render_fragment(edited, n, vars, &n_rendered, &n_failed);
        }
        free(edited);
        free(text);
    }
    CHECK(n_rendered > 0);
    CHECK(n_failed > 0);
    cJSON_Delete(vars);
}
