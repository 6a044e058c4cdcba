// blocked.c: the block and chunk loops of the many-row fp32 product (see blocked.h).
#include "blocked.h"

#include <stdlib.h>

// Runs the tiles of a block of mb x nb outputs over one chunk: rows in tiles of b->mr, then of
// b->mr_mid, then one at a time; columns in tiles of b->nr, then one at a time.
static void block_chunk(const GemmBlocking *b, const float *x, const float *w, float *y, int mb,
                        int nb, int k, int ldy, int k0, int kc, float *acc, bool first,
                        bool last) {
    int n_full = nb - nb % b->nr;
    int i = 0;
    while (i < mb) {
        int mr = 1;
        GemmTileFn tile = NULL;
        if (mb - i >= b->mr) {
            mr = b->mr;
            tile = b->tile;
        } else if (b->mr_mid > 0 && mb - i >= b->mr_mid) {
            mr = b->mr_mid;
            tile = b->tile_mid;
        }
        const float *xi = x + (size_t)i * (size_t)k;
        float *yi = y + (size_t)i * (size_t)ldy;
        float *ai = acc + (size_t)i * (size_t)b->nb * 16;

        for (int j = 0; j < nb; j++) {
            if (tile && j < n_full) {
                tile(xi, w + (size_t)j * (size_t)k, k, k0, kc, ai + (size_t)j * 16, b->nb, first,
                     last, yi + j, ldy);
                j += b->nr - 1;
                continue;
            }
            // Single rows, and the last nb % nr columns, one output at a time.
            for (int ii = 0; ii < mr; ii++) {
                b->tile_one(xi + (size_t)ii * (size_t)k, w + (size_t)j * (size_t)k, k, k0, kc,
                            ai + ((size_t)ii * (size_t)b->nb + (size_t)j) * 16, b->nb, first,
                            last, yi + (size_t)ii * (size_t)ldy + j, ldy);
            }
        }
        i += mr;
    }
}

void gemm_f32_blocked(const GemmBlocking *b, const float *x, const float *w, float *y, int m,
                      int n, int k, int ldy) {
    int k16 = k - k % 16;

    // One accumulator buffer per thread, kept between calls: at 192 KB it is above glibc's mmap
    // threshold, so a fresh allocation per product would map and fault in its pages every time.
    static _Thread_local float *acc = NULL;
    static _Thread_local size_t acc_bytes = 0;
    size_t bytes = (size_t)b->mb * (size_t)b->nb * 16 * sizeof(float);
    if (bytes > acc_bytes) {
        free(acc);
        acc = aligned_alloc(64, bytes);
        if (!acc) {
            abort();
        }
        acc_bytes = bytes;
    }

    for (int j0 = 0; j0 < n; j0 += b->nb) {
        int nb = n - j0 < b->nb ? n - j0 : b->nb;
        for (int i0 = 0; i0 < m; i0 += b->mb) {
            int mb = m - i0 < b->mb ? m - i0 : b->mb;
            // At least one chunk, which may be empty: rows shorter than 16 are all tail.
            for (int k0 = 0; k0 == 0 || k0 < k16; k0 += b->kc) {
                int kc = k16 - k0 < b->kc ? k16 - k0 : b->kc;
                block_chunk(b, x + (size_t)i0 * (size_t)k, w + (size_t)j0 * (size_t)k,
                            y + (size_t)i0 * (size_t)ldy + j0, mb, nb, k, ldy, k0, kc, acc,
                            k0 == 0, k0 + kc >= k16);
            }
        }
    }
}
