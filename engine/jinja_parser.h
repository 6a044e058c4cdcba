// jinja_parser.h: the parser state and token helpers shared by jinja_parser.c (statements) and
// jinja_parser_expr.c (expressions). Private to the parser.
#ifndef QBIAS_JINJA_PARSER_H
#define QBIAS_JINJA_PARSER_H

#include <string.h>

#include "jinja_internal.h"

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

static inline JToken *cur(Parser *p) {
    return &p->tokens[p->pos];
}

static inline JToken *peek(Parser *p) {
    return p->pos + 1 < p->n ? &p->tokens[p->pos + 1] : &p->tokens[p->n - 1];
}

static inline JToken *next(Parser *p) {
    JToken *t = cur(p);
    if (p->pos + 1 < p->n) {
        p->pos++;
    }
    return t;
}

static inline noreturn void fail_at(Parser *p, const JToken *t, const char *fmt, const char *arg) {
    jerr_throw(p->arena->err, t->line, t->col, fmt, arg);
}

static inline bool is_op(Parser *p, JOp op) {
    return cur(p)->kind == TK_OP && cur(p)->op == op;
}

static inline bool is_name(const JToken *t, const char *name) {
    return t->kind == TK_NAME && strcmp(t->text, name) == 0;
}

static inline bool skip_op(Parser *p, JOp op) {
    if (is_op(p, op)) {
        next(p);
        return true;
    }
    return false;
}

static inline bool skip_name(Parser *p, const char *name) {
    if (is_name(cur(p), name)) {
        next(p);
        return true;
    }
    return false;
}

static inline const char *describe(Parser *p, const JToken *t) {
    return jtok_describe(p->arena, t);
}

static inline void expect_op(Parser *p, JOp op) {
    if (!skip_op(p, op)) {
        char what[64];
        snprintf(what, sizeof what, "'%s'", jop_text(op));
        JToken *t = cur(p);
        jerr_throw(p->arena->err, t->line, t->col, "expected %s, got %s", what, describe(p, t));
    }
}

static inline JToken *expect_kind(Parser *p, JTokKind kind, const char *what) {
    JToken *t = cur(p);
    if (t->kind != kind) {
        if (t->kind == TK_EOF) {
            jerr_throw(p->arena->err, t->line, t->col, "unexpected end of template, expected %s", what);
        }
        jerr_throw(p->arena->err, t->line, t->col, "expected %s, got %s", what, describe(p, t));
    }
    return next(p);
}

static inline JNode *new_node(Parser *p, JNodeKind kind, const JToken *at) {
    JNode *n = jarena_alloc(p->arena, sizeof *n);
    n->kind = kind;
    n->line = at->line;
    n->col = at->col;
    return n;
}

// A growable node list in the arena.
static inline void list_push(Parser *p, JNodeList *l, JNode *n, size_t *cap) {
    l->items = jarena_grow(p->arena, l->items, (size_t)l->n, cap, sizeof *l->items, 4);
    l->items[l->n++] = n;
}

static inline void enter(Parser *p) {
    if (++p->nesting > MAX_NESTING) {
        fail_at(p, cur(p), "expression or blocks nested more than %s levels deep", "300");
    }
}

static inline void leave(Parser *p) {
    p->nesting--;
}

// Expressions (jinja_parser_expr.c), named after jinja2's parser methods.
JNode *jparse_expression(Parser *p, bool with_condexpr);
JNode *jparse_primary(Parser *p);
// Parses "a, b, c" as a tuple, or a single expression when there is no comma. simplified parses
// only primaries (assignment targets); extra_end names a keyword that also ends the tuple.
JNode *jparse_tuple(Parser *p, bool simplified, bool with_condexpr, const char *extra_end, bool explicit_parens);
// Parses "| name(args) | ..." applied to node (NULL for the body of a filter block); start_inline
// means the first name comes without a "|".
JNode *jparse_filter(Parser *p, JNode *node, bool start_inline);

#endif
