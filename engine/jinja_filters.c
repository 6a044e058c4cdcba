// jinja_filters.c: jinja2 3.1's built-in filters and tests (jinja2/filters.py, jinja2/tests.py),
// with tojson replaced by transformers' version (json.dumps, ensure_ascii=False by default).
//
// Filters that return generators in jinja2 (map, select, reject, selectattr, rejectattr, unique,
// batch, items, reverse of a list) return a one-pass iterator here too. It is always true and has no
// length. Printing it is an error, where Python would print "<generator object ...>".
#include "jinja_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef JValue (*FilterFn)(JEval *ev, int line, JValue value, const JArgs *args);

// ----------------------------------------------------------------------------
// Helpers

static JValue arg_or(const JArgs *args, size_t index, const char *name, JValue fallback) {
    JValue v;
    return jargs_get(args, index, name, &v) ? v : fallback;
}

static JValue make_iterator(JEval *ev, const JValue *items, size_t n, const char *type) {
    JValue it = jv_list_of(ev->arena, JL_ITERATOR, items, n);
    it.l->iter_type = type;
    return it;
}

static JStr *to_str(JEval *ev, int line, JValue v) {
    return jv_to_str(ev, line, v);
}

static JValue str_value(JStr *s) {
    return (JValue){.kind = JV_STRING, .s = s};
}

static int64_t int_arg(JEval *ev, int line, const char *filter, JValue v) {
    if (v.kind == JV_INT) return v.i;
    if (v.kind == JV_BOOL) return v.b;
    JTHROW(ev, line, "TypeError: the argument of the %s filter must be an integer, not %s", filter,
           jv_type_name(v));
}

static JValue ignore_case(JEval *ev, int line, JValue v) {
    return v.kind == JV_STRING ? jtext_case(ev, line, v.s, JCASE_LOWER) : v;
}

// jinja2's make_attrgetter: "a.b.0" looks up a, then b, then item 0 (getitem, with the getattr
// fallback for strings). A missing result becomes `fallback` when one is given.
static JValue get_attribute_path(JEval *ev, int line, JValue item, JValue attribute, const JValue *fallback) {
    if (attribute.kind != JV_STRING) {
        return jeval_getitem(ev, line, item, attribute);
    }
    const char *s = attribute.s->data;
    size_t n = attribute.s->len, start = 0;
    while (start <= n) {
        size_t end = start;
        while (end < n && s[end] != '.') end++;
        JValue part = jv_str(ev->arena, s + start, end - start);
        bool digits = end > start;
        int64_t index = 0;
        for (size_t i = start; i < end && digits; i++) {
            digits = s[i] >= '0' && s[i] <= '9' && index < 100000000;
            index = index * 10 + (s[i] - '0');
        }
        item = jeval_getitem(ev, line, item, digits ? jv_int(index) : part);
        if (item.kind == JV_UNDEFINED && fallback) {
            return *fallback;
        }
        start = end + 1;
    }
    return item;
}

// Stable merge sort of items by keys with Python's < (raising TypeError for unorderable keys).
static void sort_by_keys(JEval *ev, int line, JValue *items, JValue *keys, size_t n, bool reverse) {
    if (n < 2) {
        return;
    }
    JValue *tmp_items = jarena_alloc(ev->arena, n * sizeof *tmp_items);
    JValue *tmp_keys = jarena_alloc(ev->arena, n * sizeof *tmp_keys);
    for (size_t width = 1; width < n; width *= 2) {
        for (size_t lo = 0; lo < n; lo += 2 * width) {
            size_t mid = lo + width < n ? lo + width : n;
            size_t hi = lo + 2 * width < n ? lo + 2 * width : n;
            size_t i = lo, j = mid, k = lo;
            while (i < mid && j < hi) {
                int c = jv_compare(ev->err, line, keys[j], keys[i]);
                // Take from the right run only when strictly before, so equal keys keep their order
                // (Python's sort with reverse=True keeps it too).
                bool right_first = reverse ? c > 0 : c < 0;
                if (right_first) {
                    tmp_items[k] = items[j];
                    tmp_keys[k++] = keys[j++];
                } else {
                    tmp_items[k] = items[i];
                    tmp_keys[k++] = keys[i++];
                }
            }
            while (i < mid) {
                tmp_items[k] = items[i];
                tmp_keys[k++] = keys[i++];
            }
            while (j < hi) {
                tmp_items[k] = items[j];
                tmp_keys[k++] = keys[j++];
            }
        }
        memcpy(items, tmp_items, n * sizeof *items);
        memcpy(keys, tmp_keys, n * sizeof *keys);
    }
}

// ----------------------------------------------------------------------------
// String filters

static JValue f_trim(JEval *ev, int line, JValue v, const JArgs *args) {
    jtext_reject_markup(ev, line, v, "the trim filter");
    static const char *const names[] = {"chars"};
    jargs_check(ev, line, "trim", args, names, 1);
    JValue chars = arg_or(args, 0, "chars", jv_none());
    JStr *set = chars.kind == JV_NONE ? NULL : to_str(ev, line, chars);
    return jtext_strip(ev, to_str(ev, line, v), set, JSTRIP_BOTH);
}

static JValue f_case(JEval *ev, int line, JValue v, const JArgs *args, JCaseOp op, const char *name) {
    jtext_reject_markup(ev, line, v, "a case filter");
    jargs_check(ev, line, name, args, NULL, 0);
    return jtext_case(ev, line, to_str(ev, line, v), op);
}

static JValue f_upper(JEval *ev, int line, JValue v, const JArgs *args) {
    return f_case(ev, line, v, args, JCASE_UPPER, "upper");
}

static JValue f_lower(JEval *ev, int line, JValue v, const JArgs *args) {
    return f_case(ev, line, v, args, JCASE_LOWER, "lower");
}

static JValue f_capitalize(JEval *ev, int line, JValue v, const JArgs *args) {
    return f_case(ev, line, v, args, JCASE_CAPITALIZE, "capitalize");
}

static JValue f_title(JEval *ev, int line, JValue v, const JArgs *args) {
    jtext_reject_markup(ev, line, v, "the title filter");
    jargs_check(ev, line, "title", args, NULL, 0);
    return jtext_title_filter(ev, line, to_str(ev, line, v));
}

static JValue f_replace(JEval *ev, int line, JValue v, const JArgs *args) {
    jtext_reject_markup(ev, line, v, "the replace filter");
    static const char *const names[] = {"old", "new", "count"};
    jargs_check(ev, line, "replace", args, names, 3);
    JValue old, new_;
    if (!jargs_get(args, 0, "old", &old) || !jargs_get(args, 1, "new", &new_)) {
        JTHROW(ev, line, "TypeError: the replace filter needs the arguments old and new");
    }
    JValue count = arg_or(args, 2, "count", jv_none());
    int64_t n = count.kind == JV_NONE ? -1 : int_arg(ev, line, "replace", count);
    return jtext_replace(ev, to_str(ev, line, v), to_str(ev, line, old), to_str(ev, line, new_), n);
}

static JValue f_string(JEval *ev, int line, JValue v, const JArgs *args) {
    jargs_check(ev, line, "string", args, NULL, 0);
    return str_value(to_str(ev, line, v));
}

static JValue f_safe(JEval *ev, int line, JValue v, const JArgs *args) {
    jargs_check(ev, line, "safe", args, NULL, 0);
    JStr *s = to_str(ev, line, v);
    return jv_markup(ev->arena, s->data, s->len);
}

static JValue f_escape(JEval *ev, int line, JValue v, const JArgs *args) {
    jargs_check(ev, line, "escape", args, NULL, 0);
    return jtext_html_escape(ev, v, line);
}

static JValue f_center(JEval *ev, int line, JValue v, const JArgs *args) {
    jtext_reject_markup(ev, line, v, "the center filter");
    static const char *const names[] = {"width"};
    jargs_check(ev, line, "center", args, names, 1);
    JValue width = arg_or(args, 0, "width", jv_int(80));
    JValue method;
    jcall_method_lookup(ev, line, str_value(to_str(ev, line, v)), "center", &method);
    JArgs call = {.pos = &width, .n_pos = 1};
    return jcall(ev, line, method, &call);
}

static JValue f_indent(JEval *ev, int line, JValue v, const JArgs *args) {
    jtext_reject_markup(ev, line, v, "the indent filter");
    static const char *const names[] = {"width", "first", "blank"};
    jargs_check(ev, line, "indent", args, names, 3);
    if (v.kind == JV_UNDEFINED) {
        jv_throw_undefined(ev->err, line, v.u);
    }
    if (v.kind != JV_STRING) {
        JTHROW(ev, line, "TypeError: unsupported operand type(s) for +=: '%s' and 'str'", jv_type_name(v));
    }
    JValue width = arg_or(args, 0, "width", jv_int(4));
    bool first = jv_truthy(arg_or(args, 1, "first", jv_bool(false)));
    bool blank = jv_truthy(arg_or(args, 2, "blank", jv_bool(false)));
    JStr *indention;
    if (width.kind == JV_STRING) {
        indention = width.s;
    } else {
        int64_t n = int_arg(ev, line, "indent", width);
        JValue spaces = jeval_binop(ev, line, OP_MUL, jv_cstr(ev->arena, " "), jv_int(n));
        indention = spaces.s;
    }
    // jinja2 appends "\n" before splitlines(), so a trailing newline yields no extra empty line.
    JValue with_newline = jeval_binop(ev, line, OP_ADD, v, jv_cstr(ev->arena, "\n"));
    JValue lines = jtext_splitlines(ev, with_newline.s, false);
    JBuf b;
    jbuf_init(&b, ev->arena);
    if (first) {
        jbuf_append(&b, indention->data, indention->len);
    }
    for (size_t i = 0; i < lines.l->len; i++) {
        JStr *l = lines.l->items[i].s;
        if (i > 0) {
            jbuf_append(&b, "\n", 1);
            if (blank || l->len > 0) {
                jbuf_append(&b, indention->data, indention->len);
            }
        }
        jbuf_append(&b, l->data, l->len);
    }
    JValue out = jv_str(ev->arena, b.data ? b.data : "", b.len);
    out.s->markup = v.s->markup;
    return out;
}

static JValue f_truncate(JEval *ev, int line, JValue v, const JArgs *args) {
    jtext_reject_markup(ev, line, v, "the truncate filter");
    static const char *const names[] = {"length", "killwords", "end", "leeway"};
    jargs_check(ev, line, "truncate", args, names, 4);
    int64_t length = int_arg(ev, line, "truncate", arg_or(args, 0, "length", jv_int(255)));
    bool killwords = jv_truthy(arg_or(args, 1, "killwords", jv_bool(false)));
    JStr *end = to_str(ev, line, arg_or(args, 2, "end", jv_cstr(ev->arena, "...")));
    JValue leeway_v = arg_or(args, 3, "leeway", jv_none());
    // jinja2's default policy truncate.leeway is 5.
    int64_t leeway = leeway_v.kind == JV_NONE ? 5 : int_arg(ev, line, "truncate", leeway_v);
    int64_t end_len = (int64_t)jutf8_count(end->data, end->len);
    if (length < end_len) {
        JTHROW(ev, line, "AssertionError: expected length >= %lld, got %lld", (long long)end_len,
               (long long)length);
    }
    if (leeway < 0) {
        JTHROW(ev, line, "AssertionError: expected leeway >= 0, got %lld", (long long)leeway);
    }
    // jinja2 returns any value with a small enough len() unchanged.
    if (jv_length(ev, line, v) <= length + leeway) {
        return v;
    }
    if (v.kind != JV_STRING) {
        JTHROW(ev, line, "AttributeError: '%s' object has no attribute 'rsplit' (truncate needs a string)",
               jv_type_name(v));
    }
    size_t cut = jutf8_offset(v.s->data, v.s->len, (size_t)(length - end_len));
    JValue head = jv_str(ev->arena, v.s->data, cut);
    if (!killwords) {
        JValue parts = jtext_split(ev, line, head.s, jv_cstr(ev->arena, " ").s, 1, true);
        head = parts.l->items[0];
    }
    return jeval_binop(ev, line, OP_ADD, head, str_value(end));
}

static JValue f_format(JEval *ev, int line, JValue v, const JArgs *args) {
    jtext_reject_markup(ev, line, v, "the format filter");
    if (args->n_pos && args->n_kw) {
        JTHROW(ev, line, "the format filter can't handle positional and keyword arguments at the same time");
    }
    JValue fmt_args;
    if (args->n_kw) {
        fmt_args = jv_dict(ev->arena);
        for (size_t i = 0; i < args->n_kw; i++) {
            jdict_set(ev->arena, fmt_args.d, jv_cstr(ev->arena, args->kw_names[i]), args->kw_values[i]);
        }
    } else {
        fmt_args = jv_list_of(ev->arena, JL_TUPLE, args->pos, args->n_pos);
    }
    return jtext_percent_format(ev, line, to_str(ev, line, v), fmt_args);
}

static JValue f_tojson(JEval *ev, int line, JValue v, const JArgs *args) {
    static const char *const names[] = {"ensure_ascii", "indent", "separators", "sort_keys"};
    jargs_check(ev, line, "tojson", args, names, 4);
    bool ensure_ascii = jv_truthy(arg_or(args, 0, "ensure_ascii", jv_bool(false)));
    JValue indent_v = arg_or(args, 1, "indent", jv_none());
    JValue separators = arg_or(args, 2, "separators", jv_none());
    bool sort_keys = jv_truthy(arg_or(args, 3, "sort_keys", jv_bool(false)));
    const JStr *indent = NULL;
    if (indent_v.kind == JV_STRING) {
        indent = indent_v.s;
    } else if (indent_v.kind != JV_NONE) {
        int64_t n = int_arg(ev, line, "tojson", indent_v);
        indent = n > 0 ? jeval_binop(ev, line, OP_MUL, jv_cstr(ev->arena, " "), jv_int(n)).s
                       : jv_cstr(ev->arena, "").s;
    }
    const char *item_sep = NULL, *key_sep = NULL;
    if (separators.kind != JV_NONE) {
        size_t n;
        JValue *parts = jv_iterate(ev, line, separators, &n);
        if (n != 2 || parts[0].kind != JV_STRING || parts[1].kind != JV_STRING) {
            JTHROW(ev, line, "tojson: separators must be a pair of strings (item separator, key separator)");
        }
        item_sep = parts[0].s->data;
        key_sep = parts[1].s->data;
    }
    return jjson_dumps(ev, line, v, ensure_ascii, indent, item_sep, key_sep, sort_keys);
}

// ----------------------------------------------------------------------------
// Value filters

static JValue f_default(JEval *ev, int line, JValue v, const JArgs *args) {
    static const char *const names[] = {"default_value", "boolean"};
    jargs_check(ev, line, "default", args, names, 2);
    JValue fallback = arg_or(args, 0, "default_value", jv_cstr(ev->arena, ""));
    bool boolean = jv_truthy(arg_or(args, 1, "boolean", jv_bool(false)));
    if (v.kind == JV_UNDEFINED || (boolean && !jv_truthy(v))) {
        return fallback;
    }
    return v;
}

static JValue f_length(JEval *ev, int line, JValue v, const JArgs *args) {
    jargs_check(ev, line, "length", args, NULL, 0);
    return jv_int(jv_length(ev, line, v));
}

static JValue f_abs(JEval *ev, int line, JValue v, const JArgs *args) {
    jargs_check(ev, line, "abs", args, NULL, 0);
    if (v.kind == JV_FLOAT) return jv_float(fabs(v.f));
    if (v.kind == JV_INT || v.kind == JV_BOOL) {
        int64_t i = v.kind == JV_BOOL ? v.b : v.i;
        if (i == INT64_MIN) JTHROW(ev, line, "integer result outside the 64-bit range");
        return jv_int(i < 0 ? -i : i);
    }
    JTHROW(ev, line, "TypeError: bad operand type for abs(): '%s'", jv_type_name(v));
}

static JValue f_int(JEval *ev, int line, JValue v, const JArgs *args) {
    static const char *const names[] = {"default", "base"};
    jargs_check(ev, line, "int", args, names, 2);
    JValue fallback = arg_or(args, 0, "default", jv_int(0));
    int64_t base = int_arg(ev, line, "int", arg_or(args, 1, "base", jv_int(10)));
    if (v.kind == JV_UNDEFINED) {
        jv_throw_undefined(ev->err, line, v.u);
    }
    if (v.kind == JV_INT) return v;
    if (v.kind == JV_BOOL) return jv_int(v.b);
    double f;
    if (v.kind == JV_FLOAT) {
        f = v.f;
    } else if (v.kind == JV_STRING) {
        if (base != 0 && (base < 2 || base > 36)) {
            JTHROW(ev, line, "ValueError: int() base must be >= 2 and <= 36, or 0");
        }
        int64_t i;
        int rc = jtext_parse_int(v.s, (int)base, &i);
        if (rc == 1) return jv_int(i);
        if (rc < 0) JTHROW(ev, line, "integer '%s' outside the 64-bit range this interpreter supports", v.s->data);
        // jinja2 then tries int(float(value)), so "42.23" gives 42.
        if (!jtext_parse_float(v.s, &f)) return fallback;
    } else {
        return fallback;
    }
    if (isnan(f)) JTHROW(ev, line, "ValueError: cannot convert float NaN to integer");
    if (isinf(f)) JTHROW(ev, line, "OverflowError: cannot convert float infinity to integer");
    if (f >= 9.2233720368547758e18 || f < -9.2233720368547758e18) {
        JTHROW(ev, line, "integer outside the 64-bit range this interpreter supports");
    }
    return jv_int((int64_t)f);
}

static JValue f_float(JEval *ev, int line, JValue v, const JArgs *args) {
    static const char *const names[] = {"default"};
    jargs_check(ev, line, "float", args, names, 1);
    JValue fallback = arg_or(args, 0, "default", jv_float(0.0));
    if (v.kind == JV_UNDEFINED) {
        jv_throw_undefined(ev->err, line, v.u);
    }
    if (jv_is_number(v)) return jv_float(jv_as_double(v));
    double f;
    if (v.kind == JV_STRING && jtext_parse_float(v.s, &f)) return jv_float(f);
    return fallback;
}

static JValue f_round(JEval *ev, int line, JValue v, const JArgs *args) {
    static const char *const names[] = {"precision", "method"};
    jargs_check(ev, line, "round", args, names, 2);
    int64_t precision = int_arg(ev, line, "round", arg_or(args, 0, "precision", jv_int(0)));
    JStr *method = to_str(ev, line, arg_or(args, 1, "method", jv_cstr(ev->arena, "common")));
    bool common = !strcmp(method->data, "common");
    if (!common && strcmp(method->data, "ceil") && strcmp(method->data, "floor")) {
        JTHROW(ev, line, "method must be common, ceil or floor");
    }
    if (!jv_is_number(v)) {
        JTHROW(ev, line, "TypeError: type %s doesn't define __round__ method", jv_type_name(v));
    }
    if (precision < -300 || precision > 300) {
        JTHROW(ev, line, "round: precision %lld is not supported", (long long)precision);
    }
    if (!common) {
        double scale = pow(10.0, (double)precision);
        double x = jv_as_double(v) * scale;
        return jv_float((method->data[0] == 'c' ? ceil(x) : floor(x)) / scale);
    }
    if (v.kind != JV_FLOAT) {
        // round(int, n) stays an int; negative n rounds to tens, hundreds ... half to even.
        int64_t i = v.kind == JV_BOOL ? v.b : v.i;
        if (precision >= 0) return jv_int(i);
        if (precision < -18) return jv_int(0);
        int64_t unit = 1;
        for (int64_t k = 0; k < -precision; k++) unit *= 10;
        int64_t q = i / unit, r = i % unit;
        if (r < 0) {
            r += unit;
            q -= 1;
        }
        if (2 * r > unit || (2 * r == unit && (q & 1))) q += 1;
        int64_t out;
        if (__builtin_mul_overflow(q, unit, &out)) JTHROW(ev, line, "integer result outside the 64-bit range");
        return jv_int(out);
    }
    double x = v.f;
    if (!isfinite(x) || precision < 0) {
        if (precision < 0 && isfinite(x)) {
            JTHROW(ev, line, "round() of a float with a negative precision is not supported");
        }
        return jv_float(x);
    }
    // Python rounds the exact binary value half to even at `precision` decimals; glibc's printf
    // does the same correctly rounded conversion.
    char *text = jarena_alloc(ev->arena, 400 + (size_t)precision);
    snprintf(text, 400 + (size_t)precision, "%.*f", (int)precision, x);
    return jv_float(strtod(text, NULL));
}

static JValue f_first(JEval *ev, int line, JValue v, const JArgs *args) {
    jargs_check(ev, line, "first", args, NULL, 0);
    if (v.kind == JV_LIST && v.l->kind == JL_ITERATOR) {
        if (v.l->pos < v.l->len) {
            return v.l->items[v.l->pos++];
        }
    } else {
        size_t n;
        JValue *items = jv_iterate(ev, line, v, &n);
        if (n > 0) {
            return items[0];
        }
    }
    return jv_undefined(ev->arena, "first", NULL, "No first item, sequence was empty.");
}

static JValue f_last(JEval *ev, int line, JValue v, const JArgs *args) {
    jargs_check(ev, line, "last", args, NULL, 0);
    if (v.kind == JV_LIST && v.l->kind == JL_ITERATOR) {
        JTHROW(ev, line, "TypeError: '%s' object is not reversible", jv_type_name(v));
    }
    size_t n;
    JValue *items = jv_iterate(ev, line, v, &n);
    if (n > 0) {
        return items[n - 1];
    }
    return jv_undefined(ev->arena, "last", NULL, "No last item, sequence was empty.");
}

static JValue f_list(JEval *ev, int line, JValue v, const JArgs *args) {
    jargs_check(ev, line, "list", args, NULL, 0);
    size_t n;
    JValue *items = jv_iterate(ev, line, v, &n);
    return jv_list_of(ev->arena, JL_LIST, items, n);
}

static JValue f_items(JEval *ev, int line, JValue v, const JArgs *args) {
    jargs_check(ev, line, "items", args, NULL, 0);
    if (v.kind == JV_UNDEFINED) {
        return make_iterator(ev, NULL, 0, "generator");
    }
    if (v.kind != JV_DICT) {
        JTHROW(ev, line, "TypeError: Can only get item pairs from a mapping.");
    }
    JValue *pairs = jarena_alloc(ev->arena, v.d->len * sizeof *pairs);
    for (size_t i = 0; i < v.d->len; i++) {
        JValue kv[2] = {v.d->keys[i], v.d->values[i]};
        pairs[i] = jv_list_of(ev->arena, JL_TUPLE, kv, 2);
    }
    return make_iterator(ev, pairs, v.d->len, "dict_itemiterator");
}

static JValue f_join(JEval *ev, int line, JValue v, const JArgs *args) {
    static const char *const names[] = {"d", "attribute"};
    jargs_check(ev, line, "join", args, names, 2);
    JStr *sep = to_str(ev, line, arg_or(args, 0, "d", jv_cstr(ev->arena, "")));
    JValue attribute = arg_or(args, 1, "attribute", jv_none());
    size_t n;
    JValue *items = jv_iterate(ev, line, v, &n);
    JBuf b;
    jbuf_init(&b, ev->arena);
    for (size_t i = 0; i < n; i++) {
        if (i) {
            jbuf_append(&b, sep->data, sep->len);
        }
        JValue item = attribute.kind == JV_NONE ? items[i] : get_attribute_path(ev, line, items[i], attribute, NULL);
        jv_append_str(ev, line, &b, item);
    }
    return jv_str(ev->arena, b.data ? b.data : "", b.len);
}

static JValue f_reverse(JEval *ev, int line, JValue v, const JArgs *args) {
    jargs_check(ev, line, "reverse", args, NULL, 0);
    if (v.kind == JV_STRING) {
        jtext_reject_markup(ev, line, v, "the reverse filter");
        return jeval_slice(ev, line, v, jv_none(), jv_none(), jv_int(-1));
    }
    size_t n;
    bool generator = v.kind == JV_LIST && v.l->kind == JL_ITERATOR;
    JValue *items = jv_iterate(ev, line, v, &n);
    JValue *reversed = jarena_alloc(ev->arena, n * sizeof *reversed);
    for (size_t i = 0; i < n; i++) {
        reversed[i] = items[n - 1 - i];
    }
    // reversed() of a generator fails, so jinja2 makes a list of it instead.
    if (generator) {
        return jv_list_of(ev->arena, JL_LIST, reversed, n);
    }
    return make_iterator(ev, reversed, n, v.kind == JV_LIST ? "list_reverseiterator" : "reversed");
}

static JValue f_batch(JEval *ev, int line, JValue v, const JArgs *args) {
    static const char *const names[] = {"linecount", "fill_with"};
    jargs_check(ev, line, "batch", args, names, 2);
    JValue count_v;
    if (!jargs_get(args, 0, "linecount", &count_v)) {
        JTHROW(ev, line, "TypeError: the batch filter needs the argument linecount");
    }
    int64_t count = int_arg(ev, line, "batch", count_v);
    JValue fill = arg_or(args, 1, "fill_with", jv_none());
    if (count <= 0) {
        JTHROW(ev, line, "batch: linecount must be positive");
    }
    size_t n;
    JValue *items = jv_iterate(ev, line, v, &n);
    size_t n_batches = (n + (size_t)count - 1) / (size_t)count;
    JValue *batches = jarena_alloc(ev->arena, n_batches * sizeof *batches);
    for (size_t b = 0; b < n_batches; b++) {
        size_t start = b * (size_t)count;
        size_t len = n - start < (size_t)count ? n - start : (size_t)count;
        size_t full = fill.kind != JV_NONE ? (size_t)count : len;
        JValue batch = jv_list(ev->arena, JL_LIST, full);
        for (size_t i = 0; i < full; i++) {
            batch.l->items[i] = i < len ? items[start + i] : fill;
        }
        batches[b] = batch;
    }
    return make_iterator(ev, batches, n_batches, "generator");
}

static JValue f_sum(JEval *ev, int line, JValue v, const JArgs *args) {
    static const char *const names[] = {"attribute", "start"};
    jargs_check(ev, line, "sum", args, names, 2);
    JValue attribute = arg_or(args, 0, "attribute", jv_none());
    JValue total = arg_or(args, 1, "start", jv_int(0));
    size_t n;
    JValue *items = jv_iterate(ev, line, v, &n);
    for (size_t i = 0; i < n; i++) {
        JValue item = attribute.kind == JV_NONE ? items[i] : get_attribute_path(ev, line, items[i], attribute, NULL);
        total = jeval_binop(ev, line, OP_ADD, total, item);
    }
    return total;
}

// ----------------------------------------------------------------------------
// Sorting and selection

static JValue f_sort(JEval *ev, int line, JValue v, const JArgs *args) {
    static const char *const names[] = {"reverse", "case_sensitive", "attribute"};
    jargs_check(ev, line, "sort", args, names, 3);
    bool reverse = jv_truthy(arg_or(args, 0, "reverse", jv_bool(false)));
    bool case_sensitive = jv_truthy(arg_or(args, 1, "case_sensitive", jv_bool(false)));
    JValue attribute = arg_or(args, 2, "attribute", jv_none());
    size_t n;
    JValue *src = jv_iterate(ev, line, v, &n);
    JValue out = jv_list_of(ev->arena, JL_LIST, src, n);
    JValue *keys = jarena_alloc(ev->arena, n * sizeof *keys);
    // attribute "a,b" sorts by a tuple of attributes.
    JValue attr_parts = jv_none();
    if (attribute.kind == JV_STRING) {
        attr_parts = jtext_split(ev, line, attribute.s, jv_cstr(ev->arena, ",").s, -1, false);
    }
    for (size_t i = 0; i < n; i++) {
        JValue item = out.l->items[i];
        if (attr_parts.kind == JV_NONE) {
            keys[i] = case_sensitive ? item : ignore_case(ev, line, item);
        } else {
            size_t m = attr_parts.l->len;
            JValue key = jv_list(ev->arena, JL_TUPLE, m);
            for (size_t k = 0; k < m; k++) {
                JValue part = get_attribute_path(ev, line, item, attr_parts.l->items[k], NULL);
                key.l->items[k] = case_sensitive ? part : ignore_case(ev, line, part);
            }
            keys[i] = m == 1 ? key.l->items[0] : key;
        }
    }
    sort_by_keys(ev, line, out.l->items, keys, n, reverse);
    return out;
}

static JValue f_dictsort(JEval *ev, int line, JValue v, const JArgs *args) {
    static const char *const names[] = {"case_sensitive", "by", "reverse"};
    jargs_check(ev, line, "dictsort", args, names, 3);
    bool case_sensitive = jv_truthy(arg_or(args, 0, "case_sensitive", jv_bool(false)));
    JStr *by = to_str(ev, line, arg_or(args, 1, "by", jv_cstr(ev->arena, "key")));
    bool reverse = jv_truthy(arg_or(args, 2, "reverse", jv_bool(false)));
    int pos = !strcmp(by->data, "key") ? 0 : !strcmp(by->data, "value") ? 1 : -1;
    if (pos < 0) {
        JTHROW(ev, line, "You can only sort by either \"key\" or \"value\"");
    }
    if (v.kind != JV_DICT) {
        JTHROW(ev, line, "TypeError: dictsort needs a mapping, not %s", jv_type_name(v));
    }
    size_t n = v.d->len;
    JValue out = jv_list(ev->arena, JL_LIST, n);
    JValue *keys = jarena_alloc(ev->arena, n * sizeof *keys);
    for (size_t i = 0; i < n; i++) {
        JValue kv[2] = {v.d->keys[i], v.d->values[i]};
        out.l->items[i] = jv_list_of(ev->arena, JL_TUPLE, kv, 2);
        keys[i] = case_sensitive ? kv[pos] : ignore_case(ev, line, kv[pos]);
    }
    sort_by_keys(ev, line, out.l->items, keys, n, reverse);
    return out;
}

static JValue f_min_max(JEval *ev, int line, JValue v, const JArgs *args, bool max) {
    static const char *const names[] = {"case_sensitive", "attribute"};
    jargs_check(ev, line, max ? "max" : "min", args, names, 2);
    bool case_sensitive = jv_truthy(arg_or(args, 0, "case_sensitive", jv_bool(false)));
    JValue attribute = arg_or(args, 1, "attribute", jv_none());
    size_t n;
    JValue *items = jv_iterate(ev, line, v, &n);
    if (n == 0) {
        return jv_undefined(ev->arena, max ? "max" : "min", NULL, "No aggregated item, sequence was empty.");
    }
    size_t best = 0;
    JValue best_key = {0};
    for (size_t i = 0; i < n; i++) {
        JValue key = attribute.kind == JV_NONE ? items[i] : get_attribute_path(ev, line, items[i], attribute, NULL);
        if (!case_sensitive) {
            key = ignore_case(ev, line, key);
        }
        // Python's max/min keep the first of equal items.
        if (i == 0 || (max ? jv_compare(ev->err, line, key, best_key) > 0
                           : jv_compare(ev->err, line, key, best_key) < 0)) {
            best = i;
            best_key = key;
        }
    }
    return items[best];
}

static JValue f_max(JEval *ev, int line, JValue v, const JArgs *args) {
    return f_min_max(ev, line, v, args, true);
}

static JValue f_min(JEval *ev, int line, JValue v, const JArgs *args) {
    return f_min_max(ev, line, v, args, false);
}

static JValue f_unique(JEval *ev, int line, JValue v, const JArgs *args) {
    static const char *const names[] = {"case_sensitive", "attribute"};
    jargs_check(ev, line, "unique", args, names, 2);
    bool case_sensitive = jv_truthy(arg_or(args, 0, "case_sensitive", jv_bool(false)));
    JValue attribute = arg_or(args, 1, "attribute", jv_none());
    size_t n;
    JValue *items = jv_iterate(ev, line, v, &n);
    JValue *kept = jarena_alloc(ev->arena, n * sizeof *kept);
    JValue seen = jv_dict(ev->arena);
    size_t n_kept = 0;
    for (size_t i = 0; i < n; i++) {
        JValue key = attribute.kind == JV_NONE ? items[i] : get_attribute_path(ev, line, items[i], attribute, NULL);
        if (!case_sensitive) {
            key = ignore_case(ev, line, key);
        }
        if (!jv_is_hashable(key)) {
            JTHROW(ev, line, "TypeError: unhashable type: '%s'", jv_type_name(key));
        }
        JValue ignored;
        if (!jdict_get(seen.d, key, &ignored)) {
            jdict_set(ev->arena, seen.d, key, jv_none());
            kept[n_kept++] = items[i];
        }
    }
    return make_iterator(ev, kept, n_kept, "generator");
}

// select, reject, selectattr and rejectattr share jinja2's prepare_select_or_reject.
static JValue select_or_reject(JEval *ev, int line, JValue v, const JArgs *args, bool select, bool by_attr) {
    if (!jv_truthy(v)) {
        return make_iterator(ev, NULL, 0, "generator");
    }
    size_t off = 0;
    JValue attribute = jv_none();
    if (by_attr) {
        if (args->n_pos < 1) {
            JTHROW(ev, line, "Missing parameter for attribute name");
        }
        attribute = args->pos[0];
        off = 1;
    }
    int test = -1;
    JArgs test_args = {0};
    if (args->n_pos > off) {
        JStr *name = to_str(ev, line, args->pos[off]);
        bool known;
        test = jtest_lookup(name->data, &known);
        if (test < 0) {
            JTHROW(ev, line, known ? "the test '%s' is not supported by this interpreter" : "No test named '%s'.",
                   name->data);
        }
        test_args.pos = args->pos + off + 1;
        test_args.n_pos = args->n_pos - off - 1;
        test_args.kw_names = args->kw_names;
        test_args.kw_values = args->kw_values;
        test_args.n_kw = args->n_kw;
    } else if (args->n_kw) {
        JTHROW(ev, line, "TypeError: unexpected keyword argument '%s'", args->kw_names[0]);
    }
    size_t n;
    JValue *items = jv_iterate(ev, line, v, &n);
    JValue *kept = jarena_alloc(ev->arena, n * sizeof *kept);
    size_t n_kept = 0;
    for (size_t i = 0; i < n; i++) {
        JValue x = by_attr ? get_attribute_path(ev, line, items[i], attribute, NULL) : items[i];
        bool pass = test < 0 ? jv_truthy(x) : jtest_apply(ev, line, test, x, &test_args);
        if (pass == select) {
            kept[n_kept++] = items[i];
        }
    }
    return make_iterator(ev, kept, n_kept, "generator");
}

static JValue f_select(JEval *ev, int line, JValue v, const JArgs *args) {
    return select_or_reject(ev, line, v, args, true, false);
}

static JValue f_reject(JEval *ev, int line, JValue v, const JArgs *args) {
    return select_or_reject(ev, line, v, args, false, false);
}

static JValue f_selectattr(JEval *ev, int line, JValue v, const JArgs *args) {
    return select_or_reject(ev, line, v, args, true, true);
}

static JValue f_rejectattr(JEval *ev, int line, JValue v, const JArgs *args) {
    return select_or_reject(ev, line, v, args, false, true);
}

static JValue f_map(JEval *ev, int line, JValue v, const JArgs *args) {
    if (!jv_truthy(v)) {
        return make_iterator(ev, NULL, 0, "generator");
    }
    size_t n;
    JValue attribute;
    bool by_attribute = args->n_pos == 0 && jargs_get(args, (size_t)-1, "attribute", &attribute);
    if (by_attribute) {
        JValue fallback = jv_none();
        bool has_default = jargs_get(args, (size_t)-1, "default", &fallback);
        for (size_t i = 0; i < args->n_kw; i++) {
            if (strcmp(args->kw_names[i], "attribute") && strcmp(args->kw_names[i], "default")) {
                JTHROW(ev, line, "Unexpected keyword argument '%s'", args->kw_names[i]);
            }
        }
        JValue *items = jv_iterate(ev, line, v, &n);
        JValue *out = jarena_alloc(ev->arena, n * sizeof *out);
        for (size_t i = 0; i < n; i++) {
            out[i] = get_attribute_path(ev, line, items[i], attribute, has_default ? &fallback : NULL);
        }
        return make_iterator(ev, out, n, "generator");
    }
    if (args->n_pos == 0) {
        JTHROW(ev, line, "map requires a filter argument");
    }
    JStr *name = to_str(ev, line, args->pos[0]);
    bool known;
    int filter = jfilter_lookup(name->data, &known);
    if (filter < 0) {
        JTHROW(ev, line, known ? "the filter '%s' is not supported by this interpreter" : "No filter named '%s' found.",
               name->data);
    }
    JArgs filter_args = *args;
    filter_args.pos = args->pos + 1;
    filter_args.n_pos = args->n_pos - 1;
    JValue *items = jv_iterate(ev, line, v, &n);
    JValue *out = jarena_alloc(ev->arena, n * sizeof *out);
    for (size_t i = 0; i < n; i++) {
        out[i] = jfilter_apply(ev, line, filter, items[i], &filter_args);
    }
    return make_iterator(ev, out, n, "generator");
}

static JValue f_attr(JEval *ev, int line, JValue v, const JArgs *args) {
    static const char *const names[] = {"name"};
    jargs_check(ev, line, "attr", args, names, 1);
    JValue name_v;
    if (!jargs_get(args, 0, "name", &name_v)) {
        JTHROW(ev, line, "TypeError: the attr filter needs the argument name");
    }
    JStr *name = to_str(ev, line, name_v);
    // Only real attributes: unlike `.name`, the attr filter does not fall back to dict keys.
    if (v.kind == JV_DICT) {
        JValue method;
        if (jcall_method_lookup(ev, line, v, name->data, &method)) {
            return method;
        }
        return jv_undefined(ev->arena, name->data, "dict object", NULL);
    }
    return jeval_getattr(ev, line, v, name->data);
}

// ----------------------------------------------------------------------------
// Filter table

static const struct {
    const char *name;
    FilterFn fn; // NULL: a jinja2 filter this interpreter does not implement
} FILTERS[] = {
    {"abs", f_abs},           {"attr", f_attr},           {"batch", f_batch},
    {"capitalize", f_capitalize}, {"center", f_center},   {"count", f_length},
    {"d", f_default},         {"default", f_default},     {"dictsort", f_dictsort},
    {"e", f_escape},          {"escape", f_escape},       {"filesizeformat", NULL},
    {"first", f_first},       {"float", f_float},         {"forceescape", NULL},
    {"format", f_format},     {"groupby", NULL},          {"indent", f_indent},
    {"int", f_int},           {"items", f_items},         {"join", f_join},
    {"last", f_last},         {"length", f_length},       {"list", f_list},
    {"lower", f_lower},       {"map", f_map},             {"max", f_max},
    {"min", f_min},           {"pprint", NULL},           {"random", NULL},
    {"reject", f_reject},     {"rejectattr", f_rejectattr}, {"replace", f_replace},
    {"reverse", f_reverse},   {"round", f_round},         {"safe", f_safe},
    {"select", f_select},     {"selectattr", f_selectattr}, {"slice", NULL},
    {"sort", f_sort},         {"string", f_string},       {"striptags", NULL},
    {"sum", f_sum},           {"title", f_title},         {"tojson", f_tojson},
    {"trim", f_trim},         {"truncate", f_truncate},   {"unique", f_unique},
    {"upper", f_upper},       {"urlencode", NULL},        {"urlize", NULL},
    {"wordcount", NULL},      {"wordwrap", NULL},         {"xmlattr", NULL},
};

int jfilter_lookup(const char *name, bool *known) {
    *known = false;
    for (size_t i = 0; i < ARRAY_LEN(FILTERS); i++) {
        if (!strcmp(FILTERS[i].name, name)) {
            *known = true;
            return FILTERS[i].fn ? (int)i : -1;
        }
    }
    return -1;
}

JValue jfilter_apply(JEval *ev, int line, int id, JValue value, const JArgs *args) {
    return FILTERS[id].fn(ev, line, value, args);
}
