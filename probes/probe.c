// probe.c: helpers shared by every probe.
#include "probe.h"

#include <stdlib.h>

void probe_items_free(ProbeItems *items) {
    for (int64_t i = 0; i < items->n_items; i++) {
        ProbeItem *item = &items->items[i];
        free(item->category);
        free(item->subgroup);
        for (int t = 0; t < item->n_texts; t++) {
            free(item->texts[t]);
        }
    }
    free(items->items);
    free(items->source);
    items->items = NULL;
    items->n_items = 0;
    items->source = NULL;
}
