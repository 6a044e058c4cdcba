// stats.h: statistics over per-item probe outcomes: a seeded PRNG, percentile bootstrap
// confidence intervals, the paired approximate randomization test, flip rates between two
// variants and the Wilson interval for a proportion. Pure math on arrays: no I/O.
//
// Determinism: every random draw comes from StatsRng (xoshiro256** seeded through splitmix64),
// which uses only 64-bit integer arithmetic, so a given seed gives the same resamples, the same
// swaps and the same p-value on every machine and compiler.
//
// Metric callbacks: a metric is a StatsStatisticFn over per-item values, so the same function
// serves the bootstrap and the randomization test. metrics.h provides callbacks for the study's
// stereotype score and Cohen's d; stats_mean_statistic covers proportions and means.
#ifndef QBIAS_STATS_H
#define QBIAS_STATS_H

#include <stdint.h>

// ----------------------------------------------------------------------------
// Deterministic pseudo-random numbers

typedef struct {
    uint64_t state[4]; // xoshiro256** state; never all zero after stats_rng_seed()
} StatsRng;

// Advances a splitmix64 state and returns its next output (Steele, Lea and Flood 2014; the
// seeding generator recommended for xoshiro by Blackman and Vigna).
uint64_t stats_splitmix64(uint64_t *state);

// Seeds the generator: the four state words are the first four splitmix64 outputs from `seed`.
void stats_rng_seed(StatsRng *rng, uint64_t seed);

// Returns the next 64-bit output of xoshiro256** (Blackman and Vigna 2018).
uint64_t stats_rng_next(StatsRng *rng);

// Returns a uniform integer in [0, bound), bound >= 1, without modulo bias: outputs below
// 2^64 mod bound are rejected and drawn again.
uint64_t stats_rng_below(StatsRng *rng, uint64_t bound);

// Returns a uniform double in [0, 1) from the top 53 bits of the next output.
double stats_rng_uniform(StatsRng *rng);

// ----------------------------------------------------------------------------
// Metric callbacks

// Computes a statistic over values[indices[k]] for k < n. indices may repeat an item (bootstrap
// resamples) and is NULL for the items 0..n-1 in order. ctx carries whatever else the metric
// needs, such as a term index per item. The indices refer to the original items, so arrays in
// ctx stay aligned with them. Returns NaN when the statistic is undefined for the selection.
typedef double (*StatsStatisticFn)(const double *values, const int64_t *indices, int64_t n,
                                   void *ctx);

// Returns the mean of the selected values (NaN when n == 0); ctx is unused. On 0/1 outcomes this
// is a proportion.
double stats_mean_statistic(const double *values, const int64_t *indices, int64_t n, void *ctx);

// ----------------------------------------------------------------------------
// Intervals

#define STATS_DEFAULT_LEVEL 0.95
// With 10,000 resamples each tail of a 95% interval rests on 250 ordered replicates.
#define STATS_DEFAULT_RESAMPLES 10000

typedef struct {
    double estimate; // the statistic on the original data (k / n for a proportion)
    double lower;
    double upper;
    double level;    // nominal coverage, e.g. 0.95
} StatsInterval;

// Computes a percentile bootstrap confidence interval. Each of n_resamples resamples draws n
// indices uniformly with replacement, with stats_rng_below from one generator seeded with `seed`,
// resample after resample. lower and upper are the (1 - level) / 2 and (1 + level) / 2 quantiles
// of the resample statistics ("replicates"). The quantiles interpolate linearly between order
// statistics, as numpy.percentile's default "linear" method does, except next to an infinite
// replicate: a quantile between an infinity and a finite value is that infinity, where the
// interpolation formula would give NaN. So a bound is -inf or +inf when more than about
// (1 - level) / 2 of the replicates are infinite on its side, as Cohen's d is for a resample with
// zero variance. If any replicate is NaN, lower and upper are NaN; *n_nan (unless NULL) receives
// the count of NaN replicates.
// Returns 0, or -1 with an error when n < 1, n_resamples < 1 or level is not in (0, 1).
int stats_bootstrap_ci(const double *values, int64_t n, StatsStatisticFn statistic, void *ctx,
                       int64_t n_resamples, double level, uint64_t seed, StatsInterval *out,
                       int64_t *n_nan);

// Computes the Wilson score interval for `successes` out of `n` trials. Returns 0, or -1 with an
// error when n < 1, successes is outside [0, n] or level is not in (0, 1).
int stats_wilson_interval(int64_t successes, int64_t n, double level, StatsInterval *out);

// Returns the standard normal quantile z with P(Z <= z) = p, for p in (0, 1), by bisection on
// erfc to full double precision; NaN for p outside (0, 1).
double stats_normal_quantile(double p);

// ----------------------------------------------------------------------------
// Paired approximate randomization test

// The study's iteration count (Riezler and Maxwell 2005 style test, 10,000 iterations).
#define STATS_RANDOMIZATION_ITERATIONS 10000

typedef struct {
    double metric_a;  // metric on system A's outcomes
    double metric_b;  // metric on system B's outcomes
    double observed;  // metric_a - metric_b
    double p_value;   // (n_extreme + 1) / (n_iterations + 1), two-sided
    int64_t n_iterations;
    int64_t n_extreme; // iterations with |difference| >= |observed| (see stats_randomization_test)
    int64_t n_nan;     // iterations whose difference was NaN; they count as extreme
} StatsRandomization;

// Runs a paired approximate randomization test of "metric(A) == metric(B)". outcomes_a[i] and
// outcomes_b[i] are the two systems' outcomes on item i. In each iteration every item's two
// outcomes are swapped with probability 1/2 (the top bit of one generator output per item), the
// metric is recomputed on both shuffled systems, and the difference is recorded. An iteration is
// extreme when |difference| >= |observed| * (1 - 1e-12); the relative slack keeps differences
// that equal the observed one mathematically but differ by rounding on the extreme side. Returns
// 0, or -1 with an error when n < 1, n_iterations < 1, or the metric is NaN on either system's
// observed outcomes.
int stats_randomization_test(const double *outcomes_a, const double *outcomes_b, int64_t n,
                             StatsStatisticFn metric, void *ctx, int64_t n_iterations,
                             uint64_t seed, StatsRandomization *out);

// ----------------------------------------------------------------------------
// Flip rate between two variants

#define STATS_OUTCOME_MISSING (-1) // no binary outcome for this item (a tie, no answer, ...)

typedef struct {
    int64_t n_compared; // items with a 0/1 outcome in both variants
    int64_t n_skipped;  // items missing in at least one variant
    int64_t n_flipped;  // n_0_to_1 + n_1_to_0
    int64_t n_0_to_1;   // before 0, after 1
    int64_t n_1_to_0;   // before 1, after 0
    double rate;        // n_flipped / n_compared; NaN when n_compared == 0
    double rate_0_to_1; // n_0_to_1 / n_compared
    double rate_1_to_0; // n_1_to_0 / n_compared
} StatsFlipRate;

// Compares two variants' per-item binary outcomes (0, 1, or STATS_OUTCOME_MISSING). All three
// rates share the denominator n_compared, so rate = rate_0_to_1 + rate_1_to_0. Returns 0, or -1
// with an error on any other outcome value or n < 0.
int stats_flip_rate(const int8_t *before, const int8_t *after, int64_t n, StatsFlipRate *out);

#endif
