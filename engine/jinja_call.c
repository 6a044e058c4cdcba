// jinja_call.c: calling values: macros and call-block callers, the global functions (range, dict,
// namespace, joiner, cycler, raise_exception, strftime_now), methods of str, list, tuple and dict,
// and the methods of `loop` and cycler objects.
#include "jinja_internal.h"

#include <math.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <wctype.h>

// jinja2's sandbox limit on range() (jinja2.sandbox.MAX_RANGE).
#define MAX_RANGE 100000
// Macro and recursive-loop calls deeper than this are an error (Python's recursion limit of 1000
// frames stops jinja2 at a similar depth).
#define MAX_CALL_DEPTH 200

// ----------------------------------------------------------------------------
// Arguments

bool jargs_get(const JArgs *args, size_t index, const char *name, JValue *out) {
    if (index < args->n_pos) {
        *out = args->pos[index];
        return true;
    }
    for (size_t i = 0; name && i < args->n_kw; i++) {
        if (!strcmp(args->kw_names[i], name)) {
            *out = args->kw_values[i];
            return true;
        }
    }
    return false;
}

void jargs_check(JEval *ev, int line, const char *func, const JArgs *args, const char *const *names,
                 size_t n_names) {
    if (args->n_pos > n_names) {
        JTHROW(ev, line, "TypeError: %s() takes at most %zu argument(s) (%zu given)", func, n_names,
               args->n_pos);
    }
    for (size_t k = 0; k < args->n_kw; k++) {
        size_t i = 0;
        while (i < n_names && strcmp(names[i], args->kw_names[k]) != 0) {
            i++;
        }
        if (i == n_names) {
            JTHROW(ev, line, "TypeError: %s() got an unexpected keyword argument '%s'", func,
                   args->kw_names[k]);
        }
        if (i < args->n_pos) {
            JTHROW(ev, line, "TypeError: %s() got multiple values for argument '%s'", func,
                   args->kw_names[k]);
        }
    }
}

static JStr *require_str(JEval *ev, int line, const char *what, JValue v) {
    if (v.kind == JV_UNDEFINED) {
        jv_throw_undefined(ev->err, line, v.u);
    }
    if (v.kind != JV_STRING) {
        JTHROW(ev, line, "TypeError: %s must be str, not %s", what, jv_type_name(v));
    }
    return v.s;
}

static int64_t require_int(JEval *ev, int line, const char *what, JValue v) {
    if (v.kind == JV_UNDEFINED) {
        jv_throw_undefined(ev->err, line, v.u);
    }
    if (v.kind == JV_INT) return v.i;
    if (v.kind == JV_BOOL) return v.b;
    JTHROW(ev, line, "TypeError: %s: '%s' object cannot be interpreted as an integer", what,
           jv_type_name(v));
}

static JValue make_tuple(JEval *ev, const JValue *items, size_t n) {
    JValue t = jv_list(ev->arena, JL_TUPLE, n);
    if (n) {
        memcpy(t.l->items, items, n * sizeof *items);
    }
    return t;
}

// ----------------------------------------------------------------------------
// Macros

static JValue call_macro(JEval *ev, int line, const JFunc *fn, const JArgs *args) {
    const JNode *m = fn->macro;
    if (ev->depth >= MAX_CALL_DEPTH) {
        JTHROW(ev, line, "macro calls nested more than %d deep (recursion without end?)", MAX_CALL_DEPTH);
    }
    JFrame *f = jframe_new(ev, fn->closure);
    size_t n_params = (size_t)m->args.n;
    size_t first_default = n_params - (size_t)m->args2.n;
    bool *bound = jarena_alloc(ev->arena, n_params + 1);
    bool *kw_used = jarena_alloc(ev->arena, args->n_kw + 1);

    size_t n_positional = args->n_pos < n_params ? args->n_pos : n_params;
    for (size_t i = 0; i < n_positional; i++) {
        jframe_set(ev, f, m->names[i], args->pos[i]);
        bound[i] = true;
    }
    for (size_t i = n_positional; i < n_params; i++) {
        for (size_t k = 0; k < args->n_kw; k++) {
            if (!kw_used[k] && !strcmp(args->kw_names[k], m->names[i])) {
                jframe_set(ev, f, m->names[i], args->kw_values[k]);
                bound[i] = kw_used[k] = true;
                break;
            }
        }
    }
    if (m->uses_caller) {
        JValue caller = jv_undefined(ev->arena, "caller", NULL, "No caller defined");
        for (size_t k = 0; k < args->n_kw; k++) {
            if (!kw_used[k] && !strcmp(args->kw_names[k], "caller")) {
                caller = args->kw_values[k];
                kw_used[k] = true;
            }
        }
        jframe_set(ev, f, "caller", caller);
    }

    // Keywords that matched no parameter go to `kwargs` when the body reads it.
    JValue kwargs = jv_dict(ev->arena);
    for (size_t k = 0; k < args->n_kw; k++) {
        if (kw_used[k]) {
            continue;
        }
        if (!m->uses_kwargs) {
            if (!strcmp(args->kw_names[k], "caller")) {
                JTHROW(ev, line,
                       "TypeError: macro '%s' was invoked with two values for the special caller "
                       "argument",
                       fn->name);
            }
            JTHROW(ev, line, "TypeError: macro '%s' takes no keyword argument '%s'", fn->name,
                   args->kw_names[k]);
        }
        jdict_set(ev->arena, kwargs.d, jv_cstr(ev->arena, args->kw_names[k]), args->kw_values[k]);
    }
    if (m->uses_kwargs) {
        jframe_set(ev, f, "kwargs", kwargs);
    }
    if (m->uses_varargs) {
        size_t extra = args->n_pos > n_params ? args->n_pos - n_params : 0;
        jframe_set(ev, f, "varargs", make_tuple(ev, args->pos + n_positional, extra));
    } else if (args->n_pos > n_params) {
        JTHROW(ev, line, "TypeError: macro '%s' takes not more than %zu argument(s)", fn->name, n_params);
    }

    // Defaults are evaluated at call time inside the macro's frame, so `c=a` sees parameter a.
    JFrame *saved = ev->frame;
    ev->frame = f;
    for (size_t i = 0; i < n_params; i++) {
        if (bound[i]) {
            continue;
        }
        JValue v;
        if (i >= first_default) {
            v = jeval_expr(ev, m->args2.items[i - first_default]);
        } else {
            size_t n = strlen(m->names[i]) + 40;
            char *hint = jarena_alloc(ev->arena, n);
            snprintf(hint, n, "parameter '%s' was not provided", m->names[i]);
            v = jv_undefined(ev->arena, m->names[i], NULL, hint);
        }
        jframe_set(ev, f, m->names[i], v);
    }
    ev->frame = saved;

    ev->depth++;
    JValue result = jeval_capture(ev, &m->body, f);
    ev->depth--;
    return result;
}

// ----------------------------------------------------------------------------
// Globals

static JValue make_range(JEval *ev, int line, const JArgs *args) {
    if (args->n_kw) {
        JTHROW(ev, line, "TypeError: range() takes no keyword arguments");
    }
    if (args->n_pos < 1 || args->n_pos > 3) {
        JTHROW(ev, line, "TypeError: range expected 1 to 3 arguments, got %zu", args->n_pos);
    }
    int64_t start = 0, stop, step = 1;
    if (args->n_pos == 1) {
        stop = require_int(ev, line, "range()", args->pos[0]);
    } else {
        start = require_int(ev, line, "range()", args->pos[0]);
        stop = require_int(ev, line, "range()", args->pos[1]);
        if (args->n_pos == 3) {
            step = require_int(ev, line, "range()", args->pos[2]);
        }
    }
    if (step == 0) {
        JTHROW(ev, line, "ValueError: range() arg 3 must not be zero");
    }
    // Count with 128-bit arithmetic: stop - start may not fit in 64 bits.
    __int128 span = (__int128)stop - start;
    __int128 count = 0;
    if (step > 0 && span > 0) count = (span - 1) / step + 1;
    if (step < 0 && span < 0) count = (-span - 1) / -(__int128)step + 1;
    if (count > MAX_RANGE) {
        JTHROW(ev, line, "OverflowError: Range too big. The sandbox blocks ranges larger than "
                         "MAX_RANGE (100000).");
    }
    JValue r = jv_list(ev->arena, JL_RANGE, (size_t)count);
    for (size_t i = 0; i < (size_t)count; i++) {
        r.l->items[i] = jv_int(start + (int64_t)i * step);
    }
    r.l->start = start;
    r.l->stop = stop;
    r.l->step = step;
    return r;
}

// dict(mapping_or_pairs, **kwargs) into d, as Python's dict() and jinja2's namespace() take them.
static void fill_dict(JEval *ev, int line, JDict *d, const JArgs *args, const char *func) {
    if (args->n_pos > 1) {
        JTHROW(ev, line, "TypeError: %s expected at most 1 argument, got %zu", func, args->n_pos);
    }
    if (args->n_pos == 1) {
        JValue src = args->pos[0];
        if (src.kind == JV_DICT || src.kind == JV_NAMESPACE) {
            for (size_t i = 0; i < src.d->len; i++) {
                jdict_set(ev->arena, d, src.d->keys[i], src.d->values[i]);
            }
        } else {
            size_t n;
            JValue *pairs = jv_iterate(ev, line, src, &n);
            for (size_t i = 0; i < n; i++) {
                size_t k;
                JValue *kv = jv_iterate(ev, line, pairs[i], &k);
                if (k != 2) {
                    JTHROW(ev, line, "ValueError: dictionary update sequence element #%zu has length "
                                     "%zu; 2 is required", i, k);
                }
                if (!jv_is_hashable(kv[0])) {
                    JTHROW(ev, line, "TypeError: unhashable type: '%s'", jv_type_name(kv[0]));
                }
                jdict_set(ev->arena, d, kv[0], kv[1]);
            }
        }
    }
    for (size_t i = 0; i < args->n_kw; i++) {
        jdict_set(ev->arena, d, jv_cstr(ev->arena, args->kw_names[i]), args->kw_values[i]);
    }
}

// Python's datetime.now().strftime(fmt): %f is microseconds, and %z / %Z are empty because the
// datetime carries no time zone. The rest is the C library's strftime, as CPython uses it.
static JValue strftime_now(JEval *ev, int line, JStr *fmt) {
    struct tm tm;
    long micros = 0;
    if (ev->now) {
        tm = *ev->now;
    } else {
        struct timeval tv;
        gettimeofday(&tv, NULL);
        time_t t = tv.tv_sec;
        localtime_r(&t, &tm);
        micros = (long)tv.tv_usec;
    }
    JBuf pattern;
    jbuf_init(&pattern, ev->arena);
    for (size_t i = 0; i < fmt->len; i++) {
        char c = fmt->data[i];
        if (c == '%' && i + 1 < fmt->len) {
            char d = fmt->data[++i];
            if (d == 'f') {
                jbuf_printf(&pattern, "%06ld", micros);
            } else if (d == 'z' || d == 'Z') {
                // nothing: a naive datetime
            } else {
                char spec[3] = {'%', d, 0};
                jbuf_append(&pattern, spec, 2);
            }
            continue;
        }
        jbuf_append(&pattern, &c, 1);
    }
    if (pattern.len == 0) {
        return jv_cstr(ev->arena, "");
    }
    // strftime returns 0 both for an empty result and a too-small buffer: grow until it fits.
    for (size_t cap = 256; cap <= ((size_t)1 << 20); cap *= 4) {
        char *out = jarena_alloc(ev->arena, cap);
        size_t n = strftime(out, cap, pattern.data, &tm);
        if (n > 0) {
            return jv_str(ev->arena, out, n);
        }
    }
    (void)line;
    return jv_cstr(ev->arena, "");
}

static JValue call_global(JEval *ev, int line, const JFunc *fn, const JArgs *args) {
    const char *name = fn->name;
    if (!strcmp(name, "range")) {
        return make_range(ev, line, args);
    }
    if (!strcmp(name, "dict") || !strcmp(name, "namespace")) {
        JValue d = !strcmp(name, "dict") ? jv_dict(ev->arena) : jv_namespace(ev->arena);
        fill_dict(ev, line, d.d, args, name);
        return d;
    }
    if (!strcmp(name, "raise_exception")) {
        static const char *const names[] = {"message"};
        jargs_check(ev, line, name, args, names, 1);
        JValue msg;
        if (!jargs_get(args, 0, "message", &msg)) {
            JTHROW(ev, line, "TypeError: raise_exception() missing 1 required positional argument: 'message'");
        }
        JStr *text = jv_to_str(ev, line, msg);
        ev->err->raised = true;
        jerr_throw(ev->err, 0, 0, "%s", text->data);
    }
    if (!strcmp(name, "strftime_now")) {
        static const char *const names[] = {"format"};
        jargs_check(ev, line, name, args, names, 1);
        JValue fmt;
        if (!jargs_get(args, 0, "format", &fmt)) {
            JTHROW(ev, line, "TypeError: strftime_now() missing 1 required positional argument: 'format'");
        }
        return strftime_now(ev, line, require_str(ev, line, "strftime_now() argument", fmt));
    }
    if (!strcmp(name, "joiner")) {
        static const char *const names[] = {"sep"};
        jargs_check(ev, line, name, args, names, 1);
        JValue sep = jv_cstr(ev->arena, ", ");
        jargs_get(args, 0, "sep", &sep);
        JFunc *j = jarena_alloc(ev->arena, sizeof *j);
        j->kind = JF_JOINER;
        j->name = "joiner";
        j->sep = jv_to_str(ev, line, sep)->data;
        return (JValue){.kind = JV_FUNC, .fn = j};
    }
    if (!strcmp(name, "cycler")) {
        if (args->n_kw || args->n_pos == 0) {
            JTHROW(ev, line, "TypeError: cycler() takes one or more positional arguments");
        }
        JCycler *c = jarena_alloc(ev->arena, sizeof *c);
        c->len = args->n_pos;
        c->items = jarena_alloc(ev->arena, c->len * sizeof *c->items);
        memcpy(c->items, args->pos, c->len * sizeof *c->items);
        return (JValue){.kind = JV_CYCLER, .cycler = c};
    }
    JTHROW(ev, line, "the global function '%s' is not supported (it produces random text)", name);
}

void jcall_add_globals(JEval *ev, JFrame *frame) {
    static const char *const names[] = {"range",  "dict",   "namespace",       "joiner",
                                        "cycler", "lipsum", "raise_exception", "strftime_now"};
    for (size_t i = 0; i < ARRAY_LEN(names); i++) {
        JFunc *fn = jarena_alloc(ev->arena, sizeof *fn);
        fn->kind = JF_GLOBAL;
        fn->name = names[i];
        jframe_set(ev, frame, names[i], (JValue){.kind = JV_FUNC, .fn = fn});
    }
}

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
    int64_t start = start_v.kind == JV_NONE ? 0 : require_int(ev, line, func, start_v);
    int64_t end = end_v.kind == JV_NONE ? n : require_int(ev, line, func, end_v);
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
    int64_t width = require_int(ev, line, func, width_v);
    const char *fill = " ";
    size_t fill_len = 1;
    if (jargs_get(args, 1, NULL, &fill_v)) {
        JStr *f = require_str(ev, line, "the fill character", fill_v);
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
    JStr *sub = require_str(ev, line, "the substring", sub_v);
    int64_t start = start_v.kind == JV_NONE ? 0 : require_int(ev, line, name, start_v);
    int64_t end = end_v.kind == JV_NONE ? INT64_MAX : require_int(ev, line, name, end_v);
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

static JValue call_str_method(JEval *ev, int line, const JStr *s, const char *name, const JArgs *args) {
    JValue a0 = {0}, a1 = {0};
    bool has0 = jargs_get(args, 0, NULL, &a0);
    bool has1 = jargs_get(args, 1, NULL, &a1);

    if (!strcmp(name, "strip") || !strcmp(name, "lstrip") || !strcmp(name, "rstrip")) {
        static const char *const names[] = {"chars"};
        jargs_check(ev, line, name, args, names, 1);
        JStr *chars = NULL;
        if (jargs_get(args, 0, "chars", &a0) && a0.kind != JV_NONE) {
            chars = require_str(ev, line, "the chars argument", a0);
        }
        JStripMode mode = name[0] == 'l' ? JSTRIP_LEFT : name[0] == 'r' ? JSTRIP_RIGHT : JSTRIP_BOTH;
        return jtext_strip(ev, s, chars, mode);
    }
    if (!strcmp(name, "split") || !strcmp(name, "rsplit")) {
        static const char *const names[] = {"sep", "maxsplit"};
        jargs_check(ev, line, name, args, names, 2);
        JStr *sep = NULL;
        int64_t maxsplit = -1;
        if (jargs_get(args, 0, "sep", &a0) && a0.kind != JV_NONE) {
            sep = require_str(ev, line, "the separator", a0);
        }
        if (jargs_get(args, 1, "maxsplit", &a1)) {
            maxsplit = require_int(ev, line, name, a1);
        }
        return jtext_split(ev, line, s, sep, maxsplit, name[0] == 'r');
    }
    if (!strcmp(name, "splitlines")) {
        static const char *const names[] = {"keepends"};
        jargs_check(ev, line, name, args, names, 1);
        bool keepends = jargs_get(args, 0, "keepends", &a0) && jv_truthy(a0);
        return jtext_splitlines(ev, s, keepends);
    }
    if (!strcmp(name, "startswith") || !strcmp(name, "endswith")) {
        return jv_bool(starts_or_ends(ev, line, s, args, name[0] == 'e'));
    }
    static const struct {
        const char *name;
        JCaseOp op;
    } CASES[] = {{"upper", JCASE_UPPER},         {"lower", JCASE_LOWER},       {"title", JCASE_TITLE},
                 {"capitalize", JCASE_CAPITALIZE}, {"swapcase", JCASE_SWAPCASE}};
    for (size_t i = 0; i < ARRAY_LEN(CASES); i++) {
        if (!strcmp(name, CASES[i].name)) {
            jargs_check(ev, line, name, args, NULL, 0);
            return jtext_case(ev, line, s, CASES[i].op);
        }
    }
    if (!strcmp(name, "replace")) {
        if (!has0 || !has1 || args->n_pos > 3 || args->n_kw) {
            JTHROW(ev, line, "TypeError: replace() takes 2 or 3 positional arguments");
        }
        JValue count_v = jv_int(-1);
        jargs_get(args, 2, NULL, &count_v);
        return jtext_replace(ev, s, require_str(ev, line, "replace() argument 1", a0),
                             require_str(ev, line, "replace() argument 2", a1),
                             require_int(ev, line, "replace()", count_v));
    }
    if (!strcmp(name, "find") || !strcmp(name, "rfind") || !strcmp(name, "index") ||
        !strcmp(name, "rindex") || !strcmp(name, "count")) {
        return str_find_method(ev, line, s, name, args);
    }
    if (!strcmp(name, "join")) {
        if (!has0 || args->n_pos != 1 || args->n_kw) {
            JTHROW(ev, line, "TypeError: join() takes exactly one argument");
        }
        size_t n;
        JValue *items = jv_iterate(ev, line, a0, &n);
        JBuf b;
        jbuf_init(&b, ev->arena);
        for (size_t i = 0; i < n; i++) {
            if (items[i].kind != JV_STRING) {
                JTHROW(ev, line, "TypeError: sequence item %zu: expected str instance, %s found", i,
                       jv_type_name(items[i]));
            }
            if (i) jbuf_append(&b, s->data, s->len);
            jbuf_append(&b, items[i].s->data, items[i].s->len);
        }
        return jv_str(ev->arena, b.data ? b.data : "", b.len);
    }
    if (!strcmp(name, "format")) {
        JValue kwargs = jv_dict(ev->arena);
        for (size_t i = 0; i < args->n_kw; i++) {
            jdict_set(ev->arena, kwargs.d, jv_cstr(ev->arena, args->kw_names[i]), args->kw_values[i]);
        }
        return jtext_format(ev, line, s, args->pos, args->n_pos, kwargs.d);
    }
    if (!strcmp(name, "center")) return pad_str(ev, line, s, args, '^', name);
    if (!strcmp(name, "ljust")) return pad_str(ev, line, s, args, '<', name);
    if (!strcmp(name, "rjust")) return pad_str(ev, line, s, args, '>', name);
    if (!strcmp(name, "zfill")) {
        if (!has0 || args->n_pos != 1) JTHROW(ev, line, "TypeError: zfill() takes exactly one argument");
        int64_t width = require_int(ev, line, "zfill()", a0);
        int64_t n = (int64_t)jutf8_count(s->data, s->len);
        if (width > 10000000) JTHROW(ev, line, "zfill() width too large");
        JBuf b;
        jbuf_init(&b, ev->arena);
        size_t sign = s->len && (s->data[0] == '+' || s->data[0] == '-') ? 1 : 0;
        jbuf_append(&b, s->data, sign);
        for (int64_t i = n; i < width; i++) jbuf_append(&b, "0", 1);
        jbuf_append(&b, s->data + sign, s->len - sign);
        return jv_str(ev->arena, b.data ? b.data : "", b.len);
    }
    if (!strcmp(name, "removeprefix") || !strcmp(name, "removesuffix")) {
        if (!has0 || args->n_pos != 1) JTHROW(ev, line, "TypeError: %s() takes exactly one argument", name);
        JStr *affix = require_str(ev, line, "the affix", a0);
        bool prefix = name[6] == 'p';
        if (affix->len <= s->len) {
            const char *at = prefix ? s->data : s->data + s->len - affix->len;
            if (memcmp(at, affix->data, affix->len) == 0) {
                return jv_str(ev->arena, prefix ? s->data + affix->len : s->data, s->len - affix->len);
            }
        }
        return (JValue){.kind = JV_STRING, .s = (JStr *)s};
    }
    if (!strcmp(name, "partition") || !strcmp(name, "rpartition")) {
        if (!has0 || args->n_pos != 1) JTHROW(ev, line, "TypeError: %s() takes exactly one argument", name);
        JStr *sep = require_str(ev, line, "the separator", a0);
        if (sep->len == 0) JTHROW(ev, line, "ValueError: empty separator");
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
        return make_tuple(ev, parts, 3);
    }
    if (!strcmp(name, "islower") || !strcmp(name, "isupper")) {
        jargs_check(ev, line, name, args, NULL, 0);
        return jv_bool(jtext_is_case(s, name[2] == 'u'));
    }
    if (!strncmp(name, "is", 2)) {
        jargs_check(ev, line, name, args, NULL, 0);
        return jv_bool(char_class(ev, line, s, name));
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
            view.l->items[i] = make_tuple(ev, pair, 2);
        }
    }
    return view;
}

static JValue call_method(JEval *ev, int line, const JFunc *fn, const JArgs *args) {
    JValue self = fn->self;
    const char *name = fn->name;
    JValue a0 = {0};
    bool has0 = jargs_get(args, 0, NULL, &a0);
    switch (self.kind) {
    case JV_STRING:
        jtext_reject_markup(ev, line, self, "a method call");
        return call_str_method(ev, line, self.s, name, args);
    case JV_DICT:
        if (!strcmp(name, "get")) {
            if (!has0 || args->n_pos > 2 || args->n_kw) {
                JTHROW(ev, line, "TypeError: get expected 1 or 2 arguments");
            }
            if (!jv_is_hashable(a0)) {
                JTHROW(ev, line, "TypeError: unhashable type: '%s'", jv_type_name(a0));
            }
            JValue v = jv_none();
            if (!jdict_get(self.d, a0, &v)) {
                jargs_get(args, 1, NULL, &v);
            }
            return v;
        }
        jargs_check(ev, line, name, args, NULL, 0);
        if (!strcmp(name, "items")) return dict_view(ev, self.d, JL_ITEMS);
        if (!strcmp(name, "keys")) return dict_view(ev, self.d, JL_KEYS);
        if (!strcmp(name, "values")) return dict_view(ev, self.d, JL_VALUES);
        if (!strcmp(name, "copy")) {
            JValue copy = jv_dict(ev->arena);
            for (size_t i = 0; i < self.d->len; i++) {
                jdict_set(ev->arena, copy.d, self.d->keys[i], self.d->values[i]);
            }
            return copy;
        }
        break;
    case JV_LIST:
        if (!strcmp(name, "copy")) {
            jargs_check(ev, line, name, args, NULL, 0);
            JValue copy = jv_list(ev->arena, self.l->kind, self.l->len);
            memcpy(copy.l->items, self.l->items, self.l->len * sizeof(JValue));
            return copy;
        }
        if (!has0 || args->n_pos != 1 || args->n_kw) {
            JTHROW(ev, line, "TypeError: %s() takes exactly one argument", name);
        }
        if (!strcmp(name, "count")) {
            int64_t count = 0;
            for (size_t i = 0; i < self.l->len; i++) count += jv_equal(self.l->items[i], a0);
            return jv_int(count);
        }
        if (!strcmp(name, "index")) {
            for (size_t i = 0; i < self.l->len; i++) {
                if (jv_equal(self.l->items[i], a0)) return jv_int((int64_t)i);
            }
            JTHROW(ev, line, "ValueError: value is not in %s", jv_type_name(self));
        }
        break;
    case JV_FLOAT:
        if (!strcmp(name, "is_integer")) {
            jargs_check(ev, line, name, args, NULL, 0);
            return jv_bool(isfinite(self.f) && self.f == floor(self.f));
        }
        break;
    case JV_LOOP:
        if (!strcmp(name, "cycle")) {
            if (args->n_pos == 0) {
                JTHROW(ev, line, "TypeError: no items for cycling given");
            }
            return args->pos[self.loop->index0 % args->n_pos];
        }
        if (!strcmp(name, "changed")) {
            JValue value = make_tuple(ev, args->pos, args->n_pos);
            if (self.loop->changed_set && jv_equal(self.loop->changed_last, value)) {
                return jv_bool(false);
            }
            self.loop->changed_set = true;
            self.loop->changed_last = value;
            return jv_bool(true);
        }
        break;
    case JV_CYCLER:
        jargs_check(ev, line, name, args, NULL, 0);
        if (!strcmp(name, "next")) {
            JValue v = self.cycler->items[self.cycler->pos];
            self.cycler->pos = (self.cycler->pos + 1) % self.cycler->len;
            return v;
        }
        self.cycler->pos = 0; // reset()
        return jv_none();
    default: break;
    }
    JTHROW(ev, line, "the method %s.%s() is not supported by this interpreter", jv_type_name(self), name);
}

// ----------------------------------------------------------------------------
// Calls

JValue jcall(JEval *ev, int line, JValue callee, const JArgs *args) {
    switch (callee.kind) {
    case JV_UNDEFINED: jv_throw_undefined(ev->err, line, callee.u);
    case JV_FUNC: {
        JFunc *fn = callee.fn;
        switch (fn->kind) {
        case JF_MACRO: return call_macro(ev, line, fn, args);
        case JF_GLOBAL: return call_global(ev, line, fn, args);
        case JF_METHOD: return call_method(ev, line, fn, args);
        case JF_JOINER:
            if (!fn->joiner_used) {
                fn->joiner_used = true;
                return jv_cstr(ev->arena, "");
            }
            return jv_cstr(ev->arena, fn->sep);
        }
        break;
    }
    case JV_LOOP: {
        // loop(children) in a recursive loop renders the loop body for the children, one level deeper.
        JLoop *loop = callee.loop;
        if (!loop->node->flag) {
            JTHROW(ev, line, "TypeError: The loop must be marked as 'recursive' to call it");
        }
        if (args->n_pos != 1 || args->n_kw) {
            JTHROW(ev, line, "TypeError: loop() takes exactly one argument");
        }
        if (ev->depth >= MAX_CALL_DEPTH) {
            JTHROW(ev, line, "recursive loop nested more than %d deep", MAX_CALL_DEPTH);
        }
        JBuf *saved = ev->out;
        JBuf capture;
        jbuf_init(&capture, ev->arena);
        ev->out = &capture;
        ev->depth++;
        jeval_for_loop(ev, loop->node, loop->frame, args->pos[0], loop->depth + 1);
        ev->depth--;
        ev->out = saved;
        return jv_str(ev->arena, capture.data ? capture.data : "", capture.len);
    }
    default: break;
    }
    JTHROW(ev, line, "TypeError: '%s' object is not callable", jv_type_name(callee));
}
