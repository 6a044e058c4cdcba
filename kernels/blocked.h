// blocked.h: the cache-blocked loop of the many-row fp32 product, shared by the SIMD paths.
//
// With every accumulator in registers for the whole of k, a register tile streams its activation
// rows once per few weight rows, and for long rows (k = 14336 is 57 KB a row) the activations come
// from memory each time: about 2 flops per byte, a sixth of the fp32 peak of an AVX-512 core. So k
// is cut into chunks of kc columns, and a block of mb x nb outputs keeps its 16-lane accumulators
// in a buffer between chunks (16 floats an output, lanes in order). The buffer and the two chunks
// it multiplies are sized to stay in L2. Each lane still adds its products in increasing k, so the
// result is bit for bit the one of the unblocked loop and of the scalar reference.
//
// Internal to kernels/: each path supplies its register tiles, this file supplies the loops.
#ifndef QBIAS_KERNELS_BLOCKED_H
#define QBIAS_KERNELS_BLOCKED_H

#include <stdbool.h>

// Computes a register tile of outputs over the chunk [k0, k0 + kc) of the first k16 = k - k % 16
// columns. x: the tile's first activation row, w: its first weight row (row stride k for both).
// The accumulators of output (i, j) of the tile are the 16 floats at acc + (i * acc_stride + j)
// * 16; they start at zero when `first` and are read from acc otherwise. When `last`, the tile
// finishes its outputs into y [tile rows, ldy] (lane tree and tail, kernels.h), otherwise it
// stores the accumulators back.
typedef void (*GemmTileFn)(const float *x, const float *w, int k, int k0, int kc, float *acc,
                           int acc_stride, bool first, bool last, float *y, int ldy);

// Defines `name` as a GemmTileFn over an inline tile body(mr, nr, x, w, k, k0, kc, acc,
// acc_stride, first, last, y, ldy). Each branch passes constant flags, so that the compiler
// allocates the registers of each loop alone: inlined into the block loops, GCC spilled them.
#define GEMM_TILE_FN(name, body, mr, nr)                                                          \
    static void name(const float *x, const float *w, int k, int k0, int kc, float *acc,           \
                     int acc_stride, bool first, bool last, float *y, int ldy) {                  \
        if (first && last) {                                                                      \
            body(mr, nr, x, w, k, k0, kc, acc, acc_stride, true, true, y, ldy);                   \
        } else if (first) {                                                                       \
            body(mr, nr, x, w, k, k0, kc, acc, acc_stride, true, false, y, ldy);                  \
        } else if (last) {                                                                        \
            body(mr, nr, x, w, k, k0, kc, acc, acc_stride, false, true, y, ldy);                  \
        } else {                                                                                  \
            body(mr, nr, x, w, k, k0, kc, acc, acc_stride, false, false, y, ldy);                 \
        }                                                                                         \
    }

typedef struct {
    int mb, nb, kc; // outputs per block (activation rows x weight rows) and columns per chunk
    int mr, nr;     // the main register tile; mb must be a multiple of mr, nb of nr
    GemmTileFn tile;
    int mr_mid;           // a smaller tile of mr_mid x nr for the last rows, or 0 for none
    GemmTileFn tile_mid;  // NULL when mr_mid is 0
    GemmTileFn tile_one;  // 1 x 1, for whatever rows and columns remain
} GemmBlocking;

// Computes y [m, ldy] = x [m, k] w [n, k]^T in the 16-lane order, through the tiles of b.
void gemm_f32_blocked(const GemmBlocking *b, const float *x, const float *w, float *y, int m,
                      int n, int k, int ldy);

#endif // QBIAS_KERNELS_BLOCKED_H
