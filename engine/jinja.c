// jinja.c: public entry points of the Jinja interpreter (compile, render, free), and the arena,
// error and buffer helpers that the other jinja_*.c files share.
#include "jinja_internal.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_MAX_BYTES ((size_t)256 << 20)
#define DEFAULT_MAX_STEPS 50000000LL
// Arena chunk size: large enough that small templates need one chunk.
#define CHUNK_BYTES ((size_t)64 << 10)

// ----------------------------------------------------------------------------
// Errors

noreturn void jerr_throw(JErr *e, int line, int col, const char *fmt, ...) {
    int n = 0;
    if (line > 0 && col > 0) {
        n = snprintf(e->msg, sizeof e->msg, "template line %d, column %d: ", line, col);
    } else if (line > 0) {
        n = snprintf(e->msg, sizeof e->msg, "template line %d: ", line);
    }
    va_list args;
    va_start(args, fmt);
    vsnprintf(e->msg + n, sizeof e->msg - (size_t)n, fmt, args);
    va_end(args);
    longjmp(e->jump, 1);
}

// ----------------------------------------------------------------------------
// Arena

struct JChunk {
    JChunk *next;
    size_t used, cap;
    max_align_t data[];
};

void jarena_init(JArena *a, size_t limit, JErr *err) {
    *a = (JArena){.limit = limit, .err = err};
}

void jarena_free(JArena *a) {
    JChunk *c = a->chunks;
    while (c) {
        JChunk *next = c->next;
        free(c);
        c = next;
    }
    a->chunks = NULL;
    a->used = 0;
}

void *jarena_alloc(JArena *a, size_t size) {
    size_t align = sizeof(max_align_t);
    if (size > SIZE_MAX / 2) {
        jerr_throw(a->err, 0, 0, "render needs more than %zu bytes of memory", a->limit);
    }
    size = (size + align - 1) / align * align;
    if (size == 0) {
        size = align;
    }
    JChunk *c = a->chunks;
    if (!c || c->cap - c->used < size) {
        size_t cap = size > CHUNK_BYTES ? size : CHUNK_BYTES;
        size_t total = sizeof(JChunk) + cap;
        if (a->used + total > a->limit) {
            jerr_throw(a->err, 0, 0,
                       "the template needs more than %zu bytes of memory; raise max_bytes if the "
                       "input is really that large",
                       a->limit);
        }
        JChunk *fresh = xmalloc(total);
        fresh->used = 0;
        fresh->cap = cap;
        a->used += total;
        // A chunk made for one large object goes behind the current one, so the current chunk's
        // free space stays in use for small objects.
        if (c && size > CHUNK_BYTES) {
            fresh->next = c->next;
            c->next = fresh;
        } else {
            fresh->next = c;
            a->chunks = fresh;
        }
        c = fresh;
    }
    void *p = (char *)c->data + c->used;
    c->used += size;
    memset(p, 0, size);
    return p;
}

char *jarena_strndup(JArena *a, const char *s, size_t n) {
    char *p = jarena_alloc(a, n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

void *jarena_grow(JArena *a, void *items, size_t n, size_t *cap, size_t elem_size, size_t first_cap) {
    if (n < *cap) {
        return items;
    }
    size_t grown_cap = *cap ? 2 * *cap : first_cap;
    if (grown_cap > SIZE_MAX / elem_size) {
        jerr_throw(a->err, 0, 0, "array of %zu elements is too large", grown_cap);
    }
    void *grown = jarena_alloc(a, grown_cap * elem_size);
    if (n) {
        memcpy(grown, items, n * elem_size);
    }
    *cap = grown_cap;
    return grown;
}

// ----------------------------------------------------------------------------
// Buffers

void jbuf_init(JBuf *b, JArena *a) {
    *b = (JBuf){.arena = a};
}

void jbuf_append(JBuf *b, const char *s, size_t n) {
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + n + 1) {
            if (cap > SIZE_MAX / 4) {
                jerr_throw(b->arena->err, 0, 0, "output too large");
            }
            cap *= 2;
        }
        char *data = jarena_alloc(b->arena, cap);
        if (b->len) {
            memcpy(data, b->data, b->len);
        }
        b->data = data;
        b->cap = cap;
    }
    if (n) {
        memcpy(b->data + b->len, s, n);
    }
    b->len += n;
    b->data[b->len] = '\0';
}

void jbuf_append_str(JBuf *b, const char *s) {
    jbuf_append(b, s, strlen(s));
}

void jbuf_printf(JBuf *b, const char *fmt, ...) {
    char small[256];
    va_list args;
    va_start(args, fmt);
    int n = vsnprintf(small, sizeof small, fmt, args);
    va_end(args);
    if (n < 0) {
        return;
    }
    if ((size_t)n < sizeof small) {
        jbuf_append(b, small, (size_t)n);
        return;
    }
    char *big = jarena_alloc(b->arena, (size_t)n + 1);
    va_start(args, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, args);
    va_end(args);
    jbuf_append(b, big, (size_t)n);
}

// ----------------------------------------------------------------------------
// Compile

// Applies jinja2's source preparation: "\r\n" and "\r" become "\n", and one trailing newline is
// dropped (keep_trailing_newline=False). Returns the new length.
static size_t normalize_source(char *dst, const char *src, size_t len) {
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (src[i] == '\r') {
            dst[n++] = '\n';
            if (i + 1 < len && src[i + 1] == '\n') {
                i++;
            }
        } else {
            dst[n++] = src[i];
        }
    }
    if (n > 0 && dst[n - 1] == '\n') {
        n--;
    }
    dst[n] = '\0';
    return n;
}

static int line_of_offset(const char *s, size_t offset) {
    int line = 1;
    for (size_t i = 0; i < offset; i++) {
        line += s[i] == '\n';
    }
    return line;
}

JinjaTemplate *jinja_compile(const char *source, size_t len) {
    JinjaTemplate *t = xcalloc(1, sizeof *t);
    // The syntax tree is small; the limit only guards against pathological input.
    jarena_init(&t->arena, DEFAULT_MAX_BYTES, &t->err);
    if (setjmp(t->err.jump) != 0) {
        err_set("%s", t->err.msg);
        jinja_free(t);
        return NULL;
    }

    size_t bad = 0;
    if (!jutf8_valid(source, len, &bad)) {
        jerr_throw(&t->err, line_of_offset(source, bad), 0,
                   "invalid UTF-8 at byte offset %zu of the template; chat templates are UTF-8 text",
                   bad);
    }
    char *src = jarena_alloc(&t->arena, len + 1);
    size_t n = normalize_source(src, source, len);
    size_t n_tokens = 0;
    JToken *tokens = jlex(&t->arena, src, n, &n_tokens);
    t->root = jparse(&t->arena, tokens, n_tokens);
    return t;
}

void jinja_free(JinjaTemplate *t) {
    if (!t) {
        return;
    }
    jarena_free(&t->arena);
    free(t);
}

// ----------------------------------------------------------------------------
// Render

// State of one render. It lives on the heap because setjmp() leaves local variables that change
// after it indeterminate after the longjmp().
typedef struct {
    JErr err;
    JArena arena;
    JBuf output;
    JEval ev;
} RenderState;

int jinja_render(const JinjaTemplate *t, const cJSON *vars, const JinjaRenderOptions *opt, char **out,
                 size_t *out_len) {
    *out = NULL;
    if (out_len) {
        *out_len = 0;
    }
    if (vars && !cJSON_IsObject(vars)) {
        return err_set("jinja_render: template variables must be a JSON object, got another JSON type");
    }
    RenderState *st = xcalloc(1, sizeof *st);
    jarena_init(&st->arena, opt && opt->max_bytes ? opt->max_bytes : DEFAULT_MAX_BYTES, &st->err);
    jbuf_init(&st->output, &st->arena);
    st->ev = (JEval){
        .arena = &st->arena,
        .err = &st->err,
        .out = &st->output,
        .now = opt ? opt->now : NULL,
        .max_steps = opt && opt->max_steps ? opt->max_steps : DEFAULT_MAX_STEPS,
    };

    if (setjmp(st->err.jump) != 0) {
        int rc = st->err.raised ? JINJA_RAISED : -1;
        err_set("%s", st->err.msg);
        jarena_free(&st->arena);
        free(st);
        return rc;
    }

    JEval *ev = &st->ev;
    ev->globals = jframe_new(ev, NULL);
    jcall_add_globals(ev, ev->globals);
    ev->top = jframe_new(ev, ev->globals);
    for (const cJSON *item = vars ? vars->child : NULL; item; item = item->next) {
        const char *name = jarena_strndup(&st->arena, item->string, strlen(item->string));
        jframe_set(ev, ev->top, name, jjson_from_cjson(ev, item, name));
    }
    jeval_template(ev, t->root);

    size_t len = st->output.len;
    *out = xmalloc(len + 1);
    if (len) {
        memcpy(*out, st->output.data, len);
    }
    (*out)[len] = '\0';
    if (out_len) {
        *out_len = len;
    }
    jarena_free(&st->arena);
    free(st);
    return 0;
}
