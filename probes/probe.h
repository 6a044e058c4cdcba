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

#endif
