// unicode.h: the Unicode operations the tokenizers need, on UTF-8 text.
//
// Character properties, case mapping and normalization come from ICU (libicu, Unicode 15 in
// ICU 72), so no Unicode tables live in this repository. The properties follow the definitions
// Hugging Face's tokenizers crate uses (Rust's char methods), because its output is the reference.
#ifndef QBIAS_UNICODE_H
#define QBIAS_UNICODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

// Decodes the UTF-8 sequence at s[0..n) (n >= 1). Returns the code point and stores its length in
// *len; returns -1 with *len = 1 for an invalid or truncated sequence, an overlong form or a
// surrogate.
int32_t utf8_decode(const char *s, size_t n, size_t *len);

// Writes the UTF-8 form of `cp` (at most 0x10FFFF) to out and returns its length (1..4).
size_t utf8_encode(uint32_t cp, char out[4]);

// Checks that data [len] read from `path` is UTF-8 text: no NUL byte and no invalid sequence.
// Returns 0, or -1 with an error naming the file, line and byte offset; `text_name` names the
// text in the message (for example "calibration text").
int text_check_utf8(const char *path, const char *data, size_t len, const char *text_name);

typedef enum {
    UNICODE_NFC,
    UNICODE_NFD,
    UNICODE_NFKC,
    UNICODE_NFKD,
} UnicodeNormalForm;

// Appends the normalized form of text[0..len) to out. Invalid UTF-8 becomes U+FFFD first.
// Returns 0, or -1 with an error when ICU fails.
int unicode_normalize(const char *text, size_t len, UnicodeNormalForm form, StrBuf *out);

// Appends the full lower-case mapping of one code point (Rust's char::to_lowercase: "İ" becomes
// "i" + U+0307, and no context rules such as the Greek final sigma apply).
void unicode_append_lower(uint32_t cp, StrBuf *out);

bool unicode_is_whitespace(uint32_t cp);       // White_Space property (Rust char::is_whitespace)
bool unicode_is_other(uint32_t cp);            // general category C* (Cc, Cf, Cs, Co, Cn)
bool unicode_is_punctuation(uint32_t cp);      // general category P*
bool unicode_is_nonspacing_mark(uint32_t cp);  // general category Mn

#endif
