// jinja_methods.c: the methods of Python's str, list, tuple and dict that templates call
// ('a b'.split(), d.items(), d.get(k) ...), and those of `loop` and cycler objects. Each type's
// full method list is here, so that a Python method this interpreter lacks is an error and not an
// undefined value.
#include "jinja_internal.h"

#include <math.h>
#include <string.h>
#include <wctype.h>

// ----------------------------------------------------------------------------
// Method tables

typedef enum { M_IMPLEMENTED, M_UNSAFE, M_UNSUPPORTED } MethodStatus;

typedef struct {
    const char *name;
    MethodStatus status;
} Method;

// Python 3.11's methods of each type. The sandbox makes the mutating ones unsafe: looking them up
// gives an undefined value that fails when called.
static const Method STR_METHODS[] = {
    {"capitalize", M_IMPLEMENTED}, {"casefold", M_UNSUPPORTED},    {"center", M_IMPLEMENTED},
    {"count", M_IMPLEMENTED},      {"encode", M_UNSUPPORTED},      {"endswith", M_IMPLEMENTED},
    {"expandtabs", M_UNSUPPORTED}, {"find", M_IMPLEMENTED},        {"format", M_IMPLEMENTED},
    {"format_map", M_UNSUPPORTED}, {"index", M_IMPLEMENTED},       {"isalnum", M_IMPLEMENTED},
    {"isalpha", M_IMPLEMENTED},    {"isascii", M_IMPLEMENTED},     {"isdecimal", M_IMPLEMENTED},
    {"isdigit", M_IMPLEMENTED},    {"isidentifier", M_UNSUPPORTED}, {"islower", M_IMPLEMENTED},
    {"isnumeric", M_IMPLEMENTED},  {"isprintable", M_UNSUPPORTED}, {"isspace", M_IMPLEMENTED},
    {"istitle", M_UNSUPPORTED},    {"isupper", M_IMPLEMENTED},     {"join", M_IMPLEMENTED},
    {"ljust", M_IMPLEMENTED},      {"lower", M_IMPLEMENTED},       {"lstrip", M_IMPLEMENTED},
    {"maketrans", M_UNSUPPORTED},  {"partition", M_IMPLEMENTED},   {"removeprefix", M_IMPLEMENTED},
    {"removesuffix", M_IMPLEMENTED}, {"replace", M_IMPLEMENTED},   {"rfind", M_IMPLEMENTED},
    {"rindex", M_IMPLEMENTED},     {"rjust", M_IMPLEMENTED},       {"rpartition", M_IMPLEMENTED},
    {"rsplit", M_IMPLEMENTED},     {"rstrip", M_IMPLEMENTED},      {"split", M_IMPLEMENTED},
    {"splitlines", M_IMPLEMENTED}, {"startswith", M_IMPLEMENTED},  {"strip", M_IMPLEMENTED},
    {"swapcase", M_IMPLEMENTED},   {"title", M_IMPLEMENTED},       {"translate", M_UNSUPPORTED},
    {"upper", M_IMPLEMENTED},      {"zfill", M_IMPLEMENTED},       {NULL, M_UNSUPPORTED},
};

static const Method LIST_METHODS[] = {
    {"append", M_UNSAFE}, {"clear", M_UNSAFE},       {"copy", M_IMPLEMENTED}, {"count", M_IMPLEMENTED},
    {"extend", M_UNSAFE}, {"index", M_IMPLEMENTED},  {"insert", M_UNSAFE},    {"pop", M_UNSAFE},
    {"remove", M_UNSAFE}, {"reverse", M_UNSAFE},     {"sort", M_UNSAFE},      {NULL, M_UNSUPPORTED},
};

static const Method TUPLE_METHODS[] = {
    {"count", M_IMPLEMENTED}, {"index", M_IMPLEMENTED}, {NULL, M_UNSUPPORTED},
};

static const Method DICT_METHODS[] = {
    {"clear", M_UNSAFE},      {"copy", M_IMPLEMENTED},   {"fromkeys", M_UNSUPPORTED},
    {"get", M_IMPLEMENTED},   {"items", M_IMPLEMENTED},  {"keys", M_IMPLEMENTED},
    {"pop", M_UNSAFE},        {"popitem", M_UNSAFE},     {"setdefault", M_UNSAFE},
    {"update", M_UNSAFE},     {"values", M_IMPLEMENTED}, {NULL, M_UNSUPPORTED},
};

static const Method INT_METHODS[] = {
    {"as_integer_ratio", M_UNSUPPORTED}, {"bit_count", M_UNSUPPORTED}, {"bit_length", M_UNSUPPORTED},
    {"conjugate", M_UNSUPPORTED},        {"from_bytes", M_UNSUPPORTED}, {"to_bytes", M_UNSUPPORTED},
    {NULL, M_UNSUPPORTED},
};

static const Method FLOAT_METHODS[] = {
    {"as_integer_ratio", M_UNSUPPORTED}, {"conjugate", M_UNSUPPORTED}, {"fromhex", M_UNSUPPORTED},
    {"hex", M_UNSUPPORTED},              {"is_integer", M_IMPLEMENTED}, {NULL, M_UNSUPPORTED},
};

static const Method LOOP_METHODS[] = {
    {"cycle", M_IMPLEMENTED}, {"changed", M_IMPLEMENTED}, {NULL, M_UNSUPPORTED},
};

static const Method CYCLER_METHODS[] = {
    {"next", M_IMPLEMENTED}, {"reset", M_IMPLEMENTED}, {NULL, M_UNSUPPORTED},
};

static const Method *methods_of(JValue obj) {
    switch (obj.kind) {
    case JV_STRING: return STR_METHODS;
    case JV_DICT: return DICT_METHODS;
    case JV_INT:
    case JV_BOOL: return INT_METHODS;
    case JV_FLOAT: return FLOAT_METHODS;
    case JV_LOOP: return LOOP_METHODS;
    case JV_CYCLER: return CYCLER_METHODS;
    case JV_LIST:
        if (obj.l->kind == JL_LIST) return LIST_METHODS;
        if (obj.l->kind == JL_TUPLE) return TUPLE_METHODS;
        return NULL;
    default: return NULL;
    }
}

bool jcall_method_lookup(JEval *ev, int line, JValue obj, const char *name, JValue *method) {
    const Method *table = methods_of(obj);
    for (const Method *m = table; m && m->name; m++) {
        if (strcmp(m->name, name) != 0) {
            continue;
        }
        if (m->status == M_UNSUPPORTED) {
            JTHROW(ev, line, "the method %s.%s() is not supported by this interpreter", jv_type_name(obj),
                   name);
        }
        if (m->status == M_UNSAFE) {
            size_t n = strlen(name) + 64;
            char *hint = jarena_alloc(ev->arena, n);
            snprintf(hint, n, "access to attribute '%s' of '%s' object is unsafe.", name, jv_type_name(obj));
            *method = jv_undefined(ev->arena, name, NULL, hint);
            return true;
        }
        JFunc *fn = jarena_alloc(ev->arena, sizeof *fn);
        fn->kind = JF_METHOD;
        fn->name = m->name;
        fn->self = obj;
        *method = (JValue){.kind = JV_FUNC, .fn = fn};
        return true;
    }
    return false;
}

// ----------------------------------------------------------------------------
// str methods

// Python's startswith/endswith: prefix is a str or a tuple of str, with optional start and end.
static bool starts_or_ends(JEval *ev, int line, const JStr *s, const JArgs *args, bool ends) {
    const char *func = ends ? "endswith" : "startswith";
    JValue what = {0}, start_v = jv_none(), end_v = jv_none();
    if (args->n_kw) {
        JTHROW(ev, line, "TypeError: %s() takes no keyword arguments", func);
    }
    if (!jargs_get(args, 0, NULL, &what) || args->n_pos > 3) {
        JTHROW(ev, line, "TypeError: %s() takes from 1 to 3 arguments", func);
    }
    jargs_get(args, 1, NULL, &start_v);
    jargs_get(args, 2, NULL, &end_v);
    int64_t n = (int64_t)jutf8_count(s->data, s->len);
    int64_t start = start_v.kind == JV_NONE ? 0 : jargs_require_int(ev, line, func, start_v);
    int64_t end = end_v.kind == JV_NONE ? n : jargs_require_int(ev, line, func, end_v);
    if (start < 0) start = start + n < 0 ? 0 : start + n;
    if (end < 0) end = end + n < 0 ? 0 : end + n;
    if (end > n) end = n;
    if (start > n) {
        return false;
    }
    size_t bs = jutf8_offset(s->data, s->len, (size_t)start);
    size_t be = jutf8_offset(s->data, s->len, (size_t)(end > start ? end : start));
    const JValue *candidates = &what;
    size_t n_candidates = 1;
    if (what.kind == JV_LIST && what.l->kind == JL_TUPLE) {
        candidates = what.l->items;
        n_candidates = what.l->len;
    }
    for (size_t i = 0; i < n_candidates; i++) {
        if (candidates[i].kind != JV_STRING) {
            JTHROW(ev, line, "TypeError: %s first arg must be str or a tuple of str, not %s", func,
                   jv_type_name(candidates[i]));
        }
        const JStr *p = candidates[i].s;
        if (p->len > be - bs || start > end) {
            continue;
        }
        const char *at = ends ? s->data + be - p->len : s->data + bs;
        if (memcmp(at, p->data, p->len) == 0) {
            return true;
        }
    }
    return false;
}

// Pads s to width code points with fill: align '<' (ljust), '>' (rjust) or '^' (center).
static JValue pad_str(JEval *ev, int line, const JStr *s, const JArgs *args, char align, const char *func) {
    JValue width_v, fill_v = {0};
    if (!jargs_get(args, 0, NULL, &width_v)) {
        JTHROW(ev, line, "TypeError: %s() takes at least 1 argument", func);
    }
    int64_t width = jargs_require_int(ev, line, func, width_v);
    const char *fill = " ";
    size_t fill_len = 1;
    if (jargs_get(args, 1, NULL, &fill_v)) {
        JStr *f = jargs_require_str(ev, line, "the fill character", fill_v);
        if (jutf8_count(f->data, f->len) != 1) {
            JTHROW(ev, line, "TypeError: The fill character must be exactly one character long");
        }
        fill = f->data;
        fill_len = f->len;
    }
    int64_t n = (int64_t)jutf8_count(s->data, s->len);
    if (width > 10000000) {
        JTHROW(ev, line, "%s() width too large", func);
    }
    int64_t pad = width > n ? width - n : 0;
    int64_t left = align == '<' ? 0 : align == '>' ? pad : pad / 2 + (pad & width & 1);
    JBuf b;
    jbuf_init(&b, ev->arena);
    for (int64_t i = 0; i < left; i++) jbuf_append(&b, fill, fill_len);
    jbuf_append(&b, s->data, s->len);
    for (int64_t i = left; i < pad; i++) jbuf_append(&b, fill, fill_len);
    return jv_str(ev->arena, b.data ? b.data : "", b.len);
}

// Character-class methods (isalpha, isdigit ...): true when s is non-empty and every code point
// passes. NOTE: non-ASCII letters use the C library's iswalpha() in C.UTF-8, and the digit and
// numeric tests reject non-ASCII text as unsupported (Python counts other scripts' digits).
static bool char_class(JEval *ev, int line, const JStr *s, const char *method) {
    if (s->len == 0) {
        return false;
    }
    locale_t loc = jtext_locale();
    for (size_t i = 0; i < s->len;) {
        size_t len;
        uint32_t c = jutf8_decode(s->data + i, s->len - i, &len);
        i += len;
        bool ascii_alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
        bool ascii_digit = c >= '0' && c <= '9';
        bool ok;
        if (!strcmp(method, "isspace")) {
            ok = jtext_isspace(c);
        } else if (!strcmp(method, "isascii")) {
            ok = c < 0x80;
        } else if (c >= 0x80 && strcmp(method, "isalpha") != 0) {
            JTHROW(ev, line, "str.%s() on non-ASCII text is not supported", method);
        } else if (!strcmp(method, "isalpha")) {
            ok = c < 0x80 ? ascii_alpha : (loc && iswalpha_l((wint_t)c, loc));
        } else if (!strcmp(method, "isalnum")) {
            ok = ascii_alpha || ascii_digit;
        } else {
            ok = ascii_digit; // isdigit, isdecimal, isnumeric agree on ASCII
        }
        if (!ok) {
            return false;
        }
    }
    return true;
}

static JValue str_find_method(JEval *ev, int line, const JStr *s, const char *name, const JArgs *args) {
    JValue sub_v, start_v = jv_none(), end_v = jv_none();
    if (!jargs_get(args, 0, NULL, &sub_v) || args->n_pos > 3 || args->n_kw) {
        JTHROW(ev, line, "TypeError: %s() takes from 1 to 3 positional arguments", name);
    }
    jargs_get(args, 1, NULL, &start_v);
    jargs_get(args, 2, NULL, &end_v);
    JStr *sub = jargs_require_str(ev, line, "the substring", sub_v);
    int64_t start = start_v.kind == JV_NONE ? 0 : jargs_require_int(ev, line, name, start_v);
    int64_t end = end_v.kind == JV_NONE ? INT64_MAX : jargs_require_int(ev, line, name, end_v);
    if (!strcmp(name, "count")) {
        JValue part = jeval_slice(ev, line, (JValue){.kind = JV_STRING, .s = (JStr *)s},
                                  start_v, end_v, jv_none());
        return jv_int(jtext_count(part.s, sub));
    }
    bool right = name[0] == 'r';
    int64_t at = jtext_find(s, sub, start, end, right);
    if (at < 0 && strstr(name, "index")) {
        JTHROW(ev, line, "ValueError: substring not found");
    }
    return jv_int(at);
}

static JValue str_strip(JEval *ev, int line, const JStr *s, const char *name, const JArgs *args) {
    static const char *const names[] = {"chars"};
    jargs_check(ev, line, name, args, names, 1);
    JValue chars_v;
    JStr *chars = NULL;
    if (jargs_get(args, 0, "chars", &chars_v) && chars_v.kind != JV_NONE) {
        chars = jargs_require_str(ev, line, "the chars argument", chars_v);
    }
    JStripMode mode = name[0] == 'l' ? JSTRIP_LEFT : name[0] == 'r' ? JSTRIP_RIGHT : JSTRIP_BOTH;
    return jtext_strip(ev, s, chars, mode);
}

static JValue str_split(JEval *ev, int line, const JStr *s, const char *name, const JArgs *args) {
    static const char *const names[] = {"sep", "maxsplit"};
    jargs_check(ev, line, name, args, names, 2);
    JValue sep_v, maxsplit_v;
    JStr *sep = NULL;
    int64_t maxsplit = -1;
    if (jargs_get(args, 0, "sep", &sep_v) && sep_v.kind != JV_NONE) {
        sep = jargs_require_str(ev, line, "the separator", sep_v);
    }
    if (jargs_get(args, 1, "maxsplit", &maxsplit_v)) {
        maxsplit = jargs_require_int(ev, line, name, maxsplit_v);
    }
    return jtext_split(ev, line, s, sep, maxsplit, name[0] == 'r');
}

static JValue str_splitlines(JEval *ev, int line, const JStr *s, const char *name, const JArgs *args) {
    static const char *const names[] = {"keepends"};
    jargs_check(ev, line, name, args, names, 1);
    JValue keepends;
    return jtext_splitlines(ev, s, jargs_get(args, 0, "keepends", &keepends) && jv_truthy(keepends));
}

static JValue str_starts_or_ends(JEval *ev, int line, const JStr *s, const char *name, const JArgs *args) {
    return jv_bool(starts_or_ends(ev, line, s, args, name[0] == 'e'));
}

static JValue str_case(JEval *ev, int line, const JStr *s, const char *name, const JArgs *args) {
    jargs_check(ev, line, name, args, NULL, 0);
    JCaseOp op = !strcmp(name, "upper")      ? JCASE_UPPER
                 : !strcmp(name, "lower")    ? JCASE_LOWER
                 : !strcmp(name, "title")    ? JCASE_TITLE
                 : !strcmp(name, "swapcase") ? JCASE_SWAPCASE
                                             : JCASE_CAPITALIZE;
    return jtext_case(ev, line, s, op);
}

static JValue str_replace(JEval *ev, int line, const JStr *s, const char *name, const JArgs *args) {
    JValue old, new_, count = jv_int(-1);
    if (!jargs_get(args, 0, NULL, &old) || !jargs_get(args, 1, NULL, &new_) || args->n_pos > 3 || args->n_kw) {
        JTHROW(ev, line, "TypeError: %s() takes 2 or 3 positional arguments", name);
    }
    jargs_get(args, 2, NULL, &count);
    return jtext_replace(ev, s, jargs_require_str(ev, line, "replace() argument 1", old),
                         jargs_require_str(ev, line, "replace() argument 2", new_),
                         jargs_require_int(ev, line, "replace()", count));
}

// Returns the only positional argument of a one-argument method, or throws.
static JValue one_argument(JEval *ev, int line, const char *name, const JArgs *args) {
    JValue v;
    if (!jargs_get(args, 0, NULL, &v) || args->n_pos != 1 || args->n_kw) {
        JTHROW(ev, line, "TypeError: %s() takes exactly one argument", name);
    }
    return v;
}

static JValue str_join(JEval *ev, int line, const JStr *s, const char *name, const JArgs *args) {
    size_t n;
    JValue *items = jv_iterate(ev, line, one_argument(ev, line, name, args), &n);
    JBuf b;
    jbuf_init(&b, ev->arena);
    for (size_t i = 0; i < n; i++) {
        if (items[i].kind != JV_STRING) {
            JTHROW(ev, line, "TypeError: sequence item %zu: expected str instance, %s found", i,
                   jv_type_name(items[i]));
        }
        if (i) {
            jbuf_append(&b, s->data, s->len);
        }
        jbuf_append(&b, items[i].s->data, items[i].s->len);
    }
    return jv_str(ev->arena, b.data ? b.data : "", b.len);
}

static JValue str_format(JEval *ev, int line, const JStr *s, const char *name, const JArgs *args) {
    (void)name;
    JValue kwargs = jv_dict(ev->arena);
    for (size_t i = 0; i < args->n_kw; i++) {
        jdict_set(ev->arena, kwargs.d, jv_cstr(ev->arena, args->kw_names[i]), args->kw_values[i]);
    }
    return jtext_format(ev, line, s, args->pos, args->n_pos, kwargs.d);
}

static JValue str_pad(JEval *ev, int line, const JStr *s, const char *name, const JArgs *args) {
    char align = !strcmp(name, "center") ? '^' : !strcmp(name, "ljust") ? '<' : '>';
    return pad_str(ev, line, s, args, align, name);
}

static JValue str_zfill(JEval *ev, int line, const JStr *s, const char *name, const JArgs *args) {
    int64_t width = jargs_require_int(ev, line, "zfill()", one_argument(ev, line, name, args));
    if (width > 10000000) {
        JTHROW(ev, line, "zfill() width too large");
    }
    int64_t n = (int64_t)jutf8_count(s->data, s->len);
    JBuf b;
    jbuf_init(&b, ev->arena);
    // The zeros go after a leading sign.
    size_t sign = s->len && (s->data[0] == '+' || s->data[0] == '-') ? 1 : 0;
    jbuf_append(&b, s->data, sign);
    for (int64_t i = n; i < width; i++) {
        jbuf_append(&b, "0", 1);
    }
    jbuf_append(&b, s->data + sign, s->len - sign);
    return jv_str(ev->arena, b.data ? b.data : "", b.len);
}

static JValue str_remove_affix(JEval *ev, int line, const JStr *s, const char *name, const JArgs *args) {
    JStr *affix = jargs_require_str(ev, line, "the affix", one_argument(ev, line, name, args));
    bool prefix = !strcmp(name, "removeprefix");
    if (affix->len <= s->len) {
        const char *at = prefix ? s->data : s->data + s->len - affix->len;
        if (memcmp(at, affix->data, affix->len) == 0) {
            return jv_str(ev->arena, prefix ? s->data + affix->len : s->data, s->len - affix->len);
        }
    }
    return (JValue){.kind = JV_STRING, .s = (JStr *)s};
}

static JValue str_partition(JEval *ev, int line, const JStr *s, const char *name, const JArgs *args) {
    JStr *sep = jargs_require_str(ev, line, "the separator", one_argument(ev, line, name, args));
    if (sep->len == 0) {
        JTHROW(ev, line, "ValueError: empty separator");
    }
    bool right = name[0] == 'r';
    int64_t at_cp = jtext_find(s, sep, 0, INT64_MAX, right);
    JValue parts[3];
    if (at_cp < 0) {
        JValue empty = jv_cstr(ev->arena, "");
        JValue whole = {.kind = JV_STRING, .s = (JStr *)s};
        parts[0] = right ? empty : whole;
        parts[1] = empty;
        parts[2] = right ? whole : empty;
    } else {
        size_t at = jutf8_offset(s->data, s->len, (size_t)at_cp);
        parts[0] = jv_str(ev->arena, s->data, at);
        parts[1] = (JValue){.kind = JV_STRING, .s = sep};
        parts[2] = jv_str(ev->arena, s->data + at + sep->len, s->len - at - sep->len);
    }
    return jv_list_of(ev->arena, JL_TUPLE, parts, 3);
}

static JValue str_is_case(JEval *ev, int line, const JStr *s, const char *name, const JArgs *args) {
    jargs_check(ev, line, name, args, NULL, 0);
    return jv_bool(jtext_is_case(s, !strcmp(name, "isupper")));
}

static JValue str_char_class(JEval *ev, int line, const JStr *s, const char *name, const JArgs *args) {
    jargs_check(ev, line, name, args, NULL, 0);
    return jv_bool(char_class(ev, line, s, name));
}

typedef JValue (*StrMethodFn)(JEval *ev, int line, const JStr *s, const char *name, const JArgs *args);

static const struct {
    const char *name;
    StrMethodFn fn;
} STR_IMPLEMENTATIONS[] = {
    {"strip", str_strip},           {"lstrip", str_strip},          {"rstrip", str_strip},
    {"split", str_split},           {"rsplit", str_split},          {"splitlines", str_splitlines},
    {"startswith", str_starts_or_ends}, {"endswith", str_starts_or_ends},
    {"upper", str_case},            {"lower", str_case},            {"title", str_case},
    {"capitalize", str_case},       {"swapcase", str_case},         {"replace", str_replace},
    {"find", str_find_method},      {"rfind", str_find_method},     {"index", str_find_method},
    {"rindex", str_find_method},    {"count", str_find_method},     {"join", str_join},
    {"format", str_format},         {"center", str_pad},            {"ljust", str_pad},
    {"rjust", str_pad},             {"zfill", str_zfill},           {"removeprefix", str_remove_affix},
    {"removesuffix", str_remove_affix}, {"partition", str_partition}, {"rpartition", str_partition},
    {"islower", str_is_case},       {"isupper", str_is_case},       {"isalnum", str_char_class},
    {"isalpha", str_char_class},    {"isascii", str_char_class},    {"isdecimal", str_char_class},
    {"isdigit", str_char_class},    {"isnumeric", str_char_class},  {"isspace", str_char_class},
};

static JValue call_str_method(JEval *ev, int line, const JStr *s, const char *name, const JArgs *args) {
    for (size_t i = 0; i < ARRAY_LEN(STR_IMPLEMENTATIONS); i++) {
        if (!strcmp(name, STR_IMPLEMENTATIONS[i].name)) {
            return STR_IMPLEMENTATIONS[i].fn(ev, line, s, name, args);
        }
    }
    JTHROW(ev, line, "the method str.%s() is not supported by this interpreter", name);
}

// ----------------------------------------------------------------------------
// Other methods

static JValue dict_view(JEval *ev, const JDict *d, JListKind kind) {
    JValue view = jv_list(ev->arena, kind, d->len);
    for (size_t i = 0; i < d->len; i++) {
        if (kind == JL_KEYS) {
            view.l->items[i] = d->keys[i];
        } else if (kind == JL_VALUES) {
            view.l->items[i] = d->values[i];
        } else {
            JValue pair[2] = {d->keys[i], d->values[i]};
            view.l->items[i] = jv_list_of(ev->arena, JL_TUPLE, pair, 2);
        }
    }
    return view;
}

static JValue call_dict_method(JEval *ev, int line, const JDict *d, const char *name, const JArgs *args) {
    if (!strcmp(name, "get")) {
        JValue key, v = jv_none();
        if (!jargs_get(args, 0, NULL, &key) || args->n_pos > 2 || args->n_kw) {
            JTHROW(ev, line, "TypeError: get expected 1 or 2 arguments");
        }
        if (!jv_is_hashable(key)) {
            JTHROW(ev, line, "TypeError: unhashable type: '%s'", jv_type_name(key));
        }
        if (!jdict_get(d, key, &v)) {
            jargs_get(args, 1, NULL, &v);
        }
        return v;
    }
    jargs_check(ev, line, name, args, NULL, 0);
    if (!strcmp(name, "items")) {
        return dict_view(ev, d, JL_ITEMS);
    }
    if (!strcmp(name, "keys")) {
        return dict_view(ev, d, JL_KEYS);
    }
    if (!strcmp(name, "values")) {
        return dict_view(ev, d, JL_VALUES);
    }
    // copy()
    JValue copy = jv_dict(ev->arena);
    for (size_t i = 0; i < d->len; i++) {
        jdict_set(ev->arena, copy.d, d->keys[i], d->values[i]);
    }
    return copy;
}

static JValue call_list_method(JEval *ev, int line, JValue self, const char *name, const JArgs *args) {
    const JList *l = self.l;
    if (!strcmp(name, "copy")) {
        jargs_check(ev, line, name, args, NULL, 0);
        return jv_list_of(ev->arena, l->kind, l->items, l->len);
    }
    JValue x = one_argument(ev, line, name, args);
    if (!strcmp(name, "count")) {
        int64_t count = 0;
        for (size_t i = 0; i < l->len; i++) {
            count += jv_equal(l->items[i], x);
        }
        return jv_int(count);
    }
    // index()
    for (size_t i = 0; i < l->len; i++) {
        if (jv_equal(l->items[i], x)) {
            return jv_int((int64_t)i);
        }
    }
    JTHROW(ev, line, "ValueError: value is not in %s", jv_type_name(self));
}

static JValue call_loop_method(JEval *ev, int line, JLoop *loop, const char *name, const JArgs *args) {
    if (!strcmp(name, "cycle")) {
        if (args->n_pos == 0) {
            JTHROW(ev, line, "TypeError: no items for cycling given");
        }
        return args->pos[loop->index0 % args->n_pos];
    }
    // changed(*values): true when the values differ from the previous call's.
    JValue value = jv_list_of(ev->arena, JL_TUPLE, args->pos, args->n_pos);
    if (loop->changed_set && jv_equal(loop->changed_last, value)) {
        return jv_bool(false);
    }
    loop->changed_set = true;
    loop->changed_last = value;
    return jv_bool(true);
}

static JValue call_cycler_method(JEval *ev, int line, JCycler *cycler, const char *name, const JArgs *args) {
    jargs_check(ev, line, name, args, NULL, 0);
    if (!strcmp(name, "next")) {
        JValue v = cycler->items[cycler->pos];
        cycler->pos = (cycler->pos + 1) % cycler->len;
        return v;
    }
    cycler->pos = 0; // reset()
    return jv_none();
}

JValue jcall_method(JEval *ev, int line, const JFunc *fn, const JArgs *args) {
    // jcall_method_lookup() made bound methods only for implemented names of these types.
    JValue self = fn->self;
    switch (self.kind) {
    case JV_STRING:
        jtext_reject_markup(ev, line, self, "a method call");
        return call_str_method(ev, line, self.s, fn->name, args);
    case JV_DICT: return call_dict_method(ev, line, self.d, fn->name, args);
    case JV_LIST: return call_list_method(ev, line, self, fn->name, args);
    case JV_LOOP: return call_loop_method(ev, line, self.loop, fn->name, args);
    case JV_CYCLER: return call_cycler_method(ev, line, self.cycler, fn->name, args);
    case JV_FLOAT:
        // is_integer()
        jargs_check(ev, line, fn->name, args, NULL, 0);
        return jv_bool(isfinite(self.f) && self.f == floor(self.f));
    default: break;
    }
    JTHROW(ev, line, "the method %s.%s() is not supported by this interpreter", jv_type_name(self), fn->name);
}
