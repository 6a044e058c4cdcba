// spec.h: quantization spec strings, which name a model variant.
//
// Grammar (docs/quant-spec.md has the full description):
//   spec    := "fp32" | method ":" "w" bits layout [ "-asym" ]
//   method  := "rtn"
//   layout  := "g" group_size     groups of group_size consecutive input columns per output row
//            | "c"                one group per output row (per output channel)
// Examples: fp32, rtn:w8g128, rtn:w4g32, rtn:w4c, rtn:w3g128-asym.
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
    char text[64];     // canonical spec string
} QuantSpec;

// Parses a spec. Returns 0, or -1 with a message in `error` that shows the accepted forms.
int quant_spec_parse(const char *text, QuantSpec *out, char *error, size_t error_size);

// The accepted forms, for help text and error messages.
extern const char QUANT_SPEC_FORMS[];

#endif
