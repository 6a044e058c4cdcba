// jinja_operators.c: attribute and item access, slices and operators with the semantics of Python
// objects in jinja2's sandbox: getattr falls back to item lookup and back, mutating methods are
// unsafe, and arithmetic follows Python (floor division, modulo sign, no int overflow).
#include "jinja_internal.h"

#include <math.h>
#include <string.h>

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
        JValue out = jv_str_concat(ev->arena, a.s->data, a.s->len, b.s->data, b.s->len);
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

// Python's // and % for numbers: the quotient rounds toward negative infinity, so the remainder
// takes the sign of the divisor.
static JValue floor_divide_or_modulo(JEval *ev, int line, JOp op, JValue a, JValue b) {
    if (a.kind != JV_FLOAT && b.kind != JV_FLOAT) {
        int64_t x = as_int(a), y = as_int(b);
        if (y == 0) {
            JTHROW(ev, line, "ZeroDivisionError: integer division or modulo by zero");
        }
        if (x == INT64_MIN && y == -1) {
            if (op == OP_MOD) {
                return jv_int(0);
            }
            int_overflow(ev, line);
        }
        int64_t q = x / y, m = x % y;
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
    if (op == OP_MOD) {
        return jv_float(mod);
    }
    double floordiv;
    if (div != 0.0) {
        floordiv = floor(div);
        if (div - floordiv > 0.5) {
            floordiv += 1.0;
        }
    } else {
        floordiv = copysign(0.0, x / y);
    }
    return jv_float(floordiv);
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
    case OP_MOD:
        if (!numbers) unsupported_operands(ev, line, op == OP_MOD ? "%" : "//", a, b);
        return floor_divide_or_modulo(ev, line, op, a, b);
    case OP_POW:
        if (!numbers) unsupported_operands(ev, line, "** or pow()", a, b);
        if (!floats && as_int(b) >= 0) return int_pow(ev, line, as_int(a), as_int(b));
        return float_pow(ev, line, jv_as_double(a), jv_as_double(b));
    default: break;
    }
    JTHROW(ev, line, "internal error: unknown operator");
}

JValue jeval_unary(JEval *ev, int line, JOp op, JValue v) {
    if (v.kind == JV_UNDEFINED) {
        jv_throw_undefined(ev->err, line, v.u);
    }
    if (v.kind == JV_FLOAT) {
        return jv_float(op == OP_SUB ? -v.f : v.f);
    }
    if (v.kind == JV_INT || v.kind == JV_BOOL) {
        int64_t i = as_int(v);
        if (op == OP_SUB) {
            if (i == INT64_MIN) int_overflow(ev, line);
            i = -i;
        }
        return jv_int(i);
    }
    JTHROW(ev, line, "TypeError: bad operand type for unary %s: '%s'", op == OP_SUB ? "-" : "+",
           jv_type_name(v));
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

bool jeval_compare(JEval *ev, int line, JOp op, JValue a, JValue b) {
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
