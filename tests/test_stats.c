// test_stats.c: PRNG reference outputs, bootstrap percentile rule, Wilson interval, randomization
// test and flip rates, on examples worked out by hand in the comments.
#include "test.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "../engine/util.h"
#include "../probes/metrics.h"
#include "../probes/stats.h"

// ----------------------------------------------------------------------------
// PRNG

TEST(stats_splitmix64_reference) {
    // splitmix64 from state 0; the first outputs of the published reference generator.
    uint64_t state = 0;
    CHECK(stats_splitmix64(&state) == 0xe220a8397b1dcdafu);
    CHECK(stats_splitmix64(&state) == 0x6e789e6aa1b965f4u);
    CHECK(stats_splitmix64(&state) == 0x06c45d188009454fu);
}

TEST(stats_xoshiro_reference) {
    // From state {1, 2, 3, 4}:
    // output 1 = rotl(2 * 5, 7) * 9 = 1280 * 9 = 11520. The update then gives
    //   s2 = 3 ^ 1 = 2, s3 = 4 ^ 2 = 6, s1 = 2 ^ 2 = 0, s0 = 1 ^ 6 = 7, s2 ^= 2 << 17 = 262146,
    //   s3 = rotl(6, 45).
    // output 2 = rotl(0 * 5, 7) * 9 = 0.
    // Outputs 3 and 4 from an independent Python implementation: 1509978240,
    // 1215971899390074240.
    StatsRng rng = {.state = {1, 2, 3, 4}};
    CHECK(stats_rng_next(&rng) == 11520u);
    CHECK(stats_rng_next(&rng) == 0u);
    CHECK(stats_rng_next(&rng) == 1509978240u);
    CHECK(stats_rng_next(&rng) == 1215971899390074240u);
}

TEST(stats_rng_seeded_sequence) {
    // Seed 42: state = the first four splitmix64 outputs from 42; xoshiro256** outputs computed
    // with the same independent Python implementation.
    StatsRng rng;
    stats_rng_seed(&rng, 42);
    CHECK(stats_rng_next(&rng) == 0x15780b2e0c2ec716u);
    CHECK(stats_rng_next(&rng) == 0x6104d9866d113a7eu);
    CHECK(stats_rng_next(&rng) == 0xae17533239e499a1u);

    // Same seed, same sequence; another seed, another sequence.
    StatsRng again, other;
    stats_rng_seed(&again, 42);
    stats_rng_seed(&other, 43);
    CHECK(stats_rng_next(&again) == 0x15780b2e0c2ec716u);
    CHECK(stats_rng_next(&other) != 0x15780b2e0c2ec716u);
}

TEST(stats_rng_below_range_and_balance) {
    StatsRng rng;
    stats_rng_seed(&rng, 1);

    // bound 1 leaves one possible value.
    for (int i = 0; i < 100; i++) {
        CHECK(stats_rng_below(&rng, 1) == 0);
    }

    // 60,000 draws over 6 values: each count is about 10,000 with sd sqrt(60000 * 1/6 * 5/6) = 91,
    // so +-500 is more than five standard deviations.
    int64_t counts[6] = {0};
    for (int i = 0; i < 60000; i++) {
        uint64_t r = stats_rng_below(&rng, 6);
        REQUIRE(r < 6);
        counts[r]++;
    }
    for (int v = 0; v < 6; v++) {
        CHECK_MSG(llabs(counts[v] - 10000) < 500, "value %d drawn %lld times", v,
                  (long long)counts[v]);
    }

    // bound 2^63 + 1 rejects almost half of all outputs; results stay below the bound.
    uint64_t big = (UINT64_C(1) << 63) + 1;
    for (int i = 0; i < 1000; i++) {
        CHECK(stats_rng_below(&rng, big) < big);
    }
}

TEST(stats_rng_uniform_range) {
    StatsRng rng;
    stats_rng_seed(&rng, 3);
    double sum = 0.0;
    for (int i = 0; i < 100000; i++) {
        double u = stats_rng_uniform(&rng);
        REQUIRE(u >= 0.0);
        REQUIRE(u < 1.0);
        sum += u;
    }
    // Mean of 100,000 uniforms: 0.5 with sd 0.2887 / sqrt(100000) = 0.0009.
    CHECK_NEAR(sum / 100000.0, 0.5, 0.005);
}

// ----------------------------------------------------------------------------
// Mean statistic

TEST(stats_mean_statistic_indices) {
    const double values[] = {1.0, 2.0, 6.0};
    CHECK_NEAR(stats_mean_statistic(values, NULL, 3, NULL), 3.0, 0.0);
    // {2, 2, 0} -> (6 + 6 + 1) / 3 = 13 / 3.
    const int64_t indices[] = {2, 2, 0};
    CHECK_NEAR(stats_mean_statistic(values, indices, 3, NULL), 13.0 / 3.0, 1e-15);
    CHECK(isnan(stats_mean_statistic(values, NULL, 0, NULL)));
}

// ----------------------------------------------------------------------------
// Bootstrap

// Returns 99, 98, ..., 0 on successive resamples and -1 for the original data, so that the
// replicates are known exactly and arrive unsorted.
static double countdown_statistic(const double *values, const int64_t *indices, int64_t n,
                                  void *ctx) {
    (void)values;
    (void)n;
    int *calls = ctx;
    if (!indices) {
        return -1.0;
    }
    return 99.0 - (double)(*calls)++;
}

TEST(stats_bootstrap_percentile_rule) {
    // Replicates are 0..99 once sorted. At level 0.9 the quantiles are 0.05 and 0.95:
    //   lower: h = 99 * 0.05 = 4.95, between order statistics 4 and 5 -> 4 + 0.95 * 1 = 4.95;
    //   upper: h = 99 * 0.95 = 94.05 -> 94 + 0.05 * 1 = 94.05.
    const double values[] = {0.0, 0.0};
    int calls = 0;
    StatsInterval ci;
    int64_t n_nan = -1;
    REQUIRE_OK(
        stats_bootstrap_ci(values, 2, countdown_statistic, &calls, 100, 0.9, 1, &ci, &n_nan));
    CHECK_EQ_INT(calls, 100);
    CHECK_EQ_INT(n_nan, 0);
    CHECK_NEAR(ci.estimate, -1.0, 0.0);
    CHECK_NEAR(ci.level, 0.9, 0.0);
    CHECK_NEAR(ci.lower, 4.95, 1e-12);
    CHECK_NEAR(ci.upper, 94.05, 1e-12);
}

TEST(stats_bootstrap_two_point_mean) {
    // Values {0, 1}: a resample's mean is 0, 0.5 or 1 with probabilities 1/4, 1/2, 1/4. With
    // 10,000 resamples about 2,500 are 0 and 2,500 are 1 (sd 43), so the 0.025 and 0.975
    // quantiles (positions 250 and 9749) are 0 and 1, and the 0.3 and 0.7 quantiles are 0.5.
    const double values[] = {0.0, 1.0};
    StatsInterval ci;
    REQUIRE_OK(stats_bootstrap_ci(values, 2, stats_mean_statistic, NULL, STATS_DEFAULT_RESAMPLES,
                                  STATS_DEFAULT_LEVEL, 11, &ci, NULL));
    CHECK_NEAR(ci.estimate, 0.5, 0.0);
    CHECK_NEAR(ci.lower, 0.0, 0.0);
    CHECK_NEAR(ci.upper, 1.0, 0.0);

    REQUIRE_OK(stats_bootstrap_ci(values, 2, stats_mean_statistic, NULL, STATS_DEFAULT_RESAMPLES,
                                  0.4, 11, &ci, NULL));
    CHECK_NEAR(ci.lower, 0.5, 0.0);
    CHECK_NEAR(ci.upper, 0.5, 0.0);
}

TEST(stats_bootstrap_constant_and_single) {
    StatsInterval ci;

    // Constant data: every resample has the same mean.
    const double constant[] = {2.5, 2.5, 2.5, 2.5};
    REQUIRE_OK(stats_bootstrap_ci(constant, 4, stats_mean_statistic, NULL, 500, 0.95, 5, &ci,
                                  NULL));
    CHECK_NEAR(ci.lower, 2.5, 0.0);
    CHECK_NEAR(ci.upper, 2.5, 0.0);

    // One item: every resample is that item.
    const double single[] = {7.0};
    REQUIRE_OK(stats_bootstrap_ci(single, 1, stats_mean_statistic, NULL, 500, 0.95, 5, &ci, NULL));
    CHECK_NEAR(ci.estimate, 7.0, 0.0);
    CHECK_NEAR(ci.lower, 7.0, 0.0);
    CHECK_NEAR(ci.upper, 7.0, 0.0);
}

TEST(stats_bootstrap_mean_width_and_determinism) {
    // 200 uniform values: the mean's standard error is about 0.2887 / sqrt(200) = 0.0204, so a
    // 95% interval is about 2 * 1.96 * 0.0204 = 0.080 wide.
    double values[200];
    StatsRng rng;
    stats_rng_seed(&rng, 2024);
    for (int i = 0; i < 200; i++) {
        values[i] = stats_rng_uniform(&rng);
    }

    StatsInterval first, second, other_seed;
    REQUIRE_OK(stats_bootstrap_ci(values, 200, stats_mean_statistic, NULL, 2000, 0.95, 9, &first,
                                  NULL));
    REQUIRE_OK(stats_bootstrap_ci(values, 200, stats_mean_statistic, NULL, 2000, 0.95, 9, &second,
                                  NULL));
    REQUIRE_OK(stats_bootstrap_ci(values, 200, stats_mean_statistic, NULL, 2000, 0.95, 10,
                                  &other_seed, NULL));

    CHECK(first.lower < first.estimate);
    CHECK(first.estimate < first.upper);
    double width = first.upper - first.lower;
    CHECK_MSG(width > 0.06 && width < 0.10, "interval width %g, expected about 0.080", width);

    // Same seed: bitwise the same interval. Another seed: other resamples.
    CHECK(first.lower == second.lower);
    CHECK(first.upper == second.upper);
    CHECK(first.lower != other_seed.lower || first.upper != other_seed.upper);
}

TEST(stats_bootstrap_undefined_replicates) {
    // Cohen's d on differences {0, 0, 1}: a resample of three zeros (probability 8/27) has
    // d = 0 / 0 = NaN, so the interval is undefined and the NaN replicates are counted.
    const double differences[] = {0.0, 0.0, 1.0};
    StatsInterval ci;
    int64_t n_nan = 0;
    REQUIRE_OK(stats_bootstrap_ci(differences, 3, metrics_cohens_d_statistic, NULL, 1000, 0.95, 4,
                                  &ci, &n_nan));
    CHECK(n_nan > 200);
    CHECK(n_nan < 400);
    CHECK(isnan(ci.lower));
    CHECK(isnan(ci.upper));
    // d on {0, 0, 1}: mean 1/3, sd sqrt((1/9 + 1/9 + 4/9) / 2) = sqrt(1/3); d = 1/sqrt(3).
    CHECK_NEAR(ci.estimate, 1.0 / sqrt(3.0), 1e-15);
}

// Returns table[k] on the k-th resample and 0 for the original data.
typedef struct {
    const double *table;
    int calls;
} TableStatistic;

static double table_statistic(const double *values, const int64_t *indices, int64_t n,
                              void *ctx) {
    (void)values;
    (void)n;
    TableStatistic *t = ctx;
    return indices ? t->table[t->calls++] : 0.0;
}

TEST(stats_bootstrap_infinite_replicates) {
    // 65 replicates, sorted: 8 x -inf, then 0, 1, ..., 48, then 8 x +inf. The position of
    // quantile p is h = 64 p; the levels below make every p a binary fraction, so h is exact.
    double table[65];
    for (int k = 0; k < 65; k++) {
        table[k] = (double)(k - 8);
        if (k < 8) {
            table[k] = -INFINITY;
        } else if (k > 56) {
            table[k] = INFINITY;
        }
    }
    StatsInterval ci;
    TableStatistic t = {.table = table};

    // Level 0.875: h = 4 and 60, inside the runs of infinities.
    REQUIRE_OK(stats_bootstrap_ci(table, 1, table_statistic, &t, 65, 0.875, 1, &ci, NULL));
    CHECK(ci.lower == -INFINITY);
    CHECK(ci.upper == INFINITY);

    // Level 0.75: h = 8 and 56 fall exactly on the order statistics 0 and 48, and 48 is next to
    // +inf.
    t.calls = 0;
    REQUIRE_OK(stats_bootstrap_ci(table, 1, table_statistic, &t, 65, 0.75, 1, &ci, NULL));
    CHECK_NEAR(ci.lower, 0.0, 0.0);
    CHECK_NEAR(ci.upper, 48.0, 0.0);

    // Level 0.765625: h = 7.5 and 56.5, halfway between an infinity and a finite value.
    t.calls = 0;
    REQUIRE_OK(stats_bootstrap_ci(table, 1, table_statistic, &t, 65, 0.765625, 1, &ci, NULL));
    CHECK(ci.lower == -INFINITY);
    CHECK(ci.upper == INFINITY);
}

TEST(stats_bootstrap_cohens_d_unbounded_side) {
    // Cohen's d on three negative differences: a resample that repeats one pair three times
    // (probability 3/27 = 11%) has zero variance and d = -inf, more than the 2.5% below the lower
    // bound. So the lower bound is -inf and the upper bound finite. No resample has d = +inf or
    // NaN, because every difference is negative.
    const double differences[] = {-1.0, -2.0, -4.0};
    StatsInterval ci;
    int64_t n_nan = -1;
    REQUIRE_OK(stats_bootstrap_ci(differences, 3, metrics_cohens_d_statistic, NULL,
                                  STATS_DEFAULT_RESAMPLES, STATS_DEFAULT_LEVEL, 7, &ci, &n_nan));
    CHECK_EQ_INT(n_nan, 0);
    CHECK(ci.lower == -INFINITY);
    CHECK_MSG(isfinite(ci.upper) && ci.upper < 0.0, "upper bound %g", ci.upper);
    // d on {-1, -2, -4}: mean -7/3, sd sqrt(((4/3)^2 + (1/3)^2 + (5/3)^2) / 2) = sqrt(7/3).
    CHECK_NEAR(ci.estimate, -(7.0 / 3.0) / sqrt(7.0 / 3.0), 1e-12);
}

TEST(stats_bootstrap_rejects_bad_arguments) {
    const double values[] = {1.0, 2.0};
    StatsInterval ci;
    CHECK(stats_bootstrap_ci(values, 0, stats_mean_statistic, NULL, 100, 0.95, 1, &ci, NULL) == -1);
    CHECK(stats_bootstrap_ci(values, 2, stats_mean_statistic, NULL, 0, 0.95, 1, &ci, NULL) == -1);
    CHECK(stats_bootstrap_ci(values, 2, stats_mean_statistic, NULL, 100, 1.0, 1, &ci, NULL) == -1);
    CHECK(strstr(err_msg(), "not in (0, 1)") != NULL);
    CHECK(stats_bootstrap_ci(values, 2, stats_mean_statistic, NULL, 100, NAN, 1, &ci, NULL) == -1);
}

// ----------------------------------------------------------------------------
// Normal quantile and Wilson interval

TEST(stats_normal_quantile_values) {
    // scipy.stats.norm.ppf(0.975) = 1.959963984540054.
    CHECK_NEAR(stats_normal_quantile(0.975), 1.959963984540054, 1e-14);
    CHECK_NEAR(stats_normal_quantile(0.025), -1.959963984540054, 1e-14);
    CHECK_NEAR(stats_normal_quantile(0.5), 0.0, 1e-15);
    // Phi(1) = 0.8413447460685429.
    CHECK_NEAR(stats_normal_quantile(0.8413447460685429), 1.0, 1e-13);
    CHECK(isnan(stats_normal_quantile(0.0)));
    CHECK(isnan(stats_normal_quantile(1.0)));
}

TEST(stats_wilson_interval_values) {
    StatsInterval ci;

    // 8 of 10 at 95%: z = 1.959964, z^2 = 3.841459, z^2 / n = 0.3841459.
    //   center = (0.8 + 0.1920729) / 1.3841459 = 0.716740
    //   half   = 1.959964 / 1.3841459 * sqrt(0.8 * 0.2 / 10 + 3.841459 / 400)
    //          = 1.416012 * sqrt(0.0256036) = 0.226578
    //   -> [0.490162, 0.943318]
    REQUIRE_OK(stats_wilson_interval(8, 10, 0.95, &ci));
    CHECK_NEAR(ci.estimate, 0.8, 0.0);
    CHECK_NEAR(ci.lower, 0.4901624715366418, 1e-12);
    CHECK_NEAR(ci.upper, 0.9433178485456248, 1e-12);

    // 0 of 10: center and half width are equal, so lower = 0 and upper = z^2 / (n + z^2)
    // = 3.841459 / 13.841459 = 0.277533.
    REQUIRE_OK(stats_wilson_interval(0, 10, 0.95, &ci));
    CHECK_NEAR(ci.lower, 0.0, 0.0);
    CHECK_NEAR(ci.upper, 0.2775327998628892, 1e-12);

    // 10 of 10 mirrors it.
    REQUIRE_OK(stats_wilson_interval(10, 10, 0.95, &ci));
    CHECK_NEAR(ci.lower, 1.0 - 0.2775327998628892, 1e-12);
    CHECK_NEAR(ci.upper, 1.0, 0.0);
}

TEST(stats_wilson_interval_rejects_bad_arguments) {
    StatsInterval ci;
    CHECK(stats_wilson_interval(0, 0, 0.95, &ci) == -1);
    CHECK(stats_wilson_interval(11, 10, 0.95, &ci) == -1);
    CHECK(strstr(err_msg(), "outside [0, 10]") != NULL);
    CHECK(stats_wilson_interval(-1, 10, 0.95, &ci) == -1);
    CHECK(stats_wilson_interval(5, 10, 0.0, &ci) == -1);
}

// ----------------------------------------------------------------------------
// Randomization test

TEST(stats_randomization_identical_systems) {
    // Observed difference 0; every shuffle gives 0 too, and |0| >= 0, so every iteration is
    // extreme: p = (10000 + 1) / (10000 + 1) = 1.
    const double outcomes[] = {1, 0, 1, 1, 0, 1, 0, 0};
    StatsRandomization r;
    REQUIRE_OK(stats_randomization_test(outcomes, outcomes, 8, stats_mean_statistic, NULL,
                                        STATS_RANDOMIZATION_ITERATIONS, 1, &r));
    CHECK_NEAR(r.observed, 0.0, 0.0);
    CHECK_EQ_INT(r.n_extreme, STATS_RANDOMIZATION_ITERATIONS);
    CHECK_NEAR(r.p_value, 1.0, 0.0);
}

TEST(stats_randomization_different_systems) {
    // 30 items, A all 1 and B all 0: observed 1. Only "swap none" and "swap all" (2 of 2^30
    // patterns) reach |1|, so almost surely no iteration does and p = 1 / 10001.
    double a[30], b[30];
    for (int i = 0; i < 30; i++) {
        a[i] = 1.0;
        b[i] = 0.0;
    }
    StatsRandomization r;
    REQUIRE_OK(stats_randomization_test(a, b, 30, stats_mean_statistic, NULL,
                                        STATS_RANDOMIZATION_ITERATIONS, 1, &r));
    CHECK_NEAR(r.metric_a, 1.0, 0.0);
    CHECK_NEAR(r.metric_b, 0.0, 0.0);
    CHECK_NEAR(r.observed, 1.0, 0.0);
    CHECK(r.p_value < 0.001);
    CHECK_NEAR(r.p_value, (double)(r.n_extreme + 1) / (STATS_RANDOMIZATION_ITERATIONS + 1), 0.0);
}

TEST(stats_randomization_two_items_and_seed) {
    // A = {1, 1}, B = {0, 0}: observed 1. Swapping none or both gives |1| (probability 1/2);
    // swapping one gives 0. So about 5,000 of 10,000 iterations are extreme (sd 50): p near 0.5.
    const double a[] = {1.0, 1.0};
    const double b[] = {0.0, 0.0};
    StatsRandomization first, second, other_seed;
    REQUIRE_OK(stats_randomization_test(a, b, 2, stats_mean_statistic, NULL, 10000, 5, &first));
    REQUIRE_OK(stats_randomization_test(a, b, 2, stats_mean_statistic, NULL, 10000, 5, &second));
    REQUIRE_OK(stats_randomization_test(a, b, 2, stats_mean_statistic, NULL, 10000, 6,
                                        &other_seed));
    CHECK_NEAR(first.p_value, 0.5, 0.03);

    // Fixed seed: the same count and p twice.
    CHECK_EQ_INT(first.n_extreme, second.n_extreme);
    CHECK(first.p_value == second.p_value);
    CHECK(first.n_extreme != other_seed.n_extreme);
}

TEST(stats_randomization_single_item) {
    // One item, A = 1 and B = 0: each iteration's difference is +1 or -1, always extreme: p = 1.
    const double a[] = {1.0};
    const double b[] = {0.0};
    StatsRandomization r;
    REQUIRE_OK(stats_randomization_test(a, b, 1, stats_mean_statistic, NULL, 1000, 3, &r));
    CHECK_EQ_INT(r.n_extreme, 1000);
    CHECK_NEAR(r.p_value, 1.0, 0.0);
}

TEST(stats_randomization_rejects_bad_arguments) {
    const double a[] = {1.0, 2.0};
    StatsRandomization r;
    CHECK(stats_randomization_test(a, a, 0, stats_mean_statistic, NULL, 100, 1, &r) == -1);
    CHECK(stats_randomization_test(a, a, 2, stats_mean_statistic, NULL, 0, 1, &r) == -1);

    // Cohen's d of one item is undefined: the observed metric is NaN, so there is nothing to test.
    CHECK(stats_randomization_test(a, a, 1, metrics_cohens_d_statistic, NULL, 100, 1, &r) == -1);
    CHECK(strstr(err_msg(), "undefined") != NULL);
}

// ----------------------------------------------------------------------------
// Flip rate

TEST(stats_flip_rate_example) {
    //   item   0  1  2  3  4  5   6
    //   before 1  0  1  1  0  -1  1
    //   after  1  1  0  1  0  1   -1
    // Items 5 and 6 are missing on one side: skipped 2, compared 5.
    // Item 1 flips 0 -> 1, item 2 flips 1 -> 0: rate 2/5, each direction 1/5.
    const int8_t before[] = {1, 0, 1, 1, 0, -1, 1};
    const int8_t after[] = {1, 1, 0, 1, 0, 1, -1};
    StatsFlipRate f;
    REQUIRE_OK(stats_flip_rate(before, after, 7, &f));
    CHECK_EQ_INT(f.n_compared, 5);
    CHECK_EQ_INT(f.n_skipped, 2);
    CHECK_EQ_INT(f.n_flipped, 2);
    CHECK_EQ_INT(f.n_0_to_1, 1);
    CHECK_EQ_INT(f.n_1_to_0, 1);
    CHECK_NEAR(f.rate, 0.4, 1e-15);
    CHECK_NEAR(f.rate_0_to_1, 0.2, 1e-15);
    CHECK_NEAR(f.rate_1_to_0, 0.2, 1e-15);
}

TEST(stats_flip_rate_edge_cases) {
    StatsFlipRate f;

    // No items, or only missing ones: rates undefined.
    REQUIRE_OK(stats_flip_rate(NULL, NULL, 0, &f));
    CHECK_EQ_INT(f.n_compared, 0);
    CHECK(isnan(f.rate));
    const int8_t missing[] = {-1, -1};
    const int8_t ones[] = {1, 1};
    REQUIRE_OK(stats_flip_rate(missing, ones, 2, &f));
    CHECK_EQ_INT(f.n_skipped, 2);
    CHECK(isnan(f.rate_0_to_1));

    // Identical variants: no flips.
    REQUIRE_OK(stats_flip_rate(ones, ones, 2, &f));
    CHECK_NEAR(f.rate, 0.0, 0.0);

    // Any other outcome value is rejected with the item index.
    const int8_t bad[] = {1, 2};
    CHECK(stats_flip_rate(ones, bad, 2, &f) == -1);
    CHECK(strstr(err_msg(), "item 1") != NULL);
    CHECK(stats_flip_rate(ones, ones, -1, &f) == -1);
}
