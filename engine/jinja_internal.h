// jinja_internal.h: types shared by the files of the Jinja interpreter (jinja_*.c). Not a public API.
//
// Memory: every value, token and syntax-tree node lives in an arena (JArena) that is freed as a
// whole. The compiled template owns one arena for its syntax tree; each render owns another for its
// values. So values need no reference counts, and nothing is freed one by one.
//
// Errors: a failing step calls jerr_throw(), which formats the message and longjmp()s back to
// jinja_compile() or jinja_render(). That is safe because nothing between the two keeps memory
// outside the arena.
//
// The file split: jinja_lexer.c (source -> tokens), jinja_parser.c and jinja_parser_expr.c (tokens ->
// syntax tree, statements and expressions), jinja_eval.c (statements and expressions),
// jinja_operators.c (attribute and item access, operators), jinja_call.c (macros, globals, calls),
// jinja_methods.c (methods of str, list and dict), jinja_filters.c (filters), jinja_tests.c (tests),
// jinja_value.c (values, comparison, str() and repr()), jinja_text.c (UTF-8 and Python's str
// operations), jinja_format.c (% and str.format), jinja_json.c (tojson and cJSON input), and
// jinja.c (the public entry points).
#ifndef QBIAS_JINJA_INTERNAL_H
#define QBIAS_JINJA_INTERNAL_H

#include <locale.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdnoreturn.h>

#include "jinja.h"
#include "util.h"

// ----------------------------------------------------------------------------
// Errors

typedef struct {
    jmp_buf jump;
    bool raised;     // set by raise_exception(): msg is the template's own message
    char msg[4096];
} JErr;

// Formats "template line L, column C: <message>" (or "template line L: " when col is 0, nothing when
// line is 0) into e->msg and jumps back to the entry point.
noreturn void jerr_throw(JErr *e, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

// ----------------------------------------------------------------------------
// Arena

typedef struct JChunk JChunk;

typedef struct {
    JChunk *chunks;
    size_t used;  // bytes taken from the system, chunk headers included
    size_t limit; // jerr_throw() when used would exceed it
    JErr *err;
} JArena;

void jarena_init(JArena *a, size_t limit, JErr *err);
void jarena_free(JArena *a);
// Returns `size` bytes aligned for any type, zero-filled.
void *jarena_alloc(JArena *a, size_t size);
char *jarena_strndup(JArena *a, const char *s, size_t n);
// Returns items (n elements of elem_size bytes) in an array with room for at least one more element,
// growing *cap (doubling from first_cap) and copying when it is full. The old array is not freed.
void *jarena_grow(JArena *a, void *items, size_t n, size_t *cap, size_t elem_size, size_t first_cap);

// A growable byte buffer in an arena (output of a template or of a captured block).
typedef struct {
    JArena *arena;
    char *data;
    size_t len, cap;
} JBuf;

void jbuf_init(JBuf *b, JArena *a);
void jbuf_append(JBuf *b, const char *s, size_t n);
void jbuf_append_str(JBuf *b, const char *s);
void jbuf_printf(JBuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

// ----------------------------------------------------------------------------
// Values

typedef enum {
    JV_UNDEFINED, // jinja2.Undefined: prints as "", is falsy, iterates as empty
    JV_NONE,
    JV_BOOL,
    JV_INT,
    JV_FLOAT,
    JV_STRING,
    JV_LIST,      // list, tuple, iterator, dict view or range: see JListKind
    JV_DICT,
    JV_NAMESPACE, // jinja2's namespace(): a dict whose entries are attributes that `set` may assign
    JV_FUNC,      // macro, global function or bound method: see JFuncKind
    JV_LOOP,      // the `loop` variable of a for loop
    JV_CYCLER,    // cycler(...) object
} JKind;

typedef struct JStr JStr;
typedef struct JList JList;
typedef struct JDict JDict;
typedef struct JFunc JFunc;
typedef struct JLoop JLoop;
typedef struct JCycler JCycler;
typedef struct JUndef JUndef;

typedef struct {
    JKind kind;
    union {
        bool b;
        int64_t i;
        double f;
        JStr *s;
        JList *l;
        JDict *d;
        JFunc *fn;
        JLoop *loop;
        JCycler *cycler;
        JUndef *u; // may be NULL
    };
} JValue;

struct JStr {
    size_t len;  // bytes, not counting the NUL after data
    bool markup; // markupsafe.Markup (from |safe or |escape): `+` escapes a plain operand
    char data[]; // valid UTF-8, NUL-terminated
};

typedef enum {
    JL_LIST,
    JL_TUPLE,
    JL_ITERATOR, // a generator or iterator (map, select, reverse, items ...): one pass, no len()
    JL_ITEMS,    // dict.items(), dict.keys(), dict.values() views
    JL_KEYS,
    JL_VALUES,
    JL_RANGE,
} JListKind;

struct JList {
    JListKind kind;
    size_t len;
    size_t pos;                 // JL_ITERATOR: items before pos were consumed
    int64_t start, stop, step;  // JL_RANGE: the arguments, for printing "range(0, 3)"
    const char *iter_type;      // JL_ITERATOR: Python type name for messages ("generator")
    JValue *items;
};

// Insertion-ordered, as Python dicts are. Lookup is linear: chat-template dicts are small.
struct JDict {
    size_t len, cap;
    JValue *keys;
    JValue *values;
};

struct JUndef {
    const char *name;     // the variable, attribute or key that was missing
    const char *obj_type; // Python type name of the object it was looked up on, or NULL
    const char *hint;     // a complete message that replaces the generated one, or NULL
};

typedef struct JNode JNode;
typedef struct JFrame JFrame;

typedef enum {
    JF_MACRO,   // {% macro %} or the body of a {% call %} block (caller)
    JF_GLOBAL,  // range, dict, namespace, joiner, cycler, raise_exception, strftime_now
    JF_METHOD,  // bound method of a str, list, dict, loop or cycler
    JF_JOINER,  // an object made by joiner(sep)
} JFuncKind;

struct JFunc {
    JFuncKind kind;
    const char *name;
    JValue self;           // JF_METHOD: the receiver
    const JNode *macro;    // JF_MACRO: the JN_MACRO or JN_CALL_BLOCK node
    JFrame *closure;       // JF_MACRO: the frame the macro was defined in
    JValue caller;         // JF_MACRO from a call block: the caller passed on to the macro
    const char *sep;       // JF_JOINER
    bool joiner_used;      // JF_JOINER
};

struct JLoop {
    JValue *items;
    size_t len;
    size_t index0;
    int depth;             // 1 for the outermost call of a recursive loop
    const JNode *node;     // the JN_FOR node, for recursive loop(...) calls
    JFrame *frame;         // the frame the loop runs in
    bool changed_set;      // loop.changed() has seen a value
    JValue changed_last;
};

struct JCycler {
    JValue *items;
    size_t len;
    size_t pos;
};

// Constructors.
static inline JValue jv_none(void) { return (JValue){.kind = JV_NONE}; }
static inline JValue jv_bool(bool b) { return (JValue){.kind = JV_BOOL, .b = b}; }
static inline JValue jv_int(int64_t i) { return (JValue){.kind = JV_INT, .i = i}; }
static inline JValue jv_float(double f) { return (JValue){.kind = JV_FLOAT, .f = f}; }
JValue jv_undefined(JArena *a, const char *name, const char *obj_type, const char *hint);
JValue jv_str(JArena *a, const char *s, size_t len);
JValue jv_cstr(JArena *a, const char *s);
JValue jv_str_concat(JArena *a, const char *s1, size_t len1, const char *s2, size_t len2);
JValue jv_markup(JArena *a, const char *s, size_t len);
JValue jv_list(JArena *a, JListKind kind, size_t len); // items zero-filled (JV_UNDEFINED)
JValue jv_list_of(JArena *a, JListKind kind, const JValue *items, size_t len); // copies the items
JValue jv_dict(JArena *a);
JValue jv_namespace(JArena *a);

// Dict operations (keys compared with Python ==, so 1, 1.0 and True are the same key).
bool jdict_get(const JDict *d, JValue key, JValue *value);
bool jdict_get_name(const JDict *d, const char *name, JValue *value);
void jdict_set(JArena *a, JDict *d, JValue key, JValue value);
// Returns true for values Python can hash as a dict key (not list, dict, namespace ...).
bool jv_is_hashable(JValue v);

// Throws jinja2's UndefinedError for an undefined value: "'x' is undefined" or
// "'dict object' has no attribute 'x'".
noreturn void jv_throw_undefined(JErr *e, int line, const JUndef *u);

// Python semantics.
bool jv_truthy(JValue v);
bool jv_equal(JValue a, JValue b);
// Compares as Python's < does: returns -1, 0 or 1, or throws TypeError naming the two types.
int jv_compare(JErr *e, int line, JValue a, JValue b);
// Python type name: "str", "int", "NoneType", "dict", "Undefined" ...
const char *jv_type_name(JValue v);
bool jv_is_number(JValue v); // int, float or bool
double jv_as_double(JValue v);

// str(v) and repr(v) as Python prints them. Undefined prints as "". Functions, loops and iterators
// cannot be printed here (Python prints an object address): that is an error at `line`.
typedef struct JEval JEval;
JStr *jv_to_str(JEval *ev, int line, JValue v);
void jv_append_str(JEval *ev, int line, JBuf *b, JValue v);
void jv_append_repr(JEval *ev, int line, JBuf *b, JValue v);
// Appends Python's repr() of a float (shortest round-trip form, "1.0", "1e+16", "inf", "nan").
void jv_append_float_repr(JBuf *b, double f);

// Iteration: the items of a list, tuple, view, range, dict (keys), string (characters) or undefined
// (none). An iterator is consumed. Throws TypeError "'int' object is not iterable" for others.
JValue *jv_iterate(JEval *ev, int line, JValue v, size_t *n);
// len(v), or throws TypeError.
int64_t jv_length(JEval *ev, int line, JValue v);

// ----------------------------------------------------------------------------
// Text (UTF-8 and Python str operations)

// Decodes one UTF-8 sequence at s[0..n) (valid input assumed); stores its length in *len.
uint32_t jutf8_decode(const char *s, size_t n, size_t *len);
void jutf8_append(JBuf *b, uint32_t cp);
bool jutf8_valid(const char *s, size_t n, size_t *bad_offset);
size_t jutf8_count(const char *s, size_t n); // number of code points
// Byte offset of code point index `index` (0 <= index <= count).
size_t jutf8_offset(const char *s, size_t n, size_t index);
// str.isspace() for one code point (Unicode whitespace, as Python and `\s` in re define it).
bool jtext_isspace(uint32_t cp);

typedef enum { JSTRIP_BOTH, JSTRIP_LEFT, JSTRIP_RIGHT } JStripMode;
// str.strip(chars): chars NULL strips whitespace.
JValue jtext_strip(JEval *ev, const JStr *s, const JStr *chars, JStripMode mode);
// str.split(sep, maxsplit) and str.rsplit: sep NULL splits on runs of whitespace.
JValue jtext_split(JEval *ev, int line, const JStr *s, const JStr *sep, int64_t maxsplit, bool right);
JValue jtext_splitlines(JEval *ev, const JStr *s, bool keepends);
// str.replace(old, new, count); count < 0 replaces all.
JValue jtext_replace(JEval *ev, const JStr *s, const JStr *old, const JStr *new_, int64_t count);
// Case operations; non-ASCII characters go through the C.UTF-8 locale. Throws for characters whose
// Python mapping is not one-to-one.
typedef enum { JCASE_UPPER, JCASE_LOWER, JCASE_TITLE, JCASE_CAPITALIZE, JCASE_SWAPCASE } JCaseOp;
JValue jtext_case(JEval *ev, int line, const JStr *s, JCaseOp op);
// jinja's title filter: words start after "-", whitespace, "(", "{", "[" or "<".
JValue jtext_title_filter(JEval *ev, int line, const JStr *s);
// str.find / str.rfind by code point index; -1 when absent.
int64_t jtext_find(const JStr *s, const JStr *sub, int64_t start, int64_t end, bool right);
int64_t jtext_count(const JStr *s, const JStr *sub);
// Python's `str % args` (printf-style) and str.format(*args, **kwargs).
JValue jtext_percent_format(JEval *ev, int line, const JStr *fmt, JValue args);
JValue jtext_format(JEval *ev, int line, const JStr *fmt, const JValue *args, size_t n_args,
                    const JDict *kwargs);
// Python's float(str) parsing; false when the text is not a number.
bool jtext_parse_float(const JStr *s, double *out);
// Python's int(str, base) parsing: returns 1 on success, 0 when the text is not a number and -1 when
// the number is outside the int64 range.
int jtext_parse_int(const JStr *s, int base, int64_t *out);
// Python's str.islower() (upper false) and str.isupper() (upper true).
bool jtext_is_case(const JStr *s, bool upper);
// The C.UTF-8 locale for non-ASCII character classes, or (locale_t)0 when the C library lacks it.
locale_t jtext_locale(void);
// markupsafe.escape(): & < > " ' to entities.
JValue jtext_html_escape(JEval *ev, JValue v, int line);
// Throws for a Markup string (from |safe or |escape) given to an operation whose Markup result would
// behave differently from a str later on (markupsafe escapes the arguments of Markup methods).
// `what` names the operation.
void jtext_reject_markup(JEval *ev, int line, JValue v, const char *what);

// ----------------------------------------------------------------------------
// JSON

// json.dumps(v, ensure_ascii, indent, separators, sort_keys). indent NULL means None.
JValue jjson_dumps(JEval *ev, int line, JValue v, bool ensure_ascii, const JStr *indent,
                   const char *item_sep, const char *key_sep, bool sort_keys);
// Converts cJSON to values (numbers that are integral and within +-2^53 become int). Throws for
// strings that are not valid UTF-8, naming `what`.
JValue jjson_from_cjson(JEval *ev, const cJSON *j, const char *what);

// ----------------------------------------------------------------------------
// Tokens

typedef enum {
    TK_EOF,
    TK_DATA,
    TK_VAR_BEGIN,
    TK_VAR_END,
    TK_BLOCK_BEGIN,
    TK_BLOCK_END,
    TK_NAME,
    TK_STRING,
    TK_INT,
    TK_FLOAT,
    TK_OP,
} JTokKind;

typedef enum {
    OP_ADD, OP_SUB, OP_DIV, OP_FLOORDIV, OP_MUL, OP_MOD, OP_POW, OP_TILDE,
    OP_LBRACKET, OP_RBRACKET, OP_LPAREN, OP_RPAREN, OP_LBRACE, OP_RBRACE,
    OP_EQ, OP_NE, OP_GT, OP_GE, OP_LT, OP_LE, OP_ASSIGN, OP_DOT, OP_COLON, OP_PIPE,
    OP_COMMA, OP_SEMICOLON,
    // comparison operators that are words, used in JN_COMPARE
    OP_IN, OP_NOTIN,
} JOp;

typedef struct {
    JTokKind kind;
    JOp op;            // TK_OP
    int line, col;     // 1-based, col counts code points
    const char *text;  // TK_NAME, TK_DATA: NUL-terminated copy
    size_t len;        // TK_DATA: bytes
    JStr *str;         // TK_STRING: the decoded value
    int64_t ival;      // TK_INT
    double fval;       // TK_FLOAT
} JToken;

// Splits normalized source into tokens (array ending with TK_EOF), applying trim_blocks,
// lstrip_blocks and the - and + whitespace controls. Throws on a lexical error.
JToken *jlex(JArena *a, const char *src, size_t len, size_t *n_tokens);

// Returns a short description of a token for messages: "end of statement block", "'foo'".
const char *jtok_describe(JArena *a, const JToken *t);
const char *jop_text(JOp op);

// ----------------------------------------------------------------------------
// Syntax tree

typedef enum {
    // expressions
    JN_CONST,     // constant
    JN_NAME,      // name
    JN_GETATTR,   // a.name
    JN_GETITEM,   // a[b]
    JN_SLICE,     // [a:b:c] inside a subscript (children may be NULL)
    JN_CALL,      // a(args)
    JN_FILTER,    // a|name(args); a is NULL for the value of a filter block
    JN_TEST,      // a is [not] name(args)
    JN_UNARY,     // -a, +a (op)
    JN_NOT,       // not a
    JN_BINOP,     // a op b for + - * / // % **
    JN_AND,
    JN_OR,
    JN_COMPARE,   // a op1 b1 op2 b2 ... (ops and operands in args)
    JN_CONCAT,    // a ~ b ~ ... (parts in args)
    JN_COND,      // b if a else c
    JN_LIST,
    JN_TUPLE,
    JN_DICT,      // keys in args, values in args2
    JN_NSREF,     // ns.attr as an assignment target
    // statements
    JN_OUTPUT,    // template text
    JN_PRINT,     // {{ a }} and {% print a, b %}
    JN_IF,        // if a: body, else: else_body (elif is a nested JN_IF in else_body)
    JN_FOR,       // for target(a) in b if c [recursive]: body, else: else_body
    JN_SET,       // set target(a) = b
    JN_SET_BLOCK, // set target(a) [| filter(b)]: body
    JN_MACRO,     // macro name(params): body
    JN_CALL_BLOCK,// call(params) b: body
    JN_FILTER_BLOCK, // filter b: body
    JN_WITH,      // with targets(args) = values(args2): body
    JN_BREAK,
    JN_CONTINUE,
    JN_BODY,      // a list of statements (the template, {% generation %})
} JNodeKind;

typedef struct {
    JNode **items;
    int n;
} JNodeList;

struct JNode {
    JNodeKind kind;
    int line, col;
    JOp op;              // JN_UNARY, JN_BINOP
    bool flag;           // JN_TEST: negated; JN_FOR: recursive
    const char *name;    // JN_NAME, JN_GETATTR, JN_FILTER, JN_TEST, JN_MACRO, JN_NSREF (attr)
    const char *name2;   // JN_NSREF: the namespace variable
    int id;              // JN_FILTER, JN_TEST: index in the filter or test table
    JValue value;        // JN_CONST; JN_OUTPUT: the text as a string
    JNode *a, *b, *c;    // operands, as listed above
    JNodeList args;      // positional arguments, items, keys, compare operands, statements ...
    JNodeList args2;     // keyword argument values, dict values, with values, parameter defaults
    const char **names;  // keyword argument names (for args2), or macro parameter names (args)
    JOp *ops;            // JN_COMPARE: one per operand in args
    JNodeList body, else_body;
    // JN_MACRO, JN_CALL_BLOCK: which special names the body reads, as jinja2 decides whether a macro
    // accepts extra positional arguments (varargs), extra keywords (kwargs) and a caller.
    bool uses_varargs, uses_kwargs, uses_caller;
};

struct JinjaTemplate {
    JArena arena;
    JErr err; // arena's error target while compiling
    JNode *root;
};

// Parses tokens into a JN_BODY node. Throws on a syntax error.
JNode *jparse(JArena *a, JToken *tokens, size_t n_tokens);

// ----------------------------------------------------------------------------
// Filters and tests (jinja_filters.c)

// Returns the index of a filter or test by name, or -1. *known is true for every jinja2 name, so a
// caller can report a jinja2 filter that this interpreter lacks apart from an unknown name.
int jfilter_lookup(const char *name, bool *known);
int jtest_lookup(const char *name, bool *known);

// ----------------------------------------------------------------------------
// Evaluation

typedef struct {
    const char *name; // lives in the template's arena, the render's arena or static storage
    JValue value;
} JVar;

struct JFrame {
    JFrame *parent;
    JVar *vars;
    size_t n_vars, cap_vars;
};

struct JEval {
    JArena *arena;
    JErr *err;
    JFrame *globals;      // raise_exception, range ... (parent of the render variables)
    JFrame *top;          // the render variables and the template's top-level `set`s
    JFrame *frame;        // the innermost frame: names are looked up from here
    JBuf *out;            // where output goes (a capture buffer inside set blocks and macros)
    const struct tm *now; // strftime_now's time, or NULL for the current time
    long long steps, max_steps;
    int depth;            // macro and recursive-loop call depth
    JValue block_value;   // value of a JN_FILTER with a NULL operand (filter and set blocks)
};

// Throws an error at a line (column 0: not reported for runtime errors, as jinja2 does).
#define JTHROW(ev, line, ...) jerr_throw((ev)->err, (line), 0, __VA_ARGS__)

void jeval_template(JEval *ev, const JNode *root);
JValue jeval_expr(JEval *ev, const JNode *n);
// Looks up a name through the frames; undefined when missing.
JValue jeval_lookup(JEval *ev, JFrame *frame, const char *name);
void jframe_set(JEval *ev, JFrame *frame, const char *name, JValue value);
JFrame *jframe_new(JEval *ev, JFrame *parent);
// Runs a body in a frame, capturing its output as a string.
JValue jeval_capture(JEval *ev, const JNodeList *body, JFrame *frame);

// Python getattr / getitem as jinja2's sandboxed environment does them.
JValue jeval_getattr(JEval *ev, int line, JValue obj, const char *name);
JValue jeval_getitem(JEval *ev, int line, JValue obj, JValue key);
// Python's obj[start:stop:step] for str, list and tuple (missing parts are JV_NONE).
JValue jeval_slice(JEval *ev, int line, JValue obj, JValue start, JValue stop, JValue step);
JValue jeval_binop(JEval *ev, int line, JOp op, JValue a, JValue b);
JValue jeval_unary(JEval *ev, int line, JOp op, JValue v); // -v or +v
// Python's comparison: ==, !=, <, <=, >, >=, in, not in (a in b).
bool jeval_compare(JEval *ev, int line, JOp op, JValue a, JValue b);
bool jeval_contains(JEval *ev, int line, JValue container, JValue item);

// Calls a callable value with positional and keyword arguments (jinja_call.c).
typedef struct {
    JValue *pos;
    size_t n_pos;
    const char **kw_names;
    JValue *kw_values;
    size_t n_kw;
} JArgs;

JValue jcall(JEval *ev, int line, JValue callee, const JArgs *args);
// Returns a bound method for a Python method name on obj, or false when obj has no such attribute.
// Throws for a method of Python's str, list or dict that is not implemented here.
bool jcall_method_lookup(JEval *ev, int line, JValue obj, const char *name, JValue *method);
// Fills the globals frame.
void jcall_add_globals(JEval *ev, JFrame *frame);
// Runs a for loop with a given iterable (also used by recursive loop(...) calls).
void jeval_for_loop(JEval *ev, const JNode *n, JFrame *frame, JValue iterable, int depth);

// Applies filter or test number `id` (from jfilter_lookup / jtest_lookup).
JValue jfilter_apply(JEval *ev, int line, int id, JValue value, const JArgs *args);
bool jtest_apply(JEval *ev, int line, int id, JValue value, const JArgs *args);

// Calls a bound method (a JF_METHOD value made by jcall_method_lookup).
JValue jcall_method(JEval *ev, int line, const JFunc *fn, const JArgs *args);
// Returns v as a string or int, or throws TypeError naming `what` (undefined throws its own error).
JStr *jargs_require_str(JEval *ev, int line, const char *what, JValue v);
int64_t jargs_require_int(JEval *ev, int line, const char *what, JValue v);

// Argument access for builtins: positional index or keyword name; returns false when absent.
bool jargs_get(const JArgs *args, size_t index, const char *name, JValue *out);
// Throws unless every argument matches one of `names` (positional by order, keywords by name).
void jargs_check(JEval *ev, int line, const char *func, const JArgs *args, const char *const *names,
                 size_t n_names);

// Counts one evaluation step and throws when the step limit is reached.
void jeval_step(JEval *ev, int line);

#endif
