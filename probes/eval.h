// eval.h: `qbias eval`: score probes on a model and its quantized variants, item by item, into a
// run directory (items.jsonl, run.json, summary.json, summary.md). An interrupted run restarted
// with the same command resumes where it stopped.
#ifndef QBIAS_EVAL_H
#define QBIAS_EVAL_H

#include <stdbool.h>
#include <stdint.h>

typedef struct {
    const char *model;        // path of a GGUF file, or the name of a model manifest
    const char *out_dir;
    const char *data_dir;     // --data-dir, or NULL
    const char *const *specs; // quantization recipes, e.g. "fp32", "rtn:w4g128", "gptq:w4g128"
    int n_specs;
    const char *const *probes;
    int n_probes;
    int64_t limit;            // items per probe (the first ones in file order); 0 = all
    int batch_tokens;         // tokens per forward batch; 0 = default
    // Calibration of GPTQ, AWQ and SmoothQuant variants (engine/variants.h); 0 and NULL take the
    // study's settings.
    const char *calib_path;   // --calib
    int calib_samples;        // --calib-samples
    int calib_seq_len;        // --calib-seqlen
    uint64_t calib_seed;      // --calib-seed, used when calib_seed_set
    bool calib_seed_set;
    bool no_cache;            // --no-cache: quantize again instead of loading cached variants
} EvalOptions;

// Runs the evaluation and writes the summaries; prints summary.md to stdout when `print_summary`.
// Returns 0, or -1 with an error.
int eval_run(const EvalOptions *options, bool print_summary);

#endif
