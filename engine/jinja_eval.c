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

static JValue eval_subscript(JEval *ev, const JNode *n) {
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

// a < b < c is (a < b) and (b < c), each operand evaluated once, stopping at the first false.
static JValue eval_compare_chain(JEval *ev, const JNode *n) {
    JValue left = jeval_expr(ev, n->a);
    for (int i = 0; i < n->args.n; i++) {
        JValue right = jeval_expr(ev, n->args.items[i]);
        if (!jeval_compare(ev, n->line, n->ops[i], left, right)) {
            return jv_bool(false);
        }
        left = right;
    }
    return jv_bool(true);
}

// a ~ b ~ c: the str() of each part, joined.
static JValue eval_concat(JEval *ev, const JNode *n) {
    JBuf b;
    jbuf_init(&b, ev->arena);
    for (int i = 0; i < n->args.n; i++) {
        jv_append_str(ev, n->line, &b, jeval_expr(ev, n->args.items[i]));
    }
    return jv_str(ev->arena, b.data ? b.data : "", b.len);
}

// List, tuple and dict literals.
static JValue eval_display(JEval *ev, const JNode *n) {
    if (n->kind != JN_DICT) {
        JValue list = jv_list(ev->arena, n->kind == JN_LIST ? JL_LIST : JL_TUPLE, (size_t)n->args.n);
        for (int i = 0; i < n->args.n; i++) {
            list.l->items[i] = jeval_expr(ev, n->args.items[i]);
        }
        return list;
    }
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

JValue jeval_expr(JEval *ev, const JNode *n) {
    jeval_step(ev, n->line);
    switch (n->kind) {
    case JN_CONST: return n->value;
    case JN_NAME: return jeval_lookup(ev, current_frame(ev), n->name);
    case JN_GETATTR: return jeval_getattr(ev, n->line, jeval_expr(ev, n->a), n->name);
    case JN_GETITEM: return eval_subscript(ev, n);
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
    case JN_UNARY: return jeval_unary(ev, n->line, n->op, jeval_expr(ev, n->a));
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
    case JN_COMPARE: return eval_compare_chain(ev, n);
    case JN_CONCAT: return eval_concat(ev, n);
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
    case JN_TUPLE:
    case JN_DICT: return eval_display(ev, n);
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

// {% call m(args) %}body{% endcall %} calls m with caller=<the body as a macro> and prints the
// result.
static void exec_call_block(JEval *ev, const JNode *n, JFrame *frame) {
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
    case JN_CALL_BLOCK:
        exec_call_block(ev, n, frame);
        return EXEC_NORMAL;
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
