// jinja_text.c: UTF-8 helpers and Python's str operations (strip, split, replace, case mapping, find,
// float() and int() parsing), indexing by code point as Python does. Formatting is in jinja_format.c.
#include "jinja_internal.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <wctype.h>

// ----------------------------------------------------------------------------
// UTF-8

uint32_t jutf8_decode(const char *s, size_t n, size_t *len) {
    const unsigned char *u = (const unsigned char *)s;
    if (n == 0) {
        *len = 0;
        return 0;
    }
    if (u[0] < 0x80) {
        *len = 1;
        return u[0];
    }
    if ((u[0] & 0xE0) == 0xC0 && n >= 2) {
        *len = 2;
        return ((uint32_t)(u[0] & 0x1F) << 6) | (u[1] & 0x3F);
    }
    if ((u[0] & 0xF0) == 0xE0 && n >= 3) {
        *len = 3;
        return ((uint32_t)(u[0] & 0x0F) << 12) | ((uint32_t)(u[1] & 0x3F) << 6) | (u[2] & 0x3F);
    }
    if ((u[0] & 0xF8) == 0xF0 && n >= 4) {
        *len = 4;
        return ((uint32_t)(u[0] & 0x07) << 18) | ((uint32_t)(u[1] & 0x3F) << 12) |
               ((uint32_t)(u[2] & 0x3F) << 6) | (u[3] & 0x3F);
    }
    // Only reached for invalid input, which jutf8_valid() keeps out.
    *len = 1;
    return 0xFFFD;
}

void jutf8_append(JBuf *b, uint32_t cp) {
    char out[4];
    size_t n;
    if (cp < 0x80) {
        out[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        out[0] = (char)(0xF0 | (cp >> 18));
        out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[3] = (char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    jbuf_append(b, out, n);
}

bool jutf8_valid(const char *s, size_t n, size_t *bad_offset) {
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        unsigned char c = u[i];
        size_t len;
        uint32_t cp, min;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            len = 2, cp = c & 0x1F, min = 0x80;
        } else if ((c & 0xF0) == 0xE0) {
            len = 3, cp = c & 0x0F, min = 0x800;
        } else if ((c & 0xF8) == 0xF0) {
            len = 4, cp = c & 0x07, min = 0x10000;
        } else {
            *bad_offset = i;
            return false;
        }
        if (i + len > n) {
            *bad_offset = i;
            return false;
        }
        for (size_t k = 1; k < len; k++) {
            if ((u[i + k] & 0xC0) != 0x80) {
                *bad_offset = i;
                return false;
            }
            cp = (cp << 6) | (u[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
            *bad_offset = i;
            return false;
        }
        i += len;
    }
    return true;
}

size_t jutf8_count(const char *s, size_t n) {
    size_t count = 0;
    for (size_t i = 0; i < n; i++) {
        count += ((unsigned char)s[i] & 0xC0) != 0x80;
    }
    return count;
}

size_t jutf8_offset(const char *s, size_t n, size_t index) {
    size_t i = 0;
    while (i < n && index > 0) {
        i++;
        while (i < n && ((unsigned char)s[i] & 0xC0) == 0x80) {
            i++;
        }
        index--;
    }
    return i;
}

bool jtext_isspace(uint32_t cp) {
    // Python's str.isspace(): bidirectional class WS, B or S, or category Zs (Unicode 14).
    if (cp <= 0x20) {
        return cp == 0x20 || (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x1F);
    }
    return cp == 0x85 || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) ||
           cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

static JValue new_str(JEval *ev, const char *s, size_t n) {
    return jv_str(ev->arena, s, n);
}

// Decodes a string into an array of code points (with their byte offsets, one extra at the end).
static uint32_t *decode_all(JEval *ev, const JStr *s, size_t *count, size_t **offsets) {
    size_t n = jutf8_count(s->data, s->len);
    uint32_t *cps = jarena_alloc(ev->arena, (n + 1) * sizeof *cps);
    size_t *offs = offsets ? jarena_alloc(ev->arena, (n + 1) * sizeof *offs) : NULL;
    size_t i = 0;
    for (size_t k = 0; k < n; k++) {
        size_t len;
        if (offs) {
            offs[k] = i;
        }
        cps[k] = jutf8_decode(s->data + i, s->len - i, &len);
        i += len;
    }
    if (offs) {
        offs[n] = s->len;
        *offsets = offs;
    }
    *count = n;
    return cps;
}

// ----------------------------------------------------------------------------
// strip, split, splitlines, replace

static bool in_chars(uint32_t cp, const uint32_t *chars, size_t n_chars) {
    for (size_t i = 0; i < n_chars; i++) {
        if (chars[i] == cp) {
            return true;
        }
    }
    return false;
}

JValue jtext_strip(JEval *ev, const JStr *s, const JStr *chars, JStripMode mode) {
    size_t n, n_chars = 0;
    size_t *offs;
    uint32_t *cps = decode_all(ev, s, &n, &offs);
    uint32_t *set = chars ? decode_all(ev, chars, &n_chars, NULL) : NULL;
    size_t begin = 0, end = n;
    if (mode != JSTRIP_RIGHT) {
        while (begin < end && (set ? in_chars(cps[begin], set, n_chars) : jtext_isspace(cps[begin]))) {
            begin++;
        }
    }
    if (mode != JSTRIP_LEFT) {
        while (end > begin && (set ? in_chars(cps[end - 1], set, n_chars) : jtext_isspace(cps[end - 1]))) {
            end--;
        }
    }
    return new_str(ev, s->data + offs[begin], offs[end] - offs[begin]);
}

typedef struct {
    JValue *items;
    size_t n, cap;
} PartList;

static void parts_push(JEval *ev, PartList *l, JValue v) {
    l->items = jarena_grow(ev->arena, l->items, l->n, &l->cap, sizeof *l->items, 8);
    l->items[l->n++] = v;
}

static JValue parts_to_list(JEval *ev, PartList *l, bool reverse) {
    JValue list = jv_list(ev->arena, JL_LIST, l->n);
    for (size_t i = 0; i < l->n; i++) {
        list.l->items[i] = l->items[reverse ? l->n - 1 - i : i];
    }
    return list;
}

static JValue split_whitespace(JEval *ev, const JStr *s, int64_t maxsplit, bool right) {
    size_t n;
    size_t *offs;
    uint32_t *cps = decode_all(ev, s, &n, &offs);
    PartList parts = {0};
    if (!right) {
        size_t i = 0;
        while (i < n) {
            while (i < n && jtext_isspace(cps[i])) {
                i++;
            }
            if (i == n) {
                break;
            }
            if (maxsplit >= 0 && (int64_t)parts.n == maxsplit) {
                // The rest, without its leading whitespace, is the last part.
                parts_push(ev, &parts, new_str(ev, s->data + offs[i], s->len - offs[i]));
                break;
            }
            size_t start = i;
            while (i < n && !jtext_isspace(cps[i])) {
                i++;
            }
            parts_push(ev, &parts, new_str(ev, s->data + offs[start], offs[i] - offs[start]));
        }
        return parts_to_list(ev, &parts, false);
    }
    size_t i = n;
    while (i > 0) {
        while (i > 0 && jtext_isspace(cps[i - 1])) {
            i--;
        }
        if (i == 0) {
            break;
        }
        if (maxsplit >= 0 && (int64_t)parts.n == maxsplit) {
            parts_push(ev, &parts, new_str(ev, s->data, offs[i]));
            break;
        }
        size_t end = i;
        while (i > 0 && !jtext_isspace(cps[i - 1])) {
            i--;
        }
        parts_push(ev, &parts, new_str(ev, s->data + offs[i], offs[end] - offs[i]));
    }
    return parts_to_list(ev, &parts, true);
}

JValue jtext_split(JEval *ev, int line, const JStr *s, const JStr *sep, int64_t maxsplit, bool right) {
    if (!sep) {
        return split_whitespace(ev, s, maxsplit, right);
    }
    if (sep->len == 0) {
        JTHROW(ev, line, "ValueError: empty separator");
    }
    PartList parts = {0};
    if (!right) {
        size_t start = 0;
        for (;;) {
            const char *hit = (maxsplit >= 0 && (int64_t)parts.n == maxsplit)
                                  ? NULL
                                  : memmem(s->data + start, s->len - start, sep->data, sep->len);
            if (!hit) {
                parts_push(ev, &parts, new_str(ev, s->data + start, s->len - start));
                return parts_to_list(ev, &parts, false);
            }
            size_t at = (size_t)(hit - s->data);
            parts_push(ev, &parts, new_str(ev, s->data + start, at - start));
            start = at + sep->len;
        }
    }
    size_t end = s->len;
    for (;;) {
        // Last occurrence of sep that ends at or before `end`.
        const char *hit = NULL;
        if (!(maxsplit >= 0 && (int64_t)parts.n == maxsplit) && end >= sep->len) {
            for (size_t at = end - sep->len + 1; at-- > 0;) {
                if (memcmp(s->data + at, sep->data, sep->len) == 0) {
                    hit = s->data + at;
                    break;
                }
            }
        }
        if (!hit) {
            parts_push(ev, &parts, new_str(ev, s->data, end));
            return parts_to_list(ev, &parts, true);
        }
        size_t at = (size_t)(hit - s->data);
        parts_push(ev, &parts, new_str(ev, s->data + at + sep->len, end - at - sep->len));
        end = at;
    }
}

static bool is_line_break(uint32_t cp) {
    return cp == '\n' || cp == '\r' || cp == 0x0B || cp == 0x0C || cp == 0x1C || cp == 0x1D ||
           cp == 0x1E || cp == 0x85 || cp == 0x2028 || cp == 0x2029;
}

JValue jtext_splitlines(JEval *ev, const JStr *s, bool keepends) {
    size_t n;
    size_t *offs;
    uint32_t *cps = decode_all(ev, s, &n, &offs);
    PartList parts = {0};
    size_t i = 0;
    while (i < n) {
        size_t start = i;
        while (i < n && !is_line_break(cps[i])) {
            i++;
        }
        size_t end = i;
        if (i < n) {
            i += (cps[i] == '\r' && i + 1 < n && cps[i + 1] == '\n') ? 2 : 1;
            if (keepends) {
                end = i;
            }
        }
        parts_push(ev, &parts, new_str(ev, s->data + offs[start], offs[end] - offs[start]));
    }
    return parts_to_list(ev, &parts, false);
}

JValue jtext_replace(JEval *ev, const JStr *s, const JStr *old, const JStr *new_, int64_t count) {
    JBuf b;
    jbuf_init(&b, ev->arena);
    if (old->len == 0) {
        // Python inserts `new` before every character and at the end.
        size_t i = 0;
        int64_t done = 0;
        while (count < 0 || done < count) {
            jbuf_append(&b, new_->data, new_->len);
            done++;
            if (i >= s->len) {
                break;
            }
            size_t len;
            jutf8_decode(s->data + i, s->len - i, &len);
            jbuf_append(&b, s->data + i, len);
            i += len;
        }
        jbuf_append(&b, s->data + i, s->len - i);
        return new_str(ev, b.data ? b.data : "", b.len);
    }
    size_t start = 0;
    int64_t done = 0;
    while (count < 0 || done < count) {
        const char *hit = memmem(s->data + start, s->len - start, old->data, old->len);
        if (!hit) {
            break;
        }
        size_t at = (size_t)(hit - s->data);
        jbuf_append(&b, s->data + start, at - start);
        jbuf_append(&b, new_->data, new_->len);
        start = at + old->len;
        done++;
    }
    jbuf_append(&b, s->data + start, s->len - start);
    return new_str(ev, b.data ? b.data : "", b.len);
}

// ----------------------------------------------------------------------------
// Case mapping

static pthread_once_t locale_once = PTHREAD_ONCE_INIT;
static locale_t utf8_locale;

static void open_locale(void) {
    utf8_locale = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
}

locale_t jtext_locale(void) {
    pthread_once(&locale_once, open_locale);
    return utf8_locale;
}

// Characters whose Python upper(), title() or capitalize() mapping is more than one character
// (SpecialCasing.txt, unconditional mappings), or whose title case differs from upper case.
static bool has_special_upper(uint32_t cp) {
    static const uint32_t ranges[][2] = {
        {0xDF, 0xDF},     {0x149, 0x149},   {0x1C4, 0x1CC},   {0x1F0, 0x1F3},   {0x390, 0x390},
        {0x3B0, 0x3B0},   {0x587, 0x587},   {0x1E96, 0x1E9A}, {0x1F50, 0x1F56}, {0x1F80, 0x1FAF},
        {0x1FB2, 0x1FB4}, {0x1FB6, 0x1FB7}, {0x1FBC, 0x1FBC}, {0x1FC2, 0x1FC4}, {0x1FC6, 0x1FC7},
        {0x1FCC, 0x1FCC}, {0x1FD2, 0x1FD3}, {0x1FD6, 0x1FD7}, {0x1FE2, 0x1FE4}, {0x1FE6, 0x1FE7},
        {0x1FF2, 0x1FF4}, {0x1FF6, 0x1FF7}, {0x1FFC, 0x1FFC}, {0xFB00, 0xFB06}, {0xFB13, 0xFB17},
    };
    for (size_t i = 0; i < ARRAY_LEN(ranges); i++) {
        if (cp >= ranges[i][0] && cp <= ranges[i][1]) {
            return true;
        }
    }
    return false;
}

// Characters whose Python lower() depends on context or is more than one character: İ (U+0130)
// becomes "i̇", and Σ (U+03A3) becomes ς at the end of a word.
static bool has_special_lower(uint32_t cp) {
    return cp == 0x130 || cp == 0x3A3 || (cp >= 0x1C4 && cp <= 0x1CC) || (cp >= 0x1F1 && cp <= 0x1F3);
}

static noreturn void throw_case(JEval *ev, int line, uint32_t cp) {
    JTHROW(ev, line,
           "case mapping of U+%04X is not supported: Python maps it to several characters or by "
           "context",
           cp);
}

static uint32_t to_upper(JEval *ev, int line, uint32_t cp) {
    if (cp < 0x80) {
        return cp >= 'a' && cp <= 'z' ? cp - 32 : cp;
    }
    if (has_special_upper(cp) || !jtext_locale()) {
        throw_case(ev, line, cp);
    }
    return (uint32_t)towupper_l((wint_t)cp, jtext_locale());
}

static uint32_t to_lower(JEval *ev, int line, uint32_t cp) {
    if (cp < 0x80) {
        return cp >= 'A' && cp <= 'Z' ? cp + 32 : cp;
    }
    if (has_special_lower(cp) || !jtext_locale()) {
        throw_case(ev, line, cp);
    }
    return (uint32_t)towlower_l((wint_t)cp, jtext_locale());
}

// Python's "cased" property (Lu, Ll, Lt and the Other_Lowercase/Other_Uppercase letters).
// NOTE: non-ASCII characters count as cased when the C library gives them a case mapping or an
// upper/lower class; Python uses its own Unicode tables.
static bool is_cased(uint32_t cp) {
    if (cp < 0x80) {
        return (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z');
    }
    locale_t loc = jtext_locale();
    if (!loc) {
        return false;
    }
    wint_t c = (wint_t)cp;
    return iswupper_l(c, loc) || iswlower_l(c, loc) || towupper_l(c, loc) != c || towlower_l(c, loc) != c;
}

static bool is_upper_cp(uint32_t cp) {
    if (cp < 0x80) {
        return cp >= 'A' && cp <= 'Z';
    }
    locale_t loc = jtext_locale();
    return loc && towlower_l((wint_t)cp, loc) != (wint_t)cp;
}

static bool is_lower_cp(uint32_t cp) {
    if (cp < 0x80) {
        return cp >= 'a' && cp <= 'z';
    }
    locale_t loc = jtext_locale();
    return loc && towupper_l((wint_t)cp, loc) != (wint_t)cp;
}

JValue jtext_case(JEval *ev, int line, const JStr *s, JCaseOp op) {
    size_t n;
    uint32_t *cps = decode_all(ev, s, &n, NULL);
    JBuf b;
    jbuf_init(&b, ev->arena);
    bool previous_cased = false;
    for (size_t i = 0; i < n; i++) {
        uint32_t c = cps[i];
        uint32_t mapped = c;
        switch (op) {
        case JCASE_UPPER: mapped = to_upper(ev, line, c); break;
        case JCASE_LOWER: mapped = to_lower(ev, line, c); break;
        case JCASE_CAPITALIZE: mapped = i == 0 ? to_upper(ev, line, c) : to_lower(ev, line, c); break;
        case JCASE_TITLE:
            mapped = previous_cased ? to_lower(ev, line, c) : to_upper(ev, line, c);
            previous_cased = is_cased(c);
            break;
        case JCASE_SWAPCASE:
            if (is_upper_cp(c)) {
                mapped = to_lower(ev, line, c);
            } else if (is_lower_cp(c)) {
                mapped = to_upper(ev, line, c);
            }
            break;
        }
        jutf8_append(&b, mapped);
    }
    return new_str(ev, b.data ? b.data : "", b.len);
}

JValue jtext_title_filter(JEval *ev, int line, const JStr *s) {
    // jinja2: "".join(item[0].upper() + item[1:].lower() for item in re.split(r"([-\s({\[<]+)", s))
    size_t n;
    uint32_t *cps = decode_all(ev, s, &n, NULL);
    JBuf b;
    jbuf_init(&b, ev->arena);
    bool at_word_start = true;
    for (size_t i = 0; i < n; i++) {
        uint32_t c = cps[i];
        bool separator = c == '-' || c == '(' || c == '{' || c == '[' || c == '<' || jtext_isspace(c);
        if (separator) {
            jutf8_append(&b, i == 0 || at_word_start ? to_upper(ev, line, c) : c);
            at_word_start = true;
            continue;
        }
        jutf8_append(&b, at_word_start ? to_upper(ev, line, c) : to_lower(ev, line, c));
        at_word_start = false;
    }
    return new_str(ev, b.data ? b.data : "", b.len);
}

// Python's islower()/isupper(): at least one cased character and none of the other case.
bool jtext_is_case(const JStr *s, bool upper) {
    bool any = false;
    for (size_t i = 0; i < s->len;) {
        size_t len;
        uint32_t c = jutf8_decode(s->data + i, s->len - i, &len);
        i += len;
        if (upper ? is_lower_cp(c) : is_upper_cp(c)) {
            return false;
        }
        any |= upper ? is_upper_cp(c) : is_lower_cp(c);
    }
    return any;
}

// ----------------------------------------------------------------------------
// find, count

int64_t jtext_find(const JStr *s, const JStr *sub, int64_t start, int64_t end, bool right) {
    int64_t n = (int64_t)jutf8_count(s->data, s->len);
    // Python normalizes start and end like slice bounds.
    if (start < 0) start = start + n < 0 ? 0 : start + n;
    if (end < 0) end = end + n < 0 ? 0 : end + n;
    if (end > n) end = n;
    if (start > n || start > end) {
        return -1;
    }
    size_t bs = jutf8_offset(s->data, s->len, (size_t)start);
    size_t be = jutf8_offset(s->data, s->len, (size_t)end);
    if (sub->len > be - bs) {
        return -1;
    }
    size_t at;
    bool found = false;
    if (!right) {
        const char *hit = memmem(s->data + bs, be - bs, sub->data, sub->len);
        if (hit) {
            at = (size_t)(hit - s->data);
            found = true;
        }
    } else {
        for (size_t k = be - sub->len + 1; k-- > bs;) {
            if (memcmp(s->data + k, sub->data, sub->len) == 0) {
                at = k;
                found = true;
                break;
            }
        }
    }
    return found ? (int64_t)jutf8_count(s->data, at) : -1;
}

int64_t jtext_count(const JStr *s, const JStr *sub) {
    if (sub->len == 0) {
        return (int64_t)jutf8_count(s->data, s->len) + 1;
    }
    int64_t count = 0;
    size_t start = 0;
    for (;;) {
        const char *hit = memmem(s->data + start, s->len - start, sub->data, sub->len);
        if (!hit) {
            return count;
        }
        count++;
        start = (size_t)(hit - s->data) + sub->len;
    }
}

// ----------------------------------------------------------------------------
// Number parsing

static int digit_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'z') return c - 'a' + 10;
    if (c >= 'A' && c <= 'Z') return c - 'A' + 10;
    return 99;
}

void jinja_strip_bounds(const char *s, size_t len, size_t *begin, size_t *end) {
    size_t b = 0, e = len;
    while (b < e) {
        size_t n;
        if (!jtext_isspace(jutf8_decode(s + b, e - b, &n))) break;
        b += n;
    }
    while (e > b) {
        size_t start = e - 1;
        while (start > b && ((unsigned char)s[start] & 0xC0) == 0x80) start--;
        size_t n;
        if (!jtext_isspace(jutf8_decode(s + start, e - start, &n))) break;
        e = start;
    }
    *begin = b;
    *end = e;
}

static void trim_bounds(const JStr *s, size_t *begin, size_t *end) {
    jinja_strip_bounds(s->data, s->len, begin, end);
}

// Copies digits of `base` from s[*i..end) into out, allowing single underscores between digits
// (Python's rule). Returns the number of digits copied.
static size_t copy_digits(const char *s, size_t *i, size_t end, int base, char *out, size_t *k) {
    size_t count = 0;
    while (*i < end) {
        char c = s[*i];
        if (c == '_' && count > 0 && *i + 1 < end && digit_value(s[*i + 1]) < base) {
            (*i)++;
            continue;
        }
        if (digit_value(c) >= base) break;
        out[(*k)++] = c;
        (*i)++;
        count++;
    }
    return count;
}

bool jtext_parse_float(const JStr *s, double *out) {
    size_t b, e;
    trim_bounds(s, &b, &e);
    const char *d = s->data;
    char buf[512];
    if (e - b == 0 || e - b >= sizeof buf) {
        return false;
    }
    size_t i = b, k = 0;
    if (d[i] == '+' || d[i] == '-') {
        buf[k++] = d[i++];
    }
    // inf, infinity and nan in any case.
    static const char *const words[] = {"infinity", "inf", "nan"};
    for (size_t w = 0; w < ARRAY_LEN(words); w++) {
        size_t n = strlen(words[w]);
        if (e - i == n && strncasecmp(d + i, words[w], n) == 0) {
            memcpy(buf + k, words[w], n + 1);
            *out = strtod(buf, NULL);
            return true;
        }
    }
    size_t int_digits = copy_digits(d, &i, e, 10, buf, &k);
    size_t frac_digits = 0;
    if (i < e && d[i] == '.') {
        buf[k++] = d[i++];
        frac_digits = copy_digits(d, &i, e, 10, buf, &k);
    }
    if (int_digits + frac_digits == 0) {
        return false;
    }
    if (i < e && (d[i] == 'e' || d[i] == 'E')) {
        buf[k++] = d[i++];
        if (i < e && (d[i] == '+' || d[i] == '-')) {
            buf[k++] = d[i++];
        }
        if (copy_digits(d, &i, e, 10, buf, &k) == 0) {
            return false;
        }
    }
    if (i != e) {
        return false;
    }
    buf[k] = '\0';
    *out = strtod(buf, NULL);
    return true;
}

int jtext_parse_int(const JStr *s, int base, int64_t *out) {
    size_t b, e;
    trim_bounds(s, &b, &e);
    const char *d = s->data;
    size_t i = b;
    bool negative = false;
    if (i < e && (d[i] == '+' || d[i] == '-')) {
        negative = d[i++] == '-';
    }
    // A prefix 0x, 0o or 0b is allowed when it matches the base (or base 0 picks it).
    if (i + 1 < e && d[i] == '0') {
        char x = (char)(d[i + 1] | 0x20);
        int prefix_base = x == 'x' ? 16 : x == 'o' ? 8 : x == 'b' ? 2 : 0;
        if (prefix_base && (base == 0 || base == prefix_base)) {
            base = prefix_base;
            i += 2;
            if (i < e && d[i] == '_') {
                i++;
            }
        }
    }
    if (base == 0) {
        base = 10;
    }
    char digits[128];
    size_t k = 0, start = i;
    if (e - i >= sizeof digits) {
        // Too many digits for 64 bits unless they are leading zeros; treat as overflow.
        return -1;
    }
    if (copy_digits(d, &i, e, base, digits, &k) == 0 || i != e) {
        return 0;
    }
    (void)start;
    uint64_t v = 0;
    uint64_t limit = negative ? UINT64_C(0x8000000000000000) : UINT64_C(0x7fffffffffffffff);
    for (size_t j = 0; j < k; j++) {
        uint64_t dv = (uint64_t)digit_value(digits[j]);
        if (v > (limit - dv) / (uint64_t)base) {
            return -1;
        }
        v = v * (uint64_t)base + dv;
    }
    *out = negative ? (int64_t)(0 - v) : (int64_t)v;
    return 1;
}
