// avxvnni.c: the AVX2 int8-activation kernel with AVX-VNNI's vpdpbusd on 256-bit registers
// (compiled with -mavx2 -mfma -mavxvnni; selected at run time on CPUs with it, for example Intel
// Alder Lake, which has AVX-VNNI but no AVX-512). The other entries of its table are AVX2's.
#if defined(__x86_64__)
#include <immintrin.h>
#include <stdbool.h>

#include "kernels.h"

static inline __m256i dot_u8s8(__m256i acc, __m256i u, __m256i q, int bits) {
    (void)bits;
    return _mm256_dpbusd_avx_epi32(acc, u, q);
}

#define A8_ENTRY qgemm_a8_avxvnni
#include "avx2_a8.h"

#endif // __x86_64__

#if defined(__x86_64__)
double peak_int8_avxvnni(long iterations, int32_t *sink) {
    __m256i acc[10];
    for (int j = 0; j < 10; j++) {
        acc[j] = _mm256_setzero_si256();
    }
    volatile int source = 0x01020304;
    __m256i u = _mm256_set1_epi32(source), q = _mm256_set1_epi32(source + 1);
    for (long i = 0; i < iterations; i++) {
#pragma GCC unroll 10
        for (int j = 0; j < 10; j++) {
            acc[j] = _mm256_dpbusd_avx_epi32(acc[j], u, q);
        }
    }
    for (int j = 1; j < 10; j++) {
        acc[0] = _mm256_add_epi32(acc[0], acc[j]);
    }
    *sink = _mm256_extract_epi32(acc[0], 0);
    return (double)iterations * 10 * 32 * 2;
}
#endif // __x86_64__
