// kernels.h: the hot loops of qbias, one implementation per instruction set, chosen at start-up.
//
// scalar.c is the reference. Every SIMD path computes each output element with the same sequence
// of floating-point operations as the scalar code, so all paths give bit-identical results; tests
// compare them. The order is also independent of the matrix sizes, the tiling and the number of
// threads, which makes model outputs independent of batch size and thread count.
//
// This room knows only arrays and shapes; it includes nothing from engine/, quant/ or probes/.
#ifndef QBIAS_KERNELS_H
#define QBIAS_KERNELS_H

#include <stdbool.h>

// The fp32 dot product's fixed order ("16-lane order"), shared by every path:
//   lane l (0..15) accumulates x[k] * w[k] with a fused multiply-add for k = l, l + 16, ...
//     below k16 = k - k % 16, in increasing k;
//   the 16 lanes are added as a tree: l += l + 8 (l < 8), then l += l + 4, l += l + 2, l += l + 1;
//   the tail k16 .. k - 1 is added with fused multiply-adds in increasing k.
// AVX-512 keeps the 16 lanes in one register, AVX2 in two, NEON in four.

typedef struct {
    const char *name; // "scalar", "avx2", "avx512"
    // y[i * ldy + j] = dot(x[i * k ..], w[j * k ..]) for i < m, j < n, in the 16-lane order.
    // x: [m, k] fp32; w: [n, k] fp32 (rows = outputs); y: [m, ldy] fp32, ldy >= n.
    void (*gemm_f32)(const float *x, const float *w, float *y, int m, int n, int k, int ldy);
} KernelTable;

// Returns the table for this CPU. The environment variable QBIAS_KERNELS=scalar|avx2|avx512
// forces a path (for tests and benchmarks); an unknown or unsupported value falls back to the best
// supported path with a warning on stderr.
const KernelTable *kernels_get(void);

// Returns the table of a named path, or NULL when the name is unknown or the CPU lacks it.
const KernelTable *kernels_find(const char *name);

// Lists the paths this CPU supports, best first, separated by spaces.
const char *kernels_supported(void);

// Sets the number of threads of qbias's own kernels (OpenMP). n <= 0 means all cores.
void kernels_set_threads(int n);
int kernels_threads(void);

// y [m, ldy] = x [m, k] w [n, k]^T using the selected path and all kernel threads; output columns
// are split across threads, so every element is computed in the 16-lane order whatever the split.
void gemm_f32(const float *x, const float *w, float *y, int m, int n, int k, int ldy);

// Per-path entry points (defined in their files; call through the table).
void gemm_f32_scalar(const float *x, const float *w, float *y, int m, int n, int k, int ldy);
void gemm_f32_avx2(const float *x, const float *w, float *y, int m, int n, int k, int ldy);
void gemm_f32_avx512(const float *x, const float *w, float *y, int m, int n, int k, int ldy);

#endif
