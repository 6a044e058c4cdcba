// jinja_text.c: UTF-8 helpers and Python's str operations (strip, split, replace, case mapping, find,
// % formatting, str.format, float() and int() parsing), indexing by code point as Python does.
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

// ----------------------------------------------------------------------------
// HTML escaping (markupsafe.escape)

JValue jtext_html_escape(JEval *ev, JValue v, int line) {
    if (v.kind == JV_STRING && v.s->markup) {
        return v;
    }
    JStr *s = jv_to_str(ev, line, v);
    JBuf b;
    jbuf_init(&b, ev->arena);
    for (size_t i = 0; i < s->len; i++) {
        switch (s->data[i]) {
        case '&': jbuf_append_str(&b, "&amp;"); break;
        case '<': jbuf_append_str(&b, "&lt;"); break;
        case '>': jbuf_append_str(&b, "&gt;"); break;
        case '"': jbuf_append_str(&b, "&#34;"); break;
        case '\'': jbuf_append_str(&b, "&#39;"); break;
        default: jbuf_append(&b, s->data + i, 1);
        }
    }
    return jv_markup(ev->arena, b.data ? b.data : "", b.len);
}

void jtext_reject_markup(JEval *ev, int line, JValue v, const char *what) {
    if (v.kind == JV_STRING && v.s->markup) {
        JTHROW(ev, line,
               "%s of a Markup string (made by |safe or |escape) is not supported: markupsafe gives "
               "Markup results that escape what they are combined with",
               what);
    }
}

// ----------------------------------------------------------------------------
// printf-style formatting: str % args

// Pads text to `width` code points (left-justified when `left`).
static void append_padded(JBuf *b, const char *text, size_t len, int64_t width, bool left, char fill) {
    int64_t count = (int64_t)jutf8_count(text, len);
    if (!left) {
        for (int64_t i = count; i < width; i++) jbuf_append(b, &fill, 1);
    }
    jbuf_append(b, text, len);
    if (left) {
        for (int64_t i = count; i < width; i++) jbuf_append(b, &fill, 1);
    }
}

// Converts a number argument of %d / %x / {:d} to int64 (floats truncate, as Python's int()).
static int64_t int_argument(JEval *ev, int line, JValue v, char conv, bool allow_float) {
    if (v.kind == JV_BOOL) return v.b;
    if (v.kind == JV_INT) return v.i;
    if (v.kind == JV_FLOAT && allow_float) {
        if (!isfinite(v.f)) {
            JTHROW(ev, line, "cannot convert float %s to integer", isnan(v.f) ? "NaN" : "infinity");
        }
        if (v.f >= 9.2233720368547758e18 || v.f < -9.2233720368547758e18) {
            JTHROW(ev, line, "integer outside the 64-bit range this interpreter supports");
        }
        return (int64_t)v.f;
    }
    JTHROW(ev, line, "%%%c format: %s is required, not %s", conv,
           allow_float ? "a real number" : "an integer", jv_type_name(v));
}

JValue jtext_percent_format(JEval *ev, int line, const JStr *fmt, JValue args) {
    jtext_reject_markup(ev, line, (JValue){.kind = JV_STRING, .s = (JStr *)fmt}, "'%' formatting");
    const JValue *positional = &args;
    size_t n_positional = 1;
    if (args.kind == JV_LIST && args.l->kind == JL_TUPLE) {
        positional = args.l->items;
        n_positional = args.l->len;
    }
    // Python treats any non-tuple, non-str object with __getitem__ as a possible mapping.
    bool is_mapping = args.kind == JV_DICT || args.kind == JV_UNDEFINED ||
                      (args.kind == JV_LIST && args.l->kind != JL_TUPLE && args.l->kind != JL_ITERATOR);
    size_t next_arg = 0;
    JBuf b;
    jbuf_init(&b, ev->arena);
    const char *s = fmt->data;
    size_t n = fmt->len;
    for (size_t i = 0; i < n;) {
        if (s[i] != '%') {
            jbuf_append(&b, s + i, 1);
            i++;
            continue;
        }
        size_t spec_start = i++;
        JValue arg = {0};
        bool have_arg = false;
        if (i < n && s[i] == '(') {
            size_t key_start = ++i;
            int depth = 1;
            while (i < n && depth > 0) {
                depth += s[i] == '(' ? 1 : s[i] == ')' ? -1 : 0;
                i++;
            }
            if (depth != 0) {
                JTHROW(ev, line, "ValueError: incomplete format key");
            }
            if (args.kind == JV_UNDEFINED) {
                jv_throw_undefined(ev->err, line, args.u);
            }
            if (args.kind != JV_DICT) {
                JTHROW(ev, line, "TypeError: format requires a mapping");
            }
            JValue key = jv_str(ev->arena, s + key_start, i - 1 - key_start);
            if (!jdict_get(args.d, key, &arg)) {
                JTHROW(ev, line, "KeyError: '%s'", key.s->data);
            }
            have_arg = true;
        }
        char flags[8];
        size_t n_flags = 0;
        while (i < n && strchr("-+ #0", s[i]) && n_flags < sizeof flags - 1) {
            flags[n_flags++] = s[i++];
        }
        flags[n_flags] = '\0';
        int64_t width = -1, precision = -1;
        if (i < n && s[i] == '*') {
            JTHROW(ev, line, "'*' width in %% formatting is not supported");
        }
        while (i < n && s[i] >= '0' && s[i] <= '9') {
            width = (width < 0 ? 0 : width) * 10 + (s[i++] - '0');
            if (width > 1000000) JTHROW(ev, line, "format width too large");
        }
        if (i < n && s[i] == '.') {
            i++;
            if (i < n && s[i] == '*') {
                JTHROW(ev, line, "'*' precision in %% formatting is not supported");
            }
            precision = 0;
            while (i < n && s[i] >= '0' && s[i] <= '9') {
                precision = precision * 10 + (s[i++] - '0');
                if (precision > 1000) JTHROW(ev, line, "format precision too large");
            }
        }
        while (i < n && (s[i] == 'h' || s[i] == 'l' || s[i] == 'L')) {
            i++;
        }
        if (i >= n) {
            JTHROW(ev, line, "ValueError: incomplete format");
        }
        char conv = s[i++];
        if (conv == '%') {
            jbuf_append(&b, "%", 1);
            continue;
        }
        if (!have_arg) {
            if (next_arg >= n_positional) {
                JTHROW(ev, line, "TypeError: not enough arguments for format string");
            }
            arg = positional[next_arg++];
        }
        bool left = strchr(flags, '-') != NULL;
        char cfmt[32];
        switch (conv) {
        case 's':
        case 'r': {
            JBuf text;
            jbuf_init(&text, ev->arena);
            if (conv == 's') {
                jv_append_str(ev, line, &text, arg);
            } else {
                jv_append_repr(ev, line, &text, arg);
            }
            size_t len = text.len;
            if (precision >= 0) {
                len = jutf8_offset(text.data ? text.data : "", text.len, (size_t)precision);
            }
            append_padded(&b, text.data ? text.data : "", len, width, left, ' ');
            break;
        }
        case 'd':
        case 'i':
        case 'u':
        case 'x':
        case 'X':
        case 'o': {
            bool is_decimal = conv == 'd' || conv == 'i' || conv == 'u';
            if (conv == 'o' && strchr(flags, '#')) {
                JTHROW(ev, line, "'%%#o' formatting is not supported");
            }
            int64_t v = int_argument(ev, line, arg, conv, is_decimal);
            // Python prints negative hex and octal with a minus sign; C prints the two's complement.
            if (!is_decimal && v < 0) {
                JTHROW(ev, line, "'%%%c' formatting of a negative number is not supported", conv);
            }
            if (precision >= 0) {
                snprintf(cfmt, sizeof cfmt, "%%%s*.*ll%c", flags, is_decimal ? 'd' : conv);
                jbuf_printf(&b, cfmt, (int)(width < 0 ? 0 : width), (int)precision, (long long)v);
            } else {
                snprintf(cfmt, sizeof cfmt, "%%%s*ll%c", flags, is_decimal ? 'd' : conv);
                jbuf_printf(&b, cfmt, (int)(width < 0 ? 0 : width), (long long)v);
            }
            break;
        }
        case 'e':
        case 'E':
        case 'f':
        case 'F':
        case 'g':
        case 'G': {
            if (!jv_is_number(arg)) {
                JTHROW(ev, line, "TypeError: must be real number, not %s", jv_type_name(arg));
            }
            snprintf(cfmt, sizeof cfmt, "%%%s*.*%c", flags, conv);
            jbuf_printf(&b, cfmt, (int)(width < 0 ? 0 : width), (int)(precision < 0 ? 6 : precision),
                        jv_as_double(arg));
            break;
        }
        case 'c': {
            JBuf ch;
            jbuf_init(&ch, ev->arena);
            if (arg.kind == JV_STRING && jutf8_count(arg.s->data, arg.s->len) == 1) {
                jbuf_append(&ch, arg.s->data, arg.s->len);
            } else if (arg.kind == JV_INT && arg.i >= 0 && arg.i <= 0x10FFFF &&
                       !(arg.i >= 0xD800 && arg.i <= 0xDFFF)) {
                jutf8_append(&ch, (uint32_t)arg.i);
            } else {
                JTHROW(ev, line, "TypeError: %%c requires an int in range or a single character");
            }
            append_padded(&b, ch.data, ch.len, width, left, ' ');
            break;
        }
        default:
            JTHROW(ev, line, "ValueError: unsupported format character '%c' (0x%x) at index %zu", conv,
                   (unsigned)(unsigned char)conv, spec_start + (i - 1 - spec_start));
        }
    }
    if (next_arg < n_positional && !is_mapping) {
        JTHROW(ev, line, "TypeError: not all arguments converted during string formatting");
    }
    return new_str(ev, b.data ? b.data : "", b.len);
}

// ----------------------------------------------------------------------------
// str.format

typedef struct {
    char fill;
    char align; // 0, '<', '>', '^', '='
    char sign;  // 0, '+', '-', ' '
    bool zero;
    int64_t width, precision; // -1 when absent
    char type;  // 0 when absent
} FormatSpec;

static void parse_spec(JEval *ev, int line, const char *s, size_t n, FormatSpec *spec) {
    *spec = (FormatSpec){.fill = ' ', .width = -1, .precision = -1};
    size_t i = 0;
    // [[fill]align]: fill is one character (ASCII here).
    if (n >= 2 && strchr("<>^=", s[1])) {
        spec->fill = s[0];
        spec->align = s[1];
        i = 2;
    } else if (n >= 1 && strchr("<>^=", s[0])) {
        spec->align = s[0];
        i = 1;
    }
    if (i < n && strchr("+- ", s[i])) {
        spec->sign = s[i++];
    }
    if (i < n && (s[i] == '#' || s[i] == 'z')) {
        JTHROW(ev, line, "the '%c' option in str.format specifications is not supported", s[i]);
    }
    if (i < n && s[i] == '0') {
        spec->zero = true;
        i++;
    }
    while (i < n && s[i] >= '0' && s[i] <= '9') {
        spec->width = (spec->width < 0 ? 0 : spec->width) * 10 + (s[i++] - '0');
        if (spec->width > 1000000) JTHROW(ev, line, "format width too large");
    }
    if (i < n && (s[i] == ',' || s[i] == '_')) {
        JTHROW(ev, line, "digit grouping ('%c') in str.format specifications is not supported", s[i]);
    }
    if (i < n && s[i] == '.') {
        i++;
        spec->precision = 0;
        size_t start = i;
        while (i < n && s[i] >= '0' && s[i] <= '9') {
            spec->precision = spec->precision * 10 + (s[i++] - '0');
            if (spec->precision > 1000) JTHROW(ev, line, "format precision too large");
        }
        if (i == start) JTHROW(ev, line, "ValueError: Format specifier missing precision");
    }
    if (i < n) {
        spec->type = s[i++];
    }
    if (i != n) {
        JTHROW(ev, line, "ValueError: Invalid format specifier '%.*s'", (int)n, s);
    }
}

// Appends text aligned in spec->width; numbers default to the right, text to the left.
static void append_aligned(JBuf *b, const char *text, size_t len, const FormatSpec *spec, bool numeric) {
    int64_t count = (int64_t)jutf8_count(text, len);
    int64_t pad = spec->width > count ? spec->width - count : 0;
    char align = spec->align ? spec->align : numeric ? '>' : '<';
    char fill = spec->fill;
    if (spec->zero && !spec->align && numeric) {
        align = '=';
        fill = '0';
    }
    if (align == '=' && len > 0 && (text[0] == '-' || text[0] == '+' || text[0] == ' ')) {
        jbuf_append(b, text, 1);
        text++;
        len--;
    }
    int64_t before = align == '<' ? 0 : align == '^' ? pad / 2 : pad;
    for (int64_t i = 0; i < before; i++) jbuf_append(b, &fill, 1);
    jbuf_append(b, text, len);
    for (int64_t i = before; i < pad; i++) jbuf_append(b, &fill, 1);
}

static void format_value(JEval *ev, int line, JBuf *b, JValue v, const FormatSpec *spec, bool empty_spec) {
    char out[512];
    if (v.kind == JV_STRING || empty_spec || v.kind == JV_NONE || v.kind == JV_UNDEFINED ||
        v.kind == JV_LIST || v.kind == JV_DICT) {
        if (!empty_spec && v.kind != JV_STRING) {
            JTHROW(ev, line, "TypeError: unsupported format string passed to %s.__format__",
                   jv_type_name(v));
        }
        if (spec->type && spec->type != 's') {
            JTHROW(ev, line, "ValueError: Unknown format code '%c' for object of type 'str'", spec->type);
        }
        JStr *text = jv_to_str(ev, line, v);
        size_t len = text->len;
        if (spec->precision >= 0) {
            len = jutf8_offset(text->data, text->len, (size_t)spec->precision);
        }
        append_aligned(b, text->data, len, spec, false);
        return;
    }
    if (!jv_is_number(v)) {
        JTHROW(ev, line, "TypeError: unsupported format string passed to %s.__format__", jv_type_name(v));
    }
    char sign[2] = {spec->sign == '+' || spec->sign == ' ' ? spec->sign : 0, 0};
    char type = spec->type;
    bool is_int = v.kind != JV_FLOAT;
    if (is_int && (type == 0 || type == 'd' || type == 'x' || type == 'X' || type == 'o' || type == 'b')) {
        if (spec->precision >= 0) {
            JTHROW(ev, line, "ValueError: Precision not allowed in integer format specifier");
        }
        int64_t x = v.kind == JV_BOOL ? v.b : v.i;
        uint64_t mag = x < 0 ? 0 - (uint64_t)x : (uint64_t)x;
        char digits[80];
        if (type == 'b') {
            int k = 0;
            do {
                digits[k++] = (char)('0' + (mag & 1));
                mag >>= 1;
            } while (mag);
            for (int i = 0; i < k / 2; i++) {
                char t = digits[i];
                digits[i] = digits[k - 1 - i];
                digits[k - 1 - i] = t;
            }
            digits[k] = '\0';
        } else {
            snprintf(digits, sizeof digits, type == 'x' ? "%llx" : type == 'X' ? "%llX" : type == 'o' ? "%llo" : "%llu",
                     (unsigned long long)mag);
        }
        snprintf(out, sizeof out, "%s%s", x < 0 ? "-" : sign, digits);
        append_aligned(b, out, strlen(out), spec, true);
        return;
    }
    if (type == 0 && spec->precision >= 0) {
        JTHROW(ev, line, "float format specifications without a type and with a precision are not supported");
    }
    if (type == 0) {
        JBuf repr;
        jbuf_init(&repr, ev->arena);
        if (sign[0] && !signbit(jv_as_double(v))) {
            jbuf_append(&repr, sign, 1);
        }
        jv_append_float_repr(&repr, jv_as_double(v));
        append_aligned(b, repr.data, repr.len, spec, true);
        return;
    }
    if (!strchr("eEfFgG%", type)) {
        JTHROW(ev, line, "ValueError: Unknown format code '%c' for object of type '%s'", type,
               jv_type_name(v));
    }
    double x = jv_as_double(v);
    int precision = (int)(spec->precision < 0 ? 6 : spec->precision);
    JBuf text;
    jbuf_init(&text, ev->arena);
    if (type == '%') {
        jbuf_printf(&text, "%s%.*f%%", sign, precision, x * 100.0);
    } else {
        char cfmt[16];
        snprintf(cfmt, sizeof cfmt, "%%%s.*%c", sign, type);
        jbuf_printf(&text, cfmt, precision, x);
    }
    append_aligned(b, text.data, text.len, spec, true);
}

JValue jtext_format(JEval *ev, int line, const JStr *fmt, const JValue *args, size_t n_args,
                    const JDict *kwargs) {
    JBuf b;
    jbuf_init(&b, ev->arena);
    const char *s = fmt->data;
    size_t n = fmt->len;
    int auto_index = 0; // 0 unknown, 1 automatic numbering, -1 manual
    size_t next_auto = 0;
    for (size_t i = 0; i < n;) {
        char c = s[i];
        if (c == '}' ) {
            if (i + 1 < n && s[i + 1] == '}') {
                jbuf_append(&b, "}", 1);
                i += 2;
                continue;
            }
            JTHROW(ev, line, "ValueError: Single '}' encountered in format string");
        }
        if (c != '{') {
            jbuf_append(&b, s + i, 1);
            i++;
            continue;
        }
        if (i + 1 < n && s[i + 1] == '{') {
            jbuf_append(&b, "{", 1);
            i += 2;
            continue;
        }
        size_t start = ++i;
        while (i < n && s[i] != '}' && s[i] != '{') i++;
        if (i >= n || s[i] == '{') {
            JTHROW(ev, line, i >= n ? "ValueError: Single '{' encountered in format string"
                                    : "nested replacement fields in str.format are not supported");
        }
        const char *field = s + start;
        size_t field_len = i - start;
        i++; // '}'

        // field := name (. attr | [key])* [!conv] [:spec]
        size_t name_end = 0;
        while (name_end < field_len && !strchr(".[!:", field[name_end])) name_end++;
        JValue value;
        if (name_end == 0) {
            if (auto_index < 0) {
                JTHROW(ev, line, "ValueError: cannot switch from manual field specification to automatic field numbering");
            }
            auto_index = 1;
            if (next_auto >= n_args) {
                JTHROW(ev, line, "IndexError: Replacement index %zu out of range for positional args tuple", next_auto);
            }
            value = args[next_auto++];
        } else if (field[0] >= '0' && field[0] <= '9') {
            if (auto_index > 0) {
                JTHROW(ev, line, "ValueError: cannot switch from automatic field numbering to manual field specification");
            }
            auto_index = -1;
            size_t index = 0;
            for (size_t k = 0; k < name_end; k++) {
                if (field[k] < '0' || field[k] > '9') {
                    JTHROW(ev, line, "invalid field name '%.*s' in format string", (int)name_end, field);
                }
                index = index * 10 + (size_t)(field[k] - '0');
                if (index > 100000) break;
            }
            if (index >= n_args) {
                JTHROW(ev, line, "IndexError: Replacement index %zu out of range for positional args tuple", index);
            }
            value = args[index];
        } else {
            char *name = jarena_strndup(ev->arena, field, name_end);
            if (!kwargs || !jdict_get_name(kwargs, name, &value)) {
                JTHROW(ev, line, "KeyError: '%s'", name);
            }
        }
        size_t k = name_end;
        while (k < field_len && (field[k] == '.' || field[k] == '[')) {
            if (field[k] == '.') {
                size_t a = ++k;
                while (k < field_len && !strchr(".[!:", field[k])) k++;
                value = jeval_getattr(ev, line, value, jarena_strndup(ev->arena, field + a, k - a));
            } else {
                size_t a = ++k;
                while (k < field_len && field[k] != ']') k++;
                if (k >= field_len) JTHROW(ev, line, "ValueError: Missing ']' in format string");
                JValue key = jv_str(ev->arena, field + a, k - a);
                bool numeric = k > a;
                int64_t index = 0;
                for (size_t q = a; q < k; q++) {
                    if (field[q] < '0' || field[q] > '9' || index > 100000000) numeric = false;
                    else index = index * 10 + (field[q] - '0');
                }
                value = jeval_getitem(ev, line, value, numeric ? jv_int(index) : key);
                k++;
            }
        }
        if (k < field_len && field[k] == '!') {
            if (k + 1 >= field_len) JTHROW(ev, line, "ValueError: end of string while looking for conversion specifier");
            char conv = field[k + 1];
            JBuf text;
            jbuf_init(&text, ev->arena);
            if (conv == 'r') {
                jv_append_repr(ev, line, &text, value);
            } else if (conv == 's') {
                jv_append_str(ev, line, &text, value);
            } else {
                JTHROW(ev, line, "conversion '!%c' in str.format is not supported", conv);
            }
            value = jv_str(ev->arena, text.data ? text.data : "", text.len);
            k += 2;
        }
        FormatSpec spec = {.fill = ' ', .width = -1, .precision = -1};
        bool empty_spec = true;
        if (k < field_len) {
            if (field[k] != ':') JTHROW(ev, line, "ValueError: expected ':' after conversion specifier");
            k++;
            empty_spec = k == field_len;
            parse_spec(ev, line, field + k, field_len - k, &spec);
        }
        if (value.kind == JV_BOOL && empty_spec) {
            jbuf_append_str(&b, value.b ? "True" : "False");
            continue;
        }
        format_value(ev, line, &b, value, &spec, empty_spec);
    }
    return new_str(ev, b.data ? b.data : "", b.len);
}
