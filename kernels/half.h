// half.h: IEEE binary16 (fp16) and bfloat16 conversions, exact for every input.
//
// Weights stay in their file precision and are converted where they are used, so these run in hot
// loops; they are header-only so the compiler can inline them.
#ifndef QBIAS_HALF_H
#define QBIAS_HALF_H

#include <stdint.h>
#include <string.h>

static inline float f32_from_bits(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static inline uint32_t f32_to_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

// Converts binary16 to float32 exactly (subnormals, infinities and NaN included).
static inline float fp16_to_fp32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exponent = (h >> 10) & 0x1f;
    uint32_t mantissa = h & 0x3ff;

    if (exponent == 0x1f) { // infinity or NaN
        return f32_from_bits(sign | 0x7f800000u | (mantissa << 13));
    }
    if (exponent == 0) {
        if (mantissa == 0) {
            return f32_from_bits(sign);
        }
        // Subnormal: value = mantissa * 2^-24, exactly representable in float32.
        float magnitude = (float)mantissa * (1.0f / 16777216.0f);
        return sign ? -magnitude : magnitude;
    }
    return f32_from_bits(sign | ((exponent + 112) << 23) | (mantissa << 13));
}

// Converts float32 to binary16 with round-to-nearest-even, as numpy's astype(float16) does.
static inline uint16_t fp32_to_fp16(float f) {
    uint32_t bits = f32_to_bits(f);
    uint16_t sign = (uint16_t)((bits >> 16) & 0x8000);
    uint32_t abs_bits = bits & 0x7fffffffu;

    if (abs_bits >= 0x7f800000u) { // infinity or NaN
        return sign | 0x7c00 | (abs_bits > 0x7f800000u ? 0x200 : 0);
    }
    if (abs_bits >= 0x477ff000u) { // rounds to a magnitude >= 65520: overflow to infinity
        return sign | 0x7c00;
    }
    if (abs_bits < 0x38800000u) { // below the smallest normal half (2^-14): subnormal or zero
        // Adding 0.5 makes the FPU round the value to a multiple of 2^-24 with ties to even.
        float magnitude = f32_from_bits(abs_bits) + 0.5f;
        return sign | (uint16_t)(f32_to_bits(magnitude) - 0x3f000000u);
    }
    uint32_t mantissa_odd = (abs_bits >> 13) & 1;
    abs_bits += 0xc8000fffu + mantissa_odd; // rebias exponent by -112 and round to nearest even
    return sign | (uint16_t)(abs_bits >> 13);
}

static inline float bf16_to_fp32(uint16_t h) {
    return f32_from_bits((uint32_t)h << 16);
}

// Converts float32 to bfloat16 with round-to-nearest-even; NaN stays a quiet NaN.
static inline uint16_t fp32_to_bf16(float f) {
    uint32_t bits = f32_to_bits(f);
    if ((bits & 0x7fffffffu) > 0x7f800000u) {
        return (uint16_t)((bits >> 16) | 0x40);
    }
    bits += 0x7fffu + ((bits >> 16) & 1);
    return (uint16_t)(bits >> 16);
}

#endif
