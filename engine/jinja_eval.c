// jinja_eval.c: executes the syntax tree: statements, scopes and expressions, with the semantics of
// jinja2 3.1 in an ImmutableSandboxedEnvironment.
//
// Scopes, as jinja2 compiles them: each iteration of a for loop, each macro call, and the bodies of
// `with`, `set ... endset` and `filter` blocks get a new frame whose parent is the enclosing one, and
// `set` writes into the innermost frame. So a `set` inside a loop is gone at the next iteration and
// after the loop (which is why templates use namespace()), while `if` blocks do not open a frame.
#include "jinja_internal.h"

#include <math.h>
#include <string.h>

typedef enum { EXEC_NORMAL, EXEC_BREAK, EXEC_CONTINUE } ExecResult;

static ExecResult exec_body(JEval *ev, const JNodeList *body, JFrame *frame);

void jeval_step(JEval *ev, int line) {
    if (++ev->steps > ev->max_steps) {
        JTHROW(ev, line,
               "the template took more than %lld evaluation steps; it probably loops without end "
               "(raise max_steps if the input is really that large)",
               ev->max_steps);
    }
}

// ----------------------------------------------------------------------------
// Frames

JFrame *jframe_new(JEval *ev, JFrame *parent) {
    JFrame *f = jarena_alloc(ev->arena, sizeof *f);
    f->parent = parent;
    return f;
}

void jframe_set(JEval *ev, JFrame *frame, const char *name, JValue value) {
    for (size_t i = 0; i < frame->n_vars; i++) {
        if (!strcmp(frame->vars[i].name, name)) {
            frame->vars[i].value = value;
            return;
        }
    }
    frame->vars = jarena_grow(ev->arena, frame->vars, frame->n_vars, &frame->cap_vars, sizeof *frame->vars, 4);
    frame->vars[frame->n_vars++] = (JVar){.name = name, .value = value};
}

JValue jeval_lookup(JEval *ev, JFrame *frame, const char *name) {
    for (JFrame *f = frame; f; f = f->parent) {
        for (size_t i = 0; i < f->n_vars; i++) {
            if (!strcmp(f->vars[i].name, name)) {
                return f->vars[i].value;
            }
        }
    }
    return jv_undefined(ev->arena, name, NULL, NULL);
}

static JFrame *current_frame(JEval *ev) {
    return ev->frame;
}

// ----------------------------------------------------------------------------
// Attribute and item access

// jinja2's object_type_repr(): "dict object", "None", "jinja2.utils.Namespace object".
static const char *object_type_repr(JEval *ev, JValue v) {
    if (v.kind == JV_NONE) {
        return "None";
    }
    const char *module = v.kind == JV_NAMESPACE ? "jinja2.utils."
                         : v.kind == JV_LOOP    ? "jinja2.runtime."
                         : v.kind == JV_CYCLER  ? "jinja2.utils."
                                                : "";
    const char *type = jv_type_name(v);
    size_t n = strlen(module) + strlen(type) + 8;
    char *s = jarena_alloc(ev->arena, n);
    snprintf(s, n, "%s%s object", module, type);
    return s;
}

static JValue loop_attribute(JEval *ev, JLoop *loop, const char *name, bool *found) {
    *found = true;
    size_t i = loop->index0, n = loop->len;
    if (!strcmp(name, "index")) return jv_int((int64_t)i + 1);
    if (!strcmp(name, "index0")) return jv_int((int64_t)i);
    if (!strcmp(name, "revindex")) return jv_int((int64_t)(n - i));
    if (!strcmp(name, "revindex0")) return jv_int((int64_t)(n - i - 1));
    if (!strcmp(name, "first")) return jv_bool(i == 0);
    if (!strcmp(name, "last")) return jv_bool(i + 1 == n);
    if (!strcmp(name, "length")) return jv_int((int64_t)n);
    if (!strcmp(name, "depth")) return jv_int(loop->depth);
    if (!strcmp(name, "depth0")) return jv_int(loop->depth - 1);
    if (!strcmp(name, "previtem")) {
        return i > 0 ? loop->items[i - 1]
                     : jv_undefined(ev->arena, "previtem", NULL, "there is no previous item");
    }
    if (!strcmp(name, "nextitem")) {
        return i + 1 < n ? loop->items[i + 1]
                         : jv_undefined(ev->arena, "nextitem", NULL, "there is no next item");
    }
    *found = false;
    return jv_none();
}

JValue jeval_getattr(JEval *ev, int line, JValue obj, const char *name) {
    if (obj.kind == JV_UNDEFINED) {
        jv_throw_undefined(ev->err, line, obj.u);
    }
    // The sandbox hides attributes that start with an underscore: the result is undefined and
    // using it is an error.
    if (name[0] == '_' && name[1] == '_') {
        size_t n = strlen(name) + 64;
        char *hint = jarena_alloc(ev->arena, n);
        snprintf(hint, n, "access to attribute '%s' of '%s' object is unsafe.", name, jv_type_name(obj));
        return jv_undefined(ev->arena, name, NULL, hint);
    }
    JValue method;
    if (jcall_method_lookup(ev, line, obj, name, &method)) {
        return method;
    }
    JValue v;
    switch (obj.kind) {
    case JV_DICT:
        if (jdict_get_name(obj.d, name, &v)) {
            return v;
        }
        break;
    case JV_NAMESPACE:
        if (jdict_get_name(obj.d, name, &v)) {
            return v;
        }
        break;
    case JV_LOOP: {
        bool found;
        v = loop_attribute(ev, obj.loop, name, &found);
        if (found) {
            return v;
        }
        break;
    }
    case JV_CYCLER:
        if (!strcmp(name, "current")) {
            return obj.cycler->items[obj.cycler->pos];
        }
        break;
    case JV_FUNC:
        if (obj.fn->kind == JF_MACRO && !strcmp(name, "name")) {
            return jv_cstr(ev->arena, obj.fn->name);
        }
        if (obj.fn->kind == JF_MACRO && (!strcmp(name, "arguments") || !strcmp(name, "defaults") ||
                                         !strcmp(name, "catch_kwargs") || !strcmp(name, "catch_varargs") ||
                                         !strcmp(name, "caller"))) {
            JTHROW(ev, line, "the macro attribute '%s' is not supported", name);
        }
        break;
    case JV_INT:
    case JV_BOOL:
        if (!strcmp(name, "real") || !strcmp(name, "numerator")) return jv_int(obj.kind == JV_BOOL ? obj.b : obj.i);
        if (!strcmp(name, "imag")) return jv_int(0);
        if (!strcmp(name, "denominator")) return jv_int(1);
        break;
    case JV_FLOAT:
        if (!strcmp(name, "real")) return obj;
        if (!strcmp(name, "imag")) return jv_float(0.0);
        break;
    default: break;
    }
    return jv_undefined(ev->arena, name, object_type_repr(ev, obj), NULL);
}

static bool index_of(JValue key, int64_t *index) {
    if (key.kind == JV_INT) {
        *index = key.i;
        return true;
    }
    if (key.kind == JV_BOOL) {
        *index = key.b;
        return true;
    }
    return false;
}

// The undefined value for a failed subscript: a string key names an attribute, another key an element.
static JValue missing_item(JEval *ev, int line, JValue obj, JValue key) {
    if (key.kind == JV_STRING) {
        return jv_undefined(ev->arena, key.s->data, object_type_repr(ev, obj), NULL);
    }
    JBuf b;
    jbuf_init(&b, ev->arena);
    jbuf_printf(&b, "%s has no element ", object_type_repr(ev, obj));
    jv_append_repr(ev, line, &b, key);
    return jv_undefined(ev->arena, "item", NULL, b.data);
}

JValue jeval_getitem(JEval *ev, int line, JValue obj, JValue key) {
    if (obj.kind == JV_UNDEFINED) {
        jv_throw_undefined(ev->err, line, obj.u);
    }
    int64_t index;
    switch (obj.kind) {
    case JV_DICT:
        if (jv_is_hashable(key)) {
            JValue v;
            if (jdict_get(obj.d, key, &v)) {
                return v;
            }
        }
        break;
    case JV_LIST:
        if (obj.l->kind != JL_ITERATOR && obj.l->kind != JL_ITEMS && obj.l->kind != JL_KEYS &&
            obj.l->kind != JL_VALUES && index_of(key, &index)) {
            int64_t n = (int64_t)obj.l->len;
            if (index < 0) {
                index += n;
            }
            if (index >= 0 && index < n) {
                return obj.l->items[index];
            }
            return missing_item(ev, line, obj, key);
        }
        break;
    case JV_STRING:
        if (index_of(key, &index)) {
            jtext_reject_markup(ev, line, obj, "indexing");
            int64_t n = (int64_t)jutf8_count(obj.s->data, obj.s->len);
            if (index < 0) {
                index += n;
            }
            if (index >= 0 && index < n) {
                size_t at = jutf8_offset(obj.s->data, obj.s->len, (size_t)index);
                size_t len;
                jutf8_decode(obj.s->data + at, obj.s->len - at, &len);
                return jv_str(ev->arena, obj.s->data + at, len);
            }
            return missing_item(ev, line, obj, key);
        }
        break;
    default: break;
    }
    // jinja2 falls back to getattr for a string key: d['items'] is the method when no such key exists.
    if (key.kind == JV_STRING && strlen(key.s->data) == key.s->len) {
        JValue v = jeval_getattr(ev, line, obj, key.s->data);
        if (v.kind != JV_UNDEFINED || (v.u && v.u->hint)) {
            return v;
        }
    }
    return missing_item(ev, line, obj, key);
}

// Python's PySlice_AdjustIndices: normalizes start/stop for a sequence of n items and returns the
// number of items the slice selects.
static int64_t adjust_slice(int64_t n, int64_t *start, int64_t *stop, int64_t step, bool has_start,
                            bool has_stop) {
    if (!has_start) {
        *start = step < 0 ? n - 1 : 0;
    } else if (*start < 0) {
        *start += n;
        if (*start < 0) *start = step < 0 ? -1 : 0;
    } else if (*start >= n) {
        *start = step < 0 ? n - 1 : n;
    }
    if (!has_stop) {
        *stop = step < 0 ? -1 : n;
    } else if (*stop < 0) {
        *stop += n;
        if (*stop < 0) *stop = step < 0 ? -1 : 0;
    } else if (*stop >= n) {
        *stop = step < 0 ? n - 1 : n;
    }
    if (step > 0) {
        return *stop > *start ? (*stop - *start - 1) / step + 1 : 0;
    }
    return *start > *stop ? (*start - *stop - 1) / (-step) + 1 : 0;
}

JValue jeval_slice(JEval *ev, int line, JValue obj, JValue start_v, JValue stop_v, JValue step_v) {
    if (obj.kind == JV_UNDEFINED) {
        jv_throw_undefined(ev->err, line, obj.u);
    }
    // jinja2 compiles a slice to a plain Python subscript (not its getitem), so every failure is
    // an error rather than an undefined value.
    bool sliceable = obj.kind == JV_STRING ||
                     (obj.kind == JV_LIST && (obj.l->kind == JL_LIST || obj.l->kind == JL_TUPLE ||
                                              obj.l->kind == JL_RANGE));
    if (obj.kind == JV_DICT) {
        JTHROW(ev, line, "TypeError: unhashable type: 'slice'");
    }
    if (!sliceable) {
        JTHROW(ev, line, "TypeError: '%s' object is not subscriptable", jv_type_name(obj));
    }
    int64_t start = 0, stop = 0, step = 1;
    bool has_start = start_v.kind != JV_NONE, has_stop = stop_v.kind != JV_NONE;
    if ((has_start && !index_of(start_v, &start)) || (has_stop && !index_of(stop_v, &stop)) ||
        (step_v.kind != JV_NONE && !index_of(step_v, &step))) {
        JTHROW(ev, line, "TypeError: slice indices must be integers or None or have an __index__ method");
    }
    if (step == 0) {
        JTHROW(ev, line, "ValueError: slice step cannot be zero");
    }
    if (obj.kind == JV_STRING) {
        jtext_reject_markup(ev, line, obj, "slicing");
        size_t n_cp;
        // Code points and their byte offsets.
        n_cp = jutf8_count(obj.s->data, obj.s->len);
        size_t *offsets = jarena_alloc(ev->arena, (n_cp + 1) * sizeof *offsets);
        for (size_t i = 0, at = 0; i <= n_cp; i++) {
            offsets[i] = at;
            if (i < n_cp) {
                size_t len;
                jutf8_decode(obj.s->data + at, obj.s->len - at, &len);
                at += len;
            }
        }
        int64_t count = adjust_slice((int64_t)n_cp, &start, &stop, step, has_start, has_stop);
        if (step == 1) {
            size_t a = offsets[start], b = offsets[start + count];
            return jv_str(ev->arena, obj.s->data + a, b - a);
        }
        JBuf b;
        jbuf_init(&b, ev->arena);
        for (int64_t k = 0, i = start; k < count; k++, i += step) {
            jbuf_append(&b, obj.s->data + offsets[i], offsets[i + 1] - offsets[i]);
        }
        return jv_str(ev->arena, b.data ? b.data : "", b.len);
    }
    if (obj.kind == JV_LIST && (obj.l->kind == JL_LIST || obj.l->kind == JL_TUPLE || obj.l->kind == JL_RANGE)) {
        const JList *l = obj.l;
        int64_t count = adjust_slice((int64_t)l->len, &start, &stop, step, has_start, has_stop);
        JValue out = jv_list(ev->arena, l->kind, (size_t)count);
        for (int64_t k = 0, i = start; k < count; k++, i += step) {
            out.l->items[k] = l->items[i];
        }
        if (l->kind == JL_RANGE) {
            out.l->start = l->start + start * l->step;
            out.l->stop = l->start + stop * l->step;
            out.l->step = l->step * step;
        }
        return out;
    }
    JTHROW(ev, line, "internal error: unhandled slice");
}

// ----------------------------------------------------------------------------
// Operators

static noreturn void unsupported_operands(JEval *ev, int line, const char *op, JValue a, JValue b) {
    JTHROW(ev, line, "TypeError: unsupported operand type(s) for %s: '%s' and '%s'", op, jv_type_name(a),
           jv_type_name(b));
}

static int64_t as_int(JValue v) {
    return v.kind == JV_BOOL ? (int64_t)v.b : v.i;
}

static noreturn void int_overflow(JEval *ev, int line) {
    JTHROW(ev, line, "integer result outside the 64-bit range this interpreter supports (Python "
                     "integers have no limit)");
}

static JValue repeat(JEval *ev, int line, JValue seq, int64_t times) {
    jtext_reject_markup(ev, line, seq, "repetition");
    if (times < 0) {
        times = 0;
    }
    if (seq.kind == JV_STRING) {
        if (seq.s->len && (uint64_t)times > SIZE_MAX / seq.s->len) {
            JTHROW(ev, line, "repeated string too large");
        }
        JBuf b;
        jbuf_init(&b, ev->arena);
        for (int64_t i = 0; i < times; i++) {
            jbuf_append(&b, seq.s->data, seq.s->len);
        }
        return jv_str(ev->arena, b.data ? b.data : "", b.len);
    }
    size_t n = seq.l->len;
    if (n && (uint64_t)times > SIZE_MAX / sizeof(JValue) / n) {
        JTHROW(ev, line, "repeated list too large");
    }
    JValue out = jv_list(ev->arena, seq.l->kind, n * (size_t)times);
    for (int64_t i = 0; i < times; i++) {
        memcpy(out.l->items + (size_t)i * n, seq.l->items, n * sizeof(JValue));
    }
    return out;
}

static bool is_sequence_list(JValue v) {
    return v.kind == JV_LIST && (v.l->kind == JL_LIST || v.l->kind == JL_TUPLE);
}

static JValue add_values(JEval *ev, int line, JValue a, JValue b) {
    if (jv_is_number(a) && jv_is_number(b)) {
        if (a.kind == JV_FLOAT || b.kind == JV_FLOAT) {
            return jv_float(jv_as_double(a) + jv_as_double(b));
        }
        int64_t r;
        if (__builtin_add_overflow(as_int(a), as_int(b), &r)) int_overflow(ev, line);
        return jv_int(r);
    }
    if (a.kind == JV_STRING && b.kind == JV_STRING) {
        // markupsafe: Markup + str escapes the plain operand and stays Markup.
        if (a.s->markup != b.s->markup) {
            if (!a.s->markup) a = jtext_html_escape(ev, a, line);
            if (!b.s->markup) b = jtext_html_escape(ev, b, line);
        }
        JValue out = jv_str(ev->arena, a.s->data, a.s->len + b.s->len);
        memcpy(out.s->data + a.s->len, b.s->data, b.s->len);
        out.s->data[a.s->len + b.s->len] = '\0';
        out.s->markup = a.s->markup;
        return out;
    }
    if (is_sequence_list(a) && is_sequence_list(b) && a.l->kind == b.l->kind) {
        JValue out = jv_list(ev->arena, a.l->kind, a.l->len + b.l->len);
        memcpy(out.l->items, a.l->items, a.l->len * sizeof(JValue));
        memcpy(out.l->items + a.l->len, b.l->items, b.l->len * sizeof(JValue));
        return out;
    }
    if (a.kind == JV_STRING && !(b.kind == JV_STRING)) {
        JTHROW(ev, line, "TypeError: can only concatenate str (not \"%s\") to str", jv_type_name(b));
    }
    if (is_sequence_list(a)) {
        JTHROW(ev, line, "TypeError: can only concatenate %s (not \"%s\") to %s", jv_type_name(a),
               jv_type_name(b), jv_type_name(a));
    }
    unsupported_operands(ev, line, "+", a, b);
}

static JValue int_pow(JEval *ev, int line, int64_t base, int64_t exp) {
    int64_t result = 1;
    while (exp > 0) {
        if (exp & 1) {
            if (__builtin_mul_overflow(result, base, &result)) int_overflow(ev, line);
        }
        exp >>= 1;
        if (exp > 0 && __builtin_mul_overflow(base, base, &base)) int_overflow(ev, line);
    }
    return jv_int(result);
}

static JValue float_pow(JEval *ev, int line, double x, double y) {
    if (x == 0.0 && y < 0.0) {
        JTHROW(ev, line, "ZeroDivisionError: 0.0 cannot be raised to a negative power");
    }
    if (x < 0.0 && y != floor(y) && isfinite(y)) {
        JTHROW(ev, line, "a negative number raised to a fractional power is a complex number, which is "
                         "not supported");
    }
    double r = pow(x, y);
    if (isinf(r) && isfinite(x) && isfinite(y)) {
        JTHROW(ev, line, "OverflowError: (34, 'Numerical result out of range')");
    }
    return jv_float(r);
}

JValue jeval_binop(JEval *ev, int line, JOp op, JValue a, JValue b) {
    // str % x is str.__mod__, which also accepts an undefined x (it prints as "").
    if (op == OP_MOD && a.kind == JV_STRING) {
        return jtext_percent_format(ev, line, a.s, b);
    }
    if (a.kind == JV_UNDEFINED) jv_throw_undefined(ev->err, line, a.u);
    if (b.kind == JV_UNDEFINED) jv_throw_undefined(ev->err, line, b.u);
    bool numbers = jv_is_number(a) && jv_is_number(b);
    bool floats = numbers && (a.kind == JV_FLOAT || b.kind == JV_FLOAT);
    int64_t r;
    switch (op) {
    case OP_ADD: return add_values(ev, line, a, b);
    case OP_SUB:
        if (!numbers) unsupported_operands(ev, line, "-", a, b);
        if (floats) return jv_float(jv_as_double(a) - jv_as_double(b));
        if (__builtin_sub_overflow(as_int(a), as_int(b), &r)) int_overflow(ev, line);
        return jv_int(r);
    case OP_MUL:
        if (numbers) {
            if (floats) return jv_float(jv_as_double(a) * jv_as_double(b));
            if (__builtin_mul_overflow(as_int(a), as_int(b), &r)) int_overflow(ev, line);
            return jv_int(r);
        }
        if ((a.kind == JV_STRING || is_sequence_list(a)) && (b.kind == JV_INT || b.kind == JV_BOOL)) {
            return repeat(ev, line, a, as_int(b));
        }
        if ((b.kind == JV_STRING || is_sequence_list(b)) && (a.kind == JV_INT || a.kind == JV_BOOL)) {
            return repeat(ev, line, b, as_int(a));
        }
        unsupported_operands(ev, line, "*", a, b);
    case OP_DIV:
        if (!numbers) unsupported_operands(ev, line, "/", a, b);
        if (jv_as_double(b) == 0.0) JTHROW(ev, line, "ZeroDivisionError: division by zero");
        return jv_float(jv_as_double(a) / jv_as_double(b));
    case OP_FLOORDIV:
    case OP_MOD: {
        if (!numbers) unsupported_operands(ev, line, op == OP_MOD ? "%" : "//", a, b);
        if (!floats) {
            int64_t x = as_int(a), y = as_int(b);
            if (y == 0) JTHROW(ev, line, "ZeroDivisionError: integer division or modulo by zero");
            if (x == INT64_MIN && y == -1) {
                if (op == OP_MOD) return jv_int(0);
                int_overflow(ev, line);
            }
            int64_t q = x / y, m = x % y;
            // Python rounds the quotient toward negative infinity, so the remainder takes the
            // sign of the divisor.
            if (m != 0 && ((m < 0) != (y < 0))) {
                m += y;
                q -= 1;
            }
            return jv_int(op == OP_MOD ? m : q);
        }
        double x = jv_as_double(a), y = jv_as_double(b);
        if (y == 0.0) {
            JTHROW(ev, line, op == OP_MOD ? "ZeroDivisionError: float modulo"
                                          : "ZeroDivisionError: float floor division by zero");
        }
        // CPython's float_divmod.
        double mod = fmod(x, y);
        double div = (x - mod) / y;
        if (mod != 0.0) {
            if ((y < 0) != (mod < 0)) {
                mod += y;
                div -= 1.0;
            }
        } else {
            mod = copysign(0.0, y);
        }
        if (op == OP_MOD) return jv_float(mod);
        double floordiv;
        if (div != 0.0) {
            floordiv = floor(div);
            if (div - floordiv > 0.5) floordiv += 1.0;
        } else {
            floordiv = copysign(0.0, x / y);
        }
        return jv_float(floordiv);
    }
    case OP_POW:
        if (!numbers) unsupported_operands(ev, line, "** or pow()", a, b);
        if (!floats && as_int(b) >= 0) return int_pow(ev, line, as_int(a), as_int(b));
        return float_pow(ev, line, jv_as_double(a), jv_as_double(b));
    default: break;
    }
    JTHROW(ev, line, "internal error: unknown operator");
}

bool jeval_contains(JEval *ev, int line, JValue container, JValue item) {
    switch (container.kind) {
    case JV_UNDEFINED: return false;
    case JV_STRING:
        if (item.kind != JV_STRING) {
            JTHROW(ev, line, "TypeError: 'in <string>' requires string as left operand, not %s",
                   jv_type_name(item));
        }
        return memmem(container.s->data, container.s->len, item.s->data, item.s->len) != NULL;
    case JV_DICT:
        if (!jv_is_hashable(item)) {
            JTHROW(ev, line, "TypeError: unhashable type: '%s'", jv_type_name(item));
        }
        {
            JValue ignored;
            return jdict_get(container.d, item, &ignored);
        }
    case JV_LIST: {
        size_t n;
        JValue *items = jv_iterate(ev, line, container, &n);
        for (size_t i = 0; i < n; i++) {
            if (jv_equal(items[i], item)) {
                return true;
            }
        }
        return false;
    }
    default:
        JTHROW(ev, line, "TypeError: argument of type '%s' is not iterable", jv_type_name(container));
    }
}

static bool compare_values(JEval *ev, int line, JOp op, JValue a, JValue b) {
    switch (op) {
    case OP_EQ: return jv_equal(a, b);
    case OP_NE: return !jv_equal(a, b);
    case OP_IN: return jeval_contains(ev, line, b, a);
    case OP_NOTIN: return !jeval_contains(ev, line, b, a);
    default: break;
    }
    if ((a.kind == JV_FLOAT || b.kind == JV_FLOAT) && jv_is_number(a) && jv_is_number(b)) {
        // NaN compares false with everything, which a three-way comparison cannot express.
        double x = jv_as_double(a), y = jv_as_double(b);
        switch (op) {
        case OP_LT: return x < y;
        case OP_LE: return x <= y;
        case OP_GT: return x > y;
        default: return x >= y;
        }
    }
    int c = jv_compare(ev->err, line, a, b);
    switch (op) {
    case OP_LT: return c < 0;
    case OP_LE: return c <= 0;
    case OP_GT: return c > 0;
    default: return c >= 0;
    }
}

// ----------------------------------------------------------------------------
// Expressions

// Evaluates call arguments (positional in n->args, keywords in n->args2 / n->names).
static void eval_args(JEval *ev, const JNode *n, JArgs *args) {
    args->n_pos = (size_t)n->args.n;
    args->pos = jarena_alloc(ev->arena, args->n_pos * sizeof *args->pos);
    for (int i = 0; i < n->args.n; i++) {
        args->pos[i] = jeval_expr(ev, n->args.items[i]);
    }
    args->n_kw = (size_t)n->args2.n;
    args->kw_names = n->names;
    args->kw_values = jarena_alloc(ev->arena, args->n_kw * sizeof *args->kw_values);
    for (int i = 0; i < n->args2.n; i++) {
        args->kw_values[i] = jeval_expr(ev, n->args2.items[i]);
    }
}

static JValue eval_unary(JEval *ev, const JNode *n) {
    JValue v = jeval_expr(ev, n->a);
    if (v.kind == JV_UNDEFINED) {
        jv_throw_undefined(ev->err, n->line, v.u);
    }
    if (v.kind == JV_FLOAT) {
        return jv_float(n->op == OP_SUB ? -v.f : v.f);
    }
    if (v.kind == JV_INT || v.kind == JV_BOOL) {
        int64_t i = as_int(v);
        if (n->op == OP_SUB) {
            if (i == INT64_MIN) int_overflow(ev, n->line);
            i = -i;
        }
        return jv_int(i);
    }
    JTHROW(ev, n->line, "TypeError: bad operand type for unary %s: '%s'", n->op == OP_SUB ? "-" : "+",
           jv_type_name(v));
}

JValue jeval_expr(JEval *ev, const JNode *n) {
    jeval_step(ev, n->line);
    switch (n->kind) {
    case JN_CONST: return n->value;
    case JN_NAME: return jeval_lookup(ev, current_frame(ev), n->name);
    case JN_GETATTR: return jeval_getattr(ev, n->line, jeval_expr(ev, n->a), n->name);
    case JN_GETITEM: {
        JValue obj = jeval_expr(ev, n->a);
        if (n->b->kind == JN_SLICE) {
            const JNode *s = n->b;
            JValue start = s->a ? jeval_expr(ev, s->a) : jv_none();
            JValue stop = s->b ? jeval_expr(ev, s->b) : jv_none();
            JValue step = s->c ? jeval_expr(ev, s->c) : jv_none();
            return jeval_slice(ev, n->line, obj, start, stop, step);
        }
        return jeval_getitem(ev, n->line, obj, jeval_expr(ev, n->b));
    }
    case JN_CALL: {
        JValue callee = jeval_expr(ev, n->a);
        JArgs args;
        eval_args(ev, n, &args);
        return jcall(ev, n->line, callee, &args);
    }
    case JN_FILTER: {
        JValue value = n->a ? jeval_expr(ev, n->a) : ev->block_value;
        JArgs args;
        eval_args(ev, n, &args);
        return jfilter_apply(ev, n->line, n->id, value, &args);
    }
    case JN_TEST: {
        JValue value = jeval_expr(ev, n->a);
        JArgs args;
        eval_args(ev, n, &args);
        return jv_bool(jtest_apply(ev, n->line, n->id, value, &args));
    }
    case JN_UNARY: return eval_unary(ev, n);
    case JN_NOT: return jv_bool(!jv_truthy(jeval_expr(ev, n->a)));
    case JN_BINOP: {
        JValue a = jeval_expr(ev, n->a);
        JValue b = jeval_expr(ev, n->b);
        return jeval_binop(ev, n->line, n->op, a, b);
    }
    case JN_AND: {
        JValue a = jeval_expr(ev, n->a);
        return jv_truthy(a) ? jeval_expr(ev, n->b) : a;
    }
    case JN_OR: {
        JValue a = jeval_expr(ev, n->a);
        return jv_truthy(a) ? a : jeval_expr(ev, n->b);
    }
    case JN_COMPARE: {
        JValue left = jeval_expr(ev, n->a);
        for (int i = 0; i < n->args.n; i++) {
            JValue right = jeval_expr(ev, n->args.items[i]);
            if (!compare_values(ev, n->line, n->ops[i], left, right)) {
                return jv_bool(false);
            }
            left = right;
        }
        return jv_bool(true);
    }
    case JN_CONCAT: {
        JBuf b;
        jbuf_init(&b, ev->arena);
        for (int i = 0; i < n->args.n; i++) {
            jv_append_str(ev, n->line, &b, jeval_expr(ev, n->args.items[i]));
        }
        return jv_str(ev->arena, b.data ? b.data : "", b.len);
    }
    case JN_COND:
        if (jv_truthy(jeval_expr(ev, n->a))) {
            return jeval_expr(ev, n->b);
        }
        if (n->c) {
            return jeval_expr(ev, n->c);
        }
        return jv_undefined(ev->arena, "if-expression", NULL,
                            "the inline if-expression evaluated to false and no else section was "
                            "defined.");
    case JN_LIST:
    case JN_TUPLE: {
        JValue list = jv_list(ev->arena, n->kind == JN_LIST ? JL_LIST : JL_TUPLE, (size_t)n->args.n);
        for (int i = 0; i < n->args.n; i++) {
            list.l->items[i] = jeval_expr(ev, n->args.items[i]);
        }
        return list;
    }
    case JN_DICT: {
        JValue dict = jv_dict(ev->arena);
        for (int i = 0; i < n->args.n; i++) {
            JValue key = jeval_expr(ev, n->args.items[i]);
            if (!jv_is_hashable(key)) {
                JTHROW(ev, n->line, "TypeError: unhashable type: '%s'", jv_type_name(key));
            }
            jdict_set(ev->arena, dict.d, key, jeval_expr(ev, n->args2.items[i]));
        }
        return dict;
    }
    default: break;
    }
    JTHROW(ev, n->line, "internal error: node kind %d is not an expression", (int)n->kind);
}

// ----------------------------------------------------------------------------
// Statements

// Assigns a value to a target: a name, a tuple of targets (unpacking) or ns.attr.
static void assign(JEval *ev, const JNode *target, JValue value, JFrame *frame) {
    if (target->kind == JN_NAME) {
        jframe_set(ev, frame, target->name, value);
        return;
    }
    if (target->kind == JN_NSREF) {
        JValue ns = jeval_lookup(ev, frame, target->name2);
        if (ns.kind != JV_NAMESPACE) {
            JTHROW(ev, target->line, "cannot assign attribute on non-namespace object");
        }
        jdict_set(ev->arena, ns.d, jv_cstr(ev->arena, target->name), value);
        return;
    }
    // A tuple: unpack an iterable of exactly that many items.
    size_t n;
    JValue *items = jv_iterate(ev, target->line, value, &n);
    size_t expected = (size_t)target->args.n;
    if (n < expected) {
        JTHROW(ev, target->line, "ValueError: not enough values to unpack (expected %zu, got %zu)",
               expected, n);
    }
    if (n > expected) {
        JTHROW(ev, target->line, "ValueError: too many values to unpack (expected %zu)", expected);
    }
    for (size_t i = 0; i < n; i++) {
        assign(ev, target->args.items[i], items[i], frame);
    }
}

JValue jeval_capture(JEval *ev, const JNodeList *body, JFrame *frame) {
    JBuf *saved = ev->out;
    JBuf capture;
    jbuf_init(&capture, ev->arena);
    ev->out = &capture;
    exec_body(ev, body, frame);
    ev->out = saved;
    return jv_str(ev->arena, capture.data ? capture.data : "", capture.len);
}

void jeval_for_loop(JEval *ev, const JNode *n, JFrame *frame, JValue iterable, int depth) {
    size_t count;
    JValue *items = jv_iterate(ev, n->line, iterable, &count);

    // The loop filter (`for x in xs if cond`) runs before the loop, so loop.length and loop.last
    // count only the items that pass.
    if (n->c) {
        JValue *kept = jarena_alloc(ev->arena, count * sizeof *kept);
        size_t n_kept = 0;
        for (size_t i = 0; i < count; i++) {
            JFrame *f = jframe_new(ev, frame);
            assign(ev, n->a, items[i], f);
            JFrame *saved = ev->frame;
            ev->frame = f;
            bool keep = jv_truthy(jeval_expr(ev, n->c));
            ev->frame = saved;
            if (keep) {
                kept[n_kept++] = items[i];
            }
        }
        items = kept;
        count = n_kept;
    }

    if (count == 0) {
        if (n->else_body.n) {
            exec_body(ev, &n->else_body, jframe_new(ev, frame));
        }
        return;
    }
    JLoop *loop = jarena_alloc(ev->arena, sizeof *loop);
    loop->items = items;
    loop->len = count;
    loop->depth = depth;
    loop->node = n;
    loop->frame = frame;
    JValue loop_value = {.kind = JV_LOOP, .loop = loop};
    for (size_t i = 0; i < count; i++) {
        jeval_step(ev, n->line);
        loop->index0 = i;
        JFrame *f = jframe_new(ev, frame);
        jframe_set(ev, f, "loop", loop_value);
        assign(ev, n->a, items[i], f);
        if (exec_body(ev, &n->body, f) == EXEC_BREAK) {
            break;
        }
    }
}

static JFunc *new_macro(JEval *ev, const JNode *n, JFrame *frame) {
    JFunc *fn = jarena_alloc(ev->arena, sizeof *fn);
    fn->kind = JF_MACRO;
    fn->name = n->name;
    fn->macro = n;
    fn->closure = frame;
    return fn;
}

static void emit(JEval *ev, int line, JValue v) {
    jv_append_str(ev, line, ev->out, v);
}

static ExecResult exec_stmt(JEval *ev, const JNode *n, JFrame *frame) {
    jeval_step(ev, n->line);
    switch (n->kind) {
    case JN_OUTPUT:
        jbuf_append(ev->out, n->value.s->data, n->value.s->len);
        return EXEC_NORMAL;
    case JN_PRINT:
        for (int i = 0; i < n->args.n; i++) {
            emit(ev, n->line, jeval_expr(ev, n->args.items[i]));
        }
        return EXEC_NORMAL;
    case JN_IF:
        if (jv_truthy(jeval_expr(ev, n->a))) {
            return exec_body(ev, &n->body, frame);
        }
        return exec_body(ev, &n->else_body, frame);
    case JN_FOR:
        jeval_for_loop(ev, n, frame, jeval_expr(ev, n->b), 1);
        return EXEC_NORMAL;
    case JN_SET:
        assign(ev, n->a, jeval_expr(ev, n->b), frame);
        return EXEC_NORMAL;
    case JN_SET_BLOCK:
    case JN_FILTER_BLOCK: {
        JValue value = jeval_capture(ev, &n->body, jframe_new(ev, frame));
        if (n->b) {
            JValue saved = ev->block_value;
            ev->block_value = value;
            value = jeval_expr(ev, n->b);
            ev->block_value = saved;
        }
        if (n->kind == JN_SET_BLOCK) {
            assign(ev, n->a, value, frame);
        } else {
            emit(ev, n->line, value);
        }
        return EXEC_NORMAL;
    }
    case JN_MACRO: {
        JValue fn = {.kind = JV_FUNC, .fn = new_macro(ev, n, frame)};
        jframe_set(ev, frame, n->name, fn);
        return EXEC_NORMAL;
    }
    case JN_CALL_BLOCK: {
        // {% call m(args) %}body{% endcall %} calls m with caller=<the body as a macro>.
        const JNode *call = n->a;
        JValue callee = jeval_expr(ev, call->a);
        JArgs args = {0};
        args.n_pos = (size_t)call->args.n;
        args.pos = jarena_alloc(ev->arena, args.n_pos * sizeof *args.pos);
        for (int i = 0; i < call->args.n; i++) {
            args.pos[i] = jeval_expr(ev, call->args.items[i]);
        }
        args.n_kw = (size_t)call->args2.n + 1;
        args.kw_names = jarena_alloc(ev->arena, args.n_kw * sizeof *args.kw_names);
        args.kw_values = jarena_alloc(ev->arena, args.n_kw * sizeof *args.kw_values);
        for (int i = 0; i < call->args2.n; i++) {
            args.kw_names[i] = call->names[i];
            args.kw_values[i] = jeval_expr(ev, call->args2.items[i]);
        }
        args.kw_names[args.n_kw - 1] = "caller";
        args.kw_values[args.n_kw - 1] = (JValue){.kind = JV_FUNC, .fn = new_macro(ev, n, frame)};
        emit(ev, n->line, jcall(ev, n->line, callee, &args));
        return EXEC_NORMAL;
    }
    case JN_WITH: {
        JFrame *inner = jframe_new(ev, frame);
        // The values are evaluated in the outer frame, so `with a = 1, b = a` does not see the new a.
        JValue *values = jarena_alloc(ev->arena, (size_t)n->args2.n * sizeof *values);
        for (int i = 0; i < n->args2.n; i++) {
            values[i] = jeval_expr(ev, n->args2.items[i]);
        }
        for (int i = 0; i < n->args.n; i++) {
            assign(ev, n->args.items[i], values[i], inner);
        }
        return exec_body(ev, &n->body, inner);
    }
    case JN_BREAK: return EXEC_BREAK;
    case JN_CONTINUE: return EXEC_CONTINUE;
    default: break;
    }
    JTHROW(ev, n->line, "internal error: node kind %d is not a statement", (int)n->kind);
}

static ExecResult exec_body(JEval *ev, const JNodeList *body, JFrame *frame) {
    JFrame *saved = ev->frame;
    ExecResult result = EXEC_NORMAL;
    for (int i = 0; i < body->n && result == EXEC_NORMAL; i++) {
        ev->frame = frame;
        result = exec_stmt(ev, body->items[i], frame);
    }
    ev->frame = saved;
    return result;
}

void jeval_template(JEval *ev, const JNode *root) {
    exec_body(ev, &root->body, ev->top);
}
