// calibrate.c: the block-by-block calibration driver (orderings in calibrate.h).
#include "calibrate.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../quant/awq.h"
#include "../quant/calib.h"
#include "../quant/gptq.h"
#include "../quant/rtn.h"
#include "../quant/smoothquant.h"
#include "forward.h"
#include "quantize.h"
#include "util.h"

// Target tokens per chunk: large enough for efficient matrix products, small enough that one
// chunk's feed-forward intermediates (2 x tokens x n_ff floats) stay a few hundred MB.
#define CHUNK_TOKENS 4096

// ----------------------------------------------------------------------------
// Block weights as fp32 arrays

typedef struct {
    float *q, *k, *v, *o, *gate, *up, *down; // [rows, cols] fp32
    float *attn_norm, *ffn_norm;             // [n_embd]
    const float *bq, *bk, *bv;               // q, k, v biases (qwen2), or NULL
    float *converted[7];                     // copies owned here (weights stored as F16/BF16)
    Weight *handles[7];                      // when quantizing: the matrices, in the order above
    WeightGrid grids[7];                     // when quantizing: the grid each matrix is rounded to
} BlockWeights;

// Borrows (F32) or converts a matrix.
static float *weight_as_f32(const Weight *w, float **converted) {
    if (w->type == GGML_TYPE_F32 && !w->packed) {
        *converted = NULL;
        return (float *)w->data;
    }
    *converted = weight_to_f32(w);
    return *converted;
}

// The block's weights for reading; other storage types are converted to temporary copies.
static void block_weights_read(const Layer *layer, BlockWeights *bw) {
    memset(bw, 0, sizeof *bw);
    bw->q = weight_as_f32(&layer->attn_q, &bw->converted[0]);
    bw->k = weight_as_f32(&layer->attn_k, &bw->converted[1]);
    bw->v = weight_as_f32(&layer->attn_v, &bw->converted[2]);
    bw->o = weight_as_f32(&layer->attn_output, &bw->converted[3]);
    bw->gate = weight_as_f32(&layer->ffn_gate, &bw->converted[4]);
    bw->up = weight_as_f32(&layer->ffn_up, &bw->converted[5]);
    bw->down = weight_as_f32(&layer->ffn_down, &bw->converted[6]);
    bw->attn_norm = (float *)layer->attn_norm;
    bw->ffn_norm = (float *)layer->ffn_norm;
    bw->bq = layer->bq;
    bw->bk = layer->bk;
    bw->bv = layer->bv;
}

static void block_weights_release(BlockWeights *bw) {
    for (int i = 0; i < 7; i++) {
        free(bw->converted[i]);
    }
}

// The block's weights for quantizing in place: each matrix becomes the variant's own fp32 copy
// (quantize_begin_weight), with an empty grid of the recipe's group size.
static void block_weights_begin(Layer *layer, const QuantRecipe *recipe, BlockWeights *bw) {
    memset(bw, 0, sizeof *bw);
    Weight *all[] = {&layer->attn_q,   &layer->attn_k, &layer->attn_v, &layer->attn_output,
                     &layer->ffn_gate, &layer->ffn_up, &layer->ffn_down};
    float **values[] = {&bw->q, &bw->k, &bw->v, &bw->o, &bw->gate, &bw->up, &bw->down};
    for (int i = 0; i < 7; i++) {
        bw->handles[i] = all[i];
        *values[i] = quantize_begin_weight(all[i]);
        weight_grid_init(&bw->grids[i], all[i]->rows, all[i]->cols, recipe->group_size);
    }
    bw->attn_norm = (float *)layer->attn_norm;
    bw->ffn_norm = (float *)layer->ffn_norm;
    bw->bq = layer->bq;
    bw->bk = layer->bk;
    bw->bv = layer->bv;
}

// Stores the block's quantized matrices (packed, or fp32 with -fake) and frees the grids.
static int block_weights_store(BlockWeights *bw, const QuantRecipe *recipe) {
    int rc = 0;
    for (int i = 0; i < 7; i++) {
        if (rc == 0) {
            rc = quantize_store_weight(bw->handles[i], recipe, &bw->grids[i]);
        }
        weight_grid_free(&bw->grids[i]);
    }
    return rc;
}

// ----------------------------------------------------------------------------
// The runner: calibration activations of the current block and per-chunk scratch

typedef struct {
    const Model *m;
    const CalibrationSet *cs;
    int d, q_dim, kv_dim, n_ff;
    size_t n_tokens;
    float *rope_cos, *rope_sin; // [max_len, rope_dim / 2]
    int n_chunks;
    int *chunk_first;           // [n_chunks + 1] first sample of each chunk
    int max_chunk;              // tokens of the largest chunk
    float *x;                   // [n_tokens, d] input of the current block
    // Chunk scratch [max_chunk, width].
    float *h, *q, *k, *v, *att, *gate, *up, *tmp, *xs;
} Runner;

static size_t chunk_begin(const Runner *r, int c) {
    return (size_t)r->cs->offsets[r->chunk_first[c]];
}

static int chunk_tokens(const Runner *r, int c) {
    return r->cs->offsets[r->chunk_first[c + 1]] - r->cs->offsets[r->chunk_first[c]];
}

static float *scratch(size_t rows, int width) {
    return xmalloc(rows * (size_t)width * sizeof(float));
}

static void runner_free(Runner *r);

static int runner_init(Runner *r, const Model *m, const CalibrationSet *cs) {
    memset(r, 0, sizeof *r);
    const ModelConfig *c = &m->config;
    if (cs->n_samples <= 0 || cs->n_tokens <= 0) {
        return err_set("the calibration set is empty");
    }
    for (int i = 0; i < cs->n_tokens; i++) {
        if (cs->tokens[i] < 0 || cs->tokens[i] >= c->n_vocab) {
            return err_set("calibration token %d (id %d) is outside the vocabulary (0..%d)", i,
                           cs->tokens[i], c->n_vocab - 1);
        }
    }
    r->m = m;
    r->cs = cs;
    r->d = c->n_embd;
    r->q_dim = c->n_head * c->head_dim;
    r->kv_dim = c->n_head_kv * c->head_dim;
    r->n_ff = c->n_ff;
    r->n_tokens = (size_t)cs->n_tokens;

    // Chunks of whole samples.
    r->chunk_first = xmalloc(((size_t)cs->n_samples + 1) * sizeof(int));
    r->chunk_first[0] = 0;
    for (int s = 0; s < cs->n_samples;) {
        int first = s, tokens = 0;
        while (s < cs->n_samples &&
               (s == first || tokens + cs->offsets[s + 1] - cs->offsets[s] <= CHUNK_TOKENS)) {
            tokens += cs->offsets[s + 1] - cs->offsets[s];
            s++;
        }
        r->chunk_first[++r->n_chunks] = s;
        r->max_chunk = tokens > r->max_chunk ? tokens : r->max_chunk;
    }

    size_t half = (size_t)(c->rope_dim / 2);
    r->rope_cos = xmalloc((size_t)cs->max_len * half * sizeof(float) + sizeof(float));
    r->rope_sin = xmalloc((size_t)cs->max_len * half * sizeof(float) + sizeof(float));
    rope_table(m, cs->max_len, r->rope_cos, r->rope_sin);

    size_t mc = (size_t)r->max_chunk;
    r->h = scratch(mc, r->d);
    r->q = scratch(mc, r->q_dim);
    r->k = scratch(mc, r->kv_dim);
    r->v = scratch(mc, r->kv_dim);
    r->att = scratch(mc, r->q_dim);
    r->gate = scratch(mc, r->n_ff);
    r->up = scratch(mc, r->n_ff);
    r->tmp = scratch(mc, r->d);
    r->xs = scratch(mc, r->d);

    // Token embeddings: the input of block 0. This array holds every calibration token, so it is
    // the one allocation that can exceed memory: fail with a message instead of aborting.
    size_t bytes = 0;
    r->x = size_mul(r->n_tokens, (size_t)r->d * sizeof(float), &bytes) ? malloc(bytes) : NULL;
    if (!r->x) {
        err_set("cannot allocate %.1f GB for the block inputs of %zu calibration tokens; use fewer "
                "calibration samples (--calib-samples) or shorter ones (--calib-seqlen)",
                (double)r->n_tokens * r->d * sizeof(float) / 1e9, r->n_tokens);
        runner_free(r);
        return -1;
    }
    for (size_t t = 0; t < r->n_tokens; t++) {
        weight_row_to_f32(&m->token_embd, cs->tokens[t], r->x + t * (size_t)r->d);
    }
    return 0;
}

static void runner_free(Runner *r) {
    free(r->chunk_first);
    free(r->rope_cos);
    free(r->rope_sin);
    free(r->h);
    free(r->q);
    free(r->k);
    free(r->v);
    free(r->att);
    free(r->gate);
    free(r->up);
    free(r->tmp);
    free(r->xs);
    free(r->x);
}

// Attention output att [T, q_dim] of chunk c from its q, k, v rows (each sample separately).
static void chunk_attention(Runner *r, int c, float *q, float *k, const float *v, float *att) {
    size_t t0 = chunk_begin(r, c);
    for (int s = r->chunk_first[c]; s < r->chunk_first[c + 1]; s++) {
        size_t off = (size_t)r->cs->offsets[s] - t0;
        int len = r->cs->offsets[s + 1] - r->cs->offsets[s];
        block_attention(r->m, r->rope_cos, r->rope_sin, q + off * r->q_dim, k + off * r->kv_dim,
                        v + off * r->kv_dim, len, att + off * r->q_dim);
    }
}

static void add_bias_rows(float *y, const float *bias, int n_rows, int width) {
    if (!bias) {
        return;
    }
    for (int t = 0; t < n_rows; t++) {
        float *row = y + (size_t)t * width;
        for (int i = 0; i < width; i++) {
            row[i] += bias[i];
        }
    }
}

// Attention output of chunk c for normalized inputs h [T, d], the given q, k, v weights and the
// block's q, k, v biases.
static void chunk_qkv_attention(Runner *r, int c, const float *h, const float *wq,
                                const float *wk, const float *wv, const BlockWeights *w,
                                float *att) {
    int T = chunk_tokens(r, c);
    block_linear(wq, r->q_dim, r->d, h, T, r->q);
    block_linear(wk, r->kv_dim, r->d, h, T, r->k);
    block_linear(wv, r->kv_dim, r->d, h, T, r->v);
    add_bias_rows(r->q, w->bq, T, r->q_dim);
    add_bias_rows(r->k, w->bk, T, r->kv_dim);
    add_bias_rows(r->v, w->bv, T, r->kv_dim);
    chunk_attention(r, c, r->q, r->k, r->v, att);
}

// Feed-forward activation act [T, n_ff] (in r->gate) for normalized inputs h [T, d].
static void chunk_ffn_activation(Runner *r, int c, const float *h, const float *wgate,
                                 const float *wup) {
    int T = chunk_tokens(r, c);
    block_linear(wgate, r->n_ff, r->d, h, T, r->gate);
    block_linear(wup, r->n_ff, r->d, h, T, r->up);
    block_swiglu(r->gate, r->up, (size_t)T * (size_t)r->n_ff);
}

static void add_rows(float *x, const float *y, size_t count) {
    for (size_t i = 0; i < count; i++) {
        x[i] += y[i];
    }
}

// Where a block pass writes copies of its linears' inputs (chunk rows, NULL: not wanted).
typedef struct {
    float *qkv, *o, *gate_up, *down;
    ActStats *qkv_stats, *gate_up_stats;
} Taps;

// Runs block W over chunk c: xc [T, d] is the block input and becomes its output.
static void forward_chunk(Runner *r, const BlockWeights *w, int c, float *xc, const Taps *taps) {
    int T = chunk_tokens(r, c);
    size_t nd = (size_t)T * (size_t)r->d;

    block_rmsnorm(r->m, w->attn_norm, xc, T, r->h);
    if (taps && taps->qkv) {
        memcpy(taps->qkv, r->h, nd * sizeof(float));
    }
    if (taps && taps->qkv_stats) {
        act_stats_add(taps->qkv_stats, r->h, T);
    }
    chunk_qkv_attention(r, c, r->h, w->q, w->k, w->v, w, r->att);
    if (taps && taps->o) {
        memcpy(taps->o, r->att, (size_t)T * (size_t)r->q_dim * sizeof(float));
    }
    block_linear(w->o, r->d, r->q_dim, r->att, T, r->tmp);
    add_rows(xc, r->tmp, nd);

    block_rmsnorm(r->m, w->ffn_norm, xc, T, r->h);
    if (taps && taps->gate_up) {
        memcpy(taps->gate_up, r->h, nd * sizeof(float));
    }
    if (taps && taps->gate_up_stats) {
        act_stats_add(taps->gate_up_stats, r->h, T);
    }
    chunk_ffn_activation(r, c, r->h, w->gate, w->up);
    if (taps && taps->down) {
        memcpy(taps->down, r->gate, (size_t)T * (size_t)r->n_ff * sizeof(float));
    }
    block_linear(w->down, r->d, r->n_ff, r->gate, T, r->tmp);
    add_rows(xc, r->tmp, nd);
}

// Runs block `layer` of r->m in full precision over every chunk, replacing r->x by its output.
static void forward_block_in_place(Runner *r, int layer) {
    BlockWeights w;
    block_weights_read(&r->m->layers[layer], &w);
    for (int c = 0; c < r->n_chunks; c++) {
        forward_chunk(r, &w, c, r->x + chunk_begin(r, c) * r->d, NULL);
    }
    block_weights_release(&w);
}

// Bytes of activations the driver may keep for a whole block: a quarter of physical memory.
static size_t store_budget(void) {
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
    if (pages <= 0 || page <= 0) {
        return (size_t)1 << 30;
    }
    return (size_t)pages * (size_t)page / 4;
}

static float *alloc_features(const Runner *r, int width, const char *what) {
    size_t bytes = 0;
    if (!size_mul(r->n_tokens, (size_t)width * sizeof(float), &bytes)) {
        err_set("calibration activations (%s) overflow the address space", what);
        return NULL;
    }
    float *p = malloc(bytes);
    if (!p) {
        err_set("cannot allocate %.1f GB for the calibration activations (%s) of %zu tokens; "
                "use fewer calibration samples or a shorter sequence length",
                (double)bytes / 1e9, what, r->n_tokens);
    }
    return p;
}

// ----------------------------------------------------------------------------
// GPTQ

static GptqParams gptq_params(const QuantRecipe *recipe) {
    GptqParams p = {
        .bits = recipe->weight_bits,
        .group_size = recipe->group_size,
        .symmetric = recipe->symmetric,
        .percdamp = recipe->gptq.percdamp,
        .block_size = recipe->gptq.block_size,
        .act_order = recipe->gptq.act_order,
        .static_groups = recipe->gptq.static_groups,
    };
    return p;
}

// State of one GPTQ run: buffers reused from block to block.
typedef struct {
    float *att;        // [n_tokens, q_dim] attention output with quantized q, k, v
    float *mid;        // [n_tokens, d] residual after the attention block
    float *act;        // [n_tokens, n_ff] feed-forward activation, or NULL: recomputed
    HessianAcc acc;    // sized for the widest input
    GptqWorkspace *ws;
} GptqRun;

// Quantizes one matrix with GPTQ given the Hessian of its inputs, recording its grid.
static int gptq_linear(const QuantRecipe *recipe, GptqRun *run, float *w, WeightGrid *grid,
                       const double *h, int layer, const char *name, QuantReport *report) {
    GptqParams params = gptq_params(recipe);
    GptqResult res;
    // Dynamic groups under act-order follow the processing order, which no packed format holds;
    // calibrate_gptq allows them with plain -fake only, which needs no grid.
    bool grid_known = !(params.act_order && !params.static_groups);
    GptqStatus status =
        gptq_quantize(w, grid->rows, grid->cols, h, &params, grid_known ? grid->scales : NULL,
                      grid_known ? grid->zeros : NULL, run->ws, &res);
    switch (status) {
    case GPTQ_OK:
        break;
    case GPTQ_NONFINITE_WEIGHT:
        return err_set("block %d %s: the weights contain NaN or infinity", layer, name);
    case GPTQ_NONFINITE_HESSIAN:
        return err_set("block %d %s: the calibration activations contain NaN or infinity (the "
                       "model overflows fp32 on the calibration text)",
                       layer, name);
    default:
        return err_set("block %d %s: invalid GPTQ settings (bits %d, block size %d, damping %g)",
                       layer, name, params.bits, params.block_size, params.percdamp);
    }
    report->n_linears++;
    report->n_dead_columns += res.n_dead;
    report->n_damp_retries += res.n_retries;
    report->max_damp = fmax(report->max_damp, res.damp);
    if (res.n_retries > 0 && !res.compensation_failed) {
        log_warn("gptq: block %d %s: the Hessian needed damping %.4f (%d retries)", layer, name,
                 res.damp, res.n_retries);
    }
    if (res.compensation_failed) {
        report->n_compensation_failed++;
        log_warn("gptq: block %d %s: no damping below 1 made the Hessian positive definite; "
                 "rounded without error compensation", layer, name);
    }
    log_debug("gptq: block %d %s: loss %.6g, %d dead columns", layer, name, res.loss, res.n_dead);
    return 0;
}

// Finishes the accumulated Hessian in place and returns it (valid until the next reset).
static const double *finish_hessian(HessianAcc *acc) {
    hessian_finish(acc, acc->sum);
    return acc->sum;
}

static int gptq_block(Runner *r, Model *m, int layer, const QuantRecipe *recipe, GptqRun *buf,
                      QuantReport *report) {
    BlockWeights w;
    block_weights_begin(&m->layers[layer], recipe, &w);
    int d = r->d;
    HessianAcc *acc = &buf->acc;

    // 1. q, k, v on the normalized block input.
    hessian_reset(acc, d);
    for (int c = 0; c < r->n_chunks; c++) {
        block_rmsnorm(r->m, w.attn_norm, r->x + chunk_begin(r, c) * d, chunk_tokens(r, c), r->h);
        hessian_add(acc, r->h, chunk_tokens(r, c));
    }
    const double *h = finish_hessian(acc);
    int rc = gptq_linear(recipe, buf, w.q, &w.grids[0], h, layer, "attn_q", report);
    rc = rc ? rc : gptq_linear(recipe, buf, w.k, &w.grids[1], h, layer, "attn_k", report);
    rc = rc ? rc : gptq_linear(recipe, buf, w.v, &w.grids[2], h, layer, "attn_v", report);
    if (rc != 0) {
        goto fail;
    }

    // 2. o on the attention output of the quantized q, k, v.
    hessian_reset(acc, r->q_dim);
    for (int c = 0; c < r->n_chunks; c++) {
        size_t t0 = chunk_begin(r, c);
        float *att = buf->att + t0 * r->q_dim;
        block_rmsnorm(r->m, w.attn_norm, r->x + t0 * d, chunk_tokens(r, c), r->h);
        chunk_qkv_attention(r, c, r->h, w.q, w.k, w.v, &w, att);
        hessian_add(acc, att, chunk_tokens(r, c));
    }
    h = finish_hessian(acc);
    rc = gptq_linear(recipe, buf, w.o, &w.grids[3], h, layer, "attn_output", report);
    if (rc != 0) {
        goto fail;
    }

    // 3. gate and up on the normalized residual after the quantized attention block.
    hessian_reset(acc, d);
    for (int c = 0; c < r->n_chunks; c++) {
        size_t t0 = chunk_begin(r, c);
        int T = chunk_tokens(r, c);
        float *mid = buf->mid + t0 * d;
        block_linear(w.o, d, r->q_dim, buf->att + t0 * r->q_dim, T, mid);
        add_rows(mid, r->x + t0 * d, (size_t)T * d);
        block_rmsnorm(r->m, w.ffn_norm, mid, T, r->h);
        hessian_add(acc, r->h, T);
    }
    h = finish_hessian(acc);
    rc = gptq_linear(recipe, buf, w.gate, &w.grids[4], h, layer, "ffn_gate", report);
    rc = rc ? rc : gptq_linear(recipe, buf, w.up, &w.grids[5], h, layer, "ffn_up", report);
    if (rc != 0) {
        goto fail;
    }

    // 4. down on the activation of the quantized gate and up.
    hessian_reset(acc, r->n_ff);
    for (int c = 0; c < r->n_chunks; c++) {
        size_t t0 = chunk_begin(r, c);
        int T = chunk_tokens(r, c);
        block_rmsnorm(r->m, w.ffn_norm, buf->mid + t0 * d, T, r->h);
        chunk_ffn_activation(r, c, r->h, w.gate, w.up);
        hessian_add(acc, r->gate, T);
        if (buf->act) {
            memcpy(buf->act + t0 * r->n_ff, r->gate, (size_t)T * r->n_ff * sizeof(float));
        }
    }
    h = finish_hessian(acc);
    rc = gptq_linear(recipe, buf, w.down, &w.grids[6], h, layer, "ffn_down", report);
    if (rc != 0) {
        goto fail;
    }

    // 5. The quantized block's output is the next block's input (quant_out).
    for (int c = 0; c < r->n_chunks; c++) {
        size_t t0 = chunk_begin(r, c);
        int T = chunk_tokens(r, c);
        const float *act = buf->act ? buf->act + t0 * r->n_ff : NULL;
        if (!act) {
            block_rmsnorm(r->m, w.ffn_norm, buf->mid + t0 * d, T, r->h);
            chunk_ffn_activation(r, c, r->h, w.gate, w.up);
            act = r->gate;
        }
        float *x = r->x + t0 * d;
        block_linear(w.down, d, r->n_ff, act, T, x);
        add_rows(x, buf->mid + t0 * d, (size_t)T * d);
    }
    return block_weights_store(&w, recipe);

fail:
    for (int i = 0; i < 7; i++) {
        weight_grid_free(&w.grids[i]);
    }
    return -1;
}

int calibrate_gptq(Model *m, const QuantRecipe *recipe, const CalibrationSet *calib,
                   QuantReport *report) {
    if (recipe->gptq.act_order && !recipe->gptq.static_groups &&
        !(recipe->fake_quant && !recipe->fp16_scales)) {
        return err_set("GPTQ with act-order and dynamic groups has no packed layout (its groups "
                       "follow the processing order); use static groups or -fake storage");
    }
    Runner r;
    if (runner_init(&r, m, calib) != 0) {
        return -1;
    }
    GptqRun buf = {0};
    buf.att = alloc_features(&r, r.q_dim, "attention output");
    buf.mid = buf.att ? alloc_features(&r, r.d, "residual") : NULL;
    // The feed-forward activation is the widest input; keep it only when it fits the budget.
    size_t act_bytes = r.n_tokens * (size_t)r.n_ff * sizeof(float);
    if (buf.mid && act_bytes <= store_budget()) {
        buf.act = malloc(act_bytes);
    }
    int rc = buf.mid ? 0 : -1;
    if (rc == 0 && !buf.act) {
        log_info("gptq: the feed-forward activations (%.1f GB) exceed the memory budget; they "
                 "are computed twice per block", (double)act_bytes / 1e9);
    }
    int widest = r.d > r.q_dim ? r.d : r.q_dim;
    hessian_init(&buf.acc, r.n_ff > widest ? r.n_ff : widest);
    buf.ws = gptq_workspace_new();

    for (int l = 0; rc == 0 && l < m->config.n_layer; l++) {
        double t = now_seconds();
        rc = gptq_block(&r, m, l, recipe, &buf, report);
        log_info("gptq: block %d/%d done in %.1f s", l + 1, m->config.n_layer, now_seconds() - t);
    }
    free(buf.att);
    free(buf.mid);
    free(buf.act);
    hessian_free(&buf.acc);
    gptq_workspace_free(buf.ws);
    runner_free(&r);
    return rc;
}

// ----------------------------------------------------------------------------
// AWQ

typedef struct {
    float *qkv;      // [n_tokens, d]
    float *o;        // [n_tokens, q_dim]
    float *gate_up;  // [n_tokens, d]
    float *down;     // [n_tokens, n_ff]
} Features;

// The module a subset feeds, for the scale search's callback.
typedef struct {
    Runner *r;
    const BlockWeights *w; // full-precision weights of the rest of the module
    const float *input;    // the subset's stored input [n_tokens, width]
    BlockInput subset;
} Inspect;

static int inspect_output(void *ctx, const float *const *weights, float *out) {
    Inspect *in = ctx;
    Runner *r = in->r;
    int d = r->d;
    switch (in->subset) {
    case BLOCK_INPUT_QKV:
        // Attention with the candidate q, k, v, then the full-precision output projection.
        for (int c = 0; c < r->n_chunks; c++) {
            size_t t0 = chunk_begin(r, c);
            chunk_qkv_attention(r, c, in->input + t0 * d, weights[0], weights[1], weights[2],
                                in->w, r->att);
            block_linear(in->w->o, d, r->q_dim, r->att, chunk_tokens(r, c), out + t0 * d);
        }
        break;
    case BLOCK_INPUT_O:
        block_linear(weights[0], d, r->q_dim, in->input, (int)r->n_tokens, out);
        break;
    case BLOCK_INPUT_GATE_UP:
        // The feed-forward block with the candidate gate and up, full-precision down.
        for (int c = 0; c < r->n_chunks; c++) {
            size_t t0 = chunk_begin(r, c);
            chunk_ffn_activation(r, c, in->input + t0 * d, weights[0], weights[1]);
            block_linear(in->w->down, d, r->n_ff, r->gate, chunk_tokens(r, c), out + t0 * d);
        }
        break;
    case BLOCK_INPUT_DOWN:
        block_linear(weights[0], d, r->n_ff, in->input, (int)r->n_tokens, out);
        break;
    }
    return 0;
}

// Searches the scales of one subset and returns them in a new array [cols].
static float *awq_subset_scales(Runner *r, const QuantRecipe *recipe, const BlockWeights *w,
                                BlockInput subset, const float *input, int cols, int n_layers,
                                const float *const *layers, const int *rows) {
    ActStats stats;
    act_stats_init(&stats, cols);
    act_stats_add(&stats, input, (int)r->n_tokens);
    float *mean_abs = xmalloc((size_t)cols * sizeof(float));
    act_stats_mean_abs(&stats, mean_abs);
    act_stats_free(&stats);

    Inspect inspect = {.r = r, .w = w, .input = input, .subset = subset};
    AwqScaleSearch search = {
        .n_layers = n_layers,
        .w = layers,
        .rows = rows,
        .cols = cols,
        .act_mean_abs = mean_abs,
        .bits = recipe->weight_bits,
        .group_size = recipe->group_size,
        .n_grid = recipe->awq.n_grid,
        .n_out = r->n_tokens * (size_t)r->d,
        .output = inspect_output,
        .ctx = &inspect,
    };
    float *scales = xmalloc((size_t)cols * sizeof(float));
    int best = 0;
    awq_search_scales(&search, scales, NULL, &best);
    log_debug("awq: subset %d: ratio %d/%d", (int)subset, best, recipe->awq.n_grid);
    free(mean_abs);
    return scales;
}

static void awq_clip_linear(Runner *r, const QuantRecipe *recipe, float *w, int rows, int cols,
                            const float *input) {
    int group = recipe->group_size > 0 && recipe->group_size < cols ? recipe->group_size : cols;
    int n_groups = (cols + group - 1) / group;
    float *max_val = xmalloc((size_t)rows * (size_t)n_groups * sizeof(float));
    awq_search_clip(w, rows, cols, recipe->weight_bits, recipe->group_size, input,
                    (int)r->n_tokens, r->cs->options.seq_len, recipe->awq.clip_grid,
                    recipe->awq.max_shrink, max_val);
    awq_apply_clip(w, rows, cols, recipe->group_size, max_val);
    free(max_val);
}

static void awq_block(Runner *r, const QuantRecipe *recipe, BlockWeights *w, Features *f,
                      QuantReport *report) {
    int d = r->d;
    Taps taps = {.qkv = NULL};

    // Inputs of every linear from one full-precision pass (on a copy: r->x stays the input).
    for (int c = 0; c < r->n_chunks; c++) {
        size_t t0 = chunk_begin(r, c);
        int T = chunk_tokens(r, c);
        memcpy(r->xs, r->x + t0 * d, (size_t)T * d * sizeof(float));
        taps.qkv = f->qkv + t0 * d;
        taps.o = f->o + t0 * r->q_dim;
        taps.gate_up = f->gate_up + t0 * d;
        taps.down = f->down + t0 * r->n_ff;
        forward_chunk(r, w, c, r->xs, &taps);
    }
    int n = (int)r->n_tokens;

    // q, k, v: scales folded into the attention norm.
    const float *qkv[] = {w->q, w->k, w->v};
    int qkv_rows[] = {r->q_dim, r->kv_dim, r->kv_dim};
    float *s = awq_subset_scales(r, recipe, w, BLOCK_INPUT_QKV, f->qkv, d, 3, qkv, qkv_rows);
    migrate_divide_vector(w->attn_norm, d, s);
    migrate_scale_columns(w->q, r->q_dim, d, s);
    migrate_scale_columns(w->k, r->kv_dim, d, s);
    migrate_scale_columns(w->v, r->kv_dim, d, s);
    migrate_divide_columns(f->qkv, n, d, s);
    free(s);
    report->n_scale_searches++;

    // o: scales folded into v's output rows, possible only when v's outputs are o's inputs
    // (no grouped-query attention), as llmc's subset_transform checks.
    // NOTE: llmc would also divide v's bias by the scales; qbias skips the o subset when v has
    // a bias, since the variant shares the bias vectors with the base model.
    if (r->kv_dim == r->q_dim && !w->bv) {
        const float *o[] = {w->o};
        int o_rows[] = {d};
        s = awq_subset_scales(r, recipe, w, BLOCK_INPUT_O, f->o, r->q_dim, 1, o, o_rows);
        migrate_divide_rows(w->v, r->kv_dim, d, s);
        migrate_scale_columns(w->o, d, r->q_dim, s);
        migrate_divide_columns(f->o, n, r->q_dim, s);
        free(s);
        report->n_scale_searches++;
    }

    // gate, up: scales folded into the feed-forward norm.
    const float *gu[] = {w->gate, w->up};
    int gu_rows[] = {r->n_ff, r->n_ff};
    s = awq_subset_scales(r, recipe, w, BLOCK_INPUT_GATE_UP, f->gate_up, d, 2, gu, gu_rows);
    migrate_divide_vector(w->ffn_norm, d, s);
    migrate_scale_columns(w->gate, r->n_ff, d, s);
    migrate_scale_columns(w->up, r->n_ff, d, s);
    migrate_divide_columns(f->gate_up, n, d, s);
    free(s);
    report->n_scale_searches++;

    // down: scales folded into up's output rows.
    const float *dn[] = {w->down};
    int dn_rows[] = {d};
    s = awq_subset_scales(r, recipe, w, BLOCK_INPUT_DOWN, f->down, r->n_ff, 1, dn, dn_rows);
    migrate_divide_rows(w->up, r->n_ff, d, s);
    migrate_scale_columns(w->down, d, r->n_ff, s);
    migrate_divide_columns(f->down, n, r->n_ff, s);
    free(s);
    report->n_scale_searches++;

    // Clipping of every linear but q and k (their errors pass through the softmax, which the
    // per-group output error does not see; llm-awq and llmc skip them).
    if (recipe->awq.clip) {
        awq_clip_linear(r, recipe, w->v, r->kv_dim, d, f->qkv);
        awq_clip_linear(r, recipe, w->o, d, r->q_dim, f->o);
        awq_clip_linear(r, recipe, w->gate, r->n_ff, d, f->gate_up);
        awq_clip_linear(r, recipe, w->up, r->n_ff, d, f->gate_up);
        awq_clip_linear(r, recipe, w->down, d, r->n_ff, f->down);
    }
}

// Rounds the block's seven matrices to the recipe's grid, recording the grids.
static void round_block(const QuantRecipe *recipe, BlockWeights *w, QuantReport *report) {
    float *all[] = {w->q, w->k, w->v, w->o, w->gate, w->up, w->down};
    for (int i = 0; i < 7; i++) {
        quantize_round_rtn(all[i], recipe, &w->grids[i]);
        report->n_linears++;
    }
}

int calibrate_awq(Model *m, const QuantRecipe *recipe, const CalibrationSet *calib,
                  QuantReport *report) {
    Runner r;
    if (runner_init(&r, m, calib) != 0) {
        return -1;
    }
    Features f = {0};
    f.qkv = alloc_features(&r, r.d, "attention input");
    f.o = f.qkv ? alloc_features(&r, r.q_dim, "attention output") : NULL;
    f.gate_up = f.o ? alloc_features(&r, r.d, "feed-forward input") : NULL;
    f.down = f.gate_up ? alloc_features(&r, r.n_ff, "feed-forward activation") : NULL;
    int rc = f.down ? 0 : -1;

    for (int l = 0; rc == 0 && l < m->config.n_layer; l++) {
        double t = now_seconds();
        BlockWeights w;
        block_weights_begin(&m->layers[l], recipe, &w);
        awq_block(&r, recipe, &w, &f, report);
        round_block(recipe, &w, report);
        // quant_out: the next block sees this block's quantized output.
        for (int c = 0; c < r.n_chunks; c++) {
            forward_chunk(&r, &w, c, r.x + chunk_begin(&r, c) * r.d, NULL);
        }
        rc = block_weights_store(&w, recipe);
        log_info("awq: block %d/%d done in %.1f s", l + 1, m->config.n_layer, now_seconds() - t);
    }
    free(f.qkv);
    free(f.o);
    free(f.gate_up);
    free(f.down);
    runner_free(&r);
    return rc;
}

// ----------------------------------------------------------------------------
// SmoothQuant

int calibrate_sq(Model *m, const QuantRecipe *recipe, const CalibrationSet *calib,
                 QuantReport *report) {
    Runner r;
    if (runner_init(&r, m, calib) != 0) {
        return -1;
    }
    int d = r.d, rc = 0;
    float *s = xmalloc((size_t)d * sizeof(float));
    for (int l = 0; rc == 0 && l < m->config.n_layer; l++) {
        double t = now_seconds();
        BlockWeights w;
        block_weights_begin(&m->layers[l], recipe, &w);

        // Full-precision pass: activation maxima, and the next block's input.
        ActStats qkv_stats, gu_stats;
        act_stats_init(&qkv_stats, d);
        act_stats_init(&gu_stats, d);
        Taps taps = {.qkv_stats = &qkv_stats, .gate_up_stats = &gu_stats};
        for (int c = 0; c < r.n_chunks; c++) {
            forward_chunk(&r, &w, c, r.x + chunk_begin(&r, c) * d, &taps);
        }

        if (recipe->sq.smooth) {
            const float *qkv[] = {w.q, w.k, w.v};
            int qkv_rows[] = {r.q_dim, r.kv_dim, r.kv_dim};
            sq_smoothing_factors(qkv_stats.abs_max, qkv, qkv_rows, 3, d, recipe->sq.alpha, s);
            migrate_divide_vector(w.attn_norm, d, s);
            migrate_scale_columns(w.q, r.q_dim, d, s);
            migrate_scale_columns(w.k, r.kv_dim, d, s);
            migrate_scale_columns(w.v, r.kv_dim, d, s);

            const float *gu[] = {w.gate, w.up};
            int gu_rows[] = {r.n_ff, r.n_ff};
            sq_smoothing_factors(gu_stats.abs_max, gu, gu_rows, 2, d, recipe->sq.alpha, s);
            migrate_divide_vector(w.ffn_norm, d, s);
            migrate_scale_columns(w.gate, r.n_ff, d, s);
            migrate_scale_columns(w.up, r.n_ff, d, s);
        }
        act_stats_free(&qkv_stats);
        act_stats_free(&gu_stats);

        round_block(recipe, &w, report);
        rc = block_weights_store(&w, recipe);
        if (rc != 0) {
            break;
        }
        log_info("sq: block %d/%d done in %.1f s", l + 1, m->config.n_layer, now_seconds() - t);
    }
    free(s);
    runner_free(&r);
    return rc;
}

// ----------------------------------------------------------------------------
// Inputs of one block, for tests and diagnostics

float *calib_collect_inputs(const Model *m, const CalibrationSet *calib, int layer,
                            BlockInput which, int *n_tokens, int *dim) {
    if (layer < 0 || layer >= m->config.n_layer) {
        err_set("block %d does not exist (the model has %d)", layer, m->config.n_layer);
        return NULL;
    }
    Runner r;
    if (runner_init(&r, m, calib) != 0) {
        return NULL;
    }
    for (int l = 0; l < layer; l++) {
        forward_block_in_place(&r, l);
    }

    int widths[] = {r.d, r.q_dim, r.d, r.n_ff};
    int width = widths[which];
    float *out = alloc_features(&r, width, "collected inputs");
    if (out) {
        BlockWeights w;
        block_weights_read(&m->layers[layer], &w);
        for (int c = 0; c < r.n_chunks; c++) {
            size_t t0 = chunk_begin(&r, c);
            Taps taps = {0};
            float *dst = out + t0 * width;
            taps.qkv = which == BLOCK_INPUT_QKV ? dst : NULL;
            taps.o = which == BLOCK_INPUT_O ? dst : NULL;
            taps.gate_up = which == BLOCK_INPUT_GATE_UP ? dst : NULL;
            taps.down = which == BLOCK_INPUT_DOWN ? dst : NULL;
            forward_chunk(&r, &w, c, r.x + t0 * r.d, &taps);
        }
        block_weights_release(&w);
        *n_tokens = (int)r.n_tokens;
        *dim = width;
    }
    runner_free(&r);
    return out;
}
