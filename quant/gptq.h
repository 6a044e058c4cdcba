// gptq.h: GPTQ (Frantar, Ashkboos, Hoefler, Alistarh, "GPTQ: Accurate Post-Training Quantization
// for Generative Pre-trained Transformers", ICLR 2023) for one weight matrix.
//
// Given W [rows, cols] and the Hessian H = 2/n X^T X of the layer's inputs X [n, cols], GPTQ
// quantizes W one input column at a time and spreads each column's rounding error over the columns
// not yet quantized, weighted by the inverse Hessian, so that ||W X^T - Q X^T|| stays small. The
// steps follow the reference implementations (IST-DASLab gptq.py fasterquant, and llmc's gptq.py,
// which the reference study ran):
//   1. Dead columns (H[j][j] == 0, an input that is zero on every calibration token) get
//      H[j][j] = 1 and W[:, j] = 0.
//   2. Act-order: columns are processed by descending Hessian diagonal (taken before step 1, as
//      llmc does; ties keep column order).
//   3. Static groups: the scale (and zero point) of each group of group_size consecutive columns
//      of a row comes from the original W, before any update, as llmc does; so a column keeps its
//      group whatever the processing order. Without static groups the parameters of a group are
//      taken from the updated W when the group's first column (in processing order) is reached.
//   4. Damping: percdamp * mean(diag H) is added to the diagonal. The updates use U, the upper
//      Cholesky factor of inv(H) (Hinv = U^T U), which the reference computes as
//      torch.linalg.cholesky(torch.cholesky_inverse(torch.linalg.cholesky(H)), upper=True).
//      Here it comes from LAPACK in double, with half the work: dpotrf of H with rows and
//      columns reversed, then dtrtri (gptq.c explains why that is the same U).
//      When the factorization fails (H not positive definite in floating point), the damping is
//      raised by GPTQ_DAMP_INCREMENT and the inverse retried while it stays below 1, as GPTQModel's
//      hessian_inverse does; if none succeeds, every column is rounded to its group grid without
//      error compensation (GPTQModel's fallback) and the result says so.
//   5. Columns are processed in lazy batches of block_size: inside a batch each column's error
//      updates the batch's later columns immediately; the columns after the batch receive the
//      accumulated update as one matrix product (BLAS sgemm) at the end of the batch.
// The quantization grid is rtn.h's: symmetric scale = max|w| / (2^(b-1) - 1) with codes in
// [-2^(b-1), 2^(b-1) - 1], or asymmetric with a zero point.
#ifndef QBIAS_QUANT_GPTQ_H
#define QBIAS_QUANT_GPTQ_H

#include <stdbool.h>

// Damping step of the retry (GPTQModel's gptq.py, hf_quantize's damp_auto_increment default).
#define GPTQ_DAMP_INCREMENT 0.0015

typedef struct {
    int bits;           // 2..8
    int group_size;     // input columns per group; 0 (or >= cols): one group per row
    bool symmetric;
    double percdamp;    // damping as a fraction of the mean Hessian diagonal (0.01 in the study)
    int block_size;     // columns per lazy batch (128 in the study)
    bool act_order;
    bool static_groups;
} GptqParams;

typedef struct {
    double damp;        // damping fraction that made the Hessian positive definite
    int n_retries;      // failed factorizations before that
    bool compensation_failed; // no damping below 1 worked: plain rounding to the group grid
    int n_dead;         // dead input columns
    double loss;        // sum over weights of (w - q)^2 / Hinv_diag^2 / 2, GPTQ's reported error
} GptqResult;

typedef enum {
    GPTQ_OK = 0,
    GPTQ_NONFINITE_WEIGHT = -1,  // W has a NaN or infinity
    GPTQ_NONFINITE_HESSIAN = -2, // H has a NaN or infinity
    GPTQ_INVALID_PARAMS = -3,    // bits, block size or percdamp out of range
} GptqStatus;

// Scratch buffers that gptq_quantize reuses from call to call: the Hessian-sized matrices of a
// large layer take seconds to fault in on first touch.
typedef struct GptqWorkspace GptqWorkspace;

GptqWorkspace *gptq_workspace_new(void);
void gptq_workspace_free(GptqWorkspace *ws);

// Quantizes w [rows, cols] (row-major) in place: on return it holds the dequantized weights.
// h [cols, cols] is the symmetric Hessian; it is not modified. When scales is not NULL it
// receives the grid's scale per row and group [rows, n_groups] (n_groups = ceil(cols / group),
// groups in original column order), and zeros (may be NULL) the zero points (0 when symmetric).
// scales must be NULL for act_order without static_groups, whose groups follow the processing
// order. ws may be NULL (buffers are then allocated for this call). Returns GPTQ_OK or a
// GptqStatus error; w is unchanged on error.
GptqStatus gptq_quantize(float *w, int rows, int cols, const double *h, const GptqParams *params,
                         float *scales, int *zeros, GptqWorkspace *ws, GptqResult *result);

// Returns the number of groups per row for cols columns and group_size (0: one).
int gptq_group_count(int cols, int group_size);

#endif
