// jinja_tests.c: jinja2 3.1's built-in tests (jinja2/tests.py), used by `x is name(args)` and by
// the select, reject, selectattr and rejectattr filters.
#include "jinja_internal.h"

#include <string.h>

typedef bool (*TestFn)(JEval *ev, int line, JValue value, const JArgs *args);

// Returns the argument of a test: the first positional one, or else the first keyword argument.
static JValue test_arg(JEval *ev, int line, const JArgs *args, const char *test) {
    JValue v;
    if (jargs_get(args, 0, NULL, &v)) {
        return v;
    }
    if (args->n_kw > 0) {
        return args->kw_values[0];
    }
    JTHROW(ev, line, "TypeError: the test '%s' needs an argument", test);
}

static bool t_defined(JEval *ev, int line, JValue v, const JArgs *a) {
    (void)ev, (void)line, (void)a;
    return v.kind != JV_UNDEFINED;
}

static bool t_undefined(JEval *ev, int line, JValue v, const JArgs *a) {
    (void)ev, (void)line, (void)a;
    return v.kind == JV_UNDEFINED;
}

static bool t_none(JEval *ev, int line, JValue v, const JArgs *a) {
    (void)ev, (void)line, (void)a;
    return v.kind == JV_NONE;
}

static bool t_boolean(JEval *ev, int line, JValue v, const JArgs *a) {
    (void)ev, (void)line, (void)a;
    return v.kind == JV_BOOL;
}

static bool t_true(JEval *ev, int line, JValue v, const JArgs *a) {
    (void)ev, (void)line, (void)a;
    return v.kind == JV_BOOL && v.b;
}

static bool t_false(JEval *ev, int line, JValue v, const JArgs *a) {
    (void)ev, (void)line, (void)a;
    return v.kind == JV_BOOL && !v.b;
}

static bool t_integer(JEval *ev, int line, JValue v, const JArgs *a) {
    (void)ev, (void)line, (void)a;
    return v.kind == JV_INT;
}

static bool t_float(JEval *ev, int line, JValue v, const JArgs *a) {
    (void)ev, (void)line, (void)a;
    return v.kind == JV_FLOAT;
}

static bool t_number(JEval *ev, int line, JValue v, const JArgs *a) {
    (void)ev, (void)line, (void)a;
    return jv_is_number(v);
}

static bool t_string(JEval *ev, int line, JValue v, const JArgs *a) {
    (void)ev, (void)line, (void)a;
    return v.kind == JV_STRING;
}

static bool t_mapping(JEval *ev, int line, JValue v, const JArgs *a) {
    (void)ev, (void)line, (void)a;
    return v.kind == JV_DICT;
}

static bool t_escaped(JEval *ev, int line, JValue v, const JArgs *a) {
    (void)ev, (void)line, (void)a;
    return v.kind == JV_STRING && v.s->markup;
}

static bool t_callable(JEval *ev, int line, JValue v, const JArgs *a) {
    (void)ev, (void)line, (void)a;
    // jinja2's Undefined defines __call__ (to raise), so callable() is true for it.
    return v.kind == JV_FUNC || v.kind == JV_UNDEFINED || (v.kind == JV_LOOP);
}

static bool t_iterable(JEval *ev, int line, JValue v, const JArgs *a) {
    (void)ev, (void)line, (void)a;
    return v.kind == JV_STRING || v.kind == JV_LIST || v.kind == JV_DICT || v.kind == JV_UNDEFINED ||
           v.kind == JV_LOOP;
}

static bool t_sequence(JEval *ev, int line, JValue v, const JArgs *a) {
    (void)ev, (void)line, (void)a;
    // len() and __getitem__ both exist.
    if (v.kind == JV_LIST) {
        return v.l->kind == JL_LIST || v.l->kind == JL_TUPLE || v.l->kind == JL_RANGE;
    }
    return v.kind == JV_STRING || v.kind == JV_DICT || v.kind == JV_UNDEFINED;
}

static bool t_lower(JEval *ev, int line, JValue v, const JArgs *a) {
    (void)a;
    return jtext_is_case(jv_to_str(ev, line, v), false);
}

static bool t_upper(JEval *ev, int line, JValue v, const JArgs *a) {
    (void)a;
    return jtext_is_case(jv_to_str(ev, line, v), true);
}

static bool is_divisible(JEval *ev, int line, JValue v, JValue by) {
    return jv_equal(jeval_binop(ev, line, OP_MOD, v, by), jv_int(0));
}

static bool t_divisibleby(JEval *ev, int line, JValue v, const JArgs *a) {
    return is_divisible(ev, line, v, test_arg(ev, line, a, "divisibleby"));
}

static bool t_even(JEval *ev, int line, JValue v, const JArgs *a) {
    (void)a;
    return is_divisible(ev, line, v, jv_int(2));
}

static bool t_odd(JEval *ev, int line, JValue v, const JArgs *a) {
    (void)a;
    return jv_equal(jeval_binop(ev, line, OP_MOD, v, jv_int(2)), jv_int(1));
}

static bool t_in(JEval *ev, int line, JValue v, const JArgs *a) {
    return jeval_contains(ev, line, test_arg(ev, line, a, "in"), v);
}

static bool t_sameas(JEval *ev, int line, JValue v, const JArgs *a) {
    JValue other = test_arg(ev, line, a, "sameas");
    if (v.kind != other.kind) {
        return false;
    }
    switch (v.kind) {
    case JV_NONE: return true;
    case JV_BOOL: return v.b == other.b;
    case JV_INT:
        // CPython caches the ints -5..256, so only those are reliably the same object.
        if (v.i >= -5 && v.i <= 256) {
            return v.i == other.i;
        }
        break;
    case JV_STRING: return v.s == other.s;
    case JV_LIST: return v.l == other.l;
    case JV_DICT:
    case JV_NAMESPACE: return v.d == other.d;
    case JV_FUNC: return v.fn == other.fn;
    default: break;
    }
    JTHROW(ev, line, "the sameas test on %s values depends on Python object identity and is not supported",
           jv_type_name(v));
}

static bool t_filter(JEval *ev, int line, JValue v, const JArgs *a) {
    (void)ev, (void)line, (void)a;
    bool known;
    return v.kind == JV_STRING && (jfilter_lookup(v.s->data, &known) >= 0 || known);
}

static bool t_test(JEval *ev, int line, JValue v, const JArgs *a) {
    (void)ev, (void)line, (void)a;
    bool known;
    return v.kind == JV_STRING && (jtest_lookup(v.s->data, &known) >= 0 || known);
}

// A test is either a function or, for the comparison tests, Python's comparison operator with the
// test's argument on the right (`x is gt 1` is `x > 1`).
static const struct {
    const char *name;
    TestFn fn;  // NULL for a comparison test
    JOp op;     // the comparison when fn is NULL
} TESTS[] = {
    {"boolean", t_boolean, 0},     {"callable", t_callable, 0},   {"defined", t_defined, 0},
    {"divisibleby", t_divisibleby, 0}, {"eq", NULL, OP_EQ},        {"equalto", NULL, OP_EQ},
    {"==", NULL, OP_EQ},           {"escaped", t_escaped, 0},     {"even", t_even, 0},
    {"false", t_false, 0},         {"filter", t_filter, 0},       {"float", t_float, 0},
    {"ge", NULL, OP_GE},           {">=", NULL, OP_GE},           {"greaterthan", NULL, OP_GT},
    {"gt", NULL, OP_GT},           {">", NULL, OP_GT},            {"in", t_in, 0},
    {"integer", t_integer, 0},     {"iterable", t_iterable, 0},   {"le", NULL, OP_LE},
    {"<=", NULL, OP_LE},           {"lessthan", NULL, OP_LT},     {"lt", NULL, OP_LT},
    {"<", NULL, OP_LT},            {"lower", t_lower, 0},         {"mapping", t_mapping, 0},
    {"ne", NULL, OP_NE},           {"!=", NULL, OP_NE},           {"none", t_none, 0},
    {"number", t_number, 0},       {"odd", t_odd, 0},             {"sameas", t_sameas, 0},
    {"sequence", t_sequence, 0},   {"string", t_string, 0},       {"test", t_test, 0},
    {"true", t_true, 0},           {"undefined", t_undefined, 0}, {"upper", t_upper, 0},
};

int jtest_lookup(const char *name, bool *known) {
    *known = false;
    for (size_t i = 0; i < ARRAY_LEN(TESTS); i++) {
        if (!strcmp(TESTS[i].name, name)) {
            *known = true;
            return (int)i;
        }
    }
    return -1;
}

bool jtest_apply(JEval *ev, int line, int id, JValue value, const JArgs *args) {
    if (!TESTS[id].fn) {
        return jeval_compare(ev, line, TESTS[id].op, value, test_arg(ev, line, args, TESTS[id].name));
    }
    return TESTS[id].fn(ev, line, value, args);
}
