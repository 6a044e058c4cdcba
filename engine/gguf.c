// gguf.c: the GGUF reader (see gguf.h for the layout and the guarantees).
#include "gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

// Arrays nest in the format; real files use at most one level. The limit keeps a crafted file from
// exhausting the stack through recursion.
#define GGUF_MAX_ARRAY_DEPTH 8
#define GGUF_MAX_DIMS 4
#define GGUF_DEFAULT_ALIGNMENT 32

// A bounds-checked cursor over the mapped file. Every read checks the remaining length first.
typedef struct {
    const uint8_t *base;
    size_t size;
    size_t pos;
    const char *path;
} Cursor;

static const char *type_names[GGUF_TYPE_COUNT] = {
    "uint8", "int8", "uint16", "int16", "uint32", "int32", "float32",
    "bool", "string", "array", "uint64", "int64", "float64",
};

static const size_t scalar_sizes[GGUF_TYPE_COUNT] = {
    [GGUF_TYPE_UINT8] = 1, [GGUF_TYPE_INT8] = 1,    [GGUF_TYPE_UINT16] = 2,
    [GGUF_TYPE_INT16] = 2, [GGUF_TYPE_UINT32] = 4,  [GGUF_TYPE_INT32] = 4,
    [GGUF_TYPE_FLOAT32] = 4, [GGUF_TYPE_BOOL] = 1,  [GGUF_TYPE_UINT64] = 8,
    [GGUF_TYPE_INT64] = 8, [GGUF_TYPE_FLOAT64] = 8,
};

const char *gguf_type_name(GGUFType type) {
    return (unsigned)type < GGUF_TYPE_COUNT ? type_names[type] : "invalid";
}

static size_t cursor_left(const Cursor *c) {
    return c->size - c->pos;
}

static int cursor_read(Cursor *c, void *out, size_t n, const char *what) {
    if (cursor_left(c) < n) {
        return err_set("%s: truncated file: %s needs %zu bytes at offset %zu but only %zu remain "
                       "(re-download or re-convert the file; for a file from qbias quantize, "
                       "run it again)",
                       c->path, what, n, c->pos, cursor_left(c));
    }
    memcpy(out, c->base + c->pos, n);
    c->pos += n;
    return 0;
}

static int cursor_u32(Cursor *c, uint32_t *out, const char *what) {
    return cursor_read(c, out, 4, what);
}

static int cursor_u64(Cursor *c, uint64_t *out, const char *what) {
    return cursor_read(c, out, 8, what);
}

static int cursor_string(Cursor *c, GGUFString *out, const char *what) {
    uint64_t len = 0;
    if (cursor_u64(c, &len, what) != 0) {
        return -1;
    }
    if (len > cursor_left(c)) {
        return err_set("%s: invalid %s at offset %zu: string length %llu exceeds the %zu bytes "
                       "left in the file (the file is truncated or corrupt)",
                       c->path, what, c->pos - 8, (unsigned long long)len, cursor_left(c));
    }
    out->data = (const char *)c->base + c->pos;
    out->len = len;
    c->pos += len;
    return 0;
}

static int compare_strings(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

// Sorts `names` in place and returns a name that occurs twice, or NULL. Sorting keeps this
// O(n log n), so a crafted file with many entries cannot stall the check.
static const char *find_duplicate_name(char **names, size_t n) {
    qsort(names, n, sizeof *names, compare_strings);
    for (size_t i = 1; i < n; i++) {
        if (strcmp(names[i - 1], names[i]) == 0) {
            return names[i];
        }
    }
    return NULL;
}

static void value_free(GGUFValue *v) {
    if (v->type != GGUF_TYPE_ARRAY) {
        return;
    }
    free(v->arr.strings);
    if (v->arr.items) {
        for (uint64_t i = 0; i < v->arr.n; i++) {
            value_free(&v->arr.items[i]);
        }
        free(v->arr.items);
    }
    v->arr.strings = NULL;
    v->arr.items = NULL;
}

static int read_scalar(Cursor *c, GGUFType type, GGUFValue *v, const char *key) {
    uint8_t raw[8] = {0};
    if (cursor_read(c, raw, scalar_sizes[type], key) != 0) {
        return -1;
    }
    v->type = type;
    switch (type) {
    case GGUF_TYPE_UINT8: v->u64 = raw[0]; break;
    case GGUF_TYPE_INT8: v->i64 = (int8_t)raw[0]; break;
    case GGUF_TYPE_UINT16: { uint16_t x; memcpy(&x, raw, 2); v->u64 = x; break; }
    case GGUF_TYPE_INT16: { int16_t x; memcpy(&x, raw, 2); v->i64 = x; break; }
    case GGUF_TYPE_UINT32: { uint32_t x; memcpy(&x, raw, 4); v->u64 = x; break; }
    case GGUF_TYPE_INT32: { int32_t x; memcpy(&x, raw, 4); v->i64 = x; break; }
    case GGUF_TYPE_UINT64: { uint64_t x; memcpy(&x, raw, 8); v->u64 = x; break; }
    case GGUF_TYPE_INT64: { int64_t x; memcpy(&x, raw, 8); v->i64 = x; break; }
    case GGUF_TYPE_FLOAT32: { float x; memcpy(&x, raw, 4); v->f64 = x; break; }
    case GGUF_TYPE_FLOAT64: { double x; memcpy(&x, raw, 8); v->f64 = x; break; }
    case GGUF_TYPE_BOOL:
        if (raw[0] > 1) {
            return err_set("%s: invalid bool value %u for key '%s' at offset %zu (expected 0 or 1)",
                           c->path, raw[0], key, c->pos - 1);
        }
        v->b = raw[0] != 0;
        break;
    default:
        return err_set("%s: internal error: %s is not a scalar type", c->path, gguf_type_name(type));
    }
    return 0;
}

static int read_value(Cursor *c, GGUFType type, GGUFValue *v, const char *key, int depth);

static int read_array(Cursor *c, GGUFValue *v, const char *key, int depth) {
    memset(v, 0, sizeof *v);
    v->type = GGUF_TYPE_ARRAY;
    if (depth >= GGUF_MAX_ARRAY_DEPTH) {
        return err_set("%s: key '%s' nests arrays more than %d levels deep (corrupt file)", c->path,
                       key, GGUF_MAX_ARRAY_DEPTH);
    }

    uint32_t elem_type = 0;
    uint64_t n = 0;
    if (cursor_u32(c, &elem_type, key) != 0 || cursor_u64(c, &n, key) != 0) {
        return -1;
    }
    if (elem_type >= GGUF_TYPE_COUNT) {
        return err_set("%s: key '%s' has an array of invalid element type %u at offset %zu "
                       "(valid types are 0..12; the file is corrupt)",
                       c->path, key, elem_type, c->pos - 12);
    }
    v->arr.elem_type = (GGUFType)elem_type;
    v->arr.n = n;

    if (elem_type == GGUF_TYPE_STRING) {
        // Each string takes at least its 8-byte length, which bounds n before allocating.
        if (n > cursor_left(c) / 8) {
            return err_set("%s: key '%s' claims %llu strings but only %zu bytes remain "
                           "(truncated or corrupt file)",
                           c->path, key, (unsigned long long)n, cursor_left(c));
        }
        v->arr.strings = xmalloc((size_t)n * sizeof(GGUFString));
        for (uint64_t i = 0; i < n; i++) {
            char what[320];
            snprintf(what, sizeof what, "element %llu of key '%s'", (unsigned long long)i, key);
            if (cursor_string(c, &v->arr.strings[i], what) != 0) {
                return -1;
            }
        }
        return 0;
    }

    if (elem_type == GGUF_TYPE_ARRAY) {
        // A nested array takes at least 12 bytes (type and count).
        if (n > cursor_left(c) / 12) {
            return err_set("%s: key '%s' claims %llu nested arrays but only %zu bytes remain "
                           "(truncated or corrupt file)",
                           c->path, key, (unsigned long long)n, cursor_left(c));
        }
        v->arr.items = xcalloc((size_t)n, sizeof(GGUFValue));
        for (uint64_t i = 0; i < n; i++) {
            if (read_array(c, &v->arr.items[i], key, depth + 1) != 0) {
                return -1;
            }
        }
        return 0;
    }

    size_t bytes;
    if (!size_mul((size_t)n, scalar_sizes[elem_type], &bytes) || n > SIZE_MAX ||
        bytes > cursor_left(c)) {
        return err_set("%s: key '%s' claims %llu elements of type %s but only %zu bytes remain "
                       "(truncated or corrupt file)",
                       c->path, key, (unsigned long long)n, gguf_type_name(elem_type),
                       cursor_left(c));
    }
    if (elem_type == GGUF_TYPE_BOOL) {
        for (uint64_t i = 0; i < n; i++) {
            if (c->base[c->pos + i] > 1) {
                return err_set("%s: key '%s' element %llu is an invalid bool %u (corrupt file)",
                               c->path, key, (unsigned long long)i, c->base[c->pos + i]);
            }
        }
    }
    v->arr.raw = c->base + c->pos;
    c->pos += bytes;
    return 0;
}

static int read_value(Cursor *c, GGUFType type, GGUFValue *v, const char *key, int depth) {
    if (type == GGUF_TYPE_STRING) {
        v->type = GGUF_TYPE_STRING;
        return cursor_string(c, &v->str, key);
    }
    if (type == GGUF_TYPE_ARRAY) {
        return read_array(c, v, key, depth);
    }
    return read_scalar(c, type, v, key);
}

// Reads the key-value section. On failure the keys read so far stay in f->kv for gguf_close().
static int read_metadata(Cursor *c, GGUFFile *f, uint64_t n_read) {
    // A key-value pair takes at least 8 (key length) + 4 (type) + 1 bytes.
    if (n_read > cursor_left(c) / 13) {
        return err_set("%s: header claims %llu metadata keys, more than the file can hold "
                       "(corrupt file)",
                       c->path, (unsigned long long)n_read);
    }
    f->kv = xcalloc((size_t)n_read ? (size_t)n_read : 1, sizeof(GGUFKeyValue));
    f->n_kv = 0;
    for (uint64_t i = 0; i < n_read; i++) {
        GGUFString key;
        if (cursor_string(c, &key, "metadata key") != 0) {
            return err_prefix("metadata key %llu", (unsigned long long)i);
        }
        if (key.len == 0 || memchr(key.data, '\0', key.len)) {
            return err_set("%s: metadata key %llu at offset %zu is empty or contains a NUL byte "
                           "(corrupt file)",
                           c->path, (unsigned long long)i, c->pos - key.len);
        }
        GGUFKeyValue *kv = &f->kv[f->n_kv];
        kv->key = xstrndup(key.data, key.len);
        f->n_kv++;

        uint32_t type = 0;
        if (cursor_u32(c, &type, kv->key) != 0) {
            return -1;
        }
        if (type >= GGUF_TYPE_COUNT) {
            return err_set("%s: key '%s' has invalid value type %u (valid types are 0..12; the "
                           "file is corrupt)",
                           c->path, kv->key, type);
        }
        if (read_value(c, (GGUFType)type, &kv->value, kv->key, 0) != 0) {
            return -1;
        }
    }

    char **keys = xmalloc((size_t)f->n_kv * sizeof *keys + 1);
    for (uint64_t i = 0; i < f->n_kv; i++) {
        keys[i] = f->kv[i].key;
    }
    const char *duplicate = find_duplicate_name(keys, (size_t)f->n_kv);
    int rc = duplicate ? err_set("%s: duplicate metadata key '%s' (corrupt file)", c->path, duplicate)
                       : 0;
    free(keys);
    return rc;
}

static int read_alignment(GGUFFile *f) {
    f->alignment = GGUF_DEFAULT_ALIGNMENT;
    const GGUFValue *v = gguf_find(f, "general.alignment");
    if (!v) {
        return 0;
    }
    if (v->type != GGUF_TYPE_UINT32) {
        return err_set("%s: general.alignment has type %s, expected uint32", f->path,
                       gguf_type_name(v->type));
    }
    // ggml requires a power of two and the GGUF specification a multiple of 8; both together
    // keep every F32/F16/BF16 tensor aligned for its element type.
    if (v->u64 < 8 || (v->u64 & (v->u64 - 1)) != 0) {
        return err_set("%s: general.alignment is %llu, expected a power of two of at least 8 (the "
                       "GGUF specification requires a multiple of 8)",
                       f->path, (unsigned long long)v->u64);
    }
    f->alignment = (uint32_t)v->u64;
    return 0;
}

static int read_tensor_info(Cursor *c, GGUFFile *f, GGUFTensor *t, uint64_t index) {
    GGUFString name;
    if (cursor_string(c, &name, "tensor name") != 0) {
        return err_prefix("tensor %llu", (unsigned long long)index);
    }
    if (memchr(name.data, '\0', name.len)) {
        return err_set("%s: tensor %llu name contains a NUL byte (corrupt file)", c->path,
                       (unsigned long long)index);
    }
    t->name = xstrndup(name.data, name.len);

    if (cursor_u32(c, &t->n_dims, t->name) != 0) {
        return -1;
    }
    if (t->n_dims < 1 || t->n_dims > GGUF_MAX_DIMS) {
        return err_set("%s: tensor '%s' has %u dimensions, expected 1..%d (corrupt file)", c->path,
                       t->name, t->n_dims, GGUF_MAX_DIMS);
    }
    for (int d = 0; d < GGUF_MAX_DIMS; d++) {
        t->ne[d] = 1;
    }
    for (uint32_t d = 0; d < t->n_dims; d++) {
        uint64_t ne = 0;
        if (cursor_u64(c, &ne, t->name) != 0) {
            return -1;
        }
        if (ne == 0 || ne > (uint64_t)INT64_MAX) {
            return err_set("%s: tensor '%s' dimension %u is %llu, expected 1..2^63-1 (corrupt file)",
                           c->path, t->name, d, (unsigned long long)ne);
        }
        t->ne[d] = (int64_t)ne;
    }

    uint32_t type = 0;
    if (cursor_u32(c, &type, t->name) != 0 || cursor_u64(c, &t->offset, t->name) != 0) {
        return -1;
    }
    const GGMLTypeInfo *info = ggml_type_info(type);
    if (!info) {
        return err_set("%s: tensor '%s' has unknown ggml type %u (corrupt file, or written by a "
                       "newer llama.cpp than qbias knows)",
                       c->path, t->name, type);
    }
    t->type = (GGMLType)type;

    if (t->ne[0] % info->block_size != 0) {
        return err_set("%s: tensor '%s' of type %s has %lld columns, not a multiple of the block "
                       "size %u (corrupt file)",
                       c->path, t->name, info->name, (long long)t->ne[0], info->block_size);
    }

    // Element count and byte size, each product checked for overflow.
    size_t n_elements = 1;
    for (int d = 0; d < GGUF_MAX_DIMS; d++) {
        if (!size_mul(n_elements, (size_t)t->ne[d], &n_elements) || n_elements > INT64_MAX) {
            return err_set("%s: tensor '%s' has too many elements (the product of its dimensions "
                           "overflows; corrupt file)",
                           c->path, t->name);
        }
    }
    size_t nbytes;
    if (!size_mul(n_elements / info->block_size, info->type_size, &nbytes)) {
        return err_set("%s: tensor '%s' byte size overflows (corrupt file)", c->path, t->name);
    }
    t->nbytes = nbytes;

    if (t->offset % f->alignment != 0) {
        return err_set("%s: tensor '%s' offset %llu is not a multiple of the alignment %u "
                       "(corrupt file)",
                       c->path, t->name, (unsigned long long)t->offset, f->alignment);
    }
    return 0;
}

static int compare_tensor_offsets(const void *a, const void *b) {
    const GGUFTensor *x = *(const GGUFTensor *const *)a, *y = *(const GGUFTensor *const *)b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

// Checks that every tensor lies inside the file and that no two tensors overlap.
static int check_tensor_ranges(GGUFFile *f) {
    size_t data_size = f->size - f->data_offset;
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        GGUFTensor *t = &f->tensors[i];
        if (t->offset > data_size || t->nbytes > data_size - t->offset) {
            return err_set("%s: tensor '%s' (%s, %zu bytes at data offset %llu) extends past the "
                           "end of the file (%zu data bytes); the file is truncated: re-download "
                           "it (or run qbias quantize again for a file it wrote)",
                           f->path, t->name, ggml_type_name(t->type), t->nbytes,
                           (unsigned long long)t->offset, data_size);
        }
        t->data = (const uint8_t *)f->map + f->data_offset + t->offset;
    }

    if (f->n_tensors < 2) {
        return 0;
    }
    GGUFTensor **sorted = xmalloc((size_t)f->n_tensors * sizeof *sorted);
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        sorted[i] = &f->tensors[i];
    }
    qsort(sorted, (size_t)f->n_tensors, sizeof *sorted, compare_tensor_offsets);
    int rc = 0;
    for (uint64_t i = 1; i < f->n_tensors; i++) {
        const GGUFTensor *prev = sorted[i - 1], *cur = sorted[i];
        if (prev->offset + prev->nbytes > cur->offset) {
            rc = err_set("%s: tensors '%s' and '%s' overlap in the data section (corrupt file)",
                         f->path, prev->name, cur->name);
            break;
        }
    }
    free(sorted);
    return rc;
}

static int read_tensor_infos(Cursor *c, GGUFFile *f, uint64_t n_read) {
    // A tensor info takes at least 8 + 4 + 8 + 4 + 8 bytes.
    if (n_read > cursor_left(c) / 32) {
        return err_set("%s: header claims %llu tensors, more than the file can hold (corrupt file)",
                       c->path, (unsigned long long)n_read);
    }
    f->tensors = xcalloc((size_t)n_read ? (size_t)n_read : 1, sizeof(GGUFTensor));
    f->n_tensors = 0;
    for (uint64_t i = 0; i < n_read; i++) {
        f->n_tensors++;
        if (read_tensor_info(c, f, &f->tensors[i], i) != 0) {
            return -1;
        }
    }

    char **names = xmalloc((size_t)f->n_tensors * sizeof *names + 1);
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        names[i] = f->tensors[i].name;
    }
    const char *duplicate = find_duplicate_name(names, (size_t)f->n_tensors);
    if (duplicate) {
        err_set("%s: duplicate tensor name '%s' (corrupt file)", c->path, duplicate);
    }
    free(names);
    if (duplicate) {
        return -1;
    }

    // The data section starts at the next multiple of the alignment.
    size_t pad = (f->alignment - c->pos % f->alignment) % f->alignment;
    if (f->n_tensors > 0 && pad > cursor_left(c)) {
        return err_set("%s: truncated file: the data section would start at offset %zu, past the "
                       "end of the %zu-byte file",
                       c->path, c->pos + pad, c->size);
    }
    f->data_offset = c->pos + pad;
    if (f->data_offset > f->size) {
        f->data_offset = f->size; // vocabulary-only files may end right after the tensor infos
    }
    return check_tensor_ranges(f);
}

static int parse(GGUFFile *f) {
    Cursor c = {.base = f->map, .size = f->size, .pos = 0, .path = f->path};

    char magic[4];
    if (cursor_read(&c, magic, 4, "magic") != 0) {
        return -1;
    }
    if (memcmp(magic, "GGUF", 4) != 0) {
        return err_set("%s: not a GGUF file (the first 4 bytes are not \"GGUF\")", f->path);
    }
    if (cursor_u32(&c, &f->version, "version") != 0) {
        return -1;
    }
    if (f->version == 1) {
        return err_set("%s: GGUF version 1 is not supported; convert the file again with a current "
                       "llama.cpp (version 3)",
                       f->path);
    }
    if (f->version != 2 && f->version != 3) {
        // A byte-swapped version number means the file was written big-endian.
        return err_set("%s: unsupported GGUF version %u (qbias reads versions 2 and 3%s)", f->path,
                       f->version,
                       (f->version & 0xffff) == 0 ? "; this looks like a big-endian file" : "");
    }
    // The counts go into f only together with their arrays, so gguf_close() never walks an
    // array that was not allocated.
    uint64_t n_tensors = 0, n_kv = 0;
    if (cursor_u64(&c, &n_tensors, "tensor count") != 0 ||
        cursor_u64(&c, &n_kv, "metadata key count") != 0) {
        return -1;
    }
    if (read_metadata(&c, f, n_kv) != 0 || read_alignment(f) != 0) {
        return -1;
    }
    return read_tensor_infos(&c, f, n_tensors);
}

GGUFFile *gguf_open(const char *path) {
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
    if (st.st_size == 0) {
        err_set("%s: the file is empty (a failed download?)", path);
        close(fd);
        return NULL;
    }

    void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd); // the mapping keeps the file open
    if (map == MAP_FAILED) {
        err_set("cannot map %s: %s", path, strerror(errno));
        return NULL;
    }

    GGUFFile *f = xcalloc(1, sizeof *f);
    f->path = xstrdup(path);
    f->map = map;
    f->size = (size_t)st.st_size;
    if (parse(f) != 0) {
        gguf_close(f);
        return NULL;
    }
    return f;
}

void gguf_close(GGUFFile *f) {
    if (!f) {
        return;
    }
    for (uint64_t i = 0; i < f->n_kv; i++) {
        free(f->kv[i].key);
        value_free(&f->kv[i].value);
    }
    free(f->kv);
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        free(f->tensors[i].name);
    }
    free(f->tensors);
    if (f->map) {
        munmap(f->map, f->size);
    }
    free(f->path);
    free(f);
}

// ----------------------------------------------------------------------------
// Lookup

const GGUFValue *gguf_find(const GGUFFile *f, const char *key) {
    for (uint64_t i = 0; i < f->n_kv; i++) {
        if (strcmp(f->kv[i].key, key) == 0) {
            return &f->kv[i].value;
        }
    }
    return NULL;
}

static bool type_is_unsigned(GGUFType t) {
    return t == GGUF_TYPE_UINT8 || t == GGUF_TYPE_UINT16 || t == GGUF_TYPE_UINT32 ||
           t == GGUF_TYPE_UINT64;
}

static bool type_is_signed(GGUFType t) {
    return t == GGUF_TYPE_INT8 || t == GGUF_TYPE_INT16 || t == GGUF_TYPE_INT32 ||
           t == GGUF_TYPE_INT64;
}

static int wrong_type(const GGUFFile *f, const char *key, GGUFType actual, const char *expected) {
    return err_set("%s: metadata key '%s' has type %s, expected %s", f->path, key,
                   gguf_type_name(actual), expected);
}

int gguf_get_int(const GGUFFile *f, const char *key, int64_t *out) {
    const GGUFValue *v = gguf_find(f, key);
    if (!v) {
        return 0;
    }
    if (type_is_unsigned(v->type)) {
        if (v->u64 > (uint64_t)INT64_MAX) {
            return err_set("%s: metadata key '%s' value %llu is out of range", f->path, key,
                           (unsigned long long)v->u64);
        }
        *out = (int64_t)v->u64;
        return 1;
    }
    if (type_is_signed(v->type)) {
        *out = v->i64;
        return 1;
    }
    return wrong_type(f, key, v->type, "an integer");
}

int gguf_get_float(const GGUFFile *f, const char *key, double *out) {
    const GGUFValue *v = gguf_find(f, key);
    if (!v) {
        return 0;
    }
    if (v->type == GGUF_TYPE_FLOAT32 || v->type == GGUF_TYPE_FLOAT64) {
        *out = v->f64;
        return 1;
    }
    if (type_is_unsigned(v->type)) {
        *out = (double)v->u64;
        return 1;
    }
    if (type_is_signed(v->type)) {
        *out = (double)v->i64;
        return 1;
    }
    return wrong_type(f, key, v->type, "a number");
}

int gguf_get_bool(const GGUFFile *f, const char *key, bool *out) {
    const GGUFValue *v = gguf_find(f, key);
    if (!v) {
        return 0;
    }
    if (v->type != GGUF_TYPE_BOOL) {
        return wrong_type(f, key, v->type, "bool");
    }
    *out = v->b;
    return 1;
}

int gguf_get_string(const GGUFFile *f, const char *key, char **out) {
    const GGUFValue *v = gguf_find(f, key);
    if (!v) {
        return 0;
    }
    if (v->type != GGUF_TYPE_STRING) {
        return wrong_type(f, key, v->type, "string");
    }
    *out = xstrndup(v->str.data, v->str.len);
    return 1;
}

int gguf_get_array(const GGUFFile *f, const char *key, const GGUFArray **out) {
    const GGUFValue *v = gguf_find(f, key);
    if (!v) {
        return 0;
    }
    if (v->type != GGUF_TYPE_ARRAY) {
        return wrong_type(f, key, v->type, "array");
    }
    *out = &v->arr;
    return 1;
}

double gguf_array_get_float(const GGUFArray *a, uint64_t i) {
    const uint8_t *p = a->raw + i * scalar_sizes[a->elem_type];
    switch (a->elem_type) {
    case GGUF_TYPE_FLOAT32: { float x; memcpy(&x, p, 4); return x; }
    case GGUF_TYPE_FLOAT64: { double x; memcpy(&x, p, 8); return x; }
    default: return (double)gguf_array_get_int(a, i);
    }
}

int64_t gguf_array_get_int(const GGUFArray *a, uint64_t i) {
    const uint8_t *p = a->raw + i * scalar_sizes[a->elem_type];
    switch (a->elem_type) {
    case GGUF_TYPE_UINT8: return p[0];
    case GGUF_TYPE_INT8: return (int8_t)p[0];
    case GGUF_TYPE_BOOL: return p[0];
    case GGUF_TYPE_UINT16: { uint16_t x; memcpy(&x, p, 2); return x; }
    case GGUF_TYPE_INT16: { int16_t x; memcpy(&x, p, 2); return x; }
    case GGUF_TYPE_UINT32: { uint32_t x; memcpy(&x, p, 4); return x; }
    case GGUF_TYPE_INT32: { int32_t x; memcpy(&x, p, 4); return x; }
    case GGUF_TYPE_UINT64: { uint64_t x; memcpy(&x, p, 8); return (int64_t)x; }
    case GGUF_TYPE_INT64: { int64_t x; memcpy(&x, p, 8); return x; }
    case GGUF_TYPE_FLOAT32: { float x; memcpy(&x, p, 4); return (int64_t)x; }
    case GGUF_TYPE_FLOAT64: { double x; memcpy(&x, p, 8); return (int64_t)x; }
    default: return 0;
    }
}

const GGUFTensor *gguf_find_tensor(const GGUFFile *f, const char *name) {
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        if (strcmp(f->tensors[i].name, name) == 0) {
            return &f->tensors[i];
        }
    }
    return NULL;
}
