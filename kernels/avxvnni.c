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
#define A8_PEAK_ENTRY peak_int8_avxvnni
#include "avx2_a8.h"

#endif // __x86_64__
