// gguf_write.c: writes GGUF version 3 files (API in gguf.h).
//
// Metadata is serialized into a byte buffer as it is added; tensor data is streamed from the
// caller's buffers when the file is written, so a multi-gigabyte model is never copied in memory.
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gguf.h"
#include "util.h"

typedef struct {
    char *name;
    GGMLType type;
    int n_dims;
    int64_t ne[4];
    const void *data;
    size_t nbytes;
    uint64_t offset;
} WriterTensor;

struct GGUFWriter {
    StrBuf kv;            // serialized key-value pairs
    uint64_t n_kv;
    char **keys;          // for the duplicate check
    WriterTensor *tensors;
    int n_tensors;
    uint32_t alignment;
};

GGUFWriter *gguf_writer_new(void) {
    GGUFWriter *w = xcalloc(1, sizeof *w);
    sb_init(&w->kv);
    w->alignment = 32;
    return w;
}

void gguf_writer_free(GGUFWriter *w) {
    if (!w) {
        return;
    }
    sb_free(&w->kv);
    for (uint64_t i = 0; i < w->n_kv; i++) {
        free(w->keys[i]);
    }
    free(w->keys);
    for (int i = 0; i < w->n_tensors; i++) {
        free(w->tensors[i].name);
    }
    free(w->tensors);
    free(w);
}

static void put_bytes(GGUFWriter *w, const void *p, size_t n) {
    sb_append_n(&w->kv, p, n);
}

static void put_u32(GGUFWriter *w, uint32_t v) {
    put_bytes(w, &v, 4);
}

static void put_u64(GGUFWriter *w, uint64_t v) {
    put_bytes(w, &v, 8);
}

static void put_string(GGUFWriter *w, const char *s, uint64_t len) {
    put_u64(w, len);
    put_bytes(w, s, (size_t)len);
}

static void begin_key(GGUFWriter *w, const char *key, GGUFType type) {
    for (uint64_t i = 0; i < w->n_kv; i++) {
        if (strcmp(w->keys[i], key) == 0) {
            fprintf(stderr, "error: gguf writer: key '%s' added twice\n", key);
            abort();
        }
    }
    w->keys = xrealloc(w->keys, (size_t)(w->n_kv + 1) * sizeof(char *));
    w->keys[w->n_kv++] = xstrdup(key);
    put_string(w, key, strlen(key));
    put_u32(w, (uint32_t)type);
}

void gguf_writer_set_u32(GGUFWriter *w, const char *key, uint32_t value) {
    begin_key(w, key, GGUF_TYPE_UINT32);
    put_u32(w, value);
    if (strcmp(key, "general.alignment") == 0 && value != 0 && (value & (value - 1)) == 0) {
        w->alignment = value;
    }
}

void gguf_writer_set_i32(GGUFWriter *w, const char *key, int32_t value) {
    begin_key(w, key, GGUF_TYPE_INT32);
    put_bytes(w, &value, 4);
}

void gguf_writer_set_u64(GGUFWriter *w, const char *key, uint64_t value) {
    begin_key(w, key, GGUF_TYPE_UINT64);
    put_u64(w, value);
}

void gguf_writer_set_f32(GGUFWriter *w, const char *key, float value) {
    begin_key(w, key, GGUF_TYPE_FLOAT32);
    put_bytes(w, &value, 4);
}

void gguf_writer_set_f64(GGUFWriter *w, const char *key, double value) {
    begin_key(w, key, GGUF_TYPE_FLOAT64);
    put_bytes(w, &value, 8);
}

void gguf_writer_set_bool(GGUFWriter *w, const char *key, bool value) {
    begin_key(w, key, GGUF_TYPE_BOOL);
    uint8_t b = value ? 1 : 0;
    put_bytes(w, &b, 1);
}

void gguf_writer_set_string(GGUFWriter *w, const char *key, const char *value) {
    begin_key(w, key, GGUF_TYPE_STRING);
    put_string(w, value, strlen(value));
}

static size_t scalar_size(GGUFType type) {
    switch (type) {
    case GGUF_TYPE_UINT8: case GGUF_TYPE_INT8: case GGUF_TYPE_BOOL: return 1;
    case GGUF_TYPE_UINT16: case GGUF_TYPE_INT16: return 2;
    case GGUF_TYPE_UINT32: case GGUF_TYPE_INT32: case GGUF_TYPE_FLOAT32: return 4;
    case GGUF_TYPE_UINT64: case GGUF_TYPE_INT64: case GGUF_TYPE_FLOAT64: return 8;
    default: return 0;
    }
}

void gguf_writer_set_array(GGUFWriter *w, const char *key, GGUFType elem_type, const void *data,
                           uint64_t n) {
    size_t size = scalar_size(elem_type);
    if (size == 0) {
        fprintf(stderr, "error: gguf writer: key '%s': %s is not a scalar element type\n", key,
                gguf_type_name(elem_type));
        abort();
    }
    begin_key(w, key, GGUF_TYPE_ARRAY);
    put_u32(w, (uint32_t)elem_type);
    put_u64(w, n);
    put_bytes(w, data, (size_t)n * size);
}

void gguf_writer_set_string_array(GGUFWriter *w, const char *key, const char *const *values,
                                  uint64_t n) {
    begin_key(w, key, GGUF_TYPE_ARRAY);
    put_u32(w, GGUF_TYPE_STRING);
    put_u64(w, n);
    for (uint64_t i = 0; i < n; i++) {
        put_string(w, values[i], strlen(values[i]));
    }
}

static void put_value(GGUFWriter *w, const GGUFValue *v);

static void put_array(GGUFWriter *w, const GGUFArray *a) {
    put_u32(w, (uint32_t)a->elem_type);
    put_u64(w, a->n);
    if (a->elem_type == GGUF_TYPE_STRING) {
        for (uint64_t i = 0; i < a->n; i++) {
            put_string(w, a->strings[i].data, a->strings[i].len);
        }
    } else if (a->elem_type == GGUF_TYPE_ARRAY) {
        for (uint64_t i = 0; i < a->n; i++) {
            put_array(w, &a->items[i].arr);
        }
    } else {
        put_bytes(w, a->raw, (size_t)a->n * scalar_size(a->elem_type));
    }
}

static void put_value(GGUFWriter *w, const GGUFValue *v) {
    size_t size = scalar_size(v->type);
    switch (v->type) {
    case GGUF_TYPE_STRING:
        put_string(w, v->str.data, v->str.len);
        return;
    case GGUF_TYPE_ARRAY:
        put_array(w, &v->arr);
        return;
    case GGUF_TYPE_FLOAT32: {
        float f = (float)v->f64;
        put_bytes(w, &f, 4);
        return;
    }
    case GGUF_TYPE_FLOAT64:
        put_bytes(w, &v->f64, 8);
        return;
    case GGUF_TYPE_BOOL: {
        uint8_t b = v->b;
        put_bytes(w, &b, 1);
        return;
    }
    default: {
        // Integers: the low `size` bytes of the 64-bit value (little-endian host).
        uint64_t bits = v->u64;
        put_bytes(w, &bits, size);
        return;
    }
    }
}

void gguf_writer_copy_key(GGUFWriter *w, const GGUFFile *f, const char *key) {
    const GGUFValue *v = gguf_find(f, key);
    if (!v) {
        fprintf(stderr, "error: gguf writer: key '%s' not found in %s\n", key, f->path);
        abort();
    }
    begin_key(w, key, v->type);
    put_value(w, v);
    if (strcmp(key, "general.alignment") == 0 && v->type == GGUF_TYPE_UINT32) {
        w->alignment = (uint32_t)v->u64;
    }
}

void gguf_writer_add_tensor(GGUFWriter *w, const char *name, GGMLType type, int n_dims,
                            const int64_t *ne, const void *data) {
    const GGMLTypeInfo *info = ggml_type_info(type);
    if (!info || n_dims < 1 || n_dims > 4 || ne[0] % info->block_size != 0) {
        fprintf(stderr, "error: gguf writer: invalid tensor '%s'\n", name);
        abort();
    }
    WriterTensor t = {.name = xstrdup(name), .type = type, .n_dims = n_dims, .data = data};
    size_t n = 1;
    for (int d = 0; d < 4; d++) {
        t.ne[d] = d < n_dims ? ne[d] : 1;
        n *= (size_t)t.ne[d];
    }
    t.nbytes = n / info->block_size * info->type_size;
    w->tensors = xrealloc(w->tensors, (size_t)(w->n_tensors + 1) * sizeof(WriterTensor));
    w->tensors[w->n_tensors++] = t;
}

static int write_all(FILE *out, const void *p, size_t n, const char *path) {
    if (n > 0 && fwrite(p, 1, n, out) != n) {
        return err_set("cannot write %s: %s", path, strerror(errno));
    }
    return 0;
}

static int write_padding(FILE *out, uint64_t position, uint32_t alignment, const char *path) {
    static const uint8_t zeros[256] = {0};
    size_t pad = (size_t)((alignment - position % alignment) % alignment);
    while (pad > 0) {
        size_t n = pad < sizeof zeros ? pad : sizeof zeros;
        if (write_all(out, zeros, n, path) != 0) {
            return -1;
        }
        pad -= n;
    }
    return 0;
}

int gguf_writer_write(GGUFWriter *w, const char *path) {
    // Header and tensor infos, with data offsets aligned inside the data section.
    StrBuf head;
    sb_init(&head);
    uint32_t version = 3;
    uint64_t n_tensors = (uint64_t)w->n_tensors;
    sb_append_n(&head, "GGUF", 4);
    sb_append_n(&head, (const char *)&version, 4);
    sb_append_n(&head, (const char *)&n_tensors, 8);
    sb_append_n(&head, (const char *)&w->n_kv, 8);
    sb_append_n(&head, w->kv.data, w->kv.len);

    uint64_t offset = 0;
    for (int i = 0; i < w->n_tensors; i++) {
        WriterTensor *t = &w->tensors[i];
        offset += (w->alignment - offset % w->alignment) % w->alignment;
        t->offset = offset;
        offset += t->nbytes;

        uint64_t name_len = strlen(t->name);
        uint32_t n_dims = (uint32_t)t->n_dims, type = (uint32_t)t->type;
        sb_append_n(&head, (const char *)&name_len, 8);
        sb_append_n(&head, t->name, name_len);
        sb_append_n(&head, (const char *)&n_dims, 4);
        for (int d = 0; d < t->n_dims; d++) {
            uint64_t ne = (uint64_t)t->ne[d];
            sb_append_n(&head, (const char *)&ne, 8);
        }
        sb_append_n(&head, (const char *)&type, 4);
        sb_append_n(&head, (const char *)&t->offset, 8);
    }

    char *tmp = xasprintf("%s.tmp.%ld", path, (long)getpid());
    FILE *out = fopen(tmp, "wb");
    if (!out) {
        err_set("cannot create %s: %s", tmp, strerror(errno));
        free(tmp);
        sb_free(&head);
        return -1;
    }
    temp_file_register(tmp);
    int rc = write_all(out, head.data, head.len, tmp);
    uint64_t position = head.len;
    if (rc == 0 && w->n_tensors > 0) {
        rc = write_padding(out, position, w->alignment, tmp);
        position += (w->alignment - position % w->alignment) % w->alignment;
    }
    uint64_t data_start = position;
    for (int i = 0; rc == 0 && i < w->n_tensors; i++) {
        const WriterTensor *t = &w->tensors[i];
        rc = write_padding(out, position - data_start, w->alignment, tmp);
        position = data_start + t->offset;
        if (rc == 0) {
            rc = write_all(out, t->data, t->nbytes, tmp);
            position += t->nbytes;
        }
    }
    if (rc == 0 && (fflush(out) != 0 || fsync(fileno(out)) != 0)) {
        rc = err_set("cannot flush %s: %s", tmp, strerror(errno));
    }
    if (fclose(out) != 0 && rc == 0) {
        rc = err_set("cannot close %s: %s", tmp, strerror(errno));
    }
    if (rc == 0 && rename(tmp, path) != 0) {
        rc = err_set("cannot rename %s to %s: %s", tmp, path, strerror(errno));
    }
    if (rc != 0) {
        unlink(tmp);
    }
    temp_file_release(tmp);
    free(tmp);
    sb_free(&head);
    return rc;
}
