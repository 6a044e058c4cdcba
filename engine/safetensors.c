// safetensors.c: the safetensors reader (format and guarantees in safetensors.h).
#include "safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

// The reference implementation rejects headers above 100,000,000 bytes (MAX_HEADER_SIZE).
#define SAFETENSORS_MAX_HEADER 100000000ull

static const struct {
    const char *name;
    size_t size;
} dtype_table[ST_DTYPE_COUNT] = {
    [ST_BOOL] = {"BOOL", 1}, [ST_U8] = {"U8", 1},     [ST_I8] = {"I8", 1},
    [ST_I16] = {"I16", 2},   [ST_U16] = {"U16", 2},   [ST_F16] = {"F16", 2},
    [ST_BF16] = {"BF16", 2}, [ST_I32] = {"I32", 4},   [ST_U32] = {"U32", 4},
    [ST_F32] = {"F32", 4},   [ST_F64] = {"F64", 8},   [ST_I64] = {"I64", 8},
    [ST_U64] = {"U64", 8},   [ST_F8_E4M3] = {"F8_E4M3", 1}, [ST_F8_E5M2] = {"F8_E5M2", 1},
};

const char *safetensors_dtype_name(SafeDType dtype) {
    return (unsigned)dtype < ST_DTYPE_COUNT ? dtype_table[dtype].name : "invalid";
}

size_t safetensors_dtype_size(SafeDType dtype) {
    return (unsigned)dtype < ST_DTYPE_COUNT ? dtype_table[dtype].size : 0;
}

// Reads a JSON number that must be a whole number in [0, 2^53] (exact in a double).
static bool json_whole_number(const cJSON *v, uint64_t *out) {
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0) || v->valuedouble > 9007199254740992.0 ||
        floor(v->valuedouble) != v->valuedouble) {
        return false;
    }
    *out = (uint64_t)v->valuedouble;
    return true;
}

static int parse_entry(const SafeTensorsFile *f, const cJSON *entry, SafeTensor *t,
                       uint64_t *begin, uint64_t *end) {
    const char *name = entry->string;
    if (!cJSON_IsObject(entry)) {
        return err_set("%s: header entry '%s' is not an object", f->path, name);
    }
    const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(entry, "dtype");
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(entry, "shape");
    const cJSON *offsets = cJSON_GetObjectItemCaseSensitive(entry, "data_offsets");
    if (!cJSON_IsString(dtype) || !cJSON_IsArray(shape) || !cJSON_IsArray(offsets)) {
        return err_set("%s: tensor '%s' needs string 'dtype', array 'shape' and array "
                       "'data_offsets' (corrupt header)",
                       f->path, name);
    }

    t->dtype = ST_DTYPE_COUNT;
    for (int d = 0; d < ST_DTYPE_COUNT; d++) {
        if (strcmp(dtype->valuestring, dtype_table[d].name) == 0) {
            t->dtype = (SafeDType)d;
        }
    }
    if (t->dtype == ST_DTYPE_COUNT) {
        return err_set("%s: tensor '%s' has unknown dtype '%s'", f->path, name, dtype->valuestring);
    }

    int n_dims = cJSON_GetArraySize(shape);
    if (n_dims > SAFETENSORS_MAX_DIMS) {
        return err_set("%s: tensor '%s' has %d dimensions, more than the %d qbias reads", f->path,
                       name, n_dims, SAFETENSORS_MAX_DIMS);
    }
    t->n_dims = n_dims;
    size_t n_elements = 1;
    for (int d = 0; d < n_dims; d++) {
        uint64_t dim = 0;
        if (!json_whole_number(cJSON_GetArrayItem(shape, d), &dim) || dim > INT64_MAX) {
            return err_set("%s: tensor '%s' dimension %d is not a non-negative whole number",
                           f->path, name, d);
        }
        t->shape[d] = (int64_t)dim;
        if (!size_mul(n_elements, (size_t)dim, &n_elements)) {
            return err_set("%s: tensor '%s' has too many elements (overflow)", f->path, name);
        }
    }
    size_t expected = 0;
    if (!size_mul(n_elements, dtype_table[t->dtype].size, &expected)) {
        return err_set("%s: tensor '%s' byte size overflows", f->path, name);
    }

    if (cJSON_GetArraySize(offsets) != 2 ||
        !json_whole_number(cJSON_GetArrayItem(offsets, 0), begin) ||
        !json_whole_number(cJSON_GetArrayItem(offsets, 1), end) || *end < *begin) {
        return err_set("%s: tensor '%s' data_offsets must be two whole numbers [begin, end] with "
                       "begin <= end",
                       f->path, name);
    }
    if (*end - *begin != expected) {
        return err_set("%s: tensor '%s' (%s, %zu elements) needs %zu bytes but data_offsets "
                       "[%llu, %llu] span %llu (corrupt header)",
                       f->path, name, dtype_table[t->dtype].name, n_elements, expected,
                       (unsigned long long)*begin, (unsigned long long)*end,
                       (unsigned long long)(*end - *begin));
    }
    t->nbytes = expected;
    return 0;
}

typedef struct {
    uint64_t begin, end;
    int index;
} Range;

static int compare_ranges(const void *a, const void *b) {
    const Range *x = a, *y = b;
    if (x->begin != y->begin) {
        return x->begin < y->begin ? -1 : 1;
    }
    return x->end < y->end ? -1 : x->end > y->end;
}

static int compare_tensor_names(const void *a, const void *b) {
    return strcmp(((const SafeTensor *)a)->name, ((const SafeTensor *)b)->name);
}

static int parse_header(SafeTensorsFile *f, const char *json, size_t json_len, size_t data_size,
                        const uint8_t *data) {
    cJSON *root = cJSON_ParseWithLength(json, json_len);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return err_set("%s: the header is not a JSON object (not a safetensors file, or corrupt)",
                       f->path);
    }

    int n_entries = cJSON_GetArraySize(root);
    f->tensors = xcalloc((size_t)n_entries + 1, sizeof(SafeTensor));
    Range *ranges = xcalloc((size_t)n_entries + 1, sizeof(Range));
    int rc = 0;
    const cJSON *entry;
    cJSON_ArrayForEach(entry, root) {
        if (strcmp(entry->string, "__metadata__") == 0) {
            const cJSON *value;
            bool strings = cJSON_IsObject(entry);
            cJSON_ArrayForEach(value, entry) {
                strings = strings && cJSON_IsString(value);
            }
            if (!strings) {
                rc = err_set("%s: __metadata__ must be an object of strings", f->path);
                break;
            }
            cJSON_Delete(f->metadata);
            f->metadata = cJSON_Duplicate(entry, true);
            continue;
        }
        SafeTensor *t = &f->tensors[f->n_tensors];
        t->name = xstrdup(entry->string);
        f->n_tensors++;
        Range *r = &ranges[f->n_tensors - 1];
        r->index = f->n_tensors - 1;
        if (parse_entry(f, entry, t, &r->begin, &r->end) != 0) {
            rc = -1;
            break;
        }
        if (r->end > data_size) {
            rc = err_set("%s: tensor '%s' ends at data offset %llu, past the %zu data bytes of the "
                         "file (truncated file; download it again)",
                         f->path, t->name, (unsigned long long)r->end, data_size);
            break;
        }
        t->data = data + r->begin;
    }
    cJSON_Delete(root);

    // Byte ranges must tile the data exactly: sorted, each starts where the previous ended.
    if (rc == 0) {
        qsort(ranges, (size_t)f->n_tensors, sizeof(Range), compare_ranges);
        uint64_t expected_begin = 0;
        for (int i = 0; i < f->n_tensors && rc == 0; i++) {
            if (ranges[i].begin < expected_begin) {
                rc = err_set("%s: tensor '%s' overlaps another tensor's bytes (corrupt header)",
                             f->path, f->tensors[ranges[i].index].name);
            } else if (ranges[i].begin > expected_begin) {
                rc = err_set("%s: %llu data bytes before tensor '%s' belong to no tensor (corrupt "
                             "header)",
                             f->path, (unsigned long long)(ranges[i].begin - expected_begin),
                             f->tensors[ranges[i].index].name);
            }
            expected_begin = ranges[i].end;
        }
        if (rc == 0 && expected_begin != data_size) {
            rc = err_set("%s: the file has %llu data bytes after the last tensor (corrupt file, or "
                         "a partial write)",
                         f->path, (unsigned long long)(data_size - expected_begin));
        }
    }
    free(ranges);

    if (rc == 0) {
        qsort(f->tensors, (size_t)f->n_tensors, sizeof(SafeTensor), compare_tensor_names);
        for (int i = 1; i < f->n_tensors; i++) {
            if (strcmp(f->tensors[i - 1].name, f->tensors[i].name) == 0) {
                rc = err_set("%s: tensor '%s' appears twice in the header", f->path,
                             f->tensors[i].name);
                break;
            }
        }
    }
    return rc;
}

SafeTensorsFile *safetensors_open(const char *path) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        err_set("cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        err_set("cannot open %s: not a regular file", path);
        close(fd);
        return NULL;
    }
    if (st.st_size < 8) {
        err_set("%s: %lld bytes is too short for a safetensors file (truncated?)", path,
                (long long)st.st_size);
        close(fd);
        return NULL;
    }
    void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) {
        err_set("cannot map %s: %s", path, strerror(errno));
        return NULL;
    }

    SafeTensorsFile *f = xcalloc(1, sizeof *f);
    f->path = xstrdup(path);
    f->map = map;
    f->size = (size_t)st.st_size;

    uint64_t header_len = 0;
    memcpy(&header_len, map, 8);
    int rc = 0;
    if (header_len > SAFETENSORS_MAX_HEADER || header_len > f->size - 8) {
        rc = err_set("%s: header length %llu is invalid for a %zu-byte file (not a safetensors "
                     "file, or truncated)",
                     path, (unsigned long long)header_len, f->size);
    } else if (header_len < 2 || ((const char *)map)[8] != '{') {
        rc = err_set("%s: the header does not start with '{' (not a safetensors file)", path);
    } else {
        const uint8_t *base = map;
        rc = parse_header(f, (const char *)base + 8, (size_t)header_len,
                          f->size - 8 - (size_t)header_len, base + 8 + header_len);
    }
    if (rc != 0) {
        safetensors_close(f);
        return NULL;
    }
    return f;
}

void safetensors_close(SafeTensorsFile *f) {
    if (!f) {
        return;
    }
    for (int i = 0; i < f->n_tensors; i++) {
        free(f->tensors[i].name);
    }
    free(f->tensors);
    cJSON_Delete(f->metadata);
    if (f->map) {
        munmap(f->map, f->size);
    }
    free(f->path);
    free(f);
}

static const SafeTensor *file_find(const SafeTensorsFile *f, const char *name) {
    int lo = 0, hi = f->n_tensors - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        int c = strcmp(f->tensors[mid].name, name);
        if (c == 0) {
            return &f->tensors[mid];
        }
        if (c < 0) {
            lo = mid + 1;
        } else {
            hi = mid - 1;
        }
    }
    return NULL;
}

const SafeTensor *safetensors_find(const SafeTensorsSet *set, const char *name) {
    for (int i = 0; i < set->n_files; i++) {
        const SafeTensor *t = file_find(set->files[i], name);
        if (t) {
            return t;
        }
    }
    return NULL;
}

void safetensors_set_close(SafeTensorsSet *set) {
    if (!set) {
        return;
    }
    for (int i = 0; i < set->n_files; i++) {
        safetensors_close(set->files[i]);
    }
    free(set->files);
    free(set);
}

static SafeTensorsSet *open_index(const char *folder, const char *index_path) {
    char *text = NULL;
    size_t len = 0;
    if (file_read_all(index_path, &text, &len) != 0) {
        return NULL;
    }
    cJSON *index = cJSON_Parse(text);
    free(text);
    const cJSON *map = cJSON_GetObjectItemCaseSensitive(index, "weight_map");
    if (!cJSON_IsObject(map)) {
        err_set("%s: expected a JSON object with a 'weight_map' object", index_path);
        cJSON_Delete(index);
        return NULL;
    }

    SafeTensorsSet *set = xcalloc(1, sizeof *set);
    set->files = xcalloc((size_t)cJSON_GetArraySize(map) + 1, sizeof(SafeTensorsFile *));
    char **names = xcalloc((size_t)cJSON_GetArraySize(map) + 1, sizeof(char *));
    int rc = 0;
    const cJSON *entry;
    cJSON_ArrayForEach(entry, map) {
        if (!cJSON_IsString(entry) || strchr(entry->valuestring, '/') ||
            entry->valuestring[0] == '.' || entry->valuestring[0] == '\0') {
            rc = err_set("%s: weight_map entry '%s' must name a shard file in the same folder",
                         index_path, entry->string);
            break;
        }
        int shard = -1;
        for (int i = 0; i < set->n_files; i++) {
            if (strcmp(names[i], entry->valuestring) == 0) {
                shard = i;
            }
        }
        if (shard < 0) {
            char *path = path_join(folder, entry->valuestring);
            SafeTensorsFile *f = safetensors_open(path);
            free(path);
            if (!f) {
                rc = err_prefix("%s names shard %s", index_path, entry->valuestring);
                break;
            }
            shard = set->n_files;
            names[shard] = xstrdup(entry->valuestring);
            set->files[set->n_files++] = f;
        }
        if (!file_find(set->files[shard], entry->string)) {
            rc = err_set("%s: tensor '%s' is mapped to %s, which does not contain it", index_path,
                         entry->string, entry->valuestring);
            break;
        }
    }
    for (int i = 0; i < set->n_files; i++) {
        free(names[i]);
    }
    free(names);
    cJSON_Delete(index);
    if (rc == 0 && set->n_files == 0) {
        rc = err_set("%s: weight_map is empty", index_path);
    }
    if (rc != 0) {
        safetensors_set_close(set);
        return NULL;
    }
    return set;
}

SafeTensorsSet *safetensors_open_folder(const char *folder) {
    char *single = path_join(folder, "model.safetensors");
    char *index = path_join(folder, "model.safetensors.index.json");
    SafeTensorsSet *set = NULL;
    if (file_exists(single)) {
        SafeTensorsFile *f = safetensors_open(single);
        if (f) {
            set = xcalloc(1, sizeof *set);
            set->files = xcalloc(1, sizeof(SafeTensorsFile *));
            set->files[0] = f;
            set->n_files = 1;
        }
    } else if (file_exists(index)) {
        set = open_index(folder, index);
    } else {
        err_set("%s: neither model.safetensors nor model.safetensors.index.json was found; a "
                "Hugging Face model folder needs one of them",
                folder);
    }
    free(single);
    free(index);
    return set;
}
