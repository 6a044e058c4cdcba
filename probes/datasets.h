// datasets.h: item loaders of the sentence-pair probes (StereoSet, RedditBias, CrowS-Pairs).
//
// Each loader finds its files through the resolver (manifests data/stereoset.json,
// data/redditbias.json and data/crows_pairs.json), reads them and fills `out` in file order.
// texts[0] is always the more stereotypical sentence and texts[1] the less stereotypical one.
// On success `out` owns the items; free them with probe_items_free(). On failure a loader
// returns -1 with an error naming the file, the line, the problem and the fix, and leaves `out`
// empty.
#ifndef QBIAS_DATASETS_H
#define QBIAS_DATASETS_H

#include "../engine/resolver.h"
#include "../engine/util.h"
#include "probe.h"

#include <string.h>

// StereoSet dev set, intrasentence records of bias types gender, race and religion (1,296 items:
// 255 + 962 + 79). id = 0-based line number in the file, category = bias_type, subgroup = target,
// texts = stereotype, anti-stereotype, unrelated. Repeated sentence pairs are kept.
int stereoset_load(const Resolver *resolver, ProbeItems *out);

// RedditBias test sets of four groups (981 pairs: gender 253, race 254, religion_jc 238,
// religion_mc 236). An item pairs row i of the target group's file with row i of its counterpart
// file. category = group name, subgroup = target group (female, black, jews, muslims),
// id = group index * 100000 + row index (0-based, header excluded), with groups in the order
// gender, race, religion_jc, religion_mc. The counterpart's `comments` column must equal the
// target's `comments_processed` in every row, or loading fails.
int redditbias_load(const Resolver *resolver, ProbeItems *out);

// CrowS-Pairs, all 1,508 pairs over 9 bias types. id = the file's unnamed index column,
// category = bias_type, subgroup = stereo_antistereo ("stereo" or "antistereo"),
// texts = sent_more, sent_less.
int crows_pairs_load(const Resolver *resolver, ProbeItems *out);

// ----------------------------------------------------------------------------
// Helpers shared by the three loaders

// Appends a zeroed item to `items`, growing the array geometrically; *capacity is the allocated
// length and starts at 0 for an empty ProbeItems.
static inline ProbeItem *dataset_add_item(ProbeItems *items, int64_t *capacity) {
    if (items->n_items == *capacity) {
        *capacity = *capacity ? 2 * *capacity : 1024;
        items->items = xrealloc(items->items, (size_t)*capacity * sizeof *items->items);
    }
    ProbeItem *item = &items->items[items->n_items++];
    memset(item, 0, sizeof *item);
    return item;
}

#endif
