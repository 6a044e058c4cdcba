// ggml_types.c: block layouts of ggml's tensor types (see ggml_types.h for the source).
#include "ggml_types.h"

static const GGMLTypeInfo type_table[GGML_TYPE_COUNT] = {
    [GGML_TYPE_F32] = {"f32", 1, 4},
    [GGML_TYPE_F16] = {"f16", 1, 2},
    [GGML_TYPE_Q4_0] = {"q4_0", 32, 18},     // fp16 scale + 16 bytes of nibbles: 4.5 bits per weight
    [GGML_TYPE_Q4_1] = {"q4_1", 32, 20},     // fp16 scale and min + 16 bytes
    [GGML_TYPE_Q5_0] = {"q5_0", 32, 22},     // fp16 scale + 4 bytes of high bits + 16 bytes
    [GGML_TYPE_Q5_1] = {"q5_1", 32, 24},
    [GGML_TYPE_Q8_0] = {"q8_0", 32, 34},     // fp16 scale + 32 int8: 8.5 bits per weight
    [GGML_TYPE_Q8_1] = {"q8_1", 32, 36},
    [GGML_TYPE_Q2_K] = {"q2_K", 256, 84},
    [GGML_TYPE_Q3_K] = {"q3_K", 256, 110},
    [GGML_TYPE_Q4_K] = {"q4_K", 256, 144},   // 4.5 bits per weight
    [GGML_TYPE_Q5_K] = {"q5_K", 256, 176},
    [GGML_TYPE_Q6_K] = {"q6_K", 256, 210},   // 6.5625 bits per weight
    [GGML_TYPE_Q8_K] = {"q8_K", 256, 292},
    [GGML_TYPE_IQ2_XXS] = {"iq2_xxs", 256, 66},
    [GGML_TYPE_IQ2_XS] = {"iq2_xs", 256, 74},
    [GGML_TYPE_IQ3_XXS] = {"iq3_xxs", 256, 98},
    [GGML_TYPE_IQ1_S] = {"iq1_s", 256, 50},
    [GGML_TYPE_IQ4_NL] = {"iq4_nl", 32, 18},
    [GGML_TYPE_IQ3_S] = {"iq3_s", 256, 110},
    [GGML_TYPE_IQ2_S] = {"iq2_s", 256, 82},
    [GGML_TYPE_IQ4_XS] = {"iq4_xs", 256, 136},
    [GGML_TYPE_I8] = {"i8", 1, 1},
    [GGML_TYPE_I16] = {"i16", 1, 2},
    [GGML_TYPE_I32] = {"i32", 1, 4},
    [GGML_TYPE_I64] = {"i64", 1, 8},
    [GGML_TYPE_F64] = {"f64", 1, 8},
    [GGML_TYPE_IQ1_M] = {"iq1_m", 256, 56},
    [GGML_TYPE_BF16] = {"bf16", 1, 2},
    [GGML_TYPE_TQ1_0] = {"tq1_0", 256, 54},
    [GGML_TYPE_TQ2_0] = {"tq2_0", 256, 66},
};

static const GGMLTypeInfo qbias_packed = {"qbias_packed", 1, 1};

const GGMLTypeInfo *ggml_type_info(uint32_t type) {
    if (type == GGML_TYPE_QBIAS_PACKED) {
        return &qbias_packed;
    }
    if (type >= GGML_TYPE_COUNT || type_table[type].name == NULL) {
        return NULL;
    }
    return &type_table[type];
}

const char *ggml_type_name(uint32_t type) {
    const GGMLTypeInfo *info = ggml_type_info(type);
    return info ? info->name : "unknown";
}
