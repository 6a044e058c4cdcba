// jinja_parser.c: tokens -> syntax tree, a recursive-descent parser that follows jinja2 3.1's
// parser.py function by function, so that operator precedence and the places where a filter or a
// test may stand are the same:
//
//   expression  := or_expr ["if" or_expr ["else" expression]]
//   or_expr     := and_expr ("or" and_expr)*
//   and_expr    := not_expr ("and" not_expr)*
//   not_expr    := "not" not_expr | compare
//   compare     := math1 (("==" | "!=" | "<" | "<=" | ">" | ">=" | "in" | "not in") math1)*
//   math1       := concat (("+" | "-") concat)*
//   concat      := math2 ("~" math2)*
//   math2       := pow (("*" | "/" | "//" | "%") pow)*
//   pow         := unary ("**" unary)*
//   unary       := ("-" | "+") unary_nofilter | primary postfix* filter_or_test*
//
// so `a | trim + b` is `(a|trim) + b` and `not x is defined` is `not (x is defined)`.
#include "jinja_internal.h"

#include <string.h>

// Expression and statement nesting deeper than this is an error rather than a C stack overflow.
#define MAX_NESTING 300

typedef struct {
    JArena *arena;
    JToken *tokens;
    size_t n, pos;
    int nesting;
    // Names of the blocks being parsed, innermost last, for "unexpected end of template" messages.
    const char *tag_stack[MAX_NESTING];
    int tag_lines[MAX_NESTING];
    int n_tags;
} Parser;

static JToken *cur(Parser *p) {
    return &p->tokens[p->pos];
}

static JToken *peek(Parser *p) {
    return p->pos + 1 < p->n ? &p->tokens[p->pos + 1] : &p->tokens[p->n - 1];
}

static JToken *next(Parser *p) {
    JToken *t = cur(p);
    if (p->pos + 1 < p->n) {
        p->pos++;
    }
    return t;
}

static noreturn void fail_at(Parser *p, const JToken *t, const char *fmt, const char *arg) {
    jerr_throw(p->arena->err, t->line, t->col, fmt, arg);
}

static bool is_op(Parser *p, JOp op) {
    return cur(p)->kind == TK_OP && cur(p)->op == op;
}

static bool is_name(const JToken *t, const char *name) {
    return t->kind == TK_NAME && strcmp(t->text, name) == 0;
}

static bool skip_op(Parser *p, JOp op) {
    if (is_op(p, op)) {
        next(p);
        return true;
    }
    return false;
}

static bool skip_name(Parser *p, const char *name) {
    if (is_name(cur(p), name)) {
        next(p);
        return true;
    }
    return false;
}

static const char *describe(Parser *p, const JToken *t) {
    return jtok_describe(p->arena, t);
}

static void expect_op(Parser *p, JOp op) {
    if (!skip_op(p, op)) {
        char what[64];
        snprintf(what, sizeof what, "'%s'", jop_text(op));
        JToken *t = cur(p);
        jerr_throw(p->arena->err, t->line, t->col, "expected %s, got %s", what, describe(p, t));
    }
}

static JToken *expect_kind(Parser *p, JTokKind kind, const char *what) {
    JToken *t = cur(p);
    if (t->kind != kind) {
        if (t->kind == TK_EOF) {
            jerr_throw(p->arena->err, t->line, t->col, "unexpected end of template, expected %s", what);
        }
        jerr_throw(p->arena->err, t->line, t->col, "expected %s, got %s", what, describe(p, t));
    }
    return next(p);
}

static JNode *new_node(Parser *p, JNodeKind kind, const JToken *at) {
    JNode *n = jarena_alloc(p->arena, sizeof *n);
    n->kind = kind;
    n->line = at->line;
    n->col = at->col;
    return n;
}

// A growable node list in the arena.
static void list_push(Parser *p, JNodeList *l, JNode *n, size_t *cap) {
    l->items = jarena_grow(p->arena, l->items, (size_t)l->n, cap, sizeof *l->items, 4);
    l->items[l->n++] = n;
}

static void enter(Parser *p) {
    if (++p->nesting > MAX_NESTING) {
        fail_at(p, cur(p), "expression or blocks nested more than %s levels deep", "300");
    }
}

static void leave(Parser *p) {
    p->nesting--;
}

static JNode *parse_expression(Parser *p, bool with_condexpr);
static JNode *parse_unary(Parser *p, bool with_filter);
static JNode *parse_primary(Parser *p);
static JNode *parse_postfix(Parser *p, JNode *node);
static JNode *parse_tuple(Parser *p, bool simplified, bool with_condexpr, const char *extra_end,
                          bool explicit_parens);
static JNode *parse_filter(Parser *p, JNode *node, bool start_inline);

static JNode *parse_condexpr(Parser *p);
static JNode *parse_or(Parser *p);

// ----------------------------------------------------------------------------
// Expressions

// Arguments in the making: positional in node->args, keywords in node->args2 with node->names.
typedef struct {
    size_t cap_pos, cap_kw, cap_names;
} ArgCaps;

static void push_keyword(Parser *p, JNode *node, const char *name, JNode *value, ArgCaps *caps) {
    node->names = jarena_grow(p->arena, node->names, (size_t)node->args2.n, &caps->cap_names,
                              sizeof *node->names, 4);
    node->names[node->args2.n] = name;
    list_push(p, &node->args2, value, &caps->cap_kw);
}

// Parses "(a, b, key=c)" into node->args / node->args2 / node->names.
static void parse_call_args(Parser *p, JNode *node) {
    ArgCaps caps = {0};
    JToken *open = cur(p);
    expect_op(p, OP_LPAREN);
    bool require_comma = false;
    while (!is_op(p, OP_RPAREN)) {
        if (require_comma) {
            expect_op(p, OP_COMMA);
            if (is_op(p, OP_RPAREN)) {
                break;
            }
        }
        if (is_op(p, OP_MUL) || is_op(p, OP_POW)) {
            fail_at(p, cur(p), "%s argument unpacking in calls is not supported",
                    is_op(p, OP_MUL) ? "*" : "**");
        }
        if (cur(p)->kind == TK_NAME && peek(p)->kind == TK_OP && peek(p)->op == OP_ASSIGN) {
            const char *key = cur(p)->text;
            next(p);
            next(p);
            push_keyword(p, node, key, parse_expression(p, true), &caps);
        } else {
            if (node->args2.n > 0) {
                fail_at(p, open, "invalid syntax for function call expression: %s",
                        "positional argument after a keyword argument");
            }
            list_push(p, &node->args, parse_expression(p, true), &caps.cap_pos);
        }
        require_comma = true;
    }
    expect_op(p, OP_RPAREN);
}

static JNode *parse_call(Parser *p, JNode *callee) {
    JNode *n = new_node(p, JN_CALL, cur(p));
    n->a = callee;
    parse_call_args(p, n);
    return n;
}

// Parses a dotted filter or test name.
static const char *parse_dotted_name(Parser *p) {
    JToken *t = expect_kind(p, TK_NAME, "a filter or test name");
    const char *name = t->text;
    while (is_op(p, OP_DOT)) {
        next(p);
        JToken *part = expect_kind(p, TK_NAME, "a name");
        size_t n = strlen(name) + strlen(part->text) + 2;
        char *joined = jarena_alloc(p->arena, n);
        snprintf(joined, n, "%s.%s", name, part->text);
        name = joined;
    }
    return name;
}

static JNode *parse_filter(Parser *p, JNode *node, bool start_inline) {
    while (is_op(p, OP_PIPE) || start_inline) {
        if (!start_inline) {
            next(p);
        }
        JToken *at = cur(p);
        JNode *f = new_node(p, JN_FILTER, at);
        f->a = node;
        f->name = parse_dotted_name(p);
        bool known = false;
        f->id = jfilter_lookup(f->name, &known);
        if (f->id < 0) {
            fail_at(p, at,
                    known ? "the filter '%s' is not supported by this interpreter"
                          : "no filter named '%s'",
                    f->name);
        }
        if (is_op(p, OP_LPAREN)) {
            parse_call_args(p, f);
        }
        node = f;
        start_inline = false;
    }
    return node;
}

static JNode *parse_test(Parser *p, JNode *node) {
    JToken *is_tok = next(p); // "is"
    bool negated = skip_name(p, "not");
    JToken *at = cur(p);
    JNode *t = new_node(p, JN_TEST, is_tok);
    t->a = node;
    t->name = parse_dotted_name(p);
    bool known = false;
    t->id = jtest_lookup(t->name, &known);
    if (t->id < 0) {
        fail_at(p, at,
                known ? "the test '%s' is not supported by this interpreter" : "no test named '%s'",
                t->name);
    }
    JToken *c = cur(p);
    if (is_op(p, OP_LPAREN)) {
        parse_call_args(p, t);
    } else if ((c->kind == TK_NAME || c->kind == TK_STRING || c->kind == TK_INT ||
                c->kind == TK_FLOAT ||
                (c->kind == TK_OP && (c->op == OP_LPAREN || c->op == OP_LBRACKET || c->op == OP_LBRACE))) &&
               !is_name(c, "else") && !is_name(c, "or") && !is_name(c, "and")) {
        // jinja2 accepts one argument without parentheses: `x is divisibleby 3`.
        if (is_name(c, "is")) {
            fail_at(p, c, "you cannot chain multiple tests with %s", "'is'");
        }
        size_t cap = 0;
        JNode *arg = parse_postfix(p, parse_primary(p));
        list_push(p, &t->args, arg, &cap);
    }
    if (!negated) {
        return t;
    }
    JNode *not_node = new_node(p, JN_NOT, is_tok);
    not_node->a = t;
    return not_node;
}

// Parses one subscript: an expression or a slice "a:b:c" with optional parts.
static JNode *parse_subscribed(Parser *p) {
    JToken *at = cur(p);
    JNode *start = NULL;
    if (!is_op(p, OP_COLON)) {
        start = parse_expression(p, true);
        if (!is_op(p, OP_COLON)) {
            return start;
        }
    }
    next(p); // ':'
    JNode *slice = new_node(p, JN_SLICE, at);
    slice->a = start;
    if (!is_op(p, OP_COLON) && !is_op(p, OP_RBRACKET) && !is_op(p, OP_COMMA)) {
        slice->b = parse_expression(p, true);
    }
    if (skip_op(p, OP_COLON)) {
        if (!is_op(p, OP_RBRACKET) && !is_op(p, OP_COMMA)) {
            slice->c = parse_expression(p, true);
        }
    }
    return slice;
}

static JNode *parse_subscript(Parser *p, JNode *node) {
    JToken *t = next(p);
    if (t->op == OP_DOT) {
        JToken *attr = next(p);
        if (attr->kind == TK_NAME) {
            JNode *n = new_node(p, JN_GETATTR, t);
            n->a = node;
            n->name = attr->text;
            return n;
        }
        if (attr->kind != TK_INT) {
            fail_at(p, attr, "expected name or number after '.', got %s", describe(p, attr));
        }
        JNode *index = new_node(p, JN_CONST, attr);
        index->value = jv_int(attr->ival);
        JNode *n = new_node(p, JN_GETITEM, t);
        n->a = node;
        n->b = index;
        return n;
    }
    // '['
    JNodeList items = {0};
    size_t cap = 0;
    while (!is_op(p, OP_RBRACKET)) {
        if (items.n) {
            expect_op(p, OP_COMMA);
        }
        list_push(p, &items, parse_subscribed(p), &cap);
    }
    expect_op(p, OP_RBRACKET);
    JNode *n = new_node(p, JN_GETITEM, t);
    n->a = node;
    if (items.n == 1) {
        n->b = items.items[0];
    } else {
        JNode *tuple = new_node(p, JN_TUPLE, t);
        tuple->args = items;
        n->b = tuple;
    }
    return n;
}

static JNode *parse_postfix(Parser *p, JNode *node) {
    for (;;) {
        if (is_op(p, OP_DOT) || is_op(p, OP_LBRACKET)) {
            node = parse_subscript(p, node);
        } else if (is_op(p, OP_LPAREN)) {
            node = parse_call(p, node);
        } else {
            return node;
        }
    }
}

static JNode *parse_filter_expr(Parser *p, JNode *node) {
    for (;;) {
        if (is_op(p, OP_PIPE)) {
            node = parse_filter(p, node, false);
        } else if (is_name(cur(p), "is")) {
            node = parse_test(p, node);
        } else if (is_op(p, OP_LPAREN)) {
            node = parse_call(p, node);
        } else {
            return node;
        }
    }
}

static JNode *parse_list(Parser *p) {
    JNode *n = new_node(p, JN_LIST, next(p));
    size_t cap = 0;
    while (!is_op(p, OP_RBRACKET)) {
        if (n->args.n) {
            expect_op(p, OP_COMMA);
        }
        if (is_op(p, OP_RBRACKET)) {
            break;
        }
        list_push(p, &n->args, parse_expression(p, true), &cap);
    }
    expect_op(p, OP_RBRACKET);
    return n;
}

static JNode *parse_dict(Parser *p) {
    JNode *n = new_node(p, JN_DICT, next(p));
    size_t cap_keys = 0, cap_values = 0;
    while (!is_op(p, OP_RBRACE)) {
        if (n->args.n) {
            expect_op(p, OP_COMMA);
        }
        if (is_op(p, OP_RBRACE)) {
            break;
        }
        list_push(p, &n->args, parse_expression(p, true), &cap_keys);
        expect_op(p, OP_COLON);
        list_push(p, &n->args2, parse_expression(p, true), &cap_values);
    }
    expect_op(p, OP_RBRACE);
    return n;
}

static JNode *parse_primary(Parser *p) {
    JToken *t = cur(p);
    JNode *n;
    enter(p);
    if (t->kind == TK_NAME) {
        next(p);
        if (!strcmp(t->text, "true") || !strcmp(t->text, "True") || !strcmp(t->text, "false") ||
            !strcmp(t->text, "False")) {
            n = new_node(p, JN_CONST, t);
            n->value = jv_bool(t->text[0] == 't' || t->text[0] == 'T');
        } else if (!strcmp(t->text, "none") || !strcmp(t->text, "None")) {
            n = new_node(p, JN_CONST, t);
            n->value = jv_none();
        } else {
            n = new_node(p, JN_NAME, t);
            n->name = t->text;
        }
    } else if (t->kind == TK_STRING) {
        // Adjacent string literals are joined, as in Python.
        next(p);
        JBuf joined;
        jbuf_init(&joined, p->arena);
        jbuf_append(&joined, t->str->data, t->str->len);
        while (cur(p)->kind == TK_STRING) {
            JStr *more = next(p)->str;
            jbuf_append(&joined, more->data, more->len);
        }
        n = new_node(p, JN_CONST, t);
        n->value = jv_str(p->arena, joined.data ? joined.data : "", joined.len);
    } else if (t->kind == TK_INT || t->kind == TK_FLOAT) {
        next(p);
        n = new_node(p, JN_CONST, t);
        n->value = t->kind == TK_INT ? jv_int(t->ival) : jv_float(t->fval);
    } else if (is_op(p, OP_LPAREN)) {
        next(p);
        n = parse_tuple(p, false, true, NULL, true);
        expect_op(p, OP_RPAREN);
    } else if (is_op(p, OP_LBRACKET)) {
        n = parse_list(p);
    } else if (is_op(p, OP_LBRACE)) {
        n = parse_dict(p);
    } else if (t->kind == TK_EOF) {
        fail_at(p, t, "unexpected end of template, expected an expression%s", "");
    } else {
        fail_at(p, t, "unexpected %s, expected an expression", describe(p, t));
    }
    leave(p);
    return n;
}

static JNode *parse_unary(Parser *p, bool with_filter) {
    JToken *t = cur(p);
    JNode *n;
    enter(p);
    if (is_op(p, OP_SUB) || is_op(p, OP_ADD)) {
        next(p);
        n = new_node(p, JN_UNARY, t);
        n->op = t->op;
        n->a = parse_unary(p, false);
    } else {
        n = parse_primary(p);
    }
    n = parse_postfix(p, n);
    if (with_filter) {
        n = parse_filter_expr(p, n);
    }
    leave(p);
    return n;
}

static JNode *binop(Parser *p, const JToken *at, JNodeKind kind, JOp op, JNode *left, JNode *right) {
    JNode *n = new_node(p, kind, at);
    n->op = op;
    n->a = left;
    n->b = right;
    return n;
}

typedef JNode *(*ParseFn)(Parser *p);
// Tells whether the current token continues a chain, and which node and operator it makes.
typedef bool (*ChainOpFn)(Parser *p, JNodeKind *kind, JOp *op);

// Parses operand (operator operand)* into a left-associative tree. Each link counts as one level of
// nesting, because evaluating the tree recurses once per link.
static JNode *parse_chain(Parser *p, ParseFn operand, ChainOpFn is_chain_op) {
    JNode *left = operand(p);
    int links = 0;
    JNodeKind kind;
    JOp op;
    while (is_chain_op(p, &kind, &op)) {
        JToken *at = next(p);
        enter(p);
        links++;
        left = binop(p, at, kind, op, left, operand(p));
    }
    p->nesting -= links;
    return left;
}

static bool pow_op(Parser *p, JNodeKind *kind, JOp *op) {
    *kind = JN_BINOP;
    *op = OP_POW;
    return is_op(p, OP_POW);
}

static bool mul_op(Parser *p, JNodeKind *kind, JOp *op) {
    *kind = JN_BINOP;
    *op = cur(p)->op;
    return is_op(p, OP_MUL) || is_op(p, OP_DIV) || is_op(p, OP_FLOORDIV) || is_op(p, OP_MOD);
}

static bool add_op(Parser *p, JNodeKind *kind, JOp *op) {
    *kind = JN_BINOP;
    *op = cur(p)->op;
    return is_op(p, OP_ADD) || is_op(p, OP_SUB);
}

static bool and_op(Parser *p, JNodeKind *kind, JOp *op) {
    *kind = JN_AND;
    *op = OP_ADD;
    return is_name(cur(p), "and");
}

static bool or_op(Parser *p, JNodeKind *kind, JOp *op) {
    *kind = JN_OR;
    *op = OP_ADD;
    return is_name(cur(p), "or");
}

static JNode *parse_unary_filtered(Parser *p) {
    return parse_unary(p, true);
}

static JNode *parse_pow(Parser *p) {
    return parse_chain(p, parse_unary_filtered, pow_op);
}

static JNode *parse_math2(Parser *p) {
    return parse_chain(p, parse_pow, mul_op);
}

static JNode *parse_concat(Parser *p) {
    JToken *at = cur(p);
    JNode *first = parse_math2(p);
    if (!is_op(p, OP_TILDE)) {
        return first;
    }
    JNode *n = new_node(p, JN_CONCAT, at);
    size_t cap = 0;
    list_push(p, &n->args, first, &cap);
    while (skip_op(p, OP_TILDE)) {
        list_push(p, &n->args, parse_math2(p), &cap);
    }
    return n;
}

static JNode *parse_math1(Parser *p) {
    return parse_chain(p, parse_concat, add_op);
}

static JNode *parse_compare(Parser *p) {
    JToken *at = cur(p);
    JNode *first = parse_math1(p);
    JNode *n = NULL;
    size_t cap = 0, cap_ops = 0;
    for (;;) {
        JOp op;
        JToken *t = cur(p);
        if (t->kind == TK_OP && (t->op == OP_EQ || t->op == OP_NE || t->op == OP_LT ||
                                 t->op == OP_LE || t->op == OP_GT || t->op == OP_GE)) {
            op = t->op;
            next(p);
        } else if (is_name(t, "in")) {
            op = OP_IN;
            next(p);
        } else if (is_name(t, "not") && is_name(peek(p), "in")) {
            op = OP_NOTIN;
            next(p);
            next(p);
        } else {
            break;
        }
        if (!n) {
            n = new_node(p, JN_COMPARE, at);
            n->a = first;
        }
        n->ops = jarena_grow(p->arena, n->ops, (size_t)n->args.n, &cap_ops, sizeof *n->ops, 4);
        n->ops[n->args.n] = op;
        list_push(p, &n->args, parse_math1(p), &cap);
    }
    return n ? n : first;
}

static JNode *parse_not(Parser *p) {
    if (is_name(cur(p), "not")) {
        JToken *at = next(p);
        enter(p);
        JNode *n = new_node(p, JN_NOT, at);
        n->a = parse_not(p);
        leave(p);
        return n;
    }
    return parse_compare(p);
}

static JNode *parse_and(Parser *p) {
    return parse_chain(p, parse_not, and_op);
}

static JNode *parse_or(Parser *p) {
    return parse_chain(p, parse_and, or_op);
}

static JNode *parse_condexpr(Parser *p) {
    JToken *at = cur(p);
    JNode *expr = parse_or(p);
    while (skip_name(p, "if")) {
        JNode *n = new_node(p, JN_COND, at);
        n->b = expr;
        n->a = parse_or(p);
        if (skip_name(p, "else")) {
            enter(p);
            n->c = parse_condexpr(p);
            leave(p);
        }
        expr = n;
    }
    return expr;
}

static JNode *parse_expression(Parser *p, bool with_condexpr) {
    return with_condexpr ? parse_condexpr(p) : parse_or(p);
}

static bool is_tuple_end(Parser *p, const char *extra_end) {
    JToken *t = cur(p);
    if (t->kind == TK_VAR_END || t->kind == TK_BLOCK_END || (t->kind == TK_OP && t->op == OP_RPAREN)) {
        return true;
    }
    return extra_end && is_name(t, extra_end);
}

// Parses "a, b, c" as a tuple, or a single expression when there is no comma. simplified parses
// only primaries (assignment targets).
static JNode *parse_tuple(Parser *p, bool simplified, bool with_condexpr, const char *extra_end,
                          bool explicit_parens) {
    JToken *at = cur(p);
    JNodeList items = {0};
    size_t cap = 0;
    bool is_tuple = false;
    for (;;) {
        if (items.n) {
            expect_op(p, OP_COMMA);
        }
        if (is_tuple_end(p, extra_end)) {
            break;
        }
        list_push(p, &items, simplified ? parse_primary(p) : parse_expression(p, with_condexpr), &cap);
        if (is_op(p, OP_COMMA)) {
            is_tuple = true;
        } else {
            break;
        }
    }
    if (!is_tuple) {
        if (items.n) {
            return items.items[0];
        }
        if (!explicit_parens) {
            fail_at(p, cur(p), "expected an expression, got %s", describe(p, cur(p)));
        }
    }
    JNode *n = new_node(p, JN_TUPLE, at);
    n->args = items;
    return n;
}

// ----------------------------------------------------------------------------
// Statements

static JNodeList subparse(Parser *p, const char *const *end_tokens);

// Marks an assignment target as a store and checks that it can be assigned.
static void mark_store(Parser *p, JNode *target) {
    if (target->kind == JN_NAME) {
        target->flag = true;
        return;
    }
    if (target->kind == JN_TUPLE) {
        for (int i = 0; i < target->args.n; i++) {
            mark_store(p, target->args.items[i]);
        }
        return;
    }
    jerr_throw(p->arena->err, target->line, target->col, "can't assign to %s",
               target->kind == JN_CONST ? "a constant" : "this expression");
}

static JNode *parse_assign_target(Parser *p, bool name_only, const char *extra_end, bool with_namespace) {
    JToken *t = cur(p);
    if (with_namespace && t->kind == TK_NAME && peek(p)->kind == TK_OP && peek(p)->op == OP_DOT) {
        next(p);
        next(p);
        JToken *attr = expect_kind(p, TK_NAME, "an attribute name");
        JNode *n = new_node(p, JN_NSREF, t);
        n->name2 = t->text;
        n->name = attr->text;
        return n;
    }
    JNode *target;
    if (name_only) {
        JToken *name = expect_kind(p, TK_NAME, "a name");
        target = new_node(p, JN_NAME, name);
        target->name = name->text;
    } else {
        target = parse_tuple(p, true, false, extra_end, false);
    }
    mark_store(p, target);
    return target;
}

static noreturn void fail_unknown_tag(Parser *p, const JToken *at, const char *name,
                                      const char *const *end_tokens) {
    char message[512];
    int n;
    if (name) {
        n = snprintf(message, sizeof message, "encountered unknown tag '%s'.", name);
    } else {
        n = snprintf(message, sizeof message, "unexpected end of template.");
    }
    if (end_tokens && end_tokens[0]) {
        n += snprintf(message + n, sizeof message - (size_t)n, " Jinja was looking for the following tags:");
        for (int i = 0; end_tokens[i] && n < (int)sizeof message; i++) {
            n += snprintf(message + n, sizeof message - (size_t)n, "%s '%s'", i ? " or" : "", end_tokens[i]);
        }
        if (n < (int)sizeof message) {
            n += snprintf(message + n, sizeof message - (size_t)n, ".");
        }
    }
    if (p->n_tags > 0 && n < (int)sizeof message) {
        snprintf(message + n, sizeof message - (size_t)n,
                 " The innermost block that needs to be closed is '%s' (line %d).",
                 p->tag_stack[p->n_tags - 1], p->tag_lines[p->n_tags - 1]);
    }
    fail_at(p, at, "%s", message);
}

// Expects the end of the opening tag, then parses the body up to one of end_tokens; with drop_needle
// the end tag's name is consumed too.
static JNodeList parse_statements(Parser *p, const char *const *end_tokens, bool drop_needle) {
    skip_op(p, OP_COLON);
    expect_kind(p, TK_BLOCK_END, "end of statement block");
    JNodeList body = subparse(p, end_tokens);
    if (cur(p)->kind == TK_EOF) {
        fail_unknown_tag(p, cur(p), NULL, end_tokens);
    }
    if (drop_needle) {
        next(p);
    }
    return body;
}

static bool name_in(const JToken *t, const char *const *names) {
    for (int i = 0; names && names[i]; i++) {
        if (is_name(t, names[i])) {
            return true;
        }
    }
    return false;
}

static JNode *parse_if(Parser *p) {
    static const char *const ends[] = {"elif", "else", "endif", NULL};
    static const char *const endif[] = {"endif", NULL};
    JNode *result = new_node(p, JN_IF, next(p));
    JNode *node = result;
    for (;;) {
        node->a = parse_tuple(p, false, false, NULL, false);
        node->body = parse_statements(p, ends, false);
        JToken *t = next(p);
        if (is_name(t, "elif")) {
            JNode *elif = new_node(p, JN_IF, t);
            node->else_body.items = jarena_alloc(p->arena, sizeof(JNode *));
            node->else_body.items[0] = elif;
            node->else_body.n = 1;
            node = elif;
            continue;
        }
        if (is_name(t, "else")) {
            node->else_body = parse_statements(p, endif, true);
        }
        return result;
    }
}

static JNode *parse_for(Parser *p) {
    static const char *const ends[] = {"endfor", "else", NULL};
    static const char *const endfor[] = {"endfor", NULL};
    JNode *n = new_node(p, JN_FOR, next(p));
    n->a = parse_assign_target(p, false, "in", false);
    if (!skip_name(p, "in")) {
        fail_at(p, cur(p), "expected 'in', got %s", describe(p, cur(p)));
    }
    n->b = parse_tuple(p, false, false, "recursive", false);
    if (skip_name(p, "if")) {
        n->c = parse_expression(p, true);
    }
    n->flag = skip_name(p, "recursive");
    n->body = parse_statements(p, ends, false);
    if (is_name(next(p), "else")) {
        n->else_body = parse_statements(p, endfor, true);
    }
    return n;
}

static JNode *parse_set(Parser *p) {
    static const char *const ends[] = {"endset", NULL};
    JToken *at = next(p);
    JNode *target = parse_assign_target(p, false, NULL, true);
    if (skip_op(p, OP_ASSIGN)) {
        JNode *n = new_node(p, JN_SET, at);
        n->a = target;
        n->b = parse_tuple(p, false, true, NULL, false);
        return n;
    }
    JNode *n = new_node(p, JN_SET_BLOCK, at);
    n->a = target;
    n->b = is_op(p, OP_PIPE) ? parse_filter(p, NULL, false) : NULL;
    n->body = parse_statements(p, ends, true);
    return n;
}

// Parses "(a, b=1)" of a macro or call block: names in n->names, defaults in n->args2 (for the last
// args2.n parameters).
static void parse_signature(Parser *p, JNode *n) {
    size_t cap = 0, cap_defaults = 0;
    expect_op(p, OP_LPAREN);
    while (!is_op(p, OP_RPAREN)) {
        if (n->args.n) {
            expect_op(p, OP_COMMA);
        }
        JNode *param = parse_assign_target(p, true, NULL, false);
        if (skip_op(p, OP_ASSIGN)) {
            list_push(p, &n->args2, parse_expression(p, true), &cap_defaults);
        } else if (n->args2.n) {
            fail_at(p, cur(p), "non-default argument follows default argument%s", "");
        }
        list_push(p, &n->args, param, &cap);
    }
    expect_op(p, OP_RPAREN);
    n->names = jarena_alloc(p->arena, ((size_t)n->args.n + 1) * sizeof *n->names);
    for (int i = 0; i < n->args.n; i++) {
        n->names[i] = n->args.items[i]->name;
    }
}

// Sets uses_varargs / uses_kwargs / uses_caller when the subtree reads those names.
static void scan_special_names(JNode *macro, const JNode *n) {
    if (!n) {
        return;
    }
    if (n->kind == JN_NAME && !n->flag) {
        macro->uses_varargs |= strcmp(n->name, "varargs") == 0;
        macro->uses_kwargs |= strcmp(n->name, "kwargs") == 0;
        macro->uses_caller |= strcmp(n->name, "caller") == 0;
    }
    scan_special_names(macro, n->a);
    scan_special_names(macro, n->b);
    scan_special_names(macro, n->c);
    const JNodeList *lists[] = {&n->args, &n->args2, &n->body, &n->else_body};
    for (size_t k = 0; k < ARRAY_LEN(lists); k++) {
        for (int i = 0; i < lists[k]->n; i++) {
            scan_special_names(macro, lists[k]->items[i]);
        }
    }
}

static void finish_macro(JNode *n) {
    for (int i = 0; i < n->body.n; i++) {
        scan_special_names(n, n->body.items[i]);
    }
    // A parameter with the special name is an ordinary parameter.
    for (int i = 0; i < n->args.n; i++) {
        if (!strcmp(n->names[i], "varargs")) n->uses_varargs = false;
        if (!strcmp(n->names[i], "kwargs")) n->uses_kwargs = false;
        if (!strcmp(n->names[i], "caller")) n->uses_caller = false;
    }
}

static JNode *parse_macro(Parser *p) {
    static const char *const ends[] = {"endmacro", NULL};
    JNode *n = new_node(p, JN_MACRO, next(p));
    n->name = expect_kind(p, TK_NAME, "a macro name")->text;
    parse_signature(p, n);
    n->body = parse_statements(p, ends, true);
    finish_macro(n);
    return n;
}

static JNode *parse_call_block(Parser *p) {
    static const char *const ends[] = {"endcall", NULL};
    JToken *at = next(p);
    JNode *n = new_node(p, JN_CALL_BLOCK, at);
    if (is_op(p, OP_LPAREN)) {
        parse_signature(p, n);
    }
    n->a = parse_expression(p, true);
    if (n->a->kind != JN_CALL) {
        fail_at(p, at, "expected a call after 'call'%s", "");
    }
    n->body = parse_statements(p, ends, true);
    n->name = "caller";
    finish_macro(n);
    return n;
}

static JNode *parse_filter_block(Parser *p) {
    static const char *const ends[] = {"endfilter", NULL};
    JNode *n = new_node(p, JN_FILTER_BLOCK, next(p));
    n->b = parse_filter(p, NULL, true);
    n->body = parse_statements(p, ends, true);
    return n;
}

static JNode *parse_with(Parser *p) {
    static const char *const ends[] = {"endwith", NULL};
    JNode *n = new_node(p, JN_WITH, next(p));
    size_t cap_targets = 0, cap_values = 0;
    while (cur(p)->kind != TK_BLOCK_END) {
        if (n->args.n) {
            expect_op(p, OP_COMMA);
        }
        list_push(p, &n->args, parse_assign_target(p, false, NULL, false), &cap_targets);
        expect_op(p, OP_ASSIGN);
        list_push(p, &n->args2, parse_expression(p, true), &cap_values);
    }
    n->body = parse_statements(p, ends, true);
    return n;
}

static JNode *parse_print(Parser *p) {
    JNode *n = new_node(p, JN_PRINT, next(p));
    size_t cap = 0;
    while (cur(p)->kind != TK_BLOCK_END) {
        if (n->args.n) {
            expect_op(p, OP_COMMA);
        }
        list_push(p, &n->args, parse_expression(p, true), &cap);
    }
    return n;
}

// {% generation %}: transformers' AssistantTracker tag. It renders its body like a call block (a new
// scope); only the assistant-token mask, not used here, depends on it.
static JNode *parse_generation(Parser *p) {
    static const char *const ends[] = {"endgeneration", NULL};
    JNode *n = new_node(p, JN_WITH, next(p));
    n->body = parse_statements(p, ends, true);
    return n;
}

static JNode *parse_statement(Parser *p, const char *const *end_tokens) {
    JToken *t = cur(p);
    if (t->kind != TK_NAME) {
        fail_at(p, t, "tag name expected, got %s", describe(p, t));
    }
    static const char *const unsupported[] = {"include", "import", "from", "extends", "block",
                                              "autoescape", NULL};
    if (name_in(t, unsupported)) {
        fail_at(p, t,
                "the '%s' tag is not supported: chat templates are rendered without a template "
                "loader or inheritance",
                t->text);
    }
    if (p->n_tags == MAX_NESTING) {
        fail_at(p, t, "blocks nested more than %s levels deep", "300");
    }
    p->tag_stack[p->n_tags] = t->text;
    p->tag_lines[p->n_tags] = t->line;
    p->n_tags++;
    enter(p);
    JNode *n;
    if (is_name(t, "if")) {
        n = parse_if(p);
    } else if (is_name(t, "for")) {
        n = parse_for(p);
    } else if (is_name(t, "set")) {
        n = parse_set(p);
    } else if (is_name(t, "macro")) {
        n = parse_macro(p);
    } else if (is_name(t, "call")) {
        n = parse_call_block(p);
    } else if (is_name(t, "filter")) {
        n = parse_filter_block(p);
    } else if (is_name(t, "with")) {
        n = parse_with(p);
    } else if (is_name(t, "print")) {
        n = parse_print(p);
    } else if (is_name(t, "break") || is_name(t, "continue")) {
        n = new_node(p, is_name(t, "break") ? JN_BREAK : JN_CONTINUE, next(p));
    } else if (is_name(t, "generation")) {
        n = parse_generation(p);
    } else {
        p->n_tags--;
        fail_unknown_tag(p, t, t->text, end_tokens);
    }
    leave(p);
    p->n_tags--;
    return n;
}

static JNodeList subparse(Parser *p, const char *const *end_tokens) {
    JNodeList body = {0};
    size_t cap = 0;
    for (;;) {
        JToken *t = cur(p);
        if (t->kind == TK_EOF) {
            return body;
        }
        if (t->kind == TK_DATA) {
            JNode *n = new_node(p, JN_OUTPUT, t);
            n->value = jv_str(p->arena, t->text, t->len);
            list_push(p, &body, n, &cap);
            next(p);
        } else if (t->kind == TK_VAR_BEGIN) {
            next(p);
            JNode *n = new_node(p, JN_PRINT, t);
            size_t cap_args = 0;
            list_push(p, &n->args, parse_tuple(p, false, true, NULL, false), &cap_args);
            expect_kind(p, TK_VAR_END, "end of print statement");
            list_push(p, &body, n, &cap);
        } else if (t->kind == TK_BLOCK_BEGIN) {
            next(p);
            if (name_in(cur(p), end_tokens)) {
                return body;
            }
            list_push(p, &body, parse_statement(p, end_tokens), &cap);
            expect_kind(p, TK_BLOCK_END, "end of statement block");
        } else {
            fail_at(p, t, "unexpected %s", describe(p, t));
        }
    }
}

// Rejects break and continue outside a for loop (a macro body starts a new function, so a loop
// around the macro does not count), as Python's compiler rejects the code jinja2 generates.
static void check_loop_controls(Parser *p, const JNodeList *body, bool in_loop) {
    for (int i = 0; i < body->n; i++) {
        JNode *n = body->items[i];
        if ((n->kind == JN_BREAK || n->kind == JN_CONTINUE) && !in_loop) {
            jerr_throw(p->arena->err, n->line, n->col, "'%s' outside a for loop",
                       n->kind == JN_BREAK ? "break" : "continue");
        }
        bool inner = in_loop;
        if (n->kind == JN_MACRO || n->kind == JN_CALL_BLOCK || n->kind == JN_SET_BLOCK ||
            n->kind == JN_FILTER_BLOCK) {
            inner = false;
        }
        check_loop_controls(p, &n->body, n->kind == JN_FOR ? true : inner);
        check_loop_controls(p, &n->else_body, n->kind == JN_FOR ? in_loop : inner);
    }
}

JNode *jparse(JArena *a, JToken *tokens, size_t n_tokens) {
    Parser p = {.arena = a, .tokens = tokens, .n = n_tokens};
    JNode *root = new_node(&p, JN_BODY, &tokens[0]);
    root->body = subparse(&p, NULL);
    check_loop_controls(&p, &root->body, false);
    return root;
}
