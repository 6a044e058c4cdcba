// format.h: packed integer weight formats, the storage of quantized model variants.
//
// A packed matrix W [rows, cols] stores one unsigned code u per weight and, per group of G
// consecutive columns of a row, a scale s and a zero point z: w = (u - z) * s.
//   - code bits 2..8, kept in a container of 8, 4 or 3 bits (below);
//   - symmetric (z = 2^(b-1) for b-bit codes, no zero points stored) or asymmetric (one uint8 z per
//     group);
//   - G = 32, 64, 128 or any multiple of 32, or the whole row (per output channel). When cols is
//     not a multiple of G, the last group is shorter, with its own scale, exactly as quant/rtn.c
//     quantizes it (stories260K's 172-column rows with G = 128: groups of 128 and 44);
//   - scales in fp32 or IEEE fp16.
// Bits per weight = container bits + (scale bits + zero-point bits) / G, for example
// 4 + 16 / 128 = 4.125 for 4-bit codes, G = 128, fp16 scales, symmetric; qformat_bits_per_weight()
// computes it. Columns are padded to a multiple of 32 (and tiled rows to a multiple of 16) with
// code 0; padding holds no weight, and the kernels never let it reach an output.
//
// The byte layout is the kernels' (kernels/kernels.h): row-major blocks of 32 columns for the
// weight-only kernels (fp32 activations) and 16-row interleaved tiles for the int8-activation
// kernels, which need no horizontal sums that way. The blocks are:
#ifndef QBIAS_QUANT_FORMAT_H
#define QBIAS_QUANT_FORMAT_H

#include <assert.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../kernels/kernels.h"

// KQ_ROWS, 8-bit container: 32 columns of one row, byte i = u[i]. 8 bits per weight.
typedef struct {
    uint8_t u[32];
} QBlockRows8;
static_assert(sizeof(QBlockRows8) == 32, "8-bit row block: 32 codes of 8 bits");

// KQ_ROWS, 4-bit container, first part of a row: superblocks of 128 columns. Bits 4t .. 4t + 3 of
// lanes[i] (little-endian) contain u[16t + i], so one 64-byte load gives the codes of 8 steps of 16
// columns, step t in the low 4 bits of every lane after a shift by 4t. 4 bits per weight.
typedef struct {
    uint32_t lanes[16];
} QSuperRows4;
static_assert(sizeof(QSuperRows4) == 64, "4-bit row superblock: 128 codes of 4 bits");

// KQ_ROWS, 4-bit container, the columns after the last superblock (32, 64 or 96 of them, see
// kq_rows_super_cols): 32 columns, byte i = u[i] | u[i + 16] << 4, so the low nibbles are
// columns 0-15 and the high nibbles 16-31 (one 16-lane vector each). 4 bits per weight.
typedef struct {
    uint8_t nibbles[16];
} QBlockRows4;
static_assert(sizeof(QBlockRows4) == 16, "4-bit row block: 32 codes of 4 bits");

// KQ_ROWS, 3-bit container, first part of a row: superblocks of 128 columns. Bits 3t .. 3t + 2 of
// the little-endian 24-bit word at words[3i] contain u[16t + i]. Spreading the 16 words over 32-bit
// lanes gives the codes of 8 steps of 16 columns, step t in the low 3 bits after a shift by 3t.
// 3 bits per weight.
typedef struct {
    uint8_t words[48];
} QSuperRows3;
static_assert(sizeof(QSuperRows3) == 48, "3-bit row superblock: 128 codes of 3 bits");

// KQ_ROWS, 3-bit container, the columns after the last superblock: 32 columns. low[i] = u[i] & 3 |
// (u[i + 8] & 3) << 2 | (u[i + 16] & 3) << 4 | (u[i + 24] & 3) << 6, and bit i of the
// little-endian uint32 `high` is bit 2 of u[i]. 3 bits per weight.
typedef struct {
    uint8_t low[8];
    uint8_t high[4];
} QBlockRows3;
static_assert(sizeof(QBlockRows3) == 12, "3-bit row block: 32 codes of 3 bits");

// KQ_TILES, 8-bit container: 16 rows x 4 columns, byte 4r + j = u[r][j]. 8 bits per weight.
typedef struct {
    uint8_t u[64];
} QChunkTiles8;
static_assert(sizeof(QChunkTiles8) == 64, "8-bit tile chunk: 16 rows x 4 codes of 8 bits");

// KQ_TILES, 4-bit container: 16 rows x 8 columns, byte 4r + j = u[r][j] | u[r][j + 4] << 4.
// 4 bits per weight.
typedef struct {
    uint8_t nibbles[64];
} QChunkTiles4;
static_assert(sizeof(QChunkTiles4) == 64, "4-bit tile chunk: 16 rows x 8 codes of 4 bits");

// The parameters of a packed format.
typedef struct {
    int code_bits;    // 2..8
    int group;        // columns per group: a multiple of 32, or 0 for one group per row
    bool symmetric;   // false: one uint8 zero point per group
    bool fp16_scales; // scales in IEEE fp16 instead of fp32
    bool int8_acts;   // for int8-activation kernels (KQ_TILES, 4- or 8-bit container), else weight-only
} QFormat;

// A packed matrix in one 64-byte-aligned allocation (this header, then codes, scales and zero
// points), so that free() releases all of it.
typedef struct QMatrix {
    KQuantMatrix view;  // the kernels' view; its pointers point into this allocation
    QFormat format;
    size_t nbytes;      // bytes of the whole allocation
} QMatrix;

// Returns NULL for a valid format, else a message naming the invalid parameter and the accepted
// values.
const char *qformat_check(const QFormat *f);

// Returns the container bits of a format's codes: 8, 4 or 3.
int qformat_container_bits(const QFormat *f);

// Returns the bits per weight of a [rows, cols] matrix, padding, scales and zero points included.
double qformat_bits_per_weight(const QFormat *f, int rows, int cols);

// Allocates a matrix of the format with every code 0 and every scale 0. Returns NULL when the
// allocation fails. The caller frees it with free().
QMatrix *qmatrix_new(int rows, int cols, const QFormat *f);

// Stores the code (unsigned, 0 .. 2^code_bits - 1) of one weight.
void qmatrix_set_code(QMatrix *m, int row, int col, int code);

// Stores the scale and (asymmetric formats only) zero point of one group.
void qmatrix_set_group(QMatrix *m, int row, int group, float scale, int zero);

// Quantizes row `row` from fp32 values w [cols] by round-to-nearest (quant/rtn.h), with the codes
// and scales of rtn_quantize_group, so that dequantizing gives rtn_fake_quantize's values (with
// fp32 scales; fp16 scales round the scale).
void qmatrix_quantize_row_rtn(QMatrix *m, int row, const float *w);

// Dequantizes row `row` to out [cols]: (u - z) * s.
void qmatrix_dequantize_row(const QMatrix *m, int row, float *out);

// Returns the bytes after the header (codes, scales, zero points, each 64-byte aligned), which
// with rows, cols and the format describe the matrix completely; files store them as they are.
void qmatrix_payload(const QMatrix *m, const void **data, size_t *nbytes);

// The version of the payload's byte layout, which files record beside the payload. Version 1
// (qbias before 2026-12-05) stored KQ_ROWS rows in 32-column blocks only. Version 2 starts 4-bit
// rows with 128-column superblocks (QSuperRows4), version 3 also 3-bit rows (QSuperRows3). The
// other formats are the same in all three.
#define QMATRIX_LAYOUT_VERSION 3

// Makes a matrix of a format from a payload that qmatrix_payload returned, written in layout
// `version` (1 .. QMATRIX_LAYOUT_VERSION; older layouts are converted). Returns NULL when nbytes
// differs from the size the format implies (a different format wrote it), the version is unknown
// or the allocation fails. The caller frees it with free().
QMatrix *qmatrix_from_payload(int rows, int cols, const QFormat *f, const void *data,
                              size_t nbytes, int version);

#endif
