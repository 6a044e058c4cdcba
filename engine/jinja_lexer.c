// jinja_lexer.c: template source -> tokens, following jinja2 3.1's lexer (jinja2/lexer.py) with
// trim_blocks=True and lstrip_blocks=True, as transformers configures it.
//
// Whitespace rules, in the order jinja2 applies them:
// - "{%-", "{{-", "{#-" strip all whitespace (newlines too) at the end of the text before the tag.
// - Otherwise, for "{%" and "{#" (not "{{") without "+": when only whitespace is between the start
//   of the line and the tag, it is removed (lstrip_blocks). jinja2 3.1 tests the line with the regex
//   \s+, so Unicode spaces count too, not only spaces and tabs.
// - "-%}", "-}}", "-#}" strip all whitespace after the tag.
// - Otherwise "%}" and "#}" (not "}}") drop one newline right after them (trim_blocks); "+%}" keeps it.
// Whitespace here is Python's: str.isspace(), which includes Unicode spaces.
#include "jinja_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    JArena *arena;
    const char *src;
    size_t len;
    size_t pos;
    // Line and column of offset `scan`, advanced forward as tokens are made.
    size_t scan;
    int line, col;
    // True when the previous match ended with a newline: lstrip_blocks then also applies to a tag
    // whose text before it contains no newline.
    bool line_starting;
    JToken *tokens;
    size_t n, cap;
    // Closing brackets expected, innermost last: "}}" ends a tag only when none is open.
    char balance[1024];
    int depth;
} Lexer;

static void advance_to(Lexer *L, size_t pos) {
    while (L->scan < pos) {
        unsigned char c = (unsigned char)L->src[L->scan];
        if (c == '\n') {
            L->line++;
            L->col = 1;
        } else if ((c & 0xC0) != 0x80) {
            L->col++;
        }
        L->scan++;
    }
}

static noreturn void lex_fail(Lexer *L, size_t pos, const char *fmt, const char *arg) {
    advance_to(L, pos);
    jerr_throw(L->arena->err, L->line, L->col, fmt, arg);
}

static JToken *push(Lexer *L, JTokKind kind, size_t pos) {
    L->tokens = jarena_grow(L->arena, L->tokens, L->n, &L->cap, sizeof *L->tokens, 256);
    advance_to(L, pos);
    JToken *t = &L->tokens[L->n++];
    *t = (JToken){.kind = kind, .line = L->line, .col = L->col};
    return t;
}

// ----------------------------------------------------------------------------
// Whitespace

// Skips Python whitespace (regex \s*) from pos.
static size_t skip_space(const Lexer *L, size_t pos) {
    while (pos < L->len) {
        size_t n;
        uint32_t cp = jutf8_decode(L->src + pos, L->len - pos, &n);
        if (!jtext_isspace(cp)) {
            break;
        }
        pos += n;
    }
    return pos;
}

// Returns the length of text[0..len) without trailing Python whitespace (str.rstrip()).
static size_t rstrip_len(const char *text, size_t len) {
    while (len > 0) {
        size_t start = len - 1;
        while (start > 0 && ((unsigned char)text[start] & 0xC0) == 0x80) {
            start--;
        }
        size_t n;
        if (!jtext_isspace(jutf8_decode(text + start, len - start, &n))) {
            break;
        }
        len = start;
    }
    return len;
}

// Applies "-" or lstrip_blocks to the text before a tag and returns its new length. sign is '-',
// '+' or 0. is_variable is true for "{{", to which lstrip_blocks does not apply.
static size_t strip_before_tag(const Lexer *L, const char *text, size_t len, char sign,
                               bool is_variable) {
    if (sign == '-') {
        return rstrip_len(text, len);
    }
    if (sign == '+' || is_variable) {
        return len;
    }
    size_t line_start = len;
    while (line_start > 0 && text[line_start - 1] != '\n') {
        line_start--;
    }
    if (line_start == 0 && !L->line_starting) {
        return len;
    }
    // jinja2 3.1 strips when the rest of the line is whitespace (regex \s+, so Unicode spaces too).
    for (size_t i = line_start; i < len;) {
        size_t n;
        if (!jtext_isspace(jutf8_decode(text + i, len - i, &n))) {
            return len;
        }
        i += n;
    }
    return line_start;
}

static void push_data(Lexer *L, size_t start, const char *text, size_t len) {
    if (len == 0) {
        return;
    }
    JToken *t = push(L, TK_DATA, start);
    t->text = jarena_strndup(L->arena, text, len);
    t->len = len;
}

// ----------------------------------------------------------------------------
// Literals

// Matches (\d+_)*\d+ at pos; returns the end, or pos when nothing matches.
static size_t match_digits(const Lexer *L, size_t pos) {
    size_t p = pos;
    if (p >= L->len || L->src[p] < '0' || L->src[p] > '9') {
        return pos;
    }
    for (;;) {
        while (p < L->len && L->src[p] >= '0' && L->src[p] <= '9') {
            p++;
        }
        if (p + 1 < L->len && L->src[p] == '_' && L->src[p + 1] >= '0' && L->src[p + 1] <= '9') {
            p++;
            continue;
        }
        return p;
    }
}

// jinja2's float_re: (?<!\.)(\d+_)*\d+((\.(\d+_)*\d+)?e[+\-]?(\d+_)*\d+|\.(\d+_)*\d+)
static size_t match_float(const Lexer *L, size_t pos) {
    if (pos > 0 && L->src[pos - 1] == '.') {
        return pos;
    }
    size_t p = match_digits(L, pos);
    if (p == pos) {
        return pos;
    }
    // First alternative: optional fraction, then a required exponent.
    size_t q = p;
    if (q < L->len && L->src[q] == '.') {
        size_t f = match_digits(L, q + 1);
        if (f > q + 1) {
            q = f;
        }
    }
    for (int with_fraction = 1; with_fraction >= 0; with_fraction--) {
        size_t e = with_fraction ? q : p;
        if (e < L->len && (L->src[e] == 'e' || L->src[e] == 'E')) {
            size_t s = e + 1;
            if (s < L->len && (L->src[s] == '+' || L->src[s] == '-')) {
                s++;
            }
            size_t x = match_digits(L, s);
            if (x > s) {
                return x;
            }
        }
    }
    // Second alternative: a fraction without exponent.
    if (p < L->len && L->src[p] == '.') {
        size_t f = match_digits(L, p + 1);
        if (f > p + 1) {
            return f;
        }
    }
    return pos;
}

static bool is_digit_of_base(char c, int base) {
    if (c >= '0' && c <= '9') {
        return c - '0' < base;
    }
    if (base == 16) {
        return (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
    }
    return false;
}

// jinja2's integer_re: 0b(_?[01])+ | 0o(_?[0-7])+ | 0x(_?[\da-f])+ | [1-9](_?\d)* | 0(_?0)*
// Stores the base and the offset of the first digit.
static size_t match_integer(const Lexer *L, size_t pos, int *base, size_t *digits) {
    const char *s = L->src;
    if (pos >= L->len || s[pos] < '0' || s[pos] > '9') {
        return pos;
    }
    if (s[pos] == '0' && pos + 1 < L->len) {
        char x = s[pos + 1];
        int b = (x == 'b' || x == 'B') ? 2 : (x == 'o' || x == 'O') ? 8 : (x == 'x' || x == 'X') ? 16 : 0;
        if (b) {
            size_t p = pos + 2;
            for (;;) {
                size_t q = p < L->len && s[p] == '_' ? p + 1 : p;
                if (q < L->len && is_digit_of_base(s[q], b)) {
                    p = q + 1;
                } else {
                    break;
                }
            }
            if (p > pos + 2) {
                *base = b;
                *digits = pos + 2;
                return p;
            }
        }
    }
    *base = 10;
    *digits = pos;
    char allowed_max = s[pos] == '0' ? '0' : '9';
    size_t p = pos + 1;
    for (;;) {
        size_t q = p < L->len && s[p] == '_' ? p + 1 : p;
        if (q < L->len && s[q] >= '0' && s[q] <= allowed_max) {
            p = q + 1;
        } else {
            return p;
        }
    }
}

static int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// The first step of jinja2's string literal decoding, value.encode("ascii", "backslashreplace"):
// each non-ASCII character of src[start..end) becomes \xhh, \uhhhh or \Uhhhhhhhh.
static JBuf escape_non_ascii(Lexer *L, size_t start, size_t end) {
    JBuf ascii;
    jbuf_init(&ascii, L->arena);
    for (size_t p = start; p < end;) {
        unsigned char c = (unsigned char)L->src[p];
        if (c < 0x80) {
            jbuf_append(&ascii, (const char *)&c, 1);
            p++;
            continue;
        }
        size_t n;
        uint32_t cp = jutf8_decode(L->src + p, end - p, &n);
        if (cp < 0x100) {
            jbuf_printf(&ascii, "\\x%02x", cp);
        } else if (cp < 0x10000) {
            jbuf_printf(&ascii, "\\u%04x", cp);
        } else {
            jbuf_printf(&ascii, "\\U%08x", cp);
        }
        p += n;
    }
    return ascii;
}

// Appends code point v, where NUL (from "\0" or "\x00") is a byte like any other.
static void append_code_point(JBuf *out, uint32_t v) {
    if (v == 0) {
        jbuf_append(out, "", 1);
    } else {
        jutf8_append(out, v);
    }
}

// Decodes the escape of s[*i..n) that follows a backslash (Python's "unicode-escape" codec) and
// advances *i past it. `quote` is the literal's position for error messages.
static void decode_escape(Lexer *L, size_t quote, const char *s, size_t n, size_t *i, JBuf *out) {
    char e = s[*i];
    (*i)++;
    const char *simple = NULL;
    switch (e) {
    case '\n': simple = ""; break; // a backslash before a newline continues the line
    case '\\': simple = "\\"; break;
    case '\'': simple = "'"; break;
    case '"': simple = "\""; break;
    case 'a': simple = "\a"; break;
    case 'b': simple = "\b"; break;
    case 'f': simple = "\f"; break;
    case 'n': simple = "\n"; break;
    case 'r': simple = "\r"; break;
    case 't': simple = "\t"; break;
    case 'v': simple = "\v"; break;
    default: break;
    }
    if (simple) {
        jbuf_append_str(out, simple);
        return;
    }
    if (e >= '0' && e <= '7') {
        uint32_t v = (uint32_t)(e - '0');
        for (int k = 0; k < 2 && *i < n && s[*i] >= '0' && s[*i] <= '7'; k++) {
            v = v * 8 + (uint32_t)(s[(*i)++] - '0');
        }
        append_code_point(out, v);
        return;
    }
    if (e == 'x' || e == 'u' || e == 'U') {
        int digits = e == 'x' ? 2 : e == 'u' ? 4 : 8;
        uint32_t v = 0;
        for (int k = 0; k < digits; k++) {
            int h = *i < n ? hex_value(s[*i]) : -1;
            if (h < 0) {
                lex_fail(L, quote, "invalid escape in string literal: truncated \\%s escape",
                         e == 'x' ? "xXX" : e == 'u' ? "uXXXX" : "UXXXXXXXX");
            }
            v = v * 16 + (uint32_t)h;
            (*i)++;
        }
        if (v > 0x10FFFF) {
            lex_fail(L, quote, "invalid escape in string literal: \\U%s is above U+10FFFF", "XXXXXXXX");
        }
        if (v >= 0xD800 && v <= 0xDFFF) {
            lex_fail(L, quote,
                     "string literal contains a surrogate code point escape%s; Python keeps it "
                     "as a lone surrogate that UTF-8 output cannot hold",
                     "");
        }
        append_code_point(out, v);
        return;
    }
    if (e == 'N') {
        lex_fail(L, quote, "\\N{...} escapes (Unicode character names) are not supported%s", "");
    }
    // Python keeps an unknown escape as it is, backslash included.
    jbuf_append(out, s + *i - 2, 2);
}

// Decodes the body src[start..end) of a string literal as jinja2 does:
// value.encode("ascii", "backslashreplace").decode("unicode-escape"). Doing both steps reproduces
// its quirks: a backslash before a non-ASCII character escapes the backslash of that character's
// \x escape instead.
static JStr *decode_string(Lexer *L, size_t start, size_t end) {
    size_t quote = start - 1; // errors point at the literal's opening quote
    JBuf ascii = escape_non_ascii(L, start, end);
    JBuf out;
    jbuf_init(&out, L->arena);
    const char *s = ascii.data ? ascii.data : "";
    size_t n = ascii.len;
    for (size_t i = 0; i < n;) {
        if (s[i] != '\\') {
            jbuf_append(&out, s + i, 1);
            i++;
            continue;
        }
        if (i + 1 >= n) {
            lex_fail(L, quote, "string literal ends with a lone backslash%s", "");
        }
        i++;
        decode_escape(L, quote, s, n, &i, &out);
    }
    JStr *str = jarena_alloc(L->arena, sizeof(JStr) + out.len + 1);
    str->len = out.len;
    if (out.len) {
        memcpy(str->data, out.data, out.len);
    }
    str->data[out.len] = '\0';
    return str;
}

// ----------------------------------------------------------------------------
// Tags

static const struct {
    const char *text;
    JOp op;
} OPERATORS[] = {
    {"//", OP_FLOORDIV}, {"**", OP_POW}, {"==", OP_EQ}, {"!=", OP_NE}, {">=", OP_GE},
    {"<=", OP_LE},       {"+", OP_ADD},  {"-", OP_SUB}, {"/", OP_DIV}, {"*", OP_MUL},
    {"%", OP_MOD},       {"~", OP_TILDE}, {"[", OP_LBRACKET}, {"]", OP_RBRACKET},
    {"(", OP_LPAREN},    {")", OP_RPAREN}, {"{", OP_LBRACE}, {"}", OP_RBRACE}, {">", OP_GT},
    {"<", OP_LT},        {"=", OP_ASSIGN}, {".", OP_DOT}, {":", OP_COLON}, {"|", OP_PIPE},
    {",", OP_COMMA},     {";", OP_SEMICOLON},
};

const char *jop_text(JOp op) {
    if (op == OP_IN) return "in";
    if (op == OP_NOTIN) return "not in";
    for (size_t i = 0; i < ARRAY_LEN(OPERATORS); i++) {
        if (OPERATORS[i].op == op) {
            return OPERATORS[i].text;
        }
    }
    return "?";
}

static bool starts_with(const Lexer *L, size_t pos, const char *s) {
    size_t n = strlen(s);
    return pos + n <= L->len && memcmp(L->src + pos, s, n) == 0;
}

static void track_bracket(Lexer *L, size_t pos, JOp op) {
    char open_close = 0;
    if (op == OP_LBRACE) open_close = '}';
    if (op == OP_LPAREN) open_close = ')';
    if (op == OP_LBRACKET) open_close = ']';
    if (open_close) {
        if (L->depth == (int)sizeof L->balance) {
            lex_fail(L, pos, "brackets nested too deeply%s", "");
        }
        L->balance[L->depth++] = open_close;
        return;
    }
    char c = op == OP_RBRACE ? '}' : op == OP_RPAREN ? ')' : op == OP_RBRACKET ? ']' : 0;
    if (!c) {
        return;
    }
    if (L->depth == 0) {
        char text[2] = {c, 0};
        lex_fail(L, pos, "unexpected '%s'", text);
    }
    if (L->balance[L->depth - 1] != c) {
        char text[32];
        snprintf(text, sizeof text, "'%c', expected '%c'", c, L->balance[L->depth - 1]);
        lex_fail(L, pos, "unexpected %s", text);
    }
    L->depth--;
}

// Lexes a float or integer literal at pos; returns false when none starts there.
static bool lex_number(Lexer *L, size_t pos) {
    const char *s = L->src;
    size_t end = match_float(L, pos);
    if (end > pos) {
        char *digits = jarena_alloc(L->arena, end - pos + 1);
        size_t k = 0;
        for (size_t i = pos; i < end; i++) {
            if (s[i] != '_') {
                digits[k++] = s[i];
            }
        }
        JToken *t = push(L, TK_FLOAT, pos);
        t->fval = strtod(digits, NULL);
        L->pos = end;
        return true;
    }
    int base;
    size_t digits_start;
    end = match_integer(L, pos, &base, &digits_start);
    if (end == pos) {
        return false;
    }
    uint64_t v = 0;
    for (size_t i = digits_start; i < end; i++) {
        if (s[i] == '_') {
            continue;
        }
        uint64_t d = (uint64_t)hex_value(s[i]);
        if (v > (UINT64_C(0x7fffffffffffffff) - d) / (uint64_t)base) {
            lex_fail(L, pos, "integer literal %s is outside the 64-bit range this interpreter supports",
                     jarena_strndup(L->arena, s + pos, end - pos));
        }
        v = v * (uint64_t)base + d;
    }
    JToken *t = push(L, TK_INT, pos);
    t->ival = (int64_t)v;
    L->pos = end;
    return true;
}

static bool is_name_char(char c, bool first) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (!first && c >= '0' && c <= '9');
}

// Lexes a name ([a-zA-Z_][a-zA-Z0-9_]*) at pos; returns false when none starts there.
// NOTE: jinja2 also accepts non-ASCII identifiers; here they are an "unexpected character" error.
static bool lex_name(Lexer *L, size_t pos) {
    if (!is_name_char(L->src[pos], true)) {
        return false;
    }
    size_t end = pos + 1;
    while (end < L->len && is_name_char(L->src[end], false)) {
        end++;
    }
    JToken *t = push(L, TK_NAME, pos);
    t->text = jarena_strndup(L->arena, L->src + pos, end - pos);
    t->len = end - pos;
    L->pos = end;
    return true;
}

// Lexes a quoted string literal at pos; returns false when none starts there.
static bool lex_string(Lexer *L, size_t pos) {
    char quote = L->src[pos];
    if (quote != '\'' && quote != '"') {
        return false;
    }
    size_t p = pos + 1;
    while (p < L->len && L->src[p] != quote) {
        p += L->src[p] == '\\' ? 2 : 1;
    }
    if (p >= L->len) {
        lex_fail(L, pos, "unterminated string literal starting with %s", quote == '"' ? "'\"'" : "\"'\"");
    }
    JToken *t = push(L, TK_STRING, pos);
    t->str = decode_string(L, pos + 1, p);
    L->pos = p + 1;
    return true;
}

// Lexes an operator at pos (the longest that matches); returns false when none starts there.
static bool lex_operator(Lexer *L, size_t pos) {
    for (size_t i = 0; i < ARRAY_LEN(OPERATORS); i++) {
        if (starts_with(L, pos, OPERATORS[i].text)) {
            track_bracket(L, pos, OPERATORS[i].op);
            JToken *t = push(L, TK_OP, pos);
            t->op = OPERATORS[i].op;
            L->pos = pos + strlen(OPERATORS[i].text);
            return true;
        }
    }
    return false;
}

// Returns the end of the tag's closing delimiter at pos ("%}" with trim_blocks' newline, "-%}" with
// the whitespace after it, "+%}", "}}", "-}}"), or 0 when none is there.
static size_t match_tag_end(const Lexer *L, size_t pos, bool is_block) {
    if (is_block && starts_with(L, pos, "+%}")) {
        return pos + 3;
    }
    if (starts_with(L, pos, is_block ? "-%}" : "-}}")) {
        return skip_space(L, pos + 3);
    }
    if (starts_with(L, pos, is_block ? "%}" : "}}")) {
        size_t end = pos + 2;
        if (is_block && end < L->len && L->src[end] == '\n') {
            end++;
        }
        return end;
    }
    return 0;
}

// Lexes the inside of a "{{ }}" or "{% %}" tag from L->pos up to and including its end. Returns
// false when the source ends inside the tag (the parser then reports what it expected).
static bool lex_tag(Lexer *L, bool is_block) {
    L->depth = 0;
    for (;;) {
        size_t pos = L->pos;
        if (pos >= L->len) {
            return false;
        }

        // The end of the tag counts only outside brackets: "{{ {'a': {}} }}" is one expression.
        size_t end = L->depth == 0 ? match_tag_end(L, pos, is_block) : 0;
        if (end) {
            push(L, is_block ? TK_BLOCK_END : TK_VAR_END, pos);
            L->line_starting = L->src[end - 1] == '\n';
            L->pos = end;
            return true;
        }

        size_t space_end = skip_space(L, pos);
        if (space_end > pos) {
            L->pos = space_end;
            continue;
        }
        // jinja2's order of rules: float, integer, name, string, operator.
        if (lex_number(L, pos) || lex_name(L, pos) || lex_string(L, pos) || lex_operator(L, pos)) {
            continue;
        }
        size_t n;
        jutf8_decode(L->src + pos, L->len - pos, &n);
        lex_fail(L, pos, "unexpected character '%s' in a tag", jarena_strndup(L->arena, L->src + pos, n));
    }
}

// Matches "\s*raw\s*(-%}\s*|%})" at pos (after "{%" and its sign); returns the end or 0.
static size_t match_raw_begin(const Lexer *L, size_t pos) {
    size_t p = skip_space(L, pos);
    if (!starts_with(L, p, "raw")) {
        return 0;
    }
    p = skip_space(L, p + 3);
    if (starts_with(L, p, "-%}")) {
        return skip_space(L, p + 3);
    }
    if (starts_with(L, p, "%}")) {
        return p + 2;
    }
    return 0;
}

// Lexes the body of {% raw %} from L->pos through {% endraw %}, emitting it as data. A raw tag that
// ends the source is dropped without error, as jinja2 does.
static void lex_raw(Lexer *L, size_t tag_start) {
    if (L->pos >= L->len) {
        return;
    }
    for (size_t p = L->pos; p + 1 < L->len; p++) {
        if (L->src[p] != '{' || L->src[p + 1] != '%') {
            continue;
        }
        size_t q = p + 2;
        char sign = 0;
        if (q < L->len && (L->src[q] == '-' || L->src[q] == '+')) {
            sign = L->src[q++];
        }
        q = skip_space(L, q);
        if (!starts_with(L, q, "endraw")) {
            continue;
        }
        q = skip_space(L, q + 6);
        size_t end = 0;
        if (starts_with(L, q, "+%}")) {
            end = q + 3;
        } else if (starts_with(L, q, "-%}")) {
            end = skip_space(L, q + 3);
        } else if (starts_with(L, q, "%}")) {
            end = q + 2;
            if (end < L->len && L->src[end] == '\n') {
                end++;
            }
        }
        if (!end) {
            continue;
        }
        size_t text_len = strip_before_tag(L, L->src + L->pos, p - L->pos, sign, false);
        push_data(L, L->pos, L->src + L->pos, text_len);
        L->line_starting = L->src[end - 1] == '\n';
        L->pos = end;
        return;
    }
    lex_fail(L, tag_start, "missing end of raw directive ({%% endraw %%})%s", "");
}

// Skips a comment from L->pos through its end "#}". As in jinja2, a "{#" that ends the source is
// dropped without error (its "missing end" rule needs one more character to match).
static void lex_comment(Lexer *L, size_t tag_start) {
    if (L->pos >= L->len) {
        return;
    }
    for (size_t p = L->pos; p < L->len; p++) {
        size_t end = 0;
        if (starts_with(L, p, "+#}")) {
            end = p + 3;
        } else if (starts_with(L, p, "-#}")) {
            end = skip_space(L, p + 3);
        } else if (starts_with(L, p, "#}")) {
            end = p + 2;
            if (end < L->len && L->src[end] == '\n') {
                end++;
            }
        }
        if (end) {
            L->line_starting = L->src[end - 1] == '\n';
            L->pos = end;
            return;
        }
    }
    lex_fail(L, tag_start, "missing end of comment tag (#})%s", "");
}

JToken *jlex(JArena *a, const char *src, size_t len, size_t *n_tokens) {
    Lexer L = {.arena = a, .src = src, .len = len, .line = 1, .col = 1, .line_starting = true};
    while (L.pos < len) {
        // Find the next "{{", "{%" or "{#".
        size_t tag = L.pos;
        char kind = 0;
        for (; tag + 1 < len; tag++) {
            if (src[tag] == '{' && (src[tag + 1] == '{' || src[tag + 1] == '%' || src[tag + 1] == '#')) {
                kind = src[tag + 1];
                break;
            }
        }
        if (!kind) {
            push_data(&L, L.pos, src + L.pos, len - L.pos);
            break;
        }
        size_t after = tag + 2;
        char sign = 0;
        if (after < len && (src[after] == '-' || src[after] == '+')) {
            sign = src[after++];
        }
        size_t text_len = strip_before_tag(&L, src + L.pos, tag - L.pos, sign, kind == '{');
        push_data(&L, L.pos, src + L.pos, text_len);
        L.line_starting = false;

        if (kind == '#') {
            L.pos = after;
            lex_comment(&L, tag);
            continue;
        }
        size_t raw_end = kind == '%' ? match_raw_begin(&L, after) : 0;
        if (raw_end) {
            L.line_starting = src[raw_end - 1] == '\n';
            L.pos = raw_end;
            lex_raw(&L, tag);
            continue;
        }
        push(&L, kind == '%' ? TK_BLOCK_BEGIN : TK_VAR_BEGIN, tag);
        L.pos = after;
        if (!lex_tag(&L, kind == '%')) {
            break;
        }
    }
    push(&L, TK_EOF, len);
    *n_tokens = L.n;
    return L.tokens;
}

const char *jtok_describe(JArena *a, const JToken *t) {
    switch (t->kind) {
    case TK_EOF: return "end of template";
    case TK_DATA: return "template data";
    case TK_VAR_BEGIN: return "begin of print statement";
    case TK_VAR_END: return "end of print statement";
    case TK_BLOCK_BEGIN: return "begin of statement block";
    case TK_BLOCK_END: return "end of statement block";
    case TK_NAME: {
        size_t n = strlen(t->text) + 3;
        char *s = jarena_alloc(a, n);
        snprintf(s, n, "'%s'", t->text);
        return s;
    }
    case TK_STRING: return "string";
    case TK_INT: return "integer";
    case TK_FLOAT: return "float";
    case TK_OP: {
        const char *op = jop_text(t->op);
        size_t n = strlen(op) + 3;
        char *s = jarena_alloc(a, n);
        snprintf(s, n, "'%s'", op);
        return s;
    }
    }
    return "token";
}
