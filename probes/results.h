// results.h: a run directory's per-item records (items.jsonl) and its fingerprint (run.json).
//
// items.jsonl holds one JSON object per line: one item of one probe scored under one variant.
// Lines are appended and flushed as they are made, so an interrupted run loses at most the line
// being written. On reopening, a torn last line (no final newline, or not valid JSON) is cut off
// with a warning; an invalid line before the last one is an error, because it means the file was
// damaged in some other way and silently dropping it would lose data.
//
// run.json records what produced the records (qbias version, model file hash, variants, probes,
// limits, data file hashes). A run restarted into the same directory must have the same
// fingerprint, or it is rejected with the fields that differ.
#ifndef QBIAS_RESULTS_H
#define QBIAS_RESULTS_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "probe.h"

// One scored text of an item.
typedef struct {
    char *label;      // e.g. "stereotype"
    double logprob;   // summed log-probability (natural log)
    int64_t n_tokens; // tokens scored
    bool greedy;      // every token was the most probable one
} RecordScore;

// One line of items.jsonl, parsed.
typedef struct {
    char *variant;
    char *probe;
    int64_t item;
    char *category;
    char *subgroup;
    int n_scores;
    RecordScore scores[PROBE_MAX_TEXTS];
    int64_t line;      // 1-based line in items.jsonl (0 for a record not read from a file)
} ItemRecord;

typedef struct RecordSet {
    ItemRecord *records;
    int64_t n_records;
    int64_t capacity;
} RecordSet;

void record_set_free(RecordSet *set);

// Returns true when `set` holds a record for (variant, probe, item). Build the index first.
typedef struct RecordIndex RecordIndex;
RecordIndex *record_index_new(const RecordSet *set);
bool record_index_contains(const RecordIndex *index, const char *variant, const char *probe,
                           int64_t item);
// Returns the record for (variant, probe, item), or NULL.
const ItemRecord *record_index_find(const RecordIndex *index, const char *variant,
                                    const char *probe, int64_t item);
void record_index_free(RecordIndex *index);

// Parses one JSON line into *out. Returns 0, or -1 with an error naming the missing or invalid field.
int record_parse(const char *line, ItemRecord *out);
void record_free(ItemRecord *record);

// Formats a record as one JSON line (with the final newline) into `out`. `outcome` is an optional
// JSON object of derived fields, written as "outcome" (the summary does not read it back).
void record_format(const ItemRecord *record, const cJSON *outcome, StrBuf *out);

// Reads items.jsonl from `path` into `set` (which may be empty on entry; records are appended).
// A last line without its final newline was being written when a run stopped: it is cut off from
// the file itself (truncate), with a warning on stderr, and *dropped_torn is set. Any other
// invalid line, and a second record for the same (variant, probe, item), is an error naming the
// file and the lines. A missing file is an empty set. Returns 0 or -1.
int results_load(const char *path, RecordSet *set, bool *dropped_torn);

// Opens items.jsonl for appending. Returns NULL with an error.
FILE *results_open_append(const char *path);

// Appends one formatted line and flushes it to the operating system. Returns 0 or -1 with an error.
int results_append(FILE *file, const char *path, const char *line);

// Checks the run fingerprint in `dir`/run.json against `fingerprint`: writes it when absent (unless
// items.jsonl already exists, because records of unknown origin must not be mixed in), accepts it
// when equal, and otherwise returns -1 with an error that lists the fields that differ and what to
// do.
int results_check_fingerprint(const char *dir, const cJSON *fingerprint);

// Takes an exclusive lock on the run directory (an flock on `dir`/.qbias.lock) so that two runs
// cannot append to the same items.jsonl. Returns a descriptor to pass to results_unlock(), or -1
// with an error when another process holds the lock.
int results_lock(const char *dir);
void results_unlock(int fd);

#endif
