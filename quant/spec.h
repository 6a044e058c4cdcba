// spec.h: quantization spec strings, which name a model variant.
//
// Grammar (docs/quant-spec.md has the full description):
//   spec    := "fp32" | method ":" "w" bits layout [ "a8" ] [ "-asym" ] [ "-f16" ] [ "-fake" ]
//   method  := "rtn"
//   layout  := "g" group_size     groups of group_size consecutive input columns per output row
//            | "c"                one group per output row (per output channel)
//   "a8"     activations quantized per token to int8 (dynamic, symmetric): W8A8, W4A8
//   "-f16"   scales stored in fp16 (default fp32)
//   "-fake"  weights stored dequantized in fp32 ("fake quantization", as the reference study
//            simulated them) instead of packed; with "a8", activations are quantized and
//            dequantized before an fp32 product
// Examples: fp32, rtn:w8g128, rtn:w4g32, rtn:w4c, rtn:w3g128-asym, rtn:w4g128a8, rtn:w4g128-fake.
// The canonical form of a parsed spec (QuantSpec.text) is the variant's id in results.
#ifndef QBIAS_QUANT_SPEC_H
#define QBIAS_QUANT_SPEC_H

#include <stdbool.h>
#include <stddef.h>

typedef enum {
    QUANT_NONE = 0, // the model as stored ("fp32": computed in fp32 from F32/F16/BF16 weights)
    QUANT_RTN = 1,  // round-to-nearest weight quantization
} QuantMethod;

typedef struct {
    QuantMethod method;
    int weight_bits;   // 2..8 (0 for QUANT_NONE)
    int group_size;    // input columns per group; 0 = one group per output row
    bool symmetric;    // false: asymmetric with an integer zero point per group
    int act_bits;      // 8: per-token int8 activations; 0: fp32 activations
    bool fp16_scales;  // scales stored in fp16
    bool fake_quant;   // store dequantized fp32 weights instead of packed ones
    char text[64];     // canonical spec string
} QuantSpec;

// Parses a spec. Returns 0, or -1 with a message in `error` that shows the accepted forms.
int quant_spec_parse(const char *text, QuantSpec *out, char *error, size_t error_size);

// The accepted forms, for help text and error messages.
extern const char QUANT_SPEC_FORMS[];

#endif
