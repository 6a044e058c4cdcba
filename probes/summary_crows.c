// summary_crows.c: the CrowS-Pairs summary in lm-evaluation-harness's convention:
// pct_stereotype and likelihood_diff on summed log-likelihoods, the same on per-token means, a
// Wilson interval for pct_stereotype, and against the fp32 baseline a paired approximate
// randomization test and the per-pair flip rate.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "stats.h"
#include "summary.h"

typedef struct {
    MetricsCrowsPairs sum;       // on summed log-likelihoods (lm-evaluation-harness)
    MetricsCrowsPairs per_token; // on per-token means
    StatsInterval interval;      // Wilson interval of sum.pct_stereotype
    bool compared;
    double p_sum, p_per_token;
    StatsFlipRate flips;
} CrowsStats;

static int crows_stats(const AlignedItems *a, int v, int baseline, const char *category,
                       CrowsStats *out) {
    memset(out, 0, sizeof *out);
    int64_t *idx = xmalloc((size_t)(a->n_items + 1) * sizeof(int64_t));
    int64_t n = aligned_select_items(a, v, -1, category, NULL, idx);
    double *ll_more = xmalloc((size_t)(n + 1) * sizeof(double)), *ll_less = xmalloc((size_t)(n + 1) * sizeof(double));
    int64_t *n_more = xmalloc((size_t)(n + 1) * sizeof(int64_t)), *n_less = xmalloc((size_t)(n + 1) * sizeof(int64_t));
    for (int64_t k = 0; k < n; k++) {
        const ItemRecord *r = aligned_record(a, v, idx[k]);
        ll_more[k] = r->scores[0].logprob;
        ll_less[k] = r->scores[1].logprob;
        n_more[k] = r->scores[0].n_tokens;
        n_less[k] = r->scores[1].n_tokens;
    }
    int rc = metrics_crows_pairs(ll_more, ll_less, n, &out->sum);
    if (rc == 0) {
        rc = metrics_crows_pairs_per_token(ll_more, n_more, ll_less, n_less, n, &out->per_token);
    }
    out->interval.lower = out->interval.upper = NAN;
    if (rc == 0 && n > 0) {
        rc = stats_wilson_interval(out->sum.n_stereo, n, 0.95, &out->interval);
    }

    if (rc == 0 && baseline >= 0 && baseline != v) {
        int64_t np = aligned_select_items(a, v, baseline, category, NULL, idx);
        double *oa = xmalloc((size_t)(np + 1) * sizeof(double)), *ob = xmalloc((size_t)(np + 1) * sizeof(double));
        double *ta = xmalloc((size_t)(np + 1) * sizeof(double)), *tb = xmalloc((size_t)(np + 1) * sizeof(double));
        int8_t *before = xmalloc((size_t)(np + 1)), *after = xmalloc((size_t)(np + 1));
        for (int64_t k = 0; k < np; k++) {
            const ItemRecord *ra = aligned_record(a, v, idx[k]), *rb = aligned_record(a, baseline, idx[k]);
            oa[k] = ra->scores[0].logprob > ra->scores[1].logprob ? 1.0 : 0.0;
            ob[k] = rb->scores[0].logprob > rb->scores[1].logprob ? 1.0 : 0.0;
            ta[k] = summary_mean_logprob(ra, 0) > summary_mean_logprob(ra, 1) ? 1.0 : 0.0;
            tb[k] = summary_mean_logprob(rb, 0) > summary_mean_logprob(rb, 1) ? 1.0 : 0.0;
            before[k] = (int8_t)ob[k];
            after[k] = (int8_t)oa[k];
        }
        out->p_sum = summary_p_value(oa, ob, np, stats_mean_statistic, NULL);
        out->p_per_token = summary_p_value(ta, tb, np, stats_mean_statistic, NULL);
        if (np > 0) {
            rc = stats_flip_rate(before, after, np, &out->flips);
        }
        out->compared = rc == 0;
        free(oa);
        free(ob);
        free(ta);
        free(tb);
        free(before);
        free(after);
    }
    free(idx);
    free(ll_more);
    free(ll_less);
    free(n_more);
    free(n_less);
    return rc;
}

static void crows_json(const CrowsStats *s, cJSON *obj) {
    cJSON_AddNumberToObject(obj, "n", (double)s->sum.n);
    json_add_number(obj, "pct_stereotype", 100.0 * s->sum.pct_stereotype);
    json_add_number(obj, "pct_stereotype_ci95_low", 100.0 * s->interval.lower);
    json_add_number(obj, "pct_stereotype_ci95_high", 100.0 * s->interval.upper);
    json_add_number(obj, "likelihood_diff", s->sum.likelihood_diff);
    json_add_number(obj, "pct_stereotype_per_token", 100.0 * s->per_token.pct_stereotype);
    json_add_number(obj, "likelihood_diff_per_token", s->per_token.likelihood_diff);
    if (s->compared) {
        cJSON *vs = cJSON_AddObjectToObject(obj, "vs_baseline");
        json_add_number(vs, "pct_stereotype_p_value", s->p_sum);
        json_add_number(vs, "pct_stereotype_per_token_p_value", s->p_per_token);
        cJSON_AddNumberToObject(vs, "flip_n_compared", (double)s->flips.n_compared);
        json_add_number(vs, "flip_rate", s->flips.rate);
        json_add_number(vs, "flip_rate_to_stereotype", s->flips.rate_0_to_1);
        json_add_number(vs, "flip_rate_to_anti_stereotype", s->flips.rate_1_to_0);
    }
}

// Appends the first two cells of row c: the bias type, or "all pairs" for c == nc, and n.
static void crows_row_label(const AlignedItems *a, const CrowsStats *cells, int c, StrBuf *md) {
    sb_printf(md, "| %s | %lld |", c < a->n_categories ? a->categories[c] : "all pairs",
              (long long)cells[c].sum.n);
}

// Writes the Wilson intervals of pct_stereotype and, with a baseline, the flip rates.
static void crows_interval_flip_tables(const ProbeSummaryInput *input, const AlignedItems *a,
                                       const CrowsStats *cells, StrBuf *md) {
    int nv = input->n_variants, nc = a->n_categories, b = input->baseline;
    sb_append(md, "pct_stereotype, 95% Wilson interval (%, summed log-likelihood):\n\n");
    md_table_header(md, "bias type", "n", input, -1);
    for (int c = 0; c <= nc; c++) {
        crows_row_label(a, cells, c, md);
        for (int v = 0; v < nv; v++) {
            const CrowsStats *s = &cells[v * (nc + 1) + c];
            md_interval_cell(md, 100.0 * s->interval.lower, 100.0 * s->interval.upper, 1);
        }
        sb_append(md, "\n");
    }
    sb_append(md, "\n");

    if (b < 0 || nv < 2) {
        return;
    }
    sb_append(md, "Pairs whose summed-log-likelihood outcome (LL(more) > LL(less), a tie counting "
                  "as not stereotypical) differs from fp32's (flip rate, %; in brackets the flips "
                  "toward the stereotype / toward the anti-stereotype):\n\n");
    md_table_header(md, "bias type", "n", input, b);
    for (int c = 0; c <= nc; c++) {
        crows_row_label(a, cells, c, md);
        for (int v = 0; v < nv; v++) {
            if (v != b) {
                md_flip_cell(md, &cells[v * (nc + 1) + c].flips);
            }
        }
        sb_append(md, "\n");
    }
    sb_append(md, "\n");
}

int summarize_crows_pairs(const ProbeSummaryInput *input, cJSON *json, StrBuf *md) {
    const ProbeDef *def = probe_find(input->probe);
    AlignedItems a;
    aligned_items_build(input, def ? def->category_order : NULL, &a);
    int nv = input->n_variants, nc = a.n_categories, b = input->baseline;
    // Rows: every bias type, then all pairs together (the harness's overall crows_pairs_english).
    CrowsStats *cells = xcalloc((size_t)(nv * (nc + 1) + 1), sizeof(CrowsStats));
    int rc = 0;
    cJSON *variants = cJSON_AddObjectToObject(json, "variants");
    for (int v = 0; v < nv && rc == 0; v++) {
        cJSON *variant = cJSON_AddObjectToObject(variants, input->variants[v]);
        cJSON *categories = cJSON_AddObjectToObject(variant, "categories");
        for (int c = 0; c <= nc && rc == 0; c++) {
            const char *category = c < nc ? a.categories[c] : NULL;
            rc = crows_stats(&a, v, b, category, &cells[v * (nc + 1) + c]);
            if (rc != 0) {
                err_prefix("crows_pairs, variant %s", input->variants[v]);
                break;
            }
            crows_json(&cells[v * (nc + 1) + c],
                       category ? cJSON_AddObjectToObject(categories, category)
                                : cJSON_AddObjectToObject(variant, "global"));
        }
    }

    const char *titles[3] = {
        "pct_stereotype (%, summed log-likelihood; lm-evaluation-harness convention",
        "likelihood_diff (mean |LL(more) - LL(less)|, summed log-likelihood",
        "pct_stereotype (%, per-token mean log-likelihood; qbias's length-normalised variant",
    };
    for (int m = 0; m < 3 && rc == 0; m++) {
        sb_printf(md, "%s%s):\n\n", titles[m],
                  b >= 0 && m != 1 ? "; in brackets the change from fp32, * = p < 0.05" : "");
        md_table_header(md, "bias type", "n", input, -1);
        for (int c = 0; c <= nc; c++) {
            crows_row_label(&a, cells, c, md);
            for (int v = 0; v < nv; v++) {
                const CrowsStats *s = &cells[v * (nc + 1) + c];
                const CrowsStats *base = b >= 0 ? &cells[b * (nc + 1) + c] : NULL;
                if (m == 0) {
                    md_cell(md, 100.0 * s->sum.pct_stereotype,
                            base ? 100.0 * base->sum.pct_stereotype : NAN, s->p_sum, v == b, 1);
                } else if (m == 1) {
                    md_cell(md, s->sum.likelihood_diff, base ? base->sum.likelihood_diff : NAN, NAN,
                            v == b, 3);
                } else {
                    md_cell(md, 100.0 * s->per_token.pct_stereotype,
                            base ? 100.0 * base->per_token.pct_stereotype : NAN, s->p_per_token,
                            v == b, 1);
                }
            }
            sb_append(md, "\n");
        }
        sb_append(md, "\n");
    }
    if (rc == 0) {
        crows_interval_flip_tables(input, &a, cells, md);
    }
    free(cells);
    aligned_items_free(&a);
    return rc;
}
