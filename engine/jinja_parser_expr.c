// jinja_parser_expr.c: the expression grammar of jinja2 3.1 (parser.py), function by function, so
// that operator precedence and the places where a filter or a test may stand are the same:
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
#include "jinja_parser.h"

static JNode *parse_unary(Parser *p, bool with_filter);
static JNode *parse_postfix(Parser *p, JNode *node);
static JNode *parse_condexpr(Parser *p);
static JNode *parse_or(Parser *p);

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
            push_keyword(p, node, key, jparse_expression(p, true), &caps);
        } else {
            if (node->args2.n > 0) {
                fail_at(p, open, "invalid syntax for function call expression: %s",
                        "positional argument after a keyword argument");
            }
            list_push(p, &node->args, jparse_expression(p, true), &caps.cap_pos);
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

JNode *jparse_filter(Parser *p, JNode *node, bool start_inline) {
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
        JNode *arg = parse_postfix(p, jparse_primary(p));
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
        start = jparse_expression(p, true);
        if (!is_op(p, OP_COLON)) {
            return start;
        }
    }
    next(p); // ':'
    JNode *slice = new_node(p, JN_SLICE, at);
    slice->a = start;
    if (!is_op(p, OP_COLON) && !is_op(p, OP_RBRACKET) && !is_op(p, OP_COMMA)) {
        slice->b = jparse_expression(p, true);
    }
    if (skip_op(p, OP_COLON)) {
        if (!is_op(p, OP_RBRACKET) && !is_op(p, OP_COMMA)) {
            slice->c = jparse_expression(p, true);
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
            node = jparse_filter(p, node, false);
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
        list_push(p, &n->args, jparse_expression(p, true), &cap);
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
        list_push(p, &n->args, jparse_expression(p, true), &cap_keys);
        expect_op(p, OP_COLON);
        list_push(p, &n->args2, jparse_expression(p, true), &cap_values);
    }
    expect_op(p, OP_RBRACE);
    return n;
}

JNode *jparse_primary(Parser *p) {
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
        n = jparse_tuple(p, false, true, NULL, true);
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
        n = jparse_primary(p);
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

JNode *jparse_expression(Parser *p, bool with_condexpr) {
    return with_condexpr ? parse_condexpr(p) : parse_or(p);
}

static bool is_tuple_end(Parser *p, const char *extra_end) {
    JToken *t = cur(p);
    if (t->kind == TK_VAR_END || t->kind == TK_BLOCK_END || (t->kind == TK_OP && t->op == OP_RPAREN)) {
        return true;
    }
    return extra_end && is_name(t, extra_end);
}

JNode *jparse_tuple(Parser *p, bool simplified, bool with_condexpr, const char *extra_end,
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
        list_push(p, &items, simplified ? jparse_primary(p) : jparse_expression(p, with_condexpr), &cap);
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

