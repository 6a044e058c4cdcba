// jinja_value.c: template values with Python semantics: construction, dicts, truthiness, ==, <,
// str(), repr() and iteration.
#include "jinja_internal.h"

#include <locale.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <wctype.h>

// Nesting beyond this in repr() is an error (a namespace that contains itself).
#define MAX_REPR_DEPTH 100

// ----------------------------------------------------------------------------
// Construction

JValue jv_undefined(JArena *a, const char *name, const char *obj_type, const char *hint) {
    JUndef *u = jarena_alloc(a, sizeof *u);
    u->name = name;
    u->obj_type = obj_type;
    u->hint = hint;
    return (JValue){.kind = JV_UNDEFINED, .u = u};
}

JValue jv_str(JArena *a, const char *s, size_t len) {
    JStr *str = jarena_alloc(a, sizeof(JStr) + len + 1);
    str->len = len;
    if (len) {
        memcpy(str->data, s, len);
    }
    str->data[len] = '\0';
    return (JValue){.kind = JV_STRING, .s = str};
}

JValue jv_str_concat(JArena *a, const char *s1, size_t len1, const char *s2, size_t len2) {
    if (len1 > SIZE_MAX / 2 || len2 > SIZE_MAX / 2) {
        jerr_throw(a->err, 0, 0, "string too large");
    }
    JStr *str = jarena_alloc(a, sizeof(JStr) + len1 + len2 + 1);
    str->len = len1 + len2;
    if (len1) {
        memcpy(str->data, s1, len1);
    }
    if (len2) {
        memcpy(str->data + len1, s2, len2);
    }
    str->data[str->len] = '\0';
    return (JValue){.kind = JV_STRING, .s = str};
}

JValue jv_cstr(JArena *a, const char *s) {
    return jv_str(a, s, strlen(s));
}

JValue jv_markup(JArena *a, const char *s, size_t len) {
    JValue v = jv_str(a, s, len);
    v.s->markup = true;
    return v;
}

JValue jv_list(JArena *a, JListKind kind, size_t len) {
    JList *l = jarena_alloc(a, sizeof *l);
    l->kind = kind;
    l->len = len;
    if (len > SIZE_MAX / sizeof(JValue)) {
        jerr_throw(a->err, 0, 0, "list of %zu items is too large", len);
    }
    l->items = jarena_alloc(a, len * sizeof(JValue));
    l->iter_type = "generator";
    return (JValue){.kind = JV_LIST, .l = l};
}

JValue jv_list_of(JArena *a, JListKind kind, const JValue *items, size_t len) {
    JValue l = jv_list(a, kind, len);
    if (len) {
        memcpy(l.l->items, items, len * sizeof *items);
    }
    return l;
}

JValue jv_dict(JArena *a) {
    JDict *d = jarena_alloc(a, sizeof *d);
    return (JValue){.kind = JV_DICT, .d = d};
}

JValue jv_namespace(JArena *a) {
    JDict *d = jarena_alloc(a, sizeof *d);
    return (JValue){.kind = JV_NAMESPACE, .d = d};
}

// ----------------------------------------------------------------------------
// Dicts

bool jv_is_hashable(JValue v) {
    if (v.kind == JV_DICT) {
        return false;
    }
    if (v.kind != JV_LIST) {
        return true;
    }
    if (v.l->kind == JL_TUPLE) {
        for (size_t i = 0; i < v.l->len; i++) {
            if (!jv_is_hashable(v.l->items[i])) {
                return false;
            }
        }
        return true;
    }
    return v.l->kind == JL_ITERATOR || v.l->kind == JL_RANGE;
}

static bool find_key(const JDict *d, JValue key, size_t *index) {
    for (size_t i = 0; i < d->len; i++) {
        if (jv_equal(d->keys[i], key)) {
            *index = i;
            return true;
        }
    }
    return false;
}

bool jdict_get(const JDict *d, JValue key, JValue *value) {
    size_t i;
    if (!find_key(d, key, &i)) {
        return false;
    }
    *value = d->values[i];
    return true;
}

bool jdict_get_name(const JDict *d, const char *name, JValue *value) {
    size_t n = strlen(name);
    for (size_t i = 0; i < d->len; i++) {
        JValue k = d->keys[i];
        if (k.kind == JV_STRING && k.s->len == n && memcmp(k.s->data, name, n) == 0) {
            *value = d->values[i];
            return true;
        }
    }
    return false;
}

void jdict_set(JArena *a, JDict *d, JValue key, JValue value) {
    size_t i;
    if (find_key(d, key, &i)) {
        d->values[i] = value;
        return;
    }
    size_t cap = d->cap;
    d->keys = jarena_grow(a, d->keys, d->len, &cap, sizeof *d->keys, 8);
    d->values = jarena_grow(a, d->values, d->len, &d->cap, sizeof *d->values, 8);
    d->keys[d->len] = key;
    d->values[d->len] = value;
    d->len++;
}

// ----------------------------------------------------------------------------
// Truthiness, equality, ordering

bool jv_truthy(JValue v) {
    switch (v.kind) {
    case JV_UNDEFINED:
    case JV_NONE: return false;
    case JV_BOOL: return v.b;
    case JV_INT: return v.i != 0;
    case JV_FLOAT: return v.f != 0.0;
    case JV_STRING: return v.s->len > 0;
    case JV_LIST: return v.l->kind == JL_ITERATOR || v.l->len > 0; // a generator is always true
    case JV_DICT: return v.d->len > 0;
    default: return true;
    }
}

bool jv_is_number(JValue v) {
    return v.kind == JV_INT || v.kind == JV_FLOAT || v.kind == JV_BOOL;
}

double jv_as_double(JValue v) {
    switch (v.kind) {
    case JV_BOOL: return v.b ? 1.0 : 0.0;
    case JV_INT: return (double)v.i;
    case JV_FLOAT: return v.f;
    default: return 0.0;
    }
}

static bool numbers_equal(JValue a, JValue b) {
    if (a.kind != JV_FLOAT && b.kind != JV_FLOAT) {
        int64_t x = a.kind == JV_BOOL ? a.b : a.i;
        int64_t y = b.kind == JV_BOOL ? b.b : b.i;
        return x == y;
    }
    return jv_as_double(a) == jv_as_double(b);
}

bool jv_equal(JValue a, JValue b) {
    if (jv_is_number(a) && jv_is_number(b)) {
        return numbers_equal(a, b);
    }
    if (a.kind != b.kind) {
        return false;
    }
    switch (a.kind) {
    case JV_UNDEFINED:
    case JV_NONE: return true;
    case JV_STRING: return a.s->len == b.s->len && memcmp(a.s->data, b.s->data, a.s->len) == 0;
    case JV_LIST: {
        JListKind ka = a.l->kind, kb = b.l->kind;
        bool sequence_a = ka == JL_LIST || ka == JL_TUPLE || ka == JL_RANGE;
        if (!sequence_a || ka != kb) {
            return a.l == b.l;
        }
        if (a.l->len != b.l->len) {
            return false;
        }
        for (size_t i = 0; i < a.l->len; i++) {
            if (!jv_equal(a.l->items[i], b.l->items[i])) {
                return false;
            }
        }
        return true;
    }
    case JV_DICT: {
        if (a.d->len != b.d->len) {
            return false;
        }
        for (size_t i = 0; i < a.d->len; i++) {
            JValue other;
            if (!jdict_get(b.d, a.d->keys[i], &other) || !jv_equal(a.d->values[i], other)) {
                return false;
            }
        }
        return true;
    }
    case JV_NAMESPACE: return a.d == b.d;
    case JV_FUNC: return a.fn == b.fn;
    case JV_LOOP: return a.loop == b.loop;
    case JV_CYCLER: return a.cycler == b.cycler;
    default: return false;
    }
}

noreturn void jv_throw_undefined(JErr *e, int line, const JUndef *u) {
    if (u && u->hint) {
        jerr_throw(e, line, 0, "%s", u->hint);
    }
    if (u && u->obj_type) {
        jerr_throw(e, line, 0, "'%s' has no attribute '%s'", u->obj_type, u->name);
    }
    jerr_throw(e, line, 0, "'%s' is undefined", u && u->name ? u->name : "value");
}

int jv_compare(JErr *e, int line, JValue a, JValue b) {
    if (a.kind == JV_UNDEFINED) {
        jv_throw_undefined(e, line, a.u);
    }
    if (b.kind == JV_UNDEFINED) {
        jv_throw_undefined(e, line, b.u);
    }
    if (jv_is_number(a) && jv_is_number(b)) {
        if (a.kind != JV_FLOAT && b.kind != JV_FLOAT) {
            int64_t x = a.kind == JV_BOOL ? a.b : a.i;
            int64_t y = b.kind == JV_BOOL ? b.b : b.i;
            return (x > y) - (x < y);
        }
        double x = jv_as_double(a), y = jv_as_double(b);
        return (x > y) - (x < y);
    }
    if (a.kind == JV_STRING && b.kind == JV_STRING) {
        // Byte order of UTF-8 is code point order, which is Python's string order.
        size_t n = a.s->len < b.s->len ? a.s->len : b.s->len;
        int c = memcmp(a.s->data, b.s->data, n);
        if (c != 0) {
            return c < 0 ? -1 : 1;
        }
        return (a.s->len > b.s->len) - (a.s->len < b.s->len);
    }
    if (a.kind == JV_LIST && b.kind == JV_LIST && a.l->kind == b.l->kind &&
        (a.l->kind == JL_LIST || a.l->kind == JL_TUPLE)) {
        size_t n = a.l->len < b.l->len ? a.l->len : b.l->len;
        for (size_t i = 0; i < n; i++) {
            if (!jv_equal(a.l->items[i], b.l->items[i])) {
                return jv_compare(e, line, a.l->items[i], b.l->items[i]);
            }
        }
        return (a.l->len > b.l->len) - (a.l->len < b.l->len);
    }
    jerr_throw(e, line, 0, "'<' not supported between instances of '%s' and '%s'", jv_type_name(a),
               jv_type_name(b));
}

const char *jv_type_name(JValue v) {
    switch (v.kind) {
    case JV_UNDEFINED: return "Undefined";
    case JV_NONE: return "NoneType";
    case JV_BOOL: return "bool";
    case JV_INT: return "int";
    case JV_FLOAT: return "float";
    case JV_STRING: return "str";
    case JV_DICT: return "dict";
    case JV_NAMESPACE: return "Namespace";
    case JV_LOOP: return "LoopContext";
    case JV_CYCLER: return "Cycler";
    case JV_FUNC:
        if (v.fn->kind == JF_MACRO) return "Macro";
        if (v.fn->kind == JF_JOINER) return "Joiner";
        return "builtin_function_or_method";
    case JV_LIST:
        switch (v.l->kind) {
        case JL_LIST: return "list";
        case JL_TUPLE: return "tuple";
        case JL_ITERATOR: return v.l->iter_type;
        case JL_ITEMS: return "dict_items";
        case JL_KEYS: return "dict_keys";
        case JL_VALUES: return "dict_values";
        case JL_RANGE: return "range";
        }
    }
    return "object";
}

// ----------------------------------------------------------------------------
// str() and repr()

void jv_append_float_repr(JBuf *b, double f) {
    if (isnan(f)) {
        jbuf_append_str(b, "nan");
        return;
    }
    if (isinf(f)) {
        jbuf_append_str(b, f < 0 ? "-inf" : "inf");
        return;
    }
    // Python's repr is the shortest digit string that reads back as the same double. glibc's printf
    // rounds correctly, so the first precision that round-trips gives those digits.
    char sci[40];
    for (int prec = 0; prec <= 17; prec++) {
        snprintf(sci, sizeof sci, "%.*e", prec, f);
        if (strtod(sci, NULL) == f) {
            break;
        }
    }
    // sci is "[-]d.ddde[+-]xx": split into sign, digits and decimal exponent.
    const char *p = sci;
    bool negative = *p == '-';
    if (negative) {
        p++;
    }
    char digits[24];
    int n_digits = 0;
    for (; *p && *p != 'e'; p++) {
        if (*p != '.') {
            digits[n_digits++] = *p;
        }
    }
    int exp10 = atoi(p + 1);
    while (n_digits > 1 && digits[n_digits - 1] == '0') {
        n_digits--;
    }
    digits[n_digits] = '\0';
    int decpt = exp10 + 1; // position of the decimal point relative to the digits

    if (negative) {
        jbuf_append(b, "-", 1);
    }
    // CPython's float_repr_style 'short': fixed notation when -4 < decpt <= 16.
    if (decpt > -4 && decpt <= 16) {
        if (decpt <= 0) {
            jbuf_append_str(b, "0.");
            for (int i = 0; i < -decpt; i++) {
                jbuf_append(b, "0", 1);
            }
            jbuf_append(b, digits, (size_t)n_digits);
        } else if (decpt >= n_digits) {
            jbuf_append(b, digits, (size_t)n_digits);
            for (int i = n_digits; i < decpt; i++) {
                jbuf_append(b, "0", 1);
            }
            jbuf_append_str(b, ".0");
        } else {
            jbuf_append(b, digits, (size_t)decpt);
            jbuf_append(b, ".", 1);
            jbuf_append(b, digits + decpt, (size_t)(n_digits - decpt));
        }
        return;
    }
    jbuf_append(b, digits, 1);
    if (n_digits > 1) {
        jbuf_append(b, ".", 1);
        jbuf_append(b, digits + 1, (size_t)(n_digits - 1));
    }
    int e = decpt - 1;
    jbuf_printf(b, "e%c%02d", e < 0 ? '-' : '+', e < 0 ? -e : e);
}

// True when Python's str.isprintable() is false for a code point, so repr() escapes it.
// NOTE: the Unicode categories are approximated: control, format, separator, private-use and
// surrogate ranges are listed here, and unassigned code points are taken from the C library's
// iswprint() in the C.UTF-8 locale, whose Unicode version may differ from Python's.
static bool repr_escapes(uint32_t cp) {
    if (cp < 0x20 || (cp >= 0x7f && cp <= 0xa0) || cp == 0xad) {
        return true;
    }
    if (cp < 0x7f) {
        return false;
    }
    static const uint32_t ranges[][2] = {
        {0x600, 0x605},     {0x61c, 0x61c},     {0x6dd, 0x6dd},     {0x70f, 0x70f},
        {0x890, 0x891},     {0x8e2, 0x8e2},     {0x1680, 0x1680},   {0x180e, 0x180e},
        {0x2000, 0x200f},   {0x2028, 0x202f},   {0x205f, 0x2064},   {0x2066, 0x206f},
        {0x3000, 0x3000},   {0xd800, 0xf8ff},   {0xfeff, 0xfeff},   {0xfff9, 0xfffb},
        {0x110bd, 0x110bd}, {0x110cd, 0x110cd}, {0x13430, 0x1343f}, {0x1bca0, 0x1bca3},
        {0x1d173, 0x1d17a}, {0xe0001, 0xe0001}, {0xe0020, 0xe007f}, {0xf0000, 0x10ffff},
    };
    for (size_t i = 0; i < ARRAY_LEN(ranges); i++) {
        if (cp >= ranges[i][0] && cp <= ranges[i][1]) {
            return true;
        }
    }
    locale_t utf8 = jtext_locale();
    return utf8 && !iswprint_l((wint_t)cp, utf8);
}

static void append_str_repr(JBuf *b, const JStr *s) {
    bool has_single = memchr(s->data, '\'', s->len) != NULL;
    bool has_double = memchr(s->data, '"', s->len) != NULL;
    char quote = has_single && !has_double ? '"' : '\'';
    jbuf_append(b, &quote, 1);
    for (size_t i = 0; i < s->len;) {
        size_t n;
        uint32_t cp = jutf8_decode(s->data + i, s->len - i, &n);
        if (cp == (uint32_t)quote || cp == '\\') {
            char esc[2] = {'\\', (char)cp};
            jbuf_append(b, esc, 2);
        } else if (cp == '\n') {
            jbuf_append_str(b, "\\n");
        } else if (cp == '\r') {
            jbuf_append_str(b, "\\r");
        } else if (cp == '\t') {
            jbuf_append_str(b, "\\t");
        } else if (repr_escapes(cp)) {
            if (cp < 0x100) {
                jbuf_printf(b, "\\x%02x", cp);
            } else if (cp < 0x10000) {
                jbuf_printf(b, "\\u%04x", cp);
            } else {
                jbuf_printf(b, "\\U%08x", cp);
            }
        } else {
            jbuf_append(b, s->data + i, n);
        }
        i += n;
    }
    jbuf_append(b, &quote, 1);
}

static noreturn void throw_unprintable(JEval *ev, int line, JValue v) {
    JTHROW(ev, line,
           "cannot convert a '%s' object to text: Python prints its memory address, which no "
           "interpreter can reproduce",
           jv_type_name(v));
}

static void append_repr(JEval *ev, int line, JBuf *b, JValue v, int depth);

static void append_items_repr(JEval *ev, int line, JBuf *b, const JList *l, int depth) {
    for (size_t i = 0; i < l->len; i++) {
        if (i) {
            jbuf_append_str(b, ", ");
        }
        append_repr(ev, line, b, l->items[i], depth + 1);
    }
}

static void append_dict_repr(JEval *ev, int line, JBuf *b, const JDict *d, int depth) {
    jbuf_append(b, "{", 1);
    for (size_t i = 0; i < d->len; i++) {
        if (i) {
            jbuf_append_str(b, ", ");
        }
        append_repr(ev, line, b, d->keys[i], depth + 1);
        jbuf_append_str(b, ": ");
        append_repr(ev, line, b, d->values[i], depth + 1);
    }
    jbuf_append(b, "}", 1);
}

// Appends str() when as_repr is false, repr() when true. The two differ only for strings and
// undefined at the top level.
static void append_value(JEval *ev, int line, JBuf *b, JValue v, bool as_repr, int depth) {
    if (depth > MAX_REPR_DEPTH) {
        JTHROW(ev, line, "value nested more than %d levels deep cannot be converted to text",
               MAX_REPR_DEPTH);
    }
    switch (v.kind) {
    case JV_UNDEFINED:
        if (as_repr) {
            jbuf_append_str(b, "Undefined");
        }
        return;
    case JV_NONE: jbuf_append_str(b, "None"); return;
    case JV_BOOL: jbuf_append_str(b, v.b ? "True" : "False"); return;
    case JV_INT: jbuf_printf(b, "%lld", (long long)v.i); return;
    case JV_FLOAT: jv_append_float_repr(b, v.f); return;
    case JV_STRING:
        if (as_repr && v.s->markup) {
            jbuf_append_str(b, "Markup(");
            append_str_repr(b, v.s);
            jbuf_append(b, ")", 1);
        } else if (as_repr) {
            append_str_repr(b, v.s);
        } else {
            jbuf_append(b, v.s->data, v.s->len);
        }
        return;
    case JV_DICT: append_dict_repr(ev, line, b, v.d, depth); return;
    case JV_NAMESPACE:
        jbuf_append_str(b, "<Namespace ");
        append_dict_repr(ev, line, b, v.d, depth);
        jbuf_append(b, ">", 1);
        return;
    case JV_LOOP: jbuf_printf(b, "<LoopContext %zu/%zu>", v.loop->index0 + 1, v.loop->len); return;
    case JV_FUNC:
        if (v.fn->kind == JF_MACRO) {
            jbuf_printf(b, "<Macro '%s'>", v.fn->name);
            return;
        }
        throw_unprintable(ev, line, v);
    case JV_CYCLER: throw_unprintable(ev, line, v);
    case JV_LIST: break;
    }

    const JList *l = v.l;
    switch (l->kind) {
    case JL_LIST:
        jbuf_append(b, "[", 1);
        append_items_repr(ev, line, b, l, depth);
        jbuf_append(b, "]", 1);
        return;
    case JL_TUPLE:
        jbuf_append(b, "(", 1);
        append_items_repr(ev, line, b, l, depth);
        jbuf_append_str(b, l->len == 1 ? ",)" : ")");
        return;
    case JL_ITEMS:
    case JL_KEYS:
    case JL_VALUES:
        jbuf_append_str(b, jv_type_name(v));
        jbuf_append_str(b, "([");
        append_items_repr(ev, line, b, l, depth);
        jbuf_append_str(b, "])");
        return;
    case JL_RANGE:
        if (l->step == 1) {
            jbuf_printf(b, "range(%lld, %lld)", (long long)l->start, (long long)l->stop);
        } else {
            jbuf_printf(b, "range(%lld, %lld, %lld)", (long long)l->start, (long long)l->stop,
                        (long long)l->step);
        }
        return;
    case JL_ITERATOR: throw_unprintable(ev, line, v);
    }
}

static void append_repr(JEval *ev, int line, JBuf *b, JValue v, int depth) {
    append_value(ev, line, b, v, true, depth);
}

void jv_append_str(JEval *ev, int line, JBuf *b, JValue v) {
    append_value(ev, line, b, v, false, 0);
}

void jv_append_repr(JEval *ev, int line, JBuf *b, JValue v) {
    append_value(ev, line, b, v, true, 0);
}

JStr *jv_to_str(JEval *ev, int line, JValue v) {
    if (v.kind == JV_STRING) {
        return v.s;
    }
    JBuf b;
    jbuf_init(&b, ev->arena);
    jv_append_str(ev, line, &b, v);
    return jv_str(ev->arena, b.data ? b.data : "", b.len).s;
}

// ----------------------------------------------------------------------------
// Iteration and length

JValue *jv_iterate(JEval *ev, int line, JValue v, size_t *n) {
    switch (v.kind) {
    case JV_UNDEFINED:
        *n = 0;
        return NULL;
    case JV_LIST:
        if (v.l->kind == JL_ITERATOR) {
            size_t start = v.l->pos;
            v.l->pos = v.l->len;
            *n = v.l->len - start;
            return v.l->items + start;
        }
        *n = v.l->len;
        return v.l->items;
    case JV_DICT:
        *n = v.d->len;
        return v.d->keys;
    case JV_STRING: {
        size_t count = jutf8_count(v.s->data, v.s->len);
        JValue *chars = jarena_alloc(ev->arena, count * sizeof *chars);
        size_t k = 0;
        for (size_t i = 0; i < v.s->len; k++) {
            size_t len;
            jutf8_decode(v.s->data + i, v.s->len - i, &len);
            chars[k] = jv_str(ev->arena, v.s->data + i, len);
            i += len;
        }
        *n = count;
        return chars;
    }
    default:
        JTHROW(ev, line, "'%s' object is not iterable", jv_type_name(v));
    }
}

int64_t jv_length(JEval *ev, int line, JValue v) {
    switch (v.kind) {
    case JV_UNDEFINED: return 0;
    case JV_STRING: return (int64_t)jutf8_count(v.s->data, v.s->len);
    case JV_DICT: return (int64_t)v.d->len;
    case JV_LIST:
        if (v.l->kind != JL_ITERATOR) {
            return (int64_t)v.l->len;
        }
        break;
    default: break;
    }
    JTHROW(ev, line, "object of type '%s' has no len()", jv_type_name(v));
}
