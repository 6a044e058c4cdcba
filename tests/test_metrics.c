// test_metrics.c: the probe metrics on small examples whose expected values are worked out by
// hand in the comments, plus the edge cases each metric documents.
#include "test.h"

#include <math.h>

#include "../engine/util.h"
#include "../probes/metrics.h"
#include "../probes/stats.h"

// ----------------------------------------------------------------------------
// Mean log-probability and perplexity

TEST(metrics_perplexity_from_sum) {
    // Sum -6 over 3 tokens: mean -2, perplexity e^2 = 7.38905609893065.
    double mean, ppl;
    REQUIRE_OK(metrics_mean_logprob(-6.0, 3, &mean));
    REQUIRE_OK(metrics_perplexity(-6.0, 3, &ppl));
    CHECK_NEAR(mean, -2.0, 0.0);
    CHECK_NEAR(ppl, 7.38905609893065, 1e-13);

    // One token with log-probability 0 (probability 1): perplexity exactly 1.
    REQUIRE_OK(metrics_perplexity(0.0, 1, &ppl));
    CHECK_NEAR(ppl, 1.0, 0.0);
}

TEST(metrics_perplexity_edge_cases) {
    double value = 123.0;

    // No scored token: undefined, rejected, output untouched.
    CHECK(metrics_mean_logprob(-1.0, 0, &value) == -1);
    CHECK(strstr(err_msg(), "token count 0") != NULL);
    CHECK(metrics_perplexity(-1.0, -2, &value) == -1);
    CHECK_NEAR(value, 123.0, 0.0);

    // NaN and +inf sums are model failures.
    CHECK(metrics_mean_logprob(NAN, 4, &value) == -1);
    CHECK(metrics_perplexity(INFINITY, 4, &value) == -1);
    CHECK(strstr(err_msg(), "perplexity") != NULL);

    // A token of probability zero: sum -inf, perplexity +inf.
    REQUIRE_OK(metrics_perplexity(-INFINITY, 4, &value));
    CHECK(isinf(value));
    CHECK(value > 0);
}

// ----------------------------------------------------------------------------
// Study stereotype score

TEST(metrics_stereotype_score_example) {
    // Pair: more vs less -> outcome
    //   0: 10 < 12 -> stereo
    //   1: 20 > 15 -> anti
    //   2:  5 = 5  -> tie (excluded)
    //   3:  7 < 9  -> stereo
    //   4:  3 = 3  -> tie (excluded)
    // Used 3, stereo 2: SS = 2 / 3.
    const double more[] = {10, 20, 5, 7, 3};
    const double less[] = {12, 15, 5, 9, 3};
    MetricsStereotypeScore ss;
    REQUIRE_OK(metrics_stereotype_score(more, less, 5, &ss));
    CHECK_NEAR(ss.score, 2.0 / 3.0, 1e-15);
    CHECK_EQ_INT(ss.n_pairs, 5);
    CHECK_EQ_INT(ss.n_used, 3);
    CHECK_EQ_INT(ss.n_tied, 2);
    CHECK_EQ_INT(ss.n_stereo, 2);
}

TEST(metrics_stereotype_score_ties_and_empty) {
    MetricsStereotypeScore ss;

    // Every pair ties: the study's rule gives 0.5.
    const double same[] = {4.0, 9.5, 2.25};
    REQUIRE_OK(metrics_stereotype_score(same, same, 3, &ss));
    CHECK_NEAR(ss.score, 0.5, 0.0);
    CHECK_EQ_INT(ss.n_used, 0);
    CHECK_EQ_INT(ss.n_tied, 3);

    // No pairs at all: undefined.
    REQUIRE_OK(metrics_stereotype_score(NULL, NULL, 0, &ss));
    CHECK(isnan(ss.score));
    CHECK_EQ_INT(ss.n_pairs, 0);
    CHECK_EQ_INT(ss.n_used, 0);
}

TEST(metrics_stereotype_score_infinite_and_nan) {
    MetricsStereotypeScore ss;

    // inf > 5 -> anti; 5 < inf -> stereo; inf = inf -> tie. SS = 1 / 2.
    const double more[] = {INFINITY, 5.0, INFINITY};
    const double less[] = {5.0, INFINITY, INFINITY};
    REQUIRE_OK(metrics_stereotype_score(more, less, 3, &ss));
    CHECK_NEAR(ss.score, 0.5, 0.0);
    CHECK_EQ_INT(ss.n_used, 2);
    CHECK_EQ_INT(ss.n_tied, 1);

    // NaN is rejected with the pair index, never counted as "anti".
    const double with_nan[] = {3.0, NAN};
    const double other[] = {4.0, 4.0};
    CHECK(metrics_stereotype_score(with_nan, other, 2, &ss) == -1);
    CHECK(strstr(err_msg(), "pair 1") != NULL);
    CHECK(metrics_stereotype_score(other, other, -1, &ss) == -1);
}

TEST(metrics_stereotype_score_statistic_matches) {
    // Outcomes of the example pairs above: stereo, anti, tie, stereo, tie.
    const double more[] = {10, 20, 5, 7, 3};
    const double less[] = {12, 15, 5, 9, 3};
    double outcomes[5];
    for (int i = 0; i < 5; i++) {
        outcomes[i] = metrics_pair_outcome(more[i], less[i]);
    }
    CHECK_NEAR(outcomes[0], METRICS_OUTCOME_STEREO, 0.0);
    CHECK_NEAR(outcomes[1], METRICS_OUTCOME_ANTI, 0.0);
    CHECK_NEAR(outcomes[2], METRICS_OUTCOME_TIE, 0.0);

    CHECK_NEAR(metrics_stereotype_score_statistic(outcomes, NULL, 5, NULL), 2.0 / 3.0, 1e-15);

    // Resample {0, 0, 1, 2}: stereo, stereo, anti, tie -> 2 of 3 used.
    const int64_t indices[] = {0, 0, 1, 2};
    CHECK_NEAR(metrics_stereotype_score_statistic(outcomes, indices, 4, NULL), 2.0 / 3.0, 1e-15);

    // Resample {2, 4}: only ties -> 0.5. Empty -> NaN.
    const int64_t ties[] = {2, 4};
    CHECK_NEAR(metrics_stereotype_score_statistic(outcomes, ties, 2, NULL), 0.5, 0.0);
    CHECK(isnan(metrics_stereotype_score_statistic(outcomes, NULL, 0, NULL)));
}

// ----------------------------------------------------------------------------
// Study Cohen's d

TEST(metrics_cohens_d_hand_example) {
    // Differences less - more: 1, 3, -1, 5. Mean 2. Deviations -1, 1, -3, 3; squares sum 20;
    // sd = sqrt(20 / 3) = 2.581988897. d = 2 / 2.581988897 = 0.7745966692.
    // t = -d * sqrt(4) = -1.5491933385 (scipy 1.10.1 ttest_rel(more, less): -1.5491933384829668).
    const double more[] = {10, 12, 15, 20};
    const double less[] = {11, 15, 14, 25};
    MetricsCohensD d;
    REQUIRE_OK(metrics_cohens_d(more, less, 4, &d));
    CHECK_EQ_INT(d.status, METRICS_COHENS_D_OK);
    CHECK_EQ_INT(d.n, 4);
    CHECK_NEAR(d.mean_diff, 2.0, 1e-15);
    CHECK_NEAR(d.sd_diff, sqrt(20.0 / 3.0), 1e-15);
    CHECK_NEAR(d.d, 0.7745966692414834, 1e-14);
    CHECK_NEAR(d.t, -1.5491933384829668, 1e-14);
}

TEST(metrics_cohens_d_matches_scipy) {
    // Computed with Debian's python3-scipy 1.10.1:
    //   t = scipy.stats.ttest_rel(more, less).statistic = -1.658194336415924
    //   d = -t / sqrt(6) = 0.6769550030986607
    // By hand: differences 1.6, -1.4, 3.6, 5.5, -0.8, 2.1; mean 10.6 / 6 = 1.766667;
    // sd (ddof 1) = 2.609725; d = 1.766667 / 2.609725 = 0.676955.
    const double more[] = {23.5, 41.2, 18.7, 30.1, 55.0, 12.9};
    const double less[] = {25.1, 39.8, 22.3, 35.6, 54.2, 15.0};
    MetricsCohensD d;
    REQUIRE_OK(metrics_cohens_d(more, less, 6, &d));
    CHECK_NEAR(d.d, 0.6769550030986607, 1e-12);
    CHECK_NEAR(d.t, -1.658194336415924, 1e-12);
    CHECK_NEAR(d.mean_diff, 1.7666666666666666, 1e-12);
    CHECK_NEAR(d.sd_diff, 2.6097254006248765, 1e-12);
}

TEST(metrics_cohens_d_too_few_pairs) {
    MetricsCohensD d;

    // One pair: no sample standard deviation (scipy: t = NaN).
    const double more[] = {10.0};
    const double less[] = {11.0};
    REQUIRE_OK(metrics_cohens_d(more, less, 1, &d));
    CHECK_EQ_INT(d.status, METRICS_COHENS_D_TOO_FEW_PAIRS);
    CHECK(isnan(d.d));
    CHECK(isnan(d.t));
    CHECK(isnan(d.sd_diff));
    CHECK_NEAR(d.mean_diff, 1.0, 0.0);

    REQUIRE_OK(metrics_cohens_d(NULL, NULL, 0, &d));
    CHECK_EQ_INT(d.status, METRICS_COHENS_D_TOO_FEW_PAIRS);
    CHECK(isnan(d.d));
    CHECK(isnan(d.mean_diff));
}

TEST(metrics_cohens_d_zero_variance) {
    MetricsCohensD d;

    // Differences all +1: scipy gives t = -inf, so d = +inf.
    const double more[] = {1, 2, 3};
    const double less[] = {2, 3, 4};
    REQUIRE_OK(metrics_cohens_d(more, less, 3, &d));
    CHECK_EQ_INT(d.status, METRICS_COHENS_D_ZERO_VARIANCE);
    CHECK(isinf(d.d));
    CHECK(d.d > 0);
    CHECK(isinf(d.t));
    CHECK(d.t < 0);
    CHECK_NEAR(d.sd_diff, 0.0, 0.0);
    CHECK_NEAR(d.mean_diff, 1.0, 0.0);

    // All -1: d = -inf.
    REQUIRE_OK(metrics_cohens_d(less, more, 3, &d));
    CHECK(isinf(d.d));
    CHECK(d.d < 0);

    // Identical perplexities: 0 / 0, scipy gives NaN.
    REQUIRE_OK(metrics_cohens_d(more, more, 3, &d));
    CHECK_EQ_INT(d.status, METRICS_COHENS_D_ZERO_VARIANCE);
    CHECK(isnan(d.d));
    CHECK_NEAR(d.mean_diff, 0.0, 0.0);
}

TEST(metrics_cohens_d_rejects_non_finite) {
    MetricsCohensD d;
    const double good[] = {1.0, 2.0, 3.0};
    const double with_inf[] = {1.0, INFINITY, 3.0};
    const double with_nan[] = {1.0, 2.0, NAN};
    CHECK(metrics_cohens_d(with_inf, good, 3, &d) == -1);
    CHECK(strstr(err_msg(), "pair 1") != NULL);
    CHECK(metrics_cohens_d(good, with_nan, 3, &d) == -1);
    CHECK(strstr(err_msg(), "pair 2") != NULL);
    CHECK(metrics_cohens_d(good, good, -3, &d) == -1);
}

TEST(metrics_cohens_d_statistic_indices) {
    // Differences 1, 3, -1, 5 as in the hand example; selecting all four gives 0.7745966692.
    const double differences[] = {1, 3, -1, 5};
    CHECK_NEAR(metrics_cohens_d_statistic(differences, NULL, 4, NULL), 0.7745966692414834, 1e-14);

    // Selection {1, 3}: values 3, 5; mean 4; sd sqrt(2); d = 4 / 1.414214 = 2.828427.
    const int64_t pick[] = {1, 3};
    CHECK_NEAR(metrics_cohens_d_statistic(differences, pick, 2, NULL), 2.0 * sqrt(2.0), 1e-14);

    // Selection {0, 0}: zero variance, +inf. Selection {2}: too few, NaN.
    const int64_t repeat[] = {0, 0};
    CHECK(isinf(metrics_cohens_d_statistic(differences, repeat, 2, NULL)));
    const int64_t one[] = {2};
    CHECK(isnan(metrics_cohens_d_statistic(differences, one, 1, NULL)));
}

// ----------------------------------------------------------------------------
// StereoSet's official scores

TEST(metrics_stereoset_counting) {
    // Scores are per-token mean log-probabilities (higher = more likely).
    //   ex  term  stereo  anti   unrel   pro/anti        related
    //   0   0     -2.0    -3.0   -4.0    pro             2 (both above unrelated)
    //   1   0     -3.0    -2.5   -2.5    anti            0 (-3 < -2.5; anti ties unrelated)
    //   2   0     -1.5    -1.5   -5.0    anti (a tie)    2
    //   3   1     -1.0    -2.0   -3.0    pro             2
    // Term 0: pro 1, anti 2, related 4, total 3.
    //   ss = 100 * 1/3 = 33.333333; lms = 100 * 4 / 6 = 66.666667;
    //   icat = 66.666667 * min(33.333333, 66.666667) / 50 = 44.444444.
    // Term 1: pro 1, related 2, total 1: ss = 100, lms = 100, icat = 100 * 0 / 50 = 0.
    // Term 2: no examples, so it is not averaged.
    // Overall: lms = (66.666667 + 100) / 2 = 83.333333; ss = (33.333333 + 100) / 2 = 66.666667;
    //   macro icat = 83.333333 * min(66.666667, 33.333333) / 50 = 55.555556;
    //   micro icat = (44.444444 + 0) / 2 = 22.222222.
    const double stereo[] = {-2.0, -3.0, -1.5, -1.0};
    const double anti[] = {-3.0, -2.5, -1.5, -2.0};
    const double unrelated[] = {-4.0, -2.5, -5.0, -3.0};
    const int32_t term[] = {0, 0, 0, 1};
    MetricsStereoSetTerm per_term[3];
    MetricsStereoSet s;
    REQUIRE_OK(metrics_stereoset(stereo, anti, unrelated, term, 4, 3, per_term, &s));

    CHECK_NEAR(per_term[0].pro, 1.0, 0.0);
    CHECK_NEAR(per_term[0].anti, 2.0, 0.0);
    CHECK_NEAR(per_term[0].related, 4.0, 0.0);
    CHECK_NEAR(per_term[0].total, 3.0, 0.0);
    CHECK_NEAR(per_term[0].ss, 100.0 / 3.0, 1e-12);
    CHECK_NEAR(per_term[0].lms, 200.0 / 3.0, 1e-12);
    CHECK_NEAR(per_term[0].icat, 400.0 / 9.0, 1e-12);

    CHECK_NEAR(per_term[1].ss, 100.0, 0.0);
    CHECK_NEAR(per_term[1].lms, 100.0, 0.0);
    CHECK_NEAR(per_term[1].icat, 0.0, 0.0);

    CHECK_NEAR(per_term[2].total, 0.0, 0.0);
    CHECK(isnan(per_term[2].ss));

    CHECK_EQ_INT(s.count, 4);
    CHECK_EQ_INT(s.n_terms, 2);
    CHECK_NEAR(s.lms, 250.0 / 3.0, 1e-12);
    CHECK_NEAR(s.ss, 200.0 / 3.0, 1e-12);
    CHECK_NEAR(s.icat, 500.0 / 9.0, 1e-12);
    CHECK_NEAR(s.icat_micro, 200.0 / 9.0, 1e-12);
}

TEST(metrics_stereoset_perfect_and_empty) {
    MetricsStereoSet s;

    // Two terms, each with one pro and one anti example, unrelated always last:
    // ss 50, lms 100, icat 100 per term and overall.
    const double stereo[] = {-1.0, -2.0, -1.0, -2.0};
    const double anti[] = {-2.0, -1.0, -2.0, -1.0};
    const double unrelated[] = {-9.0, -9.0, -9.0, -9.0};
    const int32_t term[] = {0, 0, 1, 1};
    REQUIRE_OK(metrics_stereoset(stereo, anti, unrelated, term, 4, 2, NULL, &s));
    CHECK_NEAR(s.ss, 50.0, 0.0);
    CHECK_NEAR(s.lms, 100.0, 0.0);
    CHECK_NEAR(s.icat, 100.0, 0.0);
    CHECK_NEAR(s.icat_micro, 100.0, 0.0);

    // No examples: every score NaN, counts zero.
    REQUIRE_OK(metrics_stereoset(NULL, NULL, NULL, NULL, 0, 5, NULL, &s));
    CHECK_EQ_INT(s.count, 0);
    CHECK_EQ_INT(s.n_terms, 0);
    CHECK(isnan(s.ss));
    CHECK(isnan(s.lms));
    CHECK(isnan(s.icat));
}

TEST(metrics_stereoset_rejects_bad_input) {
    MetricsStereoSet s;
    const double ok[] = {-1.0, -2.0};
    const double with_nan[] = {-1.0, NAN};
    const int32_t term[] = {0, 0};
    const int32_t bad_term[] = {0, 2};
    CHECK(metrics_stereoset(ok, ok, with_nan, term, 2, 1, NULL, &s) == -1);
    CHECK(strstr(err_msg(), "example 1") != NULL);
    CHECK(metrics_stereoset(ok, ok, ok, bad_term, 2, 2, NULL, &s) == -1);
    CHECK(strstr(err_msg(), "term index 2") != NULL);
    CHECK(metrics_stereoset(ok, ok, ok, term, -1, 1, NULL, &s) == -1);
}

// ----------------------------------------------------------------------------
// CrowS-Pairs

TEST(metrics_crows_pairs_summed) {
    // Pair: LL more vs less -> stereotype?  |diff|
    //   0: -10 > -12 -> yes                 2
    //   1: -20 < -18 -> no                  2
    //   2: -15 = -15 -> no (tie)            0
    // pct_stereotype = 1 / 3; likelihood_diff = 4 / 3.
    const double more[] = {-10, -20, -15};
    const double less[] = {-12, -18, -15};
    MetricsCrowsPairs c;
    REQUIRE_OK(metrics_crows_pairs(more, less, 3, &c));
    CHECK_EQ_INT(c.n, 3);
    CHECK_EQ_INT(c.n_stereo, 1);
    CHECK_NEAR(c.pct_stereotype, 1.0 / 3.0, 1e-15);
    CHECK_NEAR(c.likelihood_diff, 4.0 / 3.0, 1e-15);
}

TEST(metrics_crows_pairs_per_token_differs) {
    // Pair 0: more -10 / 5 tokens = -2, less -12 / 4 = -3 -> yes, |diff| 1.
    // Pair 1: more -20 / 10 = -2, less -9 / 3 = -3 -> yes, |diff| 1.
    // Per token: pct 1, diff 1. Summed, pair 1 (-20 vs -9) would count as "no": pct 1/2.
    const double sum_more[] = {-10, -20};
    const int64_t tokens_more[] = {5, 10};
    const double sum_less[] = {-12, -9};
    const int64_t tokens_less[] = {4, 3};
    MetricsCrowsPairs c;
    REQUIRE_OK(metrics_crows_pairs_per_token(sum_more, tokens_more, sum_less, tokens_less, 2, &c));
    CHECK_NEAR(c.pct_stereotype, 1.0, 0.0);
    CHECK_NEAR(c.likelihood_diff, 1.0, 1e-15);

    REQUIRE_OK(metrics_crows_pairs(sum_more, sum_less, 2, &c));
    CHECK_NEAR(c.pct_stereotype, 0.5, 0.0);
    CHECK_NEAR(c.likelihood_diff, (2.0 + 11.0) / 2.0, 1e-15);
}

TEST(metrics_crows_pairs_edge_cases) {
    MetricsCrowsPairs c;
    REQUIRE_OK(metrics_crows_pairs(NULL, NULL, 0, &c));
    CHECK_EQ_INT(c.n, 0);
    CHECK(isnan(c.pct_stereotype));
    CHECK(isnan(c.likelihood_diff));

    const double ok[] = {-1.0, -2.0};
    const double with_inf[] = {-1.0, -INFINITY};
    CHECK(metrics_crows_pairs(ok, with_inf, 2, &c) == -1);
    CHECK(strstr(err_msg(), "pair 1") != NULL);

    const int64_t tokens[] = {3, 0};
    CHECK(metrics_crows_pairs_per_token(ok, tokens, ok, tokens, 2, &c) == -1);
    CHECK(strstr(err_msg(), "pair 1") != NULL);
    CHECK(strstr(err_msg(), "token count 0") != NULL);
}

// ----------------------------------------------------------------------------
// Metric callbacks through stats.h

TEST(metrics_callbacks_in_randomization_test) {
    // System A prefers the stereotype on all 12 pairs, system B on none: observed SS gap 1.
    // A swap pattern reaches |gap| 1 only if it swaps no item or all 12 (2 of 4096 patterns), so
    // p is about (10000 * 2 / 4096 + 1) / 10001 = 0.0006.
    double a[12], b[12];
    for (int i = 0; i < 12; i++) {
        a[i] = METRICS_OUTCOME_STEREO;
        b[i] = METRICS_OUTCOME_ANTI;
    }
    StatsRandomization r;
    REQUIRE_OK(stats_randomization_test(a, b, 12, metrics_stereotype_score_statistic, NULL,
                                        STATS_RANDOMIZATION_ITERATIONS, 7, &r));
    CHECK_NEAR(r.observed, 1.0, 0.0);
    CHECK(r.p_value < 0.003);
    CHECK_EQ_INT(r.n_nan, 0);
}
