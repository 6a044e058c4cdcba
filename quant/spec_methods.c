// spec_methods.c: the recipe parser (grammar in spec_methods.h).
#include "spec_methods.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char QUANT_RECIPE_FORMS[] =
    "fp32 | rtn:w<bits>(g<group>|c)[a8][-asym] | gptq:w<bits>(g<group>|c)[-asym] | "
    "awq:w<bits>(g<group>|c) | sq:w<bits>a8, then optionally -f16 (fp16 scales) and -fake "
    "(dequantized fp32 storage), then optionally +kv8 or +kv4; bits 2..8, group 1..65536 input "
    "columns (c: one group per output row) (examples: gptq:w4g128, awq:w3g128-fake, sq:w8a8, "
    "rtn:w4g128, rtn:w8ca8, fp32+kv8)";

static int fail(char *error, size_t error_size, const char *text, const char *problem) {
    snprintf(error, error_size, "invalid quantization spec '%s': %s. Accepted forms: %s", text,
             problem, QUANT_RECIPE_FORMS);
    return -1;
}

// Parses a decimal number (digits only, at most 1000000) at *p and advances *p past it. Returns
// -1 when *p does not start with a digit or the number is larger.
static long parse_number(const char **p) {
    if (!isdigit((unsigned char)**p)) {
        return -1;
    }
    char *end = NULL;
    errno = 0;
    long value = strtol(*p, &end, 10);
    *p = end;
    return errno == 0 && value <= 1000000 ? value : -1;
}

const char *quant_algo_name(QuantAlgo algo) {
    switch (algo) {
    case QUANT_ALGO_NONE:
        return "fp32";
    case QUANT_ALGO_RTN:
        return "rtn";
    case QUANT_ALGO_GPTQ:
        return "gptq";
    case QUANT_ALGO_AWQ:
        return "awq";
    case QUANT_ALGO_SQ:
        return "sq";
    }
    return "?";
}

// The study's settings (llmc configurations of the reference study; llmc's defaults otherwise).
static void set_defaults(QuantRecipe *r) {
    r->gptq.percdamp = 0.01;
    r->gptq.block_size = 128;
    r->gptq.act_order = true;
    r->gptq.static_groups = true;
    r->awq.n_grid = 20;
    r->awq.clip = true;
    r->awq.clip_grid = 20;
    r->awq.max_shrink = 0.5;
    r->sq.alpha = 0.5;
    r->sq.smooth = true;
}

// Splits off a "+kv<bits>" suffix: stores the bits in r->kv_bits and returns the length of the
// text before it, or -1 with an error.
static long parse_kv_suffix(const char *text, QuantRecipe *r, char *error, size_t error_size) {
    const char *plus = strchr(text, '+');
    if (!plus) {
        return (long)strlen(text);
    }
    if (strcmp(plus, "+kv8") == 0) {
        r->kv_bits = 8;
    } else if (strcmp(plus, "+kv4") == 0) {
        r->kv_bits = 4;
    } else {
        return fail(error, error_size, text, "the KV-cache suffix must be +kv8 or +kv4");
    }
    return plus - text;
}

// Parses "w<bits>(g<group>|c)" at *p.
static int parse_weights(const char *text, const char **p, QuantRecipe *r, char *error,
                         size_t error_size) {
    if (**p != 'w') {
        return fail(error, error_size, text, "the weights part must start with 'w<bits>'");
    }
    (*p)++;
    long bits = parse_number(p);
    if (bits < 2 || bits > 8) {
        return fail(error, error_size, text, "weight bits must be 2..8");
    }
    r->weight_bits = (int)bits;

    if (**p == 'g') {
        (*p)++;
        long group = parse_number(p);
        if (group < 1 || group > 65536) {
            return fail(error, error_size, text, "group size must be 1..65536 input columns");
        }
        r->group_size = (int)group;
    } else if (**p == 'c') {
        (*p)++;
        r->group_size = 0;
    } else {
        return fail(error, error_size, text,
                    "after w<bits> give g<group> (e.g. g128) or c (per output channel)");
    }
    return 0;
}

static int parse_act_bits(const char *text, const char **p, QuantRecipe *r, char *error,
                          size_t error_size) {
    (*p)++; // 'a'
    long bits = parse_number(p);
    if (bits != 8) {
        return fail(error, error_size, text,
                    "activations are quantized to 8 bits only (a8), as the int8 kernels do");
    }
    r->act_bits = (int)bits;
    return 0;
}

static void format_text(QuantRecipe *r) {
    char weights[24] = "";
    if (r->algo == QUANT_ALGO_SQ) {
        snprintf(weights, sizeof weights, "w%d", r->weight_bits);
    } else if (r->group_size > 0) {
        snprintf(weights, sizeof weights, "w%dg%d", r->weight_bits, r->group_size);
    } else {
        snprintf(weights, sizeof weights, "w%dc", r->weight_bits);
    }
    char act[16] = "", kv[16] = "";
    if (r->act_bits > 0) {
        snprintf(act, sizeof act, "a%d", r->act_bits);
    }
    if (r->kv_bits > 0) {
        snprintf(kv, sizeof kv, "+kv%d", r->kv_bits);
    }
    if (r->algo == QUANT_ALGO_NONE) {
        snprintf(r->text, sizeof r->text, "fp32%s", kv);
    } else {
        snprintf(r->text, sizeof r->text, "%s:%s%s%s%s%s%s", quant_algo_name(r->algo), weights,
                 act, r->symmetric ? "" : "-asym", r->fp16_scales ? "-f16" : "",
                 r->fake_quant ? "-fake" : "", kv);
    }
}

int quant_recipe_parse(const char *text, QuantRecipe *out, char *error, size_t error_size) {
    memset(out, 0, sizeof *out);
    set_defaults(out);
    out->symmetric = true;

    long base_len = parse_kv_suffix(text, out, error, error_size);
    if (base_len < 0) {
        return -1;
    }
    char base[64];
    if (base_len >= (long)sizeof base) {
        return fail(error, error_size, text, "too long");
    }
    memcpy(base, text, (size_t)base_len);
    base[base_len] = '\0';

    if (strcmp(base, "fp32") == 0) {
        out->algo = QUANT_ALGO_NONE;
        format_text(out);
        return 0;
    }
    const char *colon = strchr(base, ':');
    if (!colon) {
        return fail(error, error_size, text, "expected 'fp32' or '<method>:<weights>'");
    }
    size_t method_len = (size_t)(colon - base);
    static const QuantAlgo algos[] = {QUANT_ALGO_RTN, QUANT_ALGO_GPTQ, QUANT_ALGO_AWQ,
                                      QUANT_ALGO_SQ};
    bool found = false;
    for (size_t i = 0; i < sizeof algos / sizeof algos[0]; i++) {
        const char *name = quant_algo_name(algos[i]);
        if (strlen(name) == method_len && strncmp(base, name, method_len) == 0) {
            out->algo = algos[i];
            found = true;
        }
    }
    if (!found) {
        return fail(error, error_size, text, "unknown method (supported: rtn, gptq, awq, sq)");
    }

    const char *p = colon + 1;
    if (out->algo == QUANT_ALGO_SQ) {
        // SmoothQuant: per-channel symmetric weights, activations required.
        if (*p != 'w') {
            return fail(error, error_size, text, "the weights part must start with 'w<bits>'");
        }
        p++;
        long bits = parse_number(&p);
        if (bits < 2 || bits > 8) {
            return fail(error, error_size, text, "weight bits must be 2..8");
        }
        out->weight_bits = (int)bits;
        out->group_size = 0;
        if (*p != 'a') {
            return fail(error, error_size, text,
                        "sq quantizes weights per output channel: write sq:w<bits>a<abits>, "
                        "e.g. sq:w8a8");
        }
        if (parse_act_bits(text, &p, out, error, error_size) != 0) {
            return -1;
        }
    } else {
        if (parse_weights(text, &p, out, error, error_size) != 0) {
            return -1;
        }
        if (*p == 'a') {
            if (out->algo != QUANT_ALGO_RTN) {
                return fail(error, error_size, text,
                            "activation quantization is available with rtn and sq only");
            }
            if (parse_act_bits(text, &p, out, error, error_size) != 0) {
                return -1;
            }
        }
    }

    if (strncmp(p, "-asym", 5) == 0) {
        if (out->algo == QUANT_ALGO_AWQ || out->algo == QUANT_ALGO_SQ) {
            // NOTE: the clipping search and the smoothing factors are implemented for symmetric
            // grids only, the configuration of the reference study.
            return fail(error, error_size, text, "awq and sq support symmetric weights only");
        }
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
                    "unexpected text after the weights part (suffixes go in the order -asym, "
                    "-f16, -fake, +kv<bits>)");
    }

    format_text(out);
    return 0;
}
