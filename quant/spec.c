// spec.c: the quantization spec parser (grammar in spec.h).
#include "spec.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char QUANT_SPEC_FORMS[] =
    "fp32 | rtn:w<bits>g<group>[a8][-asym][-f16][-fake] | rtn:w<bits>c[a8][-asym][-f16][-fake], "
    "with bits 2..8, group 1..65536 input columns (or c for one group per output row); a8 "
    "quantizes activations to int8 per token, -asym adds a zero point, -f16 stores fp16 scales, "
    "-fake simulates the quantization in fp32 "
    "(examples: fp32, rtn:w8g128, rtn:w4g32, rtn:w4c, rtn:w3g128-asym, rtn:w4g128a8)";

static int fail(char *error, size_t error_size, const char *text, const char *problem) {
    snprintf(error, error_size, "invalid quantization spec '%s': %s. Accepted forms: %s", text,
             problem, QUANT_SPEC_FORMS);
    return -1;
}

// Parses a decimal number of at least one digit at *p, advancing *p. Returns -1 if none.
static long parse_number(const char **p) {
    if (!isdigit((unsigned char)**p)) {
        return -1;
    }
    long value = 0;
    while (isdigit((unsigned char)**p)) {
        value = value * 10 + (**p - '0');
        if (value > 1000000) {
            return -1;
        }
        (*p)++;
    }
    return value;
}

int quant_spec_parse(const char *text, QuantSpec *out, char *error, size_t error_size) {
    memset(out, 0, sizeof *out);
    if (strcmp(text, "fp32") == 0) {
        out->method = QUANT_NONE;
        snprintf(out->text, sizeof out->text, "fp32");
        return 0;
    }

    const char *colon = strchr(text, ':');
    if (!colon) {
        return fail(error, error_size, text, "expected 'fp32' or '<method>:<weights>'");
    }
    size_t method_len = (size_t)(colon - text);
    if (method_len == 3 && strncmp(text, "rtn", 3) == 0) {
        out->method = QUANT_RTN;
    } else {
        return fail(error, error_size, text, "unknown method (supported: rtn)");
    }

    const char *p = colon + 1;
    if (*p != 'w') {
        return fail(error, error_size, text, "the weights part must start with 'w<bits>'");
    }
    p++;
    long bits = parse_number(&p);
    if (bits < 2 || bits > 8) {
        return fail(error, error_size, text, "weight bits must be 2..8");
    }
    out->weight_bits = (int)bits;

    if (*p == 'g') {
        p++;
        long group = parse_number(&p);
        if (group < 1 || group > 65536) {
            return fail(error, error_size, text, "group size must be 1..65536 input columns");
        }
        out->group_size = (int)group;
    } else if (*p == 'c') {
        p++;
        out->group_size = 0;
    } else {
        return fail(error, error_size, text,
                    "after w<bits> give g<group> (e.g. g128) or c (per output channel)");
    }

    if (strncmp(p, "a8", 2) == 0) {
        out->act_bits = 8;
        p += 2;
    }
    // Suffixes, each at most once and in this order.
    out->symmetric = true;
    if (strncmp(p, "-asym", 5) == 0) {
        out->symmetric = false;
        p += 5;
    }
    if (strncmp(p, "-f16", 4) == 0) {
        out->fp16_scales = true;
        p += 4;
    }
    if (strncmp(p, "-fake", 5) == 0) {
        out->fake_quant = true;
        p += 5;
    }
    if (*p != '\0') {
        return fail(error, error_size, text,
                    "unexpected text after the group; suffixes are a8, -asym, -f16, -fake in "
                    "this order");
    }

    char layout[16];
    if (out->group_size > 0) {
        snprintf(layout, sizeof layout, "g%d", out->group_size);
    } else {
        snprintf(layout, sizeof layout, "c");
    }
    snprintf(out->text, sizeof out->text, "rtn:w%d%s%s%s%s%s", out->weight_bits, layout,
             out->act_bits == 8 ? "a8" : "", out->symmetric ? "" : "-asym",
             out->fp16_scales ? "-f16" : "", out->fake_quant ? "-fake" : "");
    return 0;
}
