// stats.c: seeded PRNG, bootstrap and Wilson intervals, randomization test, flip rates (see
// stats.h and docs/metrics.md).
#include "stats.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../engine/util.h"

// ----------------------------------------------------------------------------
// Deterministic pseudo-random numbers

uint64_t stats_splitmix64(uint64_t *state) {
    uint64_t z = (*state += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

void stats_rng_seed(StatsRng *rng, uint64_t seed) {
    // splitmix64 never returns four zero words in a row, so the state is valid for any seed.
    for (int i = 0; i < 4; i++) {
        rng->state[i] = stats_splitmix64(&seed);
    }
}

static inline uint64_t rotate_left(uint64_t x, int k) {
    return (x << k) | (x >> (64 - k));
}

uint64_t stats_rng_next(StatsRng *rng) {
    uint64_t *s = rng->state;
    uint64_t result = rotate_left(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;

    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotate_left(s[3], 45);
    return result;
}

uint64_t stats_rng_below(StatsRng *rng, uint64_t bound) {
    assert(bound >= 1);

    // 2^64 mod bound, computed in 64 bits as (2^64 - bound) mod bound. Outputs below it are the
    // surplus that would make small results more likely than large ones.
    uint64_t threshold = (0 - bound) % bound;
    for (;;) {
        uint64_t r = stats_rng_next(rng);
        if (r >= threshold) {
            return r % bound;
        }
    }
}

double stats_rng_uniform(StatsRng *rng) {
    return (double)(stats_rng_next(rng) >> 11) * 0x1.0p-53;
}

// ----------------------------------------------------------------------------
// Metric callbacks

double stats_mean_statistic(const double *values, const int64_t *indices, int64_t n, void *ctx) {
    (void)ctx;
    if (n == 0) {
        return NAN;
    }
    double sum = 0.0;
    for (int64_t k = 0; k < n; k++) {
        sum += values[indices ? indices[k] : k];
    }
    return sum / (double)n;
}

// ----------------------------------------------------------------------------
// Intervals

// Checks the sizes shared by the resampling procedures: at least one item and one draw.
static int check_resampling_sizes(const char *what, int64_t n, const char *draw_name,
                                  int64_t n_draws, int suggested_draws) {
    if (n < 1) {
        return err_set("%s: item count %lld is below 1; the procedure needs at least one item",
                       what, (long long)n);
    }
    if (n_draws < 1) {
        return err_set("%s: %s count %lld is below 1; use e.g. %d", what, draw_name,
                       (long long)n_draws, suggested_draws);
    }
    return 0;
}

static int check_level(const char *what, double level) {
    if (!(level > 0.0 && level < 1.0)) {
        return err_set("%s: confidence level %g is not in (0, 1); pass e.g. 0.95 for a 95%% "
                       "interval",
                       what, level);
    }
    return 0;
}

static int compare_doubles(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

// Returns the p-quantile of sorted[0..n-1] with numpy's default "linear" rule: position
// h = (n - 1) * p, interpolated between the order statistics on both sides of h.
static double quantile_sorted(const double *sorted, int64_t n, double p) {
    double h = (double)(n - 1) * p;
    int64_t below = (int64_t)floor(h);
    if (below >= n - 1) {
        return sorted[n - 1];
    }
    double fraction = h - (double)below;
    double low = sorted[below], high = sorted[below + 1];
    if (fraction == 0.0 || low == high) {
        return low;
    }

    // Next to an infinite order statistic the formula below gives NaN (inf - inf), but every
    // point strictly between a finite value and an infinity is that infinity. Between -inf and
    // +inf the point is undefined.
    if (isinf(low) || isinf(high)) {
        if (isinf(low) && isinf(high)) {
            return NAN;
        }
        return isinf(low) ? low : high;
    }
    return low + fraction * (high - low);
}

int stats_bootstrap_ci(const double *values, int64_t n, StatsStatisticFn statistic, void *ctx,
                       int64_t n_resamples, double level, uint64_t seed, StatsInterval *out,
                       int64_t *n_nan) {
    if (check_resampling_sizes("bootstrap", n, "resample", n_resamples,
                               STATS_DEFAULT_RESAMPLES) != 0 ||
        check_level("bootstrap", level) != 0) {
        return -1;
    }
    assert(values);
    assert(statistic);
    assert(out);

    int64_t *indices = xmalloc((size_t)n * sizeof *indices);
    double *replicates = xmalloc((size_t)n_resamples * sizeof *replicates);
    StatsRng rng;
    stats_rng_seed(&rng, seed);

    // Draw every resample from the one generator, in order, so that the replicates depend only
    // on the seed.
    int64_t nan_count = 0;
    for (int64_t b = 0; b < n_resamples; b++) {
        for (int64_t k = 0; k < n; k++) {
            indices[k] = (int64_t)stats_rng_below(&rng, (uint64_t)n);
        }
        replicates[b] = statistic(values, indices, n, ctx);
        if (isnan(replicates[b])) {
            nan_count++;
        }
    }

    out->estimate = statistic(values, NULL, n, ctx);
    out->level = level;
    if (nan_count > 0) {
        // An undefined replicate has no place in the order. Dropping it would condition the
        // interval on the statistic being defined, so the interval is reported as undefined.
        out->lower = out->upper = NAN;
    } else {
        qsort(replicates, (size_t)n_resamples, sizeof *replicates, compare_doubles);
        double alpha = 1.0 - level;
        out->lower = quantile_sorted(replicates, n_resamples, alpha / 2.0);
        out->upper = quantile_sorted(replicates, n_resamples, 1.0 - alpha / 2.0);
    }
    if (n_nan) {
        *n_nan = nan_count;
    }

    free(indices);
    free(replicates);
    return 0;
}

double stats_normal_quantile(double p) {
    if (!(p > 0.0 && p < 1.0)) {
        return NAN;
    }

    // Phi(z) = erfc(-z / sqrt(2)) / 2 increases with z; |z| < 40 covers every p a double can
    // hold above 0 (Phi(-40) is about 4e-350). Bisection stops when the bracket cannot shrink.
    double lo = -40.0, hi = 40.0;
    for (int i = 0; i < 2000; i++) {
        double mid = 0.5 * (lo + hi);
        if (mid == lo || mid == hi) {
            break;
        }
        if (0.5 * erfc(-mid / sqrt(2.0)) < p) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    return 0.5 * (lo + hi);
}

int stats_wilson_interval(int64_t successes, int64_t n, double level, StatsInterval *out) {
    if (n < 1) {
        return err_set("Wilson interval: trial count %lld is below 1; a proportion needs at least "
                       "one item",
                       (long long)n);
    }
    if (successes < 0 || successes > n) {
        return err_set("Wilson interval: success count %lld is outside [0, %lld]",
                       (long long)successes, (long long)n);
    }
    if (check_level("Wilson interval", level) != 0) {
        return -1;
    }

    // Wilson (1927): the p with |p_hat - p| <= z * sqrt(p (1 - p) / n), solved for p.
    double z = stats_normal_quantile(0.5 + level / 2.0);
    double nd = (double)n;
    double p_hat = (double)successes / nd;
    double z2_n = z * z / nd;
    double center = (p_hat + z2_n / 2.0) / (1.0 + z2_n);
    double half_width = z / (1.0 + z2_n) * sqrt(p_hat * (1.0 - p_hat) / nd + z2_n / (4.0 * nd));

    out->estimate = p_hat;
    out->level = level;
    // At 0 and n successes the bound is exactly 0 or 1; the formula can miss it by rounding.
    out->lower = successes == 0 ? 0.0 : fmax(0.0, center - half_width);
    out->upper = successes == n ? 1.0 : fmin(1.0, center + half_width);
    return 0;
}

// ----------------------------------------------------------------------------
// Paired approximate randomization test

int stats_randomization_test(const double *outcomes_a, const double *outcomes_b, int64_t n,
                             StatsStatisticFn metric, void *ctx, int64_t n_iterations,
                             uint64_t seed, StatsRandomization *out) {
    if (check_resampling_sizes("randomization test", n, "iteration", n_iterations,
                               STATS_RANDOMIZATION_ITERATIONS) != 0) {
        return -1;
    }
    assert(outcomes_a);
    assert(outcomes_b);
    assert(metric);
    assert(out);

    double metric_a = metric(outcomes_a, NULL, n, ctx);
    double metric_b = metric(outcomes_b, NULL, n, ctx);
    if (isnan(metric_a) || isnan(metric_b)) {
        return err_set("randomization test: the metric is undefined (NaN) on the observed "
                       "outcomes (system A %g, system B %g); test a category with enough items "
                       "for the metric to exist",
                       metric_a, metric_b);
    }
    double observed = metric_a - metric_b;
    double threshold = fabs(observed) * (1.0 - 1e-12);

    double *shuffled_a = xmalloc((size_t)n * sizeof *shuffled_a);
    double *shuffled_b = xmalloc((size_t)n * sizeof *shuffled_b);
    StatsRng rng;
    stats_rng_seed(&rng, seed);

    int64_t n_extreme = 0, n_nan = 0;
    for (int64_t iteration = 0; iteration < n_iterations; iteration++) {
        for (int64_t i = 0; i < n; i++) {
            bool swap = (stats_rng_next(&rng) >> 63) != 0;
            shuffled_a[i] = swap ? outcomes_b[i] : outcomes_a[i];
            shuffled_b[i] = swap ? outcomes_a[i] : outcomes_b[i];
        }

        double difference = metric(shuffled_a, NULL, n, ctx) - metric(shuffled_b, NULL, n, ctx);
        if (isnan(difference)) {
            // Counting an undefined difference as extreme can only raise p, so the test stays
            // conservative.
            n_nan++;
            n_extreme++;
        } else if (fabs(difference) >= threshold) {
            n_extreme++;
        }
    }

    *out = (StatsRandomization){
        .metric_a = metric_a,
        .metric_b = metric_b,
        .observed = observed,
        .p_value = (double)(n_extreme + 1) / (double)(n_iterations + 1),
        .n_iterations = n_iterations,
        .n_extreme = n_extreme,
        .n_nan = n_nan,
    };
    free(shuffled_a);
    free(shuffled_b);
    return 0;
}

// ----------------------------------------------------------------------------
// Flip rate between two variants

int stats_flip_rate(const int8_t *before, const int8_t *after, int64_t n, StatsFlipRate *out) {
    if (n < 0) {
        return err_set("flip rate: item count %lld is negative", (long long)n);
    }
    assert(n == 0 || (before && after));

    StatsFlipRate result = {0};
    for (int64_t i = 0; i < n; i++) {
        int8_t b = before[i], a = after[i];
        bool b_valid = b == 0 || b == 1 || b == STATS_OUTCOME_MISSING;
        bool a_valid = a == 0 || a == 1 || a == STATS_OUTCOME_MISSING;
        if (!b_valid || !a_valid) {
            return err_set("flip rate: item %lld has outcome %d before and %d after; outcomes "
                           "must be 0, 1 or %d (missing)",
                           (long long)i, b, a, STATS_OUTCOME_MISSING);
        }
        if (b == STATS_OUTCOME_MISSING || a == STATS_OUTCOME_MISSING) {
            result.n_skipped++;
            continue;
        }

        result.n_compared++;
        if (b == 0 && a == 1) {
            result.n_0_to_1++;
        } else if (b == 1 && a == 0) {
            result.n_1_to_0++;
        }
    }

    result.n_flipped = result.n_0_to_1 + result.n_1_to_0;
    double compared = (double)result.n_compared;
    result.rate = result.n_compared > 0 ? result.n_flipped / compared : NAN;
    result.rate_0_to_1 = result.n_compared > 0 ? result.n_0_to_1 / compared : NAN;
    result.rate_1_to_0 = result.n_compared > 0 ? result.n_1_to_0 / compared : NAN;
    *out = result;
    return 0;
}
