// ggml_types.h: the tensor types a GGUF file can store, with their block layouts.
//
// Type ids and sizes are ggml's (ggml.h / ggml-common.h, llama.cpp c392e509). Ids are fixed by the
// file format; a gap means a type ggml has removed. Quantized types store blocks of `block_size`
// values in `type_size` bytes, so a row of ne[0] values takes ne[0] / block_size * type_size bytes
// and ne[0] must be a multiple of block_size.
#ifndef QBIAS_GGML_TYPES_H
#define QBIAS_GGML_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    GGML_TYPE_F32 = 0,
    GGML_TYPE_F16 = 1,
    GGML_TYPE_Q4_0 = 2,
    GGML_TYPE_Q4_1 = 3,
    GGML_TYPE_Q5_0 = 6,
    GGML_TYPE_Q5_1 = 7,
    GGML_TYPE_Q8_0 = 8,
    GGML_TYPE_Q8_1 = 9,
    GGML_TYPE_Q2_K = 10,
    GGML_TYPE_Q3_K = 11,
    GGML_TYPE_Q4_K = 12,
    GGML_TYPE_Q5_K = 13,
    GGML_TYPE_Q6_K = 14,
    GGML_TYPE_Q8_K = 15,
    GGML_TYPE_IQ2_XXS = 16,
    GGML_TYPE_IQ2_XS = 17,
    GGML_TYPE_IQ3_XXS = 18,
    GGML_TYPE_IQ1_S = 19,
    GGML_TYPE_IQ4_NL = 20,
    GGML_TYPE_IQ3_S = 21,
    GGML_TYPE_IQ2_S = 22,
    GGML_TYPE_IQ4_XS = 23,
    GGML_TYPE_I8 = 24,
    GGML_TYPE_I16 = 25,
    GGML_TYPE_I32 = 26,
    GGML_TYPE_I64 = 27,
    GGML_TYPE_F64 = 28,
    GGML_TYPE_IQ1_M = 29,
    GGML_TYPE_BF16 = 30,
    GGML_TYPE_TQ1_0 = 34,
    GGML_TYPE_TQ2_0 = 35,
    GGML_TYPE_COUNT = 39,
    // qbias's own type, outside ggml's range: a packed matrix (quant/format.h) stored as the bytes
    // of qmatrix_payload, ne[0] = byte count; its shape and format are in the file's metadata
    // (docs/formats.md). Other GGUF readers reject it, as they should.
    GGML_TYPE_QBIAS_PACKED = 1000,
} GGMLType;

typedef struct {
    const char *name;  // as ggml prints it, e.g. "q4_0"
    uint32_t block_size;
    uint32_t type_size; // bytes per block
} GGMLTypeInfo;

// Returns the layout of `type`, or NULL for an id that ggml does not define.
const GGMLTypeInfo *ggml_type_info(uint32_t type);

// Returns the name of a type id, or "unknown".
const char *ggml_type_name(uint32_t type);

#endif
