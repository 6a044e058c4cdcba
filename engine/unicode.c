// unicode.c: UTF-8 coding and ICU-backed character properties, case mapping and normalization
// (see unicode.h).
#include "unicode.h"

#include <stdlib.h>
#include <string.h>
#include <unicode/uchar.h>
#include <unicode/unorm2.h>
#include <unicode/ustring.h>

#include "util.h"

int32_t utf8_decode(const char *s, size_t n, size_t *len) {
    const unsigned char *u = (const unsigned char *)s;
    *len = 1;
    if (u[0] < 0x80) {
        return u[0];
    }

    size_t need;
    uint32_t cp, min;
    if ((u[0] & 0xE0) == 0xC0) {
        need = 2, cp = u[0] & 0x1F, min = 0x80;
    } else if ((u[0] & 0xF0) == 0xE0) {
        need = 3, cp = u[0] & 0x0F, min = 0x800;
    } else if ((u[0] & 0xF8) == 0xF0) {
        need = 4, cp = u[0] & 0x07, min = 0x10000;
    } else {
        return -1;
    }
    if (n < need) {
        return -1;
    }
    for (size_t i = 1; i < need; i++) {
        if ((u[i] & 0xC0) != 0x80) {
            return -1;
        }
        cp = (cp << 6) | (u[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
        return -1;
    }
    *len = need;
    return (int32_t)cp;
}

size_t utf8_encode(uint32_t cp, char out[4]) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

// Converts UTF-8 to a newly allocated UTF-16 buffer (invalid sequences become U+FFFD).
static UChar *to_utf16(const char *text, size_t len, int32_t *out_len) {
    // UTF-16 never needs more code units than UTF-8 has bytes.
    UChar *buf = xmalloc((len + 1) * sizeof *buf);
    UErrorCode status = U_ZERO_ERROR;
    u_strFromUTF8WithSub(buf, (int32_t)len + 1, out_len, text, (int32_t)len, 0xFFFD, NULL, &status);
    if (U_FAILURE(status)) {
        *out_len = 0;
    }
    return buf;
}

static void append_utf16(const UChar *s, int32_t n, StrBuf *out) {
    for (int32_t i = 0; i < n;) {
        UChar32 cp;
        U16_NEXT(s, i, n, cp);
        char bytes[4];
        sb_append_n(out, bytes, utf8_encode((uint32_t)cp, bytes));
    }
}

int unicode_normalize(const char *text, size_t len, UnicodeNormalForm form, StrBuf *out) {
    if (len > INT32_MAX / 4) {
        return err_set("cannot normalize %zu bytes of text: ICU takes at most %d", len,
                       INT32_MAX / 4);
    }
    UErrorCode status = U_ZERO_ERROR;
    const UNormalizer2 *normalizer = NULL;
    switch (form) {
    case UNICODE_NFC: normalizer = unorm2_getNFCInstance(&status); break;
    case UNICODE_NFD: normalizer = unorm2_getNFDInstance(&status); break;
    case UNICODE_NFKC: normalizer = unorm2_getNFKCInstance(&status); break;
    case UNICODE_NFKD: normalizer = unorm2_getNFKDInstance(&status); break;
    }
    if (U_FAILURE(status)) {
        return err_set("ICU has no Unicode normalizer: %s", u_errorName(status));
    }

    int32_t n16 = 0;
    UChar *src = to_utf16(text, len, &n16);
    // Decomposition grows text by a bounded factor; retry once with the size ICU reports.
    int32_t cap = 3 * n16 + 16;
    UChar *dst = xmalloc((size_t)cap * sizeof *dst);
    int32_t n = unorm2_normalize(normalizer, src, n16, dst, cap, &status);
    if (status == U_BUFFER_OVERFLOW_ERROR) {
        status = U_ZERO_ERROR;
        cap = n + 1;
        dst = xrealloc(dst, (size_t)cap * sizeof *dst);
        n = unorm2_normalize(normalizer, src, n16, dst, cap, &status);
    }
    free(src);
    if (U_FAILURE(status)) {
        free(dst);
        return err_set("Unicode normalization failed in ICU: %s", u_errorName(status));
    }
    append_utf16(dst, n, out);
    free(dst);
    return 0;
}

void unicode_append_lower(uint32_t cp, StrBuf *out) {
    UChar src[2], dst[8];
    int32_t n_src = 0;
    U16_APPEND_UNSAFE(src, n_src, (UChar32)cp);
    UErrorCode status = U_ZERO_ERROR;
    // A lone code point leaves no context, so only the unconditional full mappings apply.
    int32_t n = u_strToLower(dst, (int32_t)ARRAY_LEN(dst), src, n_src, "", &status);
    if (U_FAILURE(status)) {
        char bytes[4];
        sb_append_n(out, bytes, utf8_encode(cp, bytes));
        return;
    }
    append_utf16(dst, n, out);
}

bool unicode_is_whitespace(uint32_t cp) {
    return u_isUWhiteSpace((UChar32)cp);
}

bool unicode_is_other(uint32_t cp) {
    return (U_GET_GC_MASK((UChar32)cp) & U_GC_C_MASK) != 0;
}

bool unicode_is_punctuation(uint32_t cp) {
    return (U_GET_GC_MASK((UChar32)cp) & U_GC_P_MASK) != 0;
}

bool unicode_is_nonspacing_mark(uint32_t cp) {
    return u_charType((UChar32)cp) == U_NON_SPACING_MARK;
}

int text_check_utf8(const char *path, const char *data, size_t len, const char *text_name) {
    long line_no = 1;
    size_t pos = 0;
    while (pos < len) {
        if (data[pos] == '\0') {
            return err_set("%s:%ld: NUL byte at byte offset %zu, so the file is binary or damaged; "
                           "%s must be UTF-8 text",
                           path, line_no, pos, text_name);
        }
        size_t n = 1;
        if (utf8_decode(data + pos, len - pos, &n) < 0) {
            return err_set("%s:%ld: invalid UTF-8 at byte offset %zu; %s must be UTF-8, so convert "
                           "the file (for example with iconv -t UTF-8)",
                           path, line_no, pos, text_name);
        }
        line_no += data[pos] == '\n';
        pos += n;
    }
    return 0;
}
