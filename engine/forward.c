// forward.c: the decoder forward pass of every supported architecture (model.h lists them).
//
// Per layer, for activations x [n_tokens, n_embd] (llama's form; the others differ as noted):
//   h = norm(x) * attn_norm                     RMSNorm; LayerNorm with bias for gpt2
//   q, k, v = h Wq^T, h Wk^T, h Wv^T (+ biases)  RoPE on q and k (none for gpt2); k, v cached
//   a = softmax(scale * q k^T, causal) v          gemma2: soft-capped scores; phi3, gemma2: window
//   o = a Wo^T (+ bias)                          gemma2: o = rmsnorm(o) * post_attn_norm
//   x += o
//   h = norm(x) * ffn_norm
//   f = (act(h Wgate^T) * (h Wup^T)) Wdown^T     silu (llama), tanh-GELU (gemma2);
//                                                gpt2: gelu(h Wup^T + b) Wdown^T + b
//   x += f                                       gemma2: f = rmsnorm(f) * post_ffn_norm first
// and at the end norm(x) * output_norm. All arithmetic is fp32; norms and softmax sums
// accumulate in double, as ggml does for norms.
#include "forward.h"

#include <cblas.h>
#include <omp.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../kernels/kernels.h"
#include "../quant/kvquant.h"
#include "quantize.h"
#include "util.h"

// ----------------------------------------------------------------------------
// KV cache

KVCache *kv_cache_new(const ModelConfig *c, int n_seq, int n_ctx) {
    if (n_seq <= 0 || n_ctx <= 0) {
        err_set("invalid KV cache size: %d sequences of %d positions", n_seq, n_ctx);
        return NULL;
    }
    int kv_dim = c->n_head_kv * c->head_dim;
    size_t n = 0;
    if (!size_mul((size_t)c->n_layer, (size_t)n_seq, &n) || !size_mul(n, (size_t)n_ctx, &n) ||
        !size_mul(n, (size_t)kv_dim, &n) || !size_mul(n, sizeof(float), &n)) {
        err_set("KV cache size overflows: %d layers x %d sequences x %d positions x %d", c->n_layer,
                n_seq, n_ctx, kv_dim);
        return NULL;
    }
    KVCache *kv = xcalloc(1, sizeof *kv);
    kv->n_layer = c->n_layer;
    kv->n_seq = n_seq;
    kv->n_ctx = n_ctx;
    kv->kv_dim = kv_dim;
    kv->k = malloc(n);
    kv->v = malloc(n);
    kv->n_cached = xcalloc((size_t)n_seq, sizeof(int));
    if (!kv->k || !kv->v) {
        err_set("cannot allocate a KV cache of 2 x %.1f MB (%d sequences x %d positions); use "
                "fewer sequences per batch or a shorter context",
                (double)n / 1e6, n_seq, n_ctx);
        kv_cache_free(kv);
        return NULL;
    }
    return kv;
}

void kv_cache_free(KVCache *kv) {
    if (!kv) {
        return;
    }
    free(kv->k);
    free(kv->v);
    free(kv->n_cached);
    free(kv);
}

void kv_cache_clear(KVCache *kv, int seq) {
    if (seq < 0) {
        memset(kv->n_cached, 0, (size_t)kv->n_seq * sizeof(int));
    } else {
        kv->n_cached[seq] = 0;
    }
}

// Returns the cache row of (layer, seq, pos): kv_dim floats.
static float *cache_row(const KVCache *kv, float *base, int layer, int seq, int pos) {
    size_t index = (((size_t)layer * (size_t)kv->n_seq + (size_t)seq) * (size_t)kv->n_ctx +
                    (size_t)pos) * (size_t)kv->kv_dim;
    return base + index;
}

// ----------------------------------------------------------------------------
// Building blocks

// out[i] = x[i] / sqrt(mean(x^2) + eps) * weight[i], with the mean of squares in double.
static void rmsnorm(float *out, const float *x, const float *weight, int n, float eps) {
    double sum_squares = 0.0;
    for (int i = 0; i < n; i++) {
        sum_squares += (double)x[i] * (double)x[i];
    }
    float scale = (float)(1.0 / sqrt(sum_squares / n + (double)eps));
    for (int i = 0; i < n; i++) {
        out[i] = x[i] * scale * weight[i];
    }
}

// out[i] = (x[i] - mean) / sqrt(var + eps) * weight[i] + bias[i], the population variance and the
// mean in double.
static void layernorm(float *out, const float *x, const float *weight, const float *bias, int n,
                      float eps) {
    double mean = 0.0, var = 0.0;
    for (int i = 0; i < n; i++) {
        mean += x[i];
    }
    mean /= n;
    for (int i = 0; i < n; i++) {
        var += ((double)x[i] - mean) * ((double)x[i] - mean);
    }
    float scale = (float)(1.0 / sqrt(var / n + (double)eps));
    for (int i = 0; i < n; i++) {
        out[i] = (float)(x[i] - mean) * scale * weight[i] + bias[i];
    }
}

// Normalizes n_rows rows of width n with the model's norm (RMSNorm, or LayerNorm when bias != NULL).
static void norm_rows(const ModelConfig *c, float *out, const float *x, const float *weight,
                      const float *bias, int n_rows, int n) {
    for (int t = 0; t < n_rows; t++) {
        if (c->layer_norm) {
            layernorm(out + (size_t)t * n, x + (size_t)t * n, weight, bias, n, c->norm_eps);
        } else {
            rmsnorm(out + (size_t)t * n, x + (size_t)t * n, weight, n, c->norm_eps);
        }
    }
}

// Rotates the first rope_dim values of each head by the angles pos * inv_freq[i]. ROPE_NORMAL
// pairs elements (2i, 2i+1), the GGUF "llama" layout; ROPE_NEOX pairs (i, i + rope_dim/2), the
// layout of GGUF qwen2/phi3/gemma2 and of Hugging Face's rotate_half.
static void rope_rotate(RopeType type, float *vec, int n_heads, int head_dim, int rope_dim,
                        const float *cos_table, const float *sin_table) {
    if (type == ROPE_NONE) {
        return;
    }
    int half = rope_dim / 2;
    for (int h = 0; h < n_heads; h++) {
        float *head = vec + (size_t)h * (size_t)head_dim;
        for (int i = 0; i < half; i++) {
            int ia = type == ROPE_NORMAL ? 2 * i : i;
            int ib = type == ROPE_NORMAL ? 2 * i + 1 : i + half;
            float a = head[ia], b = head[ib];
            head[ia] = a * cos_table[i] - b * sin_table[i];
            head[ib] = a * sin_table[i] + b * cos_table[i];
        }
    }
}

void block_add_bias(float *y, const float *bias, int n_rows, int n) {
    if (!bias) {
        return;
    }
    for (int t = 0; t < n_rows; t++) {
        for (int i = 0; i < n; i++) {
            y[(size_t)t * n + i] += bias[i];
        }
    }
}

// GELU in the tanh approximation that llama.cpp's ggml_gelu and Hugging Face's gelu_pytorch_tanh
// and gelu_new compute (in float32; ggml's CPU backend rounds through an fp16 table instead).
static float gelu_tanh(float x) {
    return 0.5f * x * (1.0f + tanhf(0.7978845608028654f * (x + 0.044715f * x * x * x)));
}

// Fills cos/sin of pos * base^(-2i/rope_dim) / factor_i for i < rope_dim / 2, computed in double
// so that the angle is as exact as float storage allows.
static void rope_angles(const Model *m, int pos, float *cos_table, float *sin_table) {
    const ModelConfig *c = &m->config;
    for (int i = 0; i < c->rope_dim / 2; i++) {
        double inv_freq = pow((double)c->rope_freq_base, -2.0 * i / c->rope_dim);
        if (m->rope_freq_factors) {
            inv_freq /= (double)m->rope_freq_factors[i];
        }
        double angle = (double)pos * inv_freq;
        cos_table[i] = (float)cos(angle);
        sin_table[i] = (float)sin(angle);
    }
}

static float silu(float x) {
    return x / (1.0f + expf(-x));
}

// Returns the first position a query at `pos` of layer `layer` may attend to: 0, or the start of
// the sliding window where the layer has one.
static int window_start(const ModelConfig *c, int layer, int pos) {
    if (c->sliding_window <= 0 || (c->window_even_layers && layer % 2 != 0)) {
        return 0;
    }
    int first = pos - c->sliding_window + 1;
    return first > 0 ? first : 0;
}

// Dot product of two head vectors in 16 independent lanes (element i goes to lane i % 16), then
// the lanes summed in a fixed order. `omp simd` vectorizes the lanes without reordering any
// addition, which a single running sum would forbid, so the result depends only on the inputs.
static float head_dot(const float *a, const float *b, int n) {
    enum { LANES = 16 };
    float lanes[LANES] = {0};
    int i = 0;
    for (; i + LANES <= n; i += LANES) {
#pragma omp simd
        for (int l = 0; l < LANES; l++) {
            lanes[l] += a[i + l] * b[i + l];
        }
    }
    for (int l = 0; i + l < n; l++) {
        lanes[l] += a[i + l] * b[i + l];
    }
    // Pairwise: lane l + 8 into l, then l + 4, l + 2 and l + 1.
#pragma omp simd
    for (int l = 0; l < 8; l++) {
        lanes[l] += lanes[l + 8];
    }
#pragma omp simd
    for (int l = 0; l < 4; l++) {
        lanes[l] += lanes[l + 4];
    }
    lanes[0] += lanes[2];
    lanes[1] += lanes[3];
    return lanes[0] + lanes[1];
}

// Causal attention of one query head of one token over positions first..pos of its sequence in
// the cache. q: [n_head * head_dim]; out: [n_head * head_dim] (only head h is written); scores:
// scratch of pos + 1 floats.
static void attend_head(const Model *m, const KVCache *kv, int layer, int seq, int pos, int h,
                        const float *q, float *out, float *scores) {
    const ModelConfig *c = &m->config;
    int group = c->n_head / c->n_head_kv;
    int first = window_start(c, layer, pos);
    const float *qh = q + (size_t)h * (size_t)c->head_dim;
    int kv_head = h / group;

    float max_score = -INFINITY;
    for (int j = first; j <= pos; j++) {
        const float *kj = cache_row(kv, kv->k, layer, seq, j) + (size_t)kv_head * c->head_dim;
        scores[j] = head_dot(qh, kj, c->head_dim) * c->attn_scale;
        if (c->attn_softcap > 0) {
            scores[j] = c->attn_softcap * tanhf(scores[j] / c->attn_softcap);
        }
        if (scores[j] > max_score) {
            max_score = scores[j];
        }
    }

    double sum = 0.0;
    for (int j = first; j <= pos; j++) {
        scores[j] = expf(scores[j] - max_score);
        sum += scores[j];
    }
    float inv_sum = (float)(1.0 / sum);

    float *oh = out + (size_t)h * (size_t)c->head_dim;
    memset(oh, 0, (size_t)c->head_dim * sizeof(float));
    for (int j = first; j <= pos; j++) {
        const float *vj = cache_row(kv, kv->v, layer, seq, j) + (size_t)kv_head * c->head_dim;
        float weight = scores[j] * inv_sum;
        // Each output element has its own sum, so vectorizing changes no result.
#pragma omp simd
        for (int d = 0; d < c->head_dim; d++) {
            oh[d] += weight * vj[d];
        }
    }
}

// Attention of every token and head of the batch: attn [n, q_dim] from q [n, q_dim] and the cache.
// Each (token, head) pair is computed alone with the same operations, so the split across threads
// does not change any result.
static void attend_batch(const Model *m, const KVCache *kv, const Batch *b, int layer,
                         const float *q, float *attn) {
    const ModelConfig *c = &m->config;
    int n = b->n_tokens, q_dim = c->n_head * c->head_dim;
    int64_t pairs = (int64_t)n * c->n_head;
    double work = (double)pairs * (double)(kv->n_cached[b->seq[0]] + n) * c->head_dim;
    int threads = work > 1e6 ? kernels_threads() : 1;
    float *scores = xmalloc((size_t)threads * (size_t)kv->n_ctx * sizeof(float));

#pragma omp parallel for schedule(dynamic, 4) num_threads(threads) if (threads > 1)
    for (int64_t i = 0; i < pairs; i++) {
        int t = (int)(i / c->n_head), h = (int)(i % c->n_head);
        float *scratch = scores + (size_t)omp_get_thread_num() * (size_t)kv->n_ctx;
        attend_head(m, kv, layer, b->seq[t], b->pos[t], h, q + (size_t)t * q_dim,
                    attn + (size_t)t * q_dim, scratch);
    }
    free(scores);
}

// ----------------------------------------------------------------------------
// The forward pass

static int check_batch(const Model *m, const KVCache *kv, const Batch *b) {
    // Each sequence's positions must continue its cache without gaps, in batch order.
    int *next_pos = xmalloc((size_t)kv->n_seq * sizeof(int));
    memcpy(next_pos, kv->n_cached, (size_t)kv->n_seq * sizeof(int));
    int rc = 0;
    for (int t = 0; t < b->n_tokens && rc == 0; t++) {
        int seq = b->seq[t];
        if (b->tokens[t] < 0 || b->tokens[t] >= m->config.n_vocab) {
            rc = err_set("token id %d at batch index %d is outside the vocabulary (0..%d)",
                         b->tokens[t], t, m->config.n_vocab - 1);
        } else if (seq < 0 || seq >= kv->n_seq) {
            rc = err_set("sequence slot %d at batch index %d is outside the cache (0..%d)", seq, t,
                         kv->n_seq - 1);
        } else if (b->pos[t] != next_pos[seq]) {
            rc = err_set("position %d at batch index %d does not continue sequence %d (expected %d)",
                         b->pos[t], t, seq, next_pos[seq]);
        } else if (b->pos[t] >= kv->n_ctx) {
            rc = err_set("position %d exceeds the context of %d positions", b->pos[t], kv->n_ctx);
        } else {
            next_pos[seq]++;
        }
    }
    free(next_pos);
    return rc;
}

// The attention half of a block: x [n, n_embd] += attention output.
static void attention_block(const Model *m, KVCache *kv, const Batch *b, int l, const RuntimeQuant *rq,
                            const float *rope_cos, const float *rope_sin, float *x, float *h,
                            float *q, float *k, float *v, float *attn) {
    const ModelConfig *c = &m->config;
    const Layer *layer = &m->layers[l];
    int n = b->n_tokens, q_dim = c->n_head * c->head_dim, kv_dim = kv->kv_dim;
    int half = c->rope_dim / 2;

    norm_rows(c, h, x, layer->attn_norm, layer->attn_norm_b, n, c->n_embd);
    linear_forward(&layer->attn_q, h, n, q);
    linear_forward(&layer->attn_k, h, n, k);
    linear_forward(&layer->attn_v, h, n, v);
    block_add_bias(q, layer->bq, n, q_dim);
    block_add_bias(k, layer->bk, n, kv_dim);
    block_add_bias(v, layer->bv, n, kv_dim);

    for (int t = 0; t < n; t++) {
        const float *cos_t = rope_cos + (size_t)t * half, *sin_t = rope_sin + (size_t)t * half;
        rope_rotate(c->rope_type, q + (size_t)t * q_dim, c->n_head, c->head_dim, c->rope_dim, cos_t,
                    sin_t);
        rope_rotate(c->rope_type, k + (size_t)t * kv_dim, c->n_head_kv, c->head_dim, c->rope_dim,
                    cos_t, sin_t);
        if (rq->kv_bits) {
            kv_fake_quantize_row(k + (size_t)t * kv_dim, c->n_head_kv, c->head_dim, rq->kv_bits);
            kv_fake_quantize_row(v + (size_t)t * kv_dim, c->n_head_kv, c->head_dim, rq->kv_bits);
        }
        memcpy(cache_row(kv, kv->k, l, b->seq[t], b->pos[t]), k + (size_t)t * kv_dim,
               (size_t)kv_dim * sizeof(float));
        memcpy(cache_row(kv, kv->v, l, b->seq[t], b->pos[t]), v + (size_t)t * kv_dim,
               (size_t)kv_dim * sizeof(float));
    }
    attend_batch(m, kv, b, l, q, attn);
    linear_forward(&layer->attn_output, attn, n, h);
    block_add_bias(h, layer->bo, n, c->n_embd);
    if (layer->post_attn_norm) {
        norm_rows(c, h, h, layer->post_attn_norm, NULL, n, c->n_embd);
    }
    for (size_t i = 0; i < (size_t)n * (size_t)c->n_embd; i++) {
        x[i] += h[i];
    }
}

// The feed-forward half of a block: x [n, n_embd] += FFN output.
static void ffn_block(const Model *m, int n, int l, float *x, float *h, float *gate,
                      float *up) {
    const ModelConfig *c = &m->config;
    const Layer *layer = &m->layers[l];
    size_t hidden = (size_t)n * (size_t)c->n_ff;

    norm_rows(c, h, x, layer->ffn_norm, layer->ffn_norm_b, n, c->n_embd);
    if (c->ffn == FFN_GELU) {
        linear_forward(&layer->ffn_up, h, n, gate);
        block_add_bias(gate, layer->b_up, n, c->n_ff);
        for (size_t i = 0; i < hidden; i++) {
            gate[i] = gelu_tanh(gate[i]);
        }
    } else {
        linear_forward(&layer->ffn_gate, h, n, gate);
        linear_forward(&layer->ffn_up, h, n, up);
        for (size_t i = 0; i < hidden; i++) {
            float a = c->ffn == FFN_SILU_GLU ? silu(gate[i]) : gelu_tanh(gate[i]);
            gate[i] = a * up[i];
        }
    }
    linear_forward(&layer->ffn_down, gate, n, h);
    block_add_bias(h, layer->b_down, n, c->n_embd);
    if (layer->post_ffn_norm) {
        norm_rows(c, h, h, layer->post_ffn_norm, NULL, n, c->n_embd);
    }
    for (size_t i = 0; i < (size_t)n * (size_t)c->n_embd; i++) {
        x[i] += h[i];
    }
}

// Token embeddings (converted from their stored type, scaled for gemma2) plus learned positions
// (gpt2), into x [n, n_embd].
static void embed_tokens(const Model *m, const Batch *b, float *x) {
    const ModelConfig *c = &m->config;
    float *position = m->position_embd.rows ? xmalloc((size_t)c->n_embd * sizeof(float)) : NULL;
    for (int t = 0; t < b->n_tokens; t++) {
        float *row = x + (size_t)t * c->n_embd;
        weight_row_to_f32(&m->token_embd, b->tokens[t], row);
        if (c->embed_scale != 1.0f) {
            for (int i = 0; i < c->n_embd; i++) {
                row[i] *= c->embed_scale;
            }
        }
        if (position) {
            weight_row_to_f32(&m->position_embd, b->pos[t], position);
            for (int i = 0; i < c->n_embd; i++) {
                row[i] += position[i];
            }
        }
    }
    free(position);
}

int model_forward(const Model *m, KVCache *kv, const Batch *b, float *hidden_out) {
    const ModelConfig *c = &m->config;
    int n = b->n_tokens;
    if (n <= 0) {
        return err_set("empty batch");
    }
    if (check_batch(m, kv, b) != 0) {
        return -1;
    }
    int q_dim = c->n_head * c->head_dim;
    int kv_dim = kv->kv_dim;
    int half = c->rope_dim / 2;
    size_t rows = (size_t)n;
    RuntimeQuant rq;
    model_runtime_quant(m, &rq);

    float *x = xmalloc(rows * (size_t)c->n_embd * sizeof(float));      // [n, n_embd] residual
    float *h = xmalloc(rows * (size_t)c->n_embd * sizeof(float));      // [n, n_embd] normed
    float *q = xmalloc(rows * (size_t)q_dim * sizeof(float));          // [n, q_dim]
    float *k = xmalloc(rows * (size_t)kv_dim * sizeof(float));         // [n, kv_dim]
    float *v = xmalloc(rows * (size_t)kv_dim * sizeof(float));         // [n, kv_dim]
    float *attn = xmalloc(rows * (size_t)q_dim * sizeof(float));       // [n, q_dim]
    float *gate = xmalloc(rows * (size_t)c->n_ff * sizeof(float));     // [n, n_ff]
    float *up = xmalloc(rows * (size_t)c->n_ff * sizeof(float));       // [n, n_ff]
    float *rope_cos = xmalloc((rows * (size_t)half + 1) * sizeof(float));
    float *rope_sin = xmalloc((rows * (size_t)half + 1) * sizeof(float));

    embed_tokens(m, b, x);
    for (int t = 0; t < n; t++) {
        rope_angles(m, b->pos[t], rope_cos + (size_t)t * half, rope_sin + (size_t)t * half);
    }
    for (int l = 0; l < c->n_layer; l++) {
        attention_block(m, kv, b, l, &rq, rope_cos, rope_sin, x, h, q, k, v, attn);
        ffn_block(m, n, l, x, h, gate, up);
    }
    norm_rows(c, hidden_out, x, m->output_norm, m->output_norm_b, n, c->n_embd);
    for (int t = 0; t < n; t++) {
        kv->n_cached[b->seq[t]] = b->pos[t] + 1;
    }

    free(x);
    free(h);
    free(q);
    free(k);
    free(v);
    free(attn);
    free(gate);
    free(up);
    free(rope_cos);
    free(rope_sin);
    return 0;
}

void model_logits(const Model *m, const float *hidden, int n, float *logits) {
    const ModelConfig *c = &m->config;
    linear_forward(&m->output, hidden, n, logits);
    if (c->final_softcap > 0) {
        for (size_t i = 0; i < (size_t)n * (size_t)c->n_vocab; i++) {
            logits[i] = c->final_softcap * tanhf(logits[i] / c->final_softcap);
        }
    }
}

// ----------------------------------------------------------------------------
// Block pieces for calibration

void rope_table(const Model *m, int n_pos, float *cos_table, float *sin_table) {
    int half = m->config.rope_dim / 2;
    for (int p = 0; p < n_pos; p++) {
        rope_angles(m, p, cos_table + (size_t)p * half, sin_table + (size_t)p * half);
    }
}

void block_rmsnorm(const Model *m, const float *weight, const float *x, int n, float *out) {
    int d = m->config.n_embd;
    for (int t = 0; t < n; t++) {
        rmsnorm(out + (size_t)t * d, x + (size_t)t * d, weight, d, m->config.norm_eps);
    }
}

void block_linear(const float *w, int rows, int cols, const float *x, int n, float *y) {
    gemm_f32(x, w, y, n, rows, cols, rows);
}

void block_swiglu(float *gate, const float *up, size_t count) {
    for (size_t i = 0; i < count; i++) {
        gate[i] = silu(gate[i]) * up[i];
    }
}

// e^x for x <= 0, within about 2e-7 relative: x = k ln2 + r with |r| <= ln2 / 2 (ln2 split in
// two parts, as Cody and Waite), e^r by its degree-7 Taylor polynomial, 2^k through the exponent
// bits. It has no branch, so the softmax loop below vectorizes; with libm's expf the exponentials
// were the slowest step of the calibration attention.
static inline float exp_nonpositive(float x) {
    x = x < -87.0f ? -87.0f : x; // e^-87 is about the smallest normal float
    float k = rintf(x * 1.44269504f);
    float r = x - k * 0.693145752f;
    r = r - k * 1.42860677e-6f;
    float p = 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    uint32_t bits = (uint32_t)((int32_t)k + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

// Softmax of row i of scores [n, n] over columns 0..i (causal), zeroing the columns after i so
// that the product with V can run over the full row. The sum accumulates in double.
static void causal_softmax_row(float *row, int i, int n) {
    float max_score = row[0];
#pragma omp simd reduction(max : max_score)
    for (int j = 1; j <= i; j++) {
        max_score = row[j] > max_score ? row[j] : max_score;
    }
    double sum = 0.0;
#pragma omp simd reduction(+ : sum)
    for (int j = 0; j <= i; j++) {
        row[j] = exp_nonpositive(row[j] - max_score);
        sum += row[j];
    }
    float inv_sum = (float)(1.0 / sum);
#pragma omp simd
    for (int j = 0; j <= i; j++) {
        row[j] *= inv_sum;
    }
    for (int j = i + 1; j < n; j++) {
        row[j] = 0.0f;
    }
}

void block_attention(const Model *m, const float *rope_cos, const float *rope_sin, float *q,
                     float *k, const float *v, int n, float *out) {
    const ModelConfig *c = &m->config;
    int q_dim = c->n_head * c->head_dim, kv_dim = c->n_head_kv * c->head_dim;
    int half = c->rope_dim / 2, group = c->n_head / c->n_head_kv;
    float scale = c->attn_scale;

    for (int t = 0; t < n; t++) {
        const float *cos_t = rope_cos + (size_t)t * half, *sin_t = rope_sin + (size_t)t * half;
        rope_rotate(c->rope_type, q + (size_t)t * q_dim, c->n_head, c->head_dim, c->rope_dim, cos_t,
                    sin_t);
        rope_rotate(c->rope_type, k + (size_t)t * kv_dim, c->n_head_kv, c->head_dim, c->rope_dim,
                    cos_t, sin_t);
    }

    float *scores = xmalloc((size_t)n * (size_t)n * sizeof(float)); // [n, n]
    for (int h = 0; h < c->n_head; h++) {
        int kv_head = h / group;
        const float *qh = q + (size_t)h * c->head_dim;
        const float *kh = k + (size_t)kv_head * c->head_dim;
        const float *vh = v + (size_t)kv_head * c->head_dim;

        // scores = q_h k_h^T * attn_scale, then the causal softmax of each row.
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, c->head_dim, scale, qh, q_dim,
                    kh, kv_dim, 0.0f, scores, n);
        for (int i = 0; i < n; i++) {
            causal_softmax_row(scores + (size_t)i * n, i, n);
        }
        // out_h = P v_h.
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, c->head_dim, n, 1.0f, scores, n,
                    vh, kv_dim, 0.0f, out + (size_t)h * c->head_dim, q_dim);
    }
    free(scores);
}
