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

JStr *jargs_require_str(JEval *ev, int line, const char *what, JValue v) {
    if (v.kind == JV_UNDEFINED) {
        jv_throw_undefined(ev->err, line, v.u);
    }
    if (v.kind != JV_STRING) {
        JTHROW(ev, line, "TypeError: %s must be str, not %s", what, jv_type_name(v));
    }
    return v.s;
}

int64_t jargs_require_int(JEval *ev, int line, const char *what, JValue v) {
    if (v.kind == JV_UNDEFINED) {
        jv_throw_undefined(ev->err, line, v.u);
    }
    if (v.kind == JV_INT) return v.i;
    if (v.kind == JV_BOOL) return v.b;
    JTHROW(ev, line, "TypeError: %s: '%s' object cannot be interpreted as an integer", what,
           jv_type_name(v));
}

// ----------------------------------------------------------------------------
// Macros

// Binds the keyword arguments that no parameter took: to `caller` and `kwargs` when the macro body
// reads them, else they are an error as in jinja2. kw_used marks the keywords already bound.
static void bind_extra_keywords(JEval *ev, int line, const JFunc *fn, const JArgs *args, bool *kw_used,
                                JFrame *f) {
    const JNode *m = fn->macro;
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
}

// Gives each parameter that no argument bound its default, evaluated at call time inside the
// macro's frame (so `c=a` reads parameter a), or an undefined value when it has none.
static void bind_defaults(JEval *ev, const JNode *m, const bool *bound, JFrame *f) {
    size_t n_params = (size_t)m->args.n;
    size_t first_default = n_params - (size_t)m->args2.n;
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
}

// Calls a macro (or a call block's caller) as jinja2's Macro.__call__ does: positional arguments
// first, then keywords, then `caller`, `kwargs` and `varargs` for bodies that read them.
static JValue call_macro(JEval *ev, int line, const JFunc *fn, const JArgs *args) {
    const JNode *m = fn->macro;
    if (ev->depth >= MAX_CALL_DEPTH) {
        JTHROW(ev, line, "macro calls nested more than %d deep (recursion without end?)", MAX_CALL_DEPTH);
    }
    JFrame *f = jframe_new(ev, fn->closure);
    size_t n_params = (size_t)m->args.n;
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
    bind_extra_keywords(ev, line, fn, args, kw_used, f);
    if (m->uses_varargs) {
        size_t extra = args->n_pos > n_params ? args->n_pos - n_params : 0;
        jframe_set(ev, f, "varargs", jv_list_of(ev->arena, JL_TUPLE, args->pos + n_positional, extra));
    } else if (args->n_pos > n_params) {
        JTHROW(ev, line, "TypeError: macro '%s' takes not more than %zu argument(s)", fn->name, n_params);
    }
    bind_defaults(ev, m, bound, f);

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
        stop = jargs_require_int(ev, line, "range()", args->pos[0]);
    } else {
        start = jargs_require_int(ev, line, "range()", args->pos[0]);
        stop = jargs_require_int(ev, line, "range()", args->pos[1]);
        if (args->n_pos == 3) {
            step = jargs_require_int(ev, line, "range()", args->pos[2]);
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
        return strftime_now(ev, line, jargs_require_str(ev, line, "strftime_now() argument", fmt));
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
// Calls

JValue jcall(JEval *ev, int line, JValue callee, const JArgs *args) {
    switch (callee.kind) {
    case JV_UNDEFINED: jv_throw_undefined(ev->err, line, callee.u);
    case JV_FUNC: {
        JFunc *fn = callee.fn;
        switch (fn->kind) {
        case JF_MACRO: return call_macro(ev, line, fn, args);
        case JF_GLOBAL: return call_global(ev, line, fn, args);
        case JF_METHOD: return jcall_method(ev, line, fn, args);
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
