// probe.h: the common shape of a bias benchmark ("probe").
//
// A probe loads its items through the data resolver, turns each item into texts to score, and
// turns the scores into an outcome with category and subgroup labels. Everything in a run's
// summary is recomputed from the per-item records (items.jsonl), which is what makes resume,
// comparison across variants and flip rates possible.
#ifndef QBIAS_PROBE_H
#define QBIAS_PROBE_H

#include <stdbool.h>
#include <stdint.h>

#include "../engine/util.h"

#define PROBE_MAX_TEXTS 3

// One benchmark item: sentences scored together that produce one outcome.
//
// Sentence-perplexity probes (stereoset, redditbias, crows_pairs) store the more stereotypical
// sentence in texts[0] and the less stereotypical one in texts[1]; StereoSet adds the unrelated
// sentence in texts[2].
typedef struct {
    int64_t id;                        // stable id inside the probe (line or row number, from 0)
    char *category;                    // e.g. "gender", "race-color", "religion_jc"
    char *subgroup;                    // e.g. the target term "chess player", or "female"; may be ""
    int n_texts;
    char *texts[PROBE_MAX_TEXTS];
    const char *text_labels[PROBE_MAX_TEXTS]; // static strings: "stereotype", "anti-stereotype", ...
} ProbeItem;

typedef struct {
    ProbeItem *items;
    int64_t n_items;
    char *source;                      // human-readable list of files the items came from
} ProbeItems;

void probe_items_free(ProbeItems *items);

// ----------------------------------------------------------------------------
// Probe definitions

struct Resolver;
struct RecordSet;
struct cJSON;

// The records of one probe for a summary, grouped by variant.
typedef struct {
    const char *probe;                 // probe name
    const char *const *variants;       // variant ids in the order of the --quant list
    int n_variants;
    int baseline;                      // index of "fp32" in variants, or -1
    const struct RecordSet *records;   // every record of the run (all probes)
} ProbeSummaryInput;

typedef struct {
    const char *name;                  // "stereoset"
    const char *title;                 // one line for reports
    const char *manifest;              // data set manifest name (data/<manifest>.json)
    // How sentences are scored; written into summaries so readers know which convention applies.
    const char *convention;
    // lm-evaluation-harness's empty-context rule (score the first token after EOS when the model
    // has no BOS) instead of the study's (the first token has no log-probability).
    bool empty_context_eos;
    const char *const *category_order; // NULL-terminated; categories not listed follow in item order
    int (*load)(const struct Resolver *resolver, ProbeItems *out);
    // Adds derived per-item fields (for readers of items.jsonl) to `outcome`.
    void (*outcome)(const ProbeItem *item, const double *logprob, const int64_t *n_tokens,
                    struct cJSON *outcome);
    // Adds the probe's summary to `json` and its tables to `markdown`. Returns 0 or -1 with an error.
    int (*summarize)(const ProbeSummaryInput *input, struct cJSON *json, StrBuf *markdown);
} ProbeDef;

// Returns the probe called `name`, or NULL.
const ProbeDef *probe_find(const char *name);

// Returns the probe names, separated by ", " (static storage).
const char *probe_names(void);

#endif
