// spec_methods.h: quantization recipes, the spec grammar extended with the calibrated methods
// (GPTQ, AWQ, SmoothQuant), activation quantization and KV-cache quantization.
//
// Grammar (a superset of quant_spec_parse's, which parses the fp32 and plain RTN forms):
//   recipe  := base [ "+kv" ( "8" | "4" ) ]
//   base    := "fp32"
//            | "rtn:"  weights [ "a8" ] [ "-asym" ] storage
//            | "gptq:" weights [ "-asym" ] storage
//            | "awq:"  weights storage
//            | "sq:w" bits "a8" storage
//   weights := "w" bits ( "g" group | "c" )
//   storage := [ "-f16" ] [ "-fake" ]
// with bits 2..8 and group 1..65536 input columns; "c" is one group per output row. "a8"
// quantizes the input of every block linear per token to int8, dynamically and symmetrically.
// "sq" quantizes weights per output channel, symmetrically. "-f16" stores scales in fp16, and
// "-fake" stores the weights dequantized in fp32 instead of packed (quant/format.h), as the
// reference study simulated W3 and W4A8. "+kv8"/"+kv4" stores keys and values quantized per head
// and per token (asymmetric).
// Examples: gptq:w4g128, awq:w3g128, sq:w8a8, sq:w4a8-fake, rtn:w8ca8, fp32+kv8, gptq:w4g128+kv4.
//
// The method settings are filled with the reference study's configuration (llmc): GPTQ with
// damping 1% of the mean Hessian diagonal, blocks of 128 columns, act-order with static groups;
// AWQ with a 20-point scale grid (llmc's trans_version v2) and the weight-clipping search;
// SmoothQuant with migration strength alpha 0.5.
#ifndef QBIAS_QUANT_SPEC_METHODS_H
#define QBIAS_QUANT_SPEC_METHODS_H

#include <stdbool.h>
#include <stddef.h>

typedef enum {
    QUANT_ALGO_NONE = 0,  // weights as stored
    QUANT_ALGO_RTN,       // round-to-nearest
    QUANT_ALGO_GPTQ,      // Frantar et al. 2023, Hessian-based error compensation
    QUANT_ALGO_AWQ,       // Lin et al. 2024, activation-aware scaling and clipping
    QUANT_ALGO_SQ,        // Xiao et al. 2023, SmoothQuant
} QuantAlgo;

typedef struct {
    double percdamp;      // damping added to the Hessian diagonal, as a fraction of its mean
    int block_size;       // columns per lazy batch update
    bool act_order;       // quantize columns by descending Hessian diagonal
    bool static_groups;   // group scales from the weights before any update (needed by act-order)
} GptqSettings;

typedef struct {
    int n_grid;           // exponents 0, 1/n_grid, ... of the scale search
    bool clip;            // run the weight-clipping search after scaling
    int clip_grid;        // clipping ratios 1 - i/clip_grid ...
    double max_shrink;    // ... for i < max_shrink * clip_grid
} AwqSettings;

typedef struct {
    double alpha;         // migration strength: s = max|X|^alpha / max|W|^(1 - alpha)
    bool smooth;          // false: every smoothing factor is 1 (plain W<b>A<a>, for ablations)
} SqSettings;

typedef struct {
    QuantAlgo algo;
    int weight_bits;      // 2..8; 0 for QUANT_ALGO_NONE
    int group_size;       // input columns per group; 0 = one group per output row
    bool symmetric;       // false: asymmetric with an integer zero point per group
    int act_bits;         // 0: activations stay fp32; 8: per-token dynamic symmetric int8
    bool fp16_scales;     // scales stored in fp16
    bool fake_quant;      // weights stored dequantized in fp32 instead of packed
    int kv_bits;          // 0: fp32 KV cache; 8 or 4: per-head per-token quantized
    GptqSettings gptq;
    AwqSettings awq;
    SqSettings sq;
    char text[64];        // canonical recipe string, the variant's id
} QuantRecipe;

// Parses a recipe. Returns 0, or -1 with a message in `error` that shows the accepted forms.
int quant_recipe_parse(const char *text, QuantRecipe *out, char *error, size_t error_size);

// The accepted forms, for help text and error messages.
extern const char QUANT_RECIPE_FORMS[];

// Returns the method's name as written in recipes ("fp32", "rtn", "gptq", "awq", "sq").
const char *quant_algo_name(QuantAlgo algo);

#endif
