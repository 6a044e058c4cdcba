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
#include <stddef.h>
#include <stdint.h>

// The fp32 dot product's fixed order ("16-lane order"), shared by every path:
//   lane l (0..15) accumulates x[k] * w[k] with a fused multiply-add for k = l, l + 16, ...
//     below k16 = k - k % 16, in increasing k;
//   the 16 lanes are added as a tree: l += l + 8 (l < 8), then l += l + 4, l += l + 2, l += l + 1;
//   the tail k16 .. k - 1 is added with fused multiply-adds in increasing k.
// AVX-512 keeps the 16 lanes in one register, AVX2 in two, NEON in four.

// ----------------------------------------------------------------------------
// Packed integer weights
//
// A packed matrix W [rows, cols] stores unsigned codes u in [0, 2^bits) and, per group of `group`
// consecutive columns of a row, a scale s and a zero point z; the weight is w = (u - z) * s.
// Symmetric formats store no zero points: z = zero_point for every group (2^(b-1) for b-bit
// codes, so u - z is the signed code). Columns are padded with code 0 to cols_padded, a multiple of
// 32; the last group of a row may be shorter than `group` and then ends at cols_padded.
//
// Two layouts, one per kind of kernel (quant/format.h documents the bytes and bits per weight):
//   KQ_ROWS   row-major, for weight-only kernels (fp32 activations, "A16"), in blocks of 32
//             columns: 8-bit: byte i = u[i]; 4-bit: byte i (< 16) = u[i] | u[i + 16] << 4;
//             3-bit: byte i (< 8) = u[i] & 3 | (u[i + 8] & 3) << 2 | (u[i + 16] & 3) << 4 |
//             (u[i + 24] & 3) << 6, then a little-endian uint32 whose bit i is bit 2 of u[i].
//             4- and 3-bit rows first hold superblocks of 128 columns (64 and 48 bytes), up to
//             the last multiple of 128 in cols_padded (kq_rows_super_cols). Only the rest (32, 64
//             or 96 columns) uses 32-column blocks. In a 4-bit superblock, bits 4t .. 4t + 3 of
//             the little-endian uint32 i (i < 16) contain u[16t + i]. In a 3-bit one, bits 3t ..
//             3t + 2 of the little-endian 24-bit word at byte 3i contain u[16t + i]. So one load
//             puts column 16t + i in lane i, and a shift brings step t's codes to the low bits.
//             Scales, zeros: [rows][n_groups].
//   KQ_TILES  16 rows interleaved, for int8-activation kernels ("A8"): per tile of 16 rows, chunks
//             of 64 bytes in column order; 8-bit: a chunk holds 4 columns, byte 4r + j = u[r][c + j];
//             4-bit: a chunk holds 8 columns, byte 4r + j = u[r][c + j] | u[r][c + 4 + j] << 4.
//             Rows are padded with code 0 and scale 0 to a multiple of 16. Scales, zeros:
//             [tiles][n_groups][16].
// With 16 rows in the 16 lanes of a vector, one 4-byte dot product instruction per chunk adds a
// group's products for 16 rows at once and no horizontal sums are needed.
typedef enum {
    KQ_ROWS = 0,
    KQ_TILES = 1,
} KQuantLayout;

typedef struct {
    int rows;             // output channels N
    int cols;             // input columns K
    int cols_padded;      // K rounded up to a multiple of 32
    int bits;             // code container: 8, 4, or 3 (3 only in KQ_ROWS)
    int group;            // columns per group: a multiple of 32, or cols (one group per row)
    int n_groups;         // ceil(cols / group)
    int zero_point;       // z of every group when zeros == NULL
    bool fp16_scales;     // scales are IEEE binary16, else fp32
    KQuantLayout layout;
    size_t stride;        // bytes of codes per row (KQ_ROWS) or per tile of 16 rows (KQ_TILES)
    const uint8_t *codes; // layout above
    const void *scales;   // fp32 or fp16, indexed as documented above
    const uint8_t *zeros; // uint8 zero points indexed like the scales, or NULL (symmetric)
} KQuantMatrix;

#define KQ_TILE_ROWS 16
#define KQ_BLOCK_COLS 32
#define KQ_SUPER_COLS 128

// Returns the columns of a 4- or 3-bit KQ_ROWS row stored in superblocks (a multiple of 128).
static inline int kq_rows_super_cols(const KQuantMatrix *w) {
    return w->cols_padded - w->cols_padded % KQ_SUPER_COLS;
}

// Per-token int8 activations: x ~= q * scale with q = round(x / scale) in [-127, 127] and
// scale = max|x| / 127 (0 for an all-zero row), as the dynamic symmetric per-token quantization of
// W8A8 schemes (SmoothQuant's "per-token dynamic"). group_sum holds each group's sum of q, for
// the zero-point term: sum (u - z) q = sum u q - z sum q.
typedef struct {
    int m;                  // tokens
    int cols_padded;        // row stride of q; columns past the matrix's cols are 0
    int n_groups;
    int8_t *q;              // [m, cols_padded]
    float *scale;           // [m]
    int32_t *group_sum;     // [m, n_groups]
} KActs;

// The integer kernels' order ("group order"), shared by every path, for one output (token i, row n):
//   S_g = sum over the group's columns of u * q (int32, exact in any order) - z_g * group_sum_g;
//   acc = 0; acc = fmaf((float)S_g, s_g, acc) for g = 0, 1, ...; y = acc * scale_i.
// The weight-only kernels compute sum_k x[k] * ((float)(u - z) * s) in the 16-lane order, which
// equals gemm_f32 on the dequantized matrix bit for bit.

typedef struct {
    const char *name; // "scalar", "avx2", "avxvnni", "avx512", "neon"
    // y[i * ldy + j] = dot(x[i * k ..], w[j * k ..]) for i < m, j < n, in the 16-lane order.
    // x: [m, k] fp32; w: [n, k] fp32 (rows = outputs); y: [m, ldy] fp32, ldy >= n.
    void (*gemm_f32)(const float *x, const float *w, float *y, int m, int n, int k, int ldy);
    // Quantizes activations x [a->m, cols] (row stride cols) into a (see KActs); group as in w.
    void (*quantize_acts)(const float *x, int cols, int group, KActs *a);
    // KQ_TILES weights times int8 activations for tiles [tile0, tile1) and every token, in the group
    // order: y[i * ldy + n] for n in those tiles' rows (n < w->rows).
    void (*qgemm_a8)(const KQuantMatrix *w, int tile0, int tile1, const KActs *a, float *y,
                     int ldy);
    // KQ_ROWS weights times one fp32 activation row x [cols]: y[n] for rows [row0, row1).
    void (*qgemv_a16)(const KQuantMatrix *w, int row0, int row1, const float *x, float *y);
    // Dequantizes KQ_ROWS rows [row0, row1) to out [row1 - row0, cols] fp32.
    void (*dequantize_rows)(const KQuantMatrix *w, int row0, int row1, float *out);
    // Throughput loops for `qbias bench`: independent int8 dot products (u8 x s8 into int32) or
    // fp32 fused multiply-adds on registers, `iterations` times. Each returns the operations done
    // (a multiply-add counts as two) and stores a result in *sink so the loop is not optimized away.
    double (*peak_int8)(long iterations, int32_t *sink);
    double (*peak_fp32)(long iterations, float *sink);
} KernelTable;

// Returns the table for this CPU. The environment variable QBIAS_KERNELS (a name above) forces a
// path (for tests and benchmarks); an unknown or unsupported value falls back to the best
// supported path with a warning on stderr.
const KernelTable *kernels_get(void);

// Returns the table of a named path, or NULL when the name is unknown or the CPU lacks it.
const KernelTable *kernels_find(const char *name);

// Selects the path that kernels_get() returns from now on. Returns false (and keeps the current
// path) when the name is unknown or the CPU lacks it.
bool kernels_select(const char *name);

// Lists the paths this CPU supports, best first, separated by spaces.
const char *kernels_supported(void);

// Sets the number of threads of qbias's own kernels (OpenMP) and, where the program links
// OpenBLAS, of OpenBLAS's pool. n <= 0 means all cores.
void kernels_set_threads(int n);
int kernels_threads(void);

// y [m, ldy] = x [m, k] w [n, k]^T using the selected path and all kernel threads; output columns
// are split across threads, so every element is computed in the 16-lane order whatever the split.
void gemm_f32(const float *x, const float *w, float *y, int m, int n, int k, int ldy);

// y [m, ldy] = x [m, w->cols] W^T for packed weights, with the selected path and all kernel
// threads. KQ_TILES weights quantize x per token to int8 first (W8A8, W4A8); KQ_ROWS weights use x
// as it is (W8A16, W4A16, W3A16). Rows are split across threads; each output element is computed
// in the order above whatever m, the split or the thread count.
void qgemm(const KQuantMatrix *w, const float *x, float *y, int m, int ldy);

// Allocates activations for m tokens and the groups of w; free with kacts_free().
KActs *kacts_new(const KQuantMatrix *w, int m);
void kacts_free(KActs *a);

// Per-path entry points (defined in their files; call through the table).
void gemm_f32_scalar(const float *x, const float *w, float *y, int m, int n, int k, int ldy);
void quantize_acts_scalar(const float *x, int cols, int group, KActs *a);
void qgemm_a8_scalar(const KQuantMatrix *w, int tile0, int tile1, const KActs *a, float *y,
                     int ldy);
void qgemv_a16_scalar(const KQuantMatrix *w, int row0, int row1, const float *x, float *y);
void dequantize_rows_scalar(const KQuantMatrix *w, int row0, int row1, float *out);
double peak_int8_scalar(long iterations, int32_t *sink);
double peak_fp32_scalar(long iterations, float *sink);

void gemm_f32_avx2(const float *x, const float *w, float *y, int m, int n, int k, int ldy);
void qgemm_a8_avx2(const KQuantMatrix *w, int tile0, int tile1, const KActs *a, float *y, int ldy);
void qgemm_a8_avxvnni(const KQuantMatrix *w, int tile0, int tile1, const KActs *a, float *y,
                      int ldy);
void qgemv_a16_avx2(const KQuantMatrix *w, int row0, int row1, const float *x, float *y);
void dequantize_rows_avx2(const KQuantMatrix *w, int row0, int row1, float *out);
double peak_int8_avx2(long iterations, int32_t *sink);
double peak_int8_avxvnni(long iterations, int32_t *sink);
double peak_fp32_avx2(long iterations, float *sink);

void gemm_f32_avx512(const float *x, const float *w, float *y, int m, int n, int k, int ldy);
void quantize_acts_avx512(const float *x, int cols, int group, KActs *a);
void qgemm_a8_avx512(const KQuantMatrix *w, int tile0, int tile1, const KActs *a, float *y,
                     int ldy);
void qgemv_a16_avx512(const KQuantMatrix *w, int row0, int row1, const float *x, float *y);
void dequantize_rows_avx512(const KQuantMatrix *w, int row0, int row1, float *out);
double peak_int8_avx512(long iterations, int32_t *sink);
double peak_fp32_avx512(long iterations, float *sink);

void gemm_f32_neon(const float *x, const float *w, float *y, int m, int n, int k, int ldy);
void qgemm_a8_neon(const KQuantMatrix *w, int tile0, int tile1, const KActs *a, float *y, int ldy);
void qgemv_a16_neon(const KQuantMatrix *w, int row0, int row1, const float *x, float *y);
void dequantize_rows_neon(const KQuantMatrix *w, int row0, int row1, float *out);
double peak_int8_neon(long iterations, int32_t *sink);
double peak_fp32_neon(long iterations, float *sink);

#if defined(__aarch64__)
// Returns whether the CPU has Armv8.2's dot-product instructions (Linux hwcap "asimddp").
bool neon_has_dotprod(void);
#endif

// Scalar helpers shared by the paths: one code, one scale, one zero point of a packed matrix.
int kq_code(const KQuantMatrix *w, int row, int col);
float kq_scale(const KQuantMatrix *w, int row, int group);
int kq_zero(const KQuantMatrix *w, int row, int group);

#endif
