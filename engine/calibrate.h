// calibrate.h: runs a model block by block over calibration tokens and applies GPTQ, AWQ or
// SmoothQuant to each block, handing statistics and block-forward callbacks to quant/.
//
// The orderings follow llmc, which the reference study ran:
//   GPTQ (true_sequential, quant_out): inside a block the linears are quantized in execution
//     order, q/k/v, then o, then gate/up, then down; each group's Hessian comes from inputs
//     computed with the groups before it already quantized. The next block is calibrated on the
//     quantized block's outputs.
//   AWQ (quant_out, no true_sequential): the inputs of every linear are taken from one
//     full-precision pass of the block; scales are searched and folded for q/k/v (into the
//     attention norm), o (into v, only when v's outputs match o's inputs, i.e. without
//     grouped-query attention), gate/up (into the feed-forward norm) and down (into up); then the
//     clipping search runs for every linear but q and k; then the weights are rounded. The next
//     block is calibrated on the quantized block's outputs.
//   SmoothQuant (no quant_out): factors for q/k/v and gate/up from one full-precision pass, folded
//     into the two norms; then every linear is rounded per output channel. The next block is
//     calibrated on the full-precision outputs.
// Each sample is its own sequence at positions 0..len-1. Activations are processed in chunks of
// whole samples, so memory holds the block's stored inputs plus one chunk's intermediates.
#ifndef QBIAS_CALIBRATE_H
#define QBIAS_CALIBRATE_H

#include "../quant/spec_methods.h"
#include "calib_data.h"
#include "model.h"

// Counters of one model quantization, for logs and reports.
typedef struct {
    int n_linears;              // matrices quantized
    int n_dead_columns;         // GPTQ: input columns that were zero on every calibration token
    int n_damp_retries;         // GPTQ: factorizations that failed before one succeeded
    int n_compensation_failed;  // GPTQ: matrices rounded without error compensation
    double max_damp;            // GPTQ: largest damping fraction used
    int n_scale_searches;       // AWQ: subsets whose scales were searched and folded
    double seconds;             // wall-clock time
} QuantReport;

// Quantizes the block linears of m (fp32 owned weights; the norms must be writable copies) with
// the recipe's method. Returns 0, or -1 with an error.
int calibrate_gptq(Model *m, const QuantRecipe *recipe, const CalibrationSet *calib,
                   QuantReport *report);
int calibrate_awq(Model *m, const QuantRecipe *recipe, const CalibrationSet *calib,
                  QuantReport *report);
int calibrate_sq(Model *m, const QuantRecipe *recipe, const CalibrationSet *calib,
                 QuantReport *report);

// The inputs of a block's linears.
typedef enum {
    BLOCK_INPUT_QKV = 0,  // normalized block input, read by q, k and v [n_embd]
    BLOCK_INPUT_O,        // attention output, read by o [n_head * head_dim]
    BLOCK_INPUT_GATE_UP,  // normalized residual after attention, read by gate and up [n_embd]
    BLOCK_INPUT_DOWN,     // feed-forward activation, read by down [n_ff]
} BlockInput;

// Runs m unchanged over the calibration tokens up to block `layer` and returns that block's input
// `which` for every token: a newly allocated [*n_tokens, *dim] array (free it).
float *calib_collect_inputs(const Model *m, const CalibrationSet *calib, int layer,
                            BlockInput which, int *n_tokens, int *dim);

#endif
