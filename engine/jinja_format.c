// jinja_format.c: Python's string formatting for templates: `str % args` (printf style),
// str.format(), and markupsafe's escaping of HTML and of Markup strings.
#include "jinja_internal.h"

#include <math.h>
#include <string.h>

// ----------------------------------------------------------------------------
// HTML escaping (markupsafe.escape)

JValue jtext_html_escape(JEval *ev, JValue v, int line) {
    if (v.kind == JV_STRING && v.s->markup) {
        return v;
    }
    JStr *s = jv_to_str(ev, line, v);
    JBuf b;
    jbuf_init(&b, ev->arena);
    for (size_t i = 0; i < s->len; i++) {
        switch (s->data[i]) {
        case '&': jbuf_append_str(&b, "&amp;"); break;
        case '<': jbuf_append_str(&b, "&lt;"); break;
        case '>': jbuf_append_str(&b, "&gt;"); break;
        case '"': jbuf_append_str(&b, "&#34;"); break;
        case '\'': jbuf_append_str(&b, "&#39;"); break;
        default: jbuf_append(&b, s->data + i, 1);
        }
    }
    return jv_markup(ev->arena, b.data ? b.data : "", b.len);
}

void jtext_reject_markup(JEval *ev, int line, JValue v, const char *what) {
    if (v.kind == JV_STRING && v.s->markup) {
        JTHROW(ev, line,
               "%s of a Markup string (made by |safe or |escape) is not supported: markupsafe gives "
               "Markup results that escape what they are combined with",
               what);
    }
}

// ----------------------------------------------------------------------------
// printf-style formatting: str % args

// Pads text to `width` code points (left-justified when `left`).
static void append_padded(JBuf *b, const char *text, size_t len, int64_t width, bool left, char fill) {
    int64_t count = (int64_t)jutf8_count(text, len);
    if (!left) {
        for (int64_t i = count; i < width; i++) jbuf_append(b, &fill, 1);
    }
    jbuf_append(b, text, len);
    if (left) {
        for (int64_t i = count; i < width; i++) jbuf_append(b, &fill, 1);
    }
}

// Converts a number argument of %d / %x / {:d} to int64 (floats truncate, as Python's int()).
static int64_t int_argument(JEval *ev, int line, JValue v, char conv, bool allow_float) {
    if (v.kind == JV_BOOL) return v.b;
    if (v.kind == JV_INT) return v.i;
    if (v.kind == JV_FLOAT && allow_float) {
        if (!isfinite(v.f)) {
            JTHROW(ev, line, "cannot convert float %s to integer", isnan(v.f) ? "NaN" : "infinity");
        }
        if (v.f >= 9.2233720368547758e18 || v.f < -9.2233720368547758e18) {
            JTHROW(ev, line, "integer outside the 64-bit range this interpreter supports");
        }
        return (int64_t)v.f;
    }
    JTHROW(ev, line, "%%%c format: %s is required, not %s", conv,
           allow_float ? "a real number" : "an integer", jv_type_name(v));
}

// One "%..." conversion specification: %[(key)][flags][width][.precision]conversion.
typedef struct {
    const char *key; // NULL unless "%(key)s"
    size_t key_len;
    char flags[8];   // of "-+ #0"
    int64_t width, precision; // -1 when absent
    char conv;
} PercentSpec;

// Parses the specification that starts after a '%' at s[*i] and advances *i past it.
static void parse_percent_spec(JEval *ev, int line, const char *s, size_t n, size_t *i, PercentSpec *spec) {
    *spec = (PercentSpec){.width = -1, .precision = -1};
    if (*i < n && s[*i] == '(') {
        size_t key_start = ++*i;
        int depth = 1;
        while (*i < n && depth > 0) {
            depth += s[*i] == '(' ? 1 : s[*i] == ')' ? -1 : 0;
            (*i)++;
        }
        if (depth != 0) {
            JTHROW(ev, line, "ValueError: incomplete format key");
        }
        spec->key = s + key_start;
        spec->key_len = *i - 1 - key_start;
    }
    size_t n_flags = 0;
    while (*i < n && strchr("-+ #0", s[*i]) && n_flags < sizeof spec->flags - 1) {
        spec->flags[n_flags++] = s[(*i)++];
    }
    if (*i < n && s[*i] == '*') {
        JTHROW(ev, line, "'*' width in %% formatting is not supported");
    }
    while (*i < n && s[*i] >= '0' && s[*i] <= '9') {
        spec->width = (spec->width < 0 ? 0 : spec->width) * 10 + (s[(*i)++] - '0');
        if (spec->width > 1000000) JTHROW(ev, line, "format width too large");
    }
    if (*i < n && s[*i] == '.') {
        (*i)++;
        if (*i < n && s[*i] == '*') {
            JTHROW(ev, line, "'*' precision in %% formatting is not supported");
        }
        spec->precision = 0;
        while (*i < n && s[*i] >= '0' && s[*i] <= '9') {
            spec->precision = spec->precision * 10 + (s[(*i)++] - '0');
            if (spec->precision > 1000) JTHROW(ev, line, "format precision too large");
        }
    }
    while (*i < n && (s[*i] == 'h' || s[*i] == 'l' || s[*i] == 'L')) {
        (*i)++;
    }
    if (*i >= n) {
        JTHROW(ev, line, "ValueError: incomplete format");
    }
    spec->conv = s[(*i)++];
}

// Appends one converted argument. The number conversions use the C library's printf, whose output
// for these flags and conversions is Python's.
static void append_percent_conversion(JEval *ev, int line, JBuf *b, const PercentSpec *spec, JValue arg) {
    bool left = strchr(spec->flags, '-') != NULL;
    int width = (int)(spec->width < 0 ? 0 : spec->width);
    char conv = spec->conv;
    char cfmt[32];
    switch (conv) {
    case 's':
    case 'r': {
        JBuf text;
        jbuf_init(&text, ev->arena);
        if (conv == 's') {
            jv_append_str(ev, line, &text, arg);
        } else {
            jv_append_repr(ev, line, &text, arg);
        }
        const char *data = text.data ? text.data : "";
        size_t len = spec->precision >= 0 ? jutf8_offset(data, text.len, (size_t)spec->precision) : text.len;
        append_padded(b, data, len, spec->width, left, ' ');
        return;
    }
    case 'd':
    case 'i':
    case 'u':
    case 'x':
    case 'X':
    case 'o': {
        bool is_decimal = conv == 'd' || conv == 'i' || conv == 'u';
        if (conv == 'o' && strchr(spec->flags, '#')) {
            JTHROW(ev, line, "'%%#o' formatting is not supported");
        }
        int64_t v = int_argument(ev, line, arg, conv, is_decimal);
        // Python prints negative hex and octal with a minus sign; C prints the two's complement.
        if (!is_decimal && v < 0) {
            JTHROW(ev, line, "'%%%c' formatting of a negative number is not supported", conv);
        }
        if (spec->precision >= 0) {
            snprintf(cfmt, sizeof cfmt, "%%%s*.*ll%c", spec->flags, is_decimal ? 'd' : conv);
            jbuf_printf(b, cfmt, width, (int)spec->precision, (long long)v);
        } else {
            snprintf(cfmt, sizeof cfmt, "%%%s*ll%c", spec->flags, is_decimal ? 'd' : conv);
            jbuf_printf(b, cfmt, width, (long long)v);
        }
        return;
    }
    case 'e':
    case 'E':
    case 'f':
    case 'F':
    case 'g':
    case 'G':
        if (!jv_is_number(arg)) {
            JTHROW(ev, line, "TypeError: must be real number, not %s", jv_type_name(arg));
        }
        snprintf(cfmt, sizeof cfmt, "%%%s*.*%c", spec->flags, conv);
        jbuf_printf(b, cfmt, width, (int)(spec->precision < 0 ? 6 : spec->precision), jv_as_double(arg));
        return;
    case 'c': {
        JBuf ch;
        jbuf_init(&ch, ev->arena);
        if (arg.kind == JV_STRING && jutf8_count(arg.s->data, arg.s->len) == 1) {
            jbuf_append(&ch, arg.s->data, arg.s->len);
        } else if (arg.kind == JV_INT && arg.i >= 0 && arg.i <= 0x10FFFF && !(arg.i >= 0xD800 && arg.i <= 0xDFFF)) {
            jutf8_append(&ch, (uint32_t)arg.i);
        } else {
            JTHROW(ev, line, "TypeError: %%c requires an int in range or a single character");
        }
        append_padded(b, ch.data, ch.len, spec->width, left, ' ');
        return;
    }
    default:
        JTHROW(ev, line, "ValueError: unsupported format character '%c' (0x%x)", conv, (unsigned)(unsigned char)conv);
    }
}

JValue jtext_percent_format(JEval *ev, int line, const JStr *fmt, JValue args) {
    jtext_reject_markup(ev, line, (JValue){.kind = JV_STRING, .s = (JStr *)fmt}, "'%' formatting");
    const JValue *positional = &args;
    size_t n_positional = 1;
    if (args.kind == JV_LIST && args.l->kind == JL_TUPLE) {
        positional = args.l->items;
        n_positional = args.l->len;
    }
    // Python treats any non-tuple, non-str object with __getitem__ as a possible mapping.
    bool is_mapping = args.kind == JV_DICT || args.kind == JV_UNDEFINED ||
                      (args.kind == JV_LIST && args.l->kind != JL_TUPLE && args.l->kind != JL_ITERATOR);
    size_t next_arg = 0;
    JBuf b;
    jbuf_init(&b, ev->arena);
    const char *s = fmt->data;
    size_t n = fmt->len;
    for (size_t i = 0; i < n;) {
        if (s[i] != '%') {
            jbuf_append(&b, s + i, 1);
            i++;
            continue;
        }
        i++;
        PercentSpec spec;
        parse_percent_spec(ev, line, s, n, &i, &spec);
        if (spec.conv == '%') {
            jbuf_append(&b, "%", 1);
            continue;
        }
        JValue arg;
        if (spec.key) {
            if (args.kind == JV_UNDEFINED) {
                jv_throw_undefined(ev->err, line, args.u);
            }
            if (args.kind != JV_DICT) {
                JTHROW(ev, line, "TypeError: format requires a mapping");
            }
            JValue key = jv_str(ev->arena, spec.key, spec.key_len);
            if (!jdict_get(args.d, key, &arg)) {
                JTHROW(ev, line, "KeyError: '%s'", key.s->data);
            }
        } else {
            if (next_arg >= n_positional) {
                JTHROW(ev, line, "TypeError: not enough arguments for format string");
            }
            arg = positional[next_arg++];
        }
        append_percent_conversion(ev, line, &b, &spec, arg);
    }
    if (next_arg < n_positional && !is_mapping) {
        JTHROW(ev, line, "TypeError: not all arguments converted during string formatting");
    }
    return jv_str(ev->arena, b.data ? b.data : "", b.len);
}

// ----------------------------------------------------------------------------
// str.format

typedef struct {
    char fill;
    char align; // 0, '<', '>', '^', '='
    char sign;  // 0, '+', '-', ' '
    bool zero;
    int64_t width, precision; // -1 when absent
    char type;  // 0 when absent
} FormatSpec;

static void parse_spec(JEval *ev, int line, const char *s, size_t n, FormatSpec *spec) {
    *spec = (FormatSpec){.fill = ' ', .width = -1, .precision = -1};
    size_t i = 0;
    // [[fill]align]: fill is one character (ASCII here).
    if (n >= 2 && strchr("<>^=", s[1])) {
        spec->fill = s[0];
        spec->align = s[1];
        i = 2;
    } else if (n >= 1 && strchr("<>^=", s[0])) {
        spec->align = s[0];
        i = 1;
    }
    if (i < n && strchr("+- ", s[i])) {
        spec->sign = s[i++];
    }
    if (i < n && (s[i] == '#' || s[i] == 'z')) {
        JTHROW(ev, line, "the '%c' option in str.format specifications is not supported", s[i]);
    }
    if (i < n && s[i] == '0') {
        spec->zero = true;
        i++;
    }
    while (i < n && s[i] >= '0' && s[i] <= '9') {
        spec->width = (spec->width < 0 ? 0 : spec->width) * 10 + (s[i++] - '0');
        if (spec->width > 1000000) JTHROW(ev, line, "format width too large");
    }
    if (i < n && (s[i] == ',' || s[i] == '_')) {
        JTHROW(ev, line, "digit grouping ('%c') in str.format specifications is not supported", s[i]);
    }
    if (i < n && s[i] == '.') {
        i++;
        spec->precision = 0;
        size_t start = i;
        while (i < n && s[i] >= '0' && s[i] <= '9') {
            spec->precision = spec->precision * 10 + (s[i++] - '0');
            if (spec->precision > 1000) JTHROW(ev, line, "format precision too large");
        }
        if (i == start) JTHROW(ev, line, "ValueError: Format specifier missing precision");
    }
    if (i < n) {
        spec->type = s[i++];
    }
    if (i != n) {
        JTHROW(ev, line, "ValueError: Invalid format specifier '%.*s'", (int)n, s);
    }
}

// Appends text aligned in spec->width; numbers default to the right, text to the left.
static void append_aligned(JBuf *b, const char *text, size_t len, const FormatSpec *spec, bool numeric) {
    int64_t count = (int64_t)jutf8_count(text, len);
    int64_t pad = spec->width > count ? spec->width - count : 0;
    char align = spec->align ? spec->align : numeric ? '>' : '<';
    char fill = spec->fill;
    if (spec->zero && !spec->align && numeric) {
        align = '=';
        fill = '0';
    }
    if (align == '=' && len > 0 && (text[0] == '-' || text[0] == '+' || text[0] == ' ')) {
        jbuf_append(b, text, 1);
        text++;
        len--;
    }
    int64_t before = align == '<' ? 0 : align == '^' ? pad / 2 : pad;
    for (int64_t i = 0; i < before; i++) jbuf_append(b, &fill, 1);
    jbuf_append(b, text, len);
    for (int64_t i = before; i < pad; i++) jbuf_append(b, &fill, 1);
}

// Formats an integer with type d, x, X, o, b or none (decimal).
static void format_integer(JEval *ev, int line, JBuf *b, int64_t x, const FormatSpec *spec, const char *sign) {
    if (spec->precision >= 0) {
        JTHROW(ev, line, "ValueError: Precision not allowed in integer format specifier");
    }
    char type = spec->type;
    uint64_t mag = x < 0 ? 0 - (uint64_t)x : (uint64_t)x;
    char digits[80];
    if (type == 'b') {
        int k = 0;
        do {
            digits[k++] = (char)('0' + (mag & 1));
            mag >>= 1;
        } while (mag);
        for (int i = 0; i < k / 2; i++) {
            char t = digits[i];
            digits[i] = digits[k - 1 - i];
            digits[k - 1 - i] = t;
        }
        digits[k] = '\0';
    } else {
        const char *fmt = type == 'x' ? "%llx" : type == 'X' ? "%llX" : type == 'o' ? "%llo" : "%llu";
        snprintf(digits, sizeof digits, fmt, (unsigned long long)mag);
    }
    char out[96];
    snprintf(out, sizeof out, "%s%s", x < 0 ? "-" : sign, digits);
    append_aligned(b, out, strlen(out), spec, true);
}

static void format_value(JEval *ev, int line, JBuf *b, JValue v, const FormatSpec *spec, bool empty_spec) {
    if (v.kind == JV_STRING || empty_spec || v.kind == JV_NONE || v.kind == JV_UNDEFINED ||
        v.kind == JV_LIST || v.kind == JV_DICT) {
        if (!empty_spec && v.kind != JV_STRING) {
            JTHROW(ev, line, "TypeError: unsupported format string passed to %s.__format__",
                   jv_type_name(v));
        }
        if (spec->type && spec->type != 's') {
            JTHROW(ev, line, "ValueError: Unknown format code '%c' for object of type 'str'", spec->type);
        }
        JStr *text = jv_to_str(ev, line, v);
        size_t len = text->len;
        if (spec->precision >= 0) {
            len = jutf8_offset(text->data, text->len, (size_t)spec->precision);
        }
        append_aligned(b, text->data, len, spec, false);
        return;
    }
    if (!jv_is_number(v)) {
        JTHROW(ev, line, "TypeError: unsupported format string passed to %s.__format__", jv_type_name(v));
    }
    char sign[2] = {spec->sign == '+' || spec->sign == ' ' ? spec->sign : 0, 0};
    char type = spec->type;
    bool is_int = v.kind != JV_FLOAT;
    if (is_int && (type == 0 || type == 'd' || type == 'x' || type == 'X' || type == 'o' || type == 'b')) {
        format_integer(ev, line, b, v.kind == JV_BOOL ? v.b : v.i, spec, sign);
        return;
    }
    if (type == 0 && spec->precision >= 0) {
        JTHROW(ev, line, "float format specifications without a type and with a precision are not supported");
    }
    if (type == 0) {
        JBuf repr;
        jbuf_init(&repr, ev->arena);
        if (sign[0] && !signbit(jv_as_double(v))) {
            jbuf_append(&repr, sign, 1);
        }
        jv_append_float_repr(&repr, jv_as_double(v));
        append_aligned(b, repr.data, repr.len, spec, true);
        return;
    }
    if (!strchr("eEfFgG%", type)) {
        JTHROW(ev, line, "ValueError: Unknown format code '%c' for object of type '%s'", type,
               jv_type_name(v));
    }
    double x = jv_as_double(v);
    int precision = (int)(spec->precision < 0 ? 6 : spec->precision);
    JBuf text;
    jbuf_init(&text, ev->arena);
    if (type == '%') {
        jbuf_printf(&text, "%s%.*f%%", sign, precision, x * 100.0);
    } else {
        char cfmt[16];
        snprintf(cfmt, sizeof cfmt, "%%%s.*%c", sign, type);
        jbuf_printf(&text, cfmt, precision, x);
    }
    append_aligned(b, text.data, text.len, spec, true);
}

JValue jtext_format(JEval *ev, int line, const JStr *fmt, const JValue *args, size_t n_args,
                    const JDict *kwargs) {
    JBuf b;
    jbuf_init(&b, ev->arena);
    const char *s = fmt->data;
    size_t n = fmt->len;
    int auto_index = 0; // 0 unknown, 1 automatic numbering, -1 manual
    size_t next_auto = 0;
    for (size_t i = 0; i < n;) {
        char c = s[i];
        if (c == '}' ) {
            if (i + 1 < n && s[i + 1] == '}') {
                jbuf_append(&b, "}", 1);
                i += 2;
                continue;
            }
            JTHROW(ev, line, "ValueError: Single '}' encountered in format string");
        }
        if (c != '{') {
            jbuf_append(&b, s + i, 1);
            i++;
            continue;
        }
        if (i + 1 < n && s[i + 1] == '{') {
            jbuf_append(&b, "{", 1);
            i += 2;
            continue;
        }
        size_t start = ++i;
        while (i < n && s[i] != '}' && s[i] != '{') i++;
        if (i >= n || s[i] == '{') {
            JTHROW(ev, line, i >= n ? "ValueError: Single '{' encountered in format string"
                                    : "nested replacement fields in str.format are not supported");
        }
        const char *field = s + start;
        size_t field_len = i - start;
        i++; // '}'

        // field := name (. attr | [key])* [!conv] [:spec]
        size_t name_end = 0;
        while (name_end < field_len && !strchr(".[!:", field[name_end])) name_end++;
        JValue value;
        if (name_end == 0) {
            if (auto_index < 0) {
                JTHROW(ev, line, "ValueError: cannot switch from manual field specification to automatic field numbering");
            }
            auto_index = 1;
            if (next_auto >= n_args) {
                JTHROW(ev, line, "IndexError: Replacement index %zu out of range for positional args tuple", next_auto);
            }
            value = args[next_auto++];
        } else if (field[0] >= '0' && field[0] <= '9') {
            if (auto_index > 0) {
                JTHROW(ev, line, "ValueError: cannot switch from automatic field numbering to manual field specification");
            }
            auto_index = -1;
            size_t index = 0;
            for (size_t k = 0; k < name_end; k++) {
                if (field[k] < '0' || field[k] > '9') {
                    JTHROW(ev, line, "invalid field name '%.*s' in format string", (int)name_end, field);
                }
                index = index * 10 + (size_t)(field[k] - '0');
                if (index > 100000) break;
            }
            if (index >= n_args) {
                JTHROW(ev, line, "IndexError: Replacement index %zu out of range for positional args tuple", index);
            }
            value = args[index];
        } else {
            char *name = jarena_strndup(ev->arena, field, name_end);
            if (!kwargs || !jdict_get_name(kwargs, name, &value)) {
                JTHROW(ev, line, "KeyError: '%s'", name);
            }
        }
        size_t k = name_end;
        while (k < field_len && (field[k] == '.' || field[k] == '[')) {
            if (field[k] == '.') {
                size_t a = ++k;
                while (k < field_len && !strchr(".[!:", field[k])) k++;
                value = jeval_getattr(ev, line, value, jarena_strndup(ev->arena, field + a, k - a));
            } else {
                size_t a = ++k;
                while (k < field_len && field[k] != ']') k++;
                if (k >= field_len) JTHROW(ev, line, "ValueError: Missing ']' in format string");
                JValue key = jv_str(ev->arena, field + a, k - a);
                bool numeric = k > a;
                int64_t index = 0;
                for (size_t q = a; q < k; q++) {
                    if (field[q] < '0' || field[q] > '9' || index > 100000000) numeric = false;
                    else index = index * 10 + (field[q] - '0');
                }
                value = jeval_getitem(ev, line, value, numeric ? jv_int(index) : key);
                k++;
            }
        }
        if (k < field_len && field[k] == '!') {
            if (k + 1 >= field_len) JTHROW(ev, line, "ValueError: end of string while looking for conversion specifier");
            char conv = field[k + 1];
            JBuf text;
            jbuf_init(&text, ev->arena);
            if (conv == 'r') {
                jv_append_repr(ev, line, &text, value);
            } else if (conv == 's') {
                jv_append_str(ev, line, &text, value);
            } else {
                JTHROW(ev, line, "conversion '!%c' in str.format is not supported", conv);
            }
            value = jv_str(ev->arena, text.data ? text.data : "", text.len);
            k += 2;
        }
        FormatSpec spec = {.fill = ' ', .width = -1, .precision = -1};
        bool empty_spec = true;
        if (k < field_len) {
            if (field[k] != ':') JTHROW(ev, line, "ValueError: expected ':' after conversion specifier");
            k++;
            empty_spec = k == field_len;
            parse_spec(ev, line, field + k, field_len - k, &spec);
        }
        if (value.kind == JV_BOOL && empty_spec) {
            jbuf_append_str(&b, value.b ? "True" : "False");
            continue;
        }
        format_value(ev, line, &b, value, &spec, empty_spec);
    }
    return jv_str(ev->arena, b.data ? b.data : "", b.len);
}
