// jinja_parser.c: tokens -> syntax tree. A recursive-descent parser that follows jinja2 3.1's
// parser.py; this file parses the statements (tags) and the template body, and
// jinja_parser_expr.c the expressions.
#include "jinja_parser.h"

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
        target = jparse_tuple(p, true, false, extra_end, false);
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
        node->a = jparse_tuple(p, false, false, NULL, false);
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
    n->b = jparse_tuple(p, false, false, "recursive", false);
    if (skip_name(p, "if")) {
        n->c = jparse_expression(p, true);
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
        n->b = jparse_tuple(p, false, true, NULL, false);
        return n;
    }
    JNode *n = new_node(p, JN_SET_BLOCK, at);
    n->a = target;
    n->b = is_op(p, OP_PIPE) ? jparse_filter(p, NULL, false) : NULL;
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
            list_push(p, &n->args2, jparse_expression(p, true), &cap_defaults);
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
    n->a = jparse_expression(p, true);
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
    n->b = jparse_filter(p, NULL, true);
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
        list_push(p, &n->args2, jparse_expression(p, true), &cap_values);
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
        list_push(p, &n->args, jparse_expression(p, true), &cap);
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
            list_push(p, &n->args, jparse_tuple(p, false, true, NULL, false), &cap_args);
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
