// jinja_json.c: the tojson filter as transformers defines it (Python's json.dumps with
// ensure_ascii=False by default), and conversion of cJSON input into template values.
#include "jinja_internal.h"

#include <math.h>
#include <string.h>

typedef struct {
    JEval *ev;
    int line;
    JBuf *out;
    bool ensure_ascii;
    const JStr *indent; // NULL: no newlines
    const char *item_sep, *key_sep;
    bool sort_keys;
} Encoder;

static void encode_string(Encoder *e, const char *s, size_t len) {
    JBuf *b = e->out;
    jbuf_append(b, "\"", 1);
    for (size_t i = 0; i < len;) {
        size_t n;
        uint32_t cp = jutf8_decode(s + i, len - i, &n);
        switch (cp) {
        case '"': jbuf_append_str(b, "\\\""); break;
        case '\\': jbuf_append_str(b, "\\\\"); break;
        case '\n': jbuf_append_str(b, "\\n"); break;
        case '\r': jbuf_append_str(b, "\\r"); break;
        case '\t': jbuf_append_str(b, "\\t"); break;
        case '\b': jbuf_append_str(b, "\\b"); break;
        case '\f': jbuf_append_str(b, "\\f"); break;
        default:
            if (cp < 0x20 || (e->ensure_ascii && cp >= 0x7f)) {
                if (cp >= 0x10000) {
                    // Outside the BMP: a UTF-16 surrogate pair, as Python writes it.
                    uint32_t v = cp - 0x10000;
                    jbuf_printf(b, "\\u%04x\\u%04x", 0xD800 + (v >> 10), 0xDC00 + (v & 0x3FF));
                } else {
                    jbuf_printf(b, "\\u%04x", cp);
                }
            } else {
                jbuf_append(b, s + i, n);
            }
        }
        i += n;
    }
    jbuf_append(b, "\"", 1);
}

static void encode_float(Encoder *e, double f) {
    if (isnan(f)) {
        jbuf_append_str(e->out, "NaN");
    } else if (isinf(f)) {
        jbuf_append_str(e->out, f < 0 ? "-Infinity" : "Infinity");
    } else {
        jv_append_float_repr(e->out, f);
    }
}

static void newline_indent(Encoder *e, int level) {
    jbuf_append(e->out, "\n", 1);
    for (int i = 0; i < level; i++) {
        jbuf_append(e->out, e->indent->data, e->indent->len);
    }
}

static noreturn void not_serializable(Encoder *e, JValue v) {
    JTHROW(e->ev, e->line, "TypeError: Object of type %s is not JSON serializable", jv_type_name(v));
}

// Converts a dict key to its JSON text as json.dumps does (str, int, float, bool or None).
static JStr *key_text(Encoder *e, JValue k) {
    JBuf b;
    jbuf_init(&b, e->ev->arena);
    switch (k.kind) {
    case JV_STRING: return k.s;
    case JV_BOOL: jbuf_append_str(&b, k.b ? "true" : "false"); break;
    case JV_NONE: jbuf_append_str(&b, "null"); break;
    case JV_INT: jbuf_printf(&b, "%lld", (long long)k.i); break;
    case JV_FLOAT: {
        Encoder sub = *e;
        sub.out = &b;
        encode_float(&sub, k.f);
        break;
    }
    default:
        JTHROW(e->ev, e->line, "TypeError: keys must be str, int, float, bool or None, not %s",
               jv_type_name(k));
    }
    return jv_str(e->ev->arena, b.data, b.len).s;
}

static void encode(Encoder *e, JValue v, int level);

static void encode_dict(Encoder *e, const JDict *d, int level) {
    if (d->len == 0) {
        jbuf_append_str(e->out, "{}");
        return;
    }
    size_t *order = jarena_alloc(e->ev->arena, d->len * sizeof *order);
    for (size_t i = 0; i < d->len; i++) {
        order[i] = i;
    }
    if (e->sort_keys) {
        // Insertion sort keeps it stable and needs no comparison callback context; dicts are small.
        for (size_t i = 1; i < d->len; i++) {
            size_t k = order[i];
            size_t j = i;
            while (j > 0 && jv_compare(e->ev->err, e->line, d->keys[order[j - 1]], d->keys[k]) > 0) {
                order[j] = order[j - 1];
                j--;
            }
            order[j] = k;
        }
    }
    jbuf_append(e->out, "{", 1);
    for (size_t i = 0; i < d->len; i++) {
        if (i) {
            jbuf_append_str(e->out, e->item_sep);
        }
        if (e->indent) {
            newline_indent(e, level + 1);
        }
        JStr *k = key_text(e, d->keys[order[i]]);
        encode_string(e, k->data, k->len);
        jbuf_append_str(e->out, e->key_sep);
        encode(e, d->values[order[i]], level + 1);
    }
    if (e->indent) {
        newline_indent(e, level);
    }
    jbuf_append(e->out, "}", 1);
}

static void encode(Encoder *e, JValue v, int level) {
    if (level > 200) {
        JTHROW(e->ev, e->line, "value nested more than 200 levels deep cannot be converted to JSON");
    }
    switch (v.kind) {
    case JV_NONE: jbuf_append_str(e->out, "null"); return;
    case JV_BOOL: jbuf_append_str(e->out, v.b ? "true" : "false"); return;
    case JV_INT: jbuf_printf(e->out, "%lld", (long long)v.i); return;
    case JV_FLOAT: encode_float(e, v.f); return;
    case JV_STRING: encode_string(e, v.s->data, v.s->len); return;
    case JV_DICT: encode_dict(e, v.d, level); return;
    case JV_LIST:
        if (v.l->kind == JL_LIST || v.l->kind == JL_TUPLE) {
            break;
        }
        not_serializable(e, v);
    default: not_serializable(e, v);
    }
    const JList *l = v.l;
    if (l->len == 0) {
        jbuf_append_str(e->out, "[]");
        return;
    }
    jbuf_append(e->out, "[", 1);
    for (size_t i = 0; i < l->len; i++) {
        if (i) {
            jbuf_append_str(e->out, e->item_sep);
        }
        if (e->indent) {
            newline_indent(e, level + 1);
        }
        encode(e, l->items[i], level + 1);
    }
    if (e->indent) {
        newline_indent(e, level);
    }
    jbuf_append(e->out, "]", 1);
}

JValue jjson_dumps(JEval *ev, int line, JValue v, bool ensure_ascii, const JStr *indent,
                   const char *item_sep, const char *key_sep, bool sort_keys) {
    JBuf b;
    jbuf_init(&b, ev->arena);
    Encoder e = {
        .ev = ev,
        .line = line,
        .out = &b,
        .ensure_ascii = ensure_ascii,
        .indent = indent,
        .item_sep = item_sep ? item_sep : indent ? "," : ", ",
        .key_sep = key_sep ? key_sep : ": ",
        .sort_keys = sort_keys,
    };
    encode(&e, v, 0);
    return jv_str(ev->arena, b.data ? b.data : "", b.len);
}

// ----------------------------------------------------------------------------
// cJSON input

// Integral JSON numbers up to 2^53 in magnitude become int: beyond that a double no longer represents
// every integer, so the value is kept as float.
#define MAX_EXACT_INTEGER 9007199254740992.0

JValue jjson_from_cjson(JEval *ev, const cJSON *j, const char *what) {
    if (cJSON_IsNull(j)) {
        return jv_none();
    }
    if (cJSON_IsBool(j)) {
        return jv_bool(cJSON_IsTrue(j));
    }
    if (cJSON_IsNumber(j)) {
        // NOTE: cJSON does not keep the number's text, so "1.0" arrives as an int (Python's
        // json.loads would give the float 1.0).
        double d = j->valuedouble;
        if (d == floor(d) && fabs(d) <= MAX_EXACT_INTEGER) {
            return jv_int((int64_t)d);
        }
        return jv_float(d);
    }
    if (cJSON_IsString(j)) {
        const char *s = j->valuestring ? j->valuestring : "";
        size_t len = strlen(s);
        size_t bad;
        if (!jutf8_valid(s, len, &bad)) {
            JTHROW(ev, 0, "variable '%s' contains a string that is not valid UTF-8 (byte offset %zu)",
                   what ? what : "?", bad);
        }
        return jv_str(ev->arena, s, len);
    }
    if (cJSON_IsArray(j)) {
        JValue list = jv_list(ev->arena, JL_LIST, (size_t)cJSON_GetArraySize(j));
        size_t i = 0;
        for (const cJSON *item = j->child; item; item = item->next) {
            list.l->items[i++] = jjson_from_cjson(ev, item, what);
        }
        return list;
    }
    if (cJSON_IsObject(j)) {
        JValue dict = jv_dict(ev->arena);
        for (const cJSON *item = j->child; item; item = item->next) {
            const char *key = item->string ? item->string : "";
            size_t bad;
            if (!jutf8_valid(key, strlen(key), &bad)) {
                JTHROW(ev, 0, "variable '%s' contains a key that is not valid UTF-8", what ? what : "?");
            }
            jdict_set(ev->arena, dict.d, jv_cstr(ev->arena, key), jjson_from_cjson(ev, item, what));
        }
        return dict;
    }
    JTHROW(ev, 0, "variable '%s' contains a JSON value of an unsupported type (raw JSON)",
           what ? what : "?");
}
