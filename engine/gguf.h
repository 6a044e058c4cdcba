// gguf.h: a reader for GGUF files (versions 2 and 3), the model format of llama.cpp.
//
// Layout (all little-endian), from ggml's docs/gguf.md:
//   magic "GGUF" | u32 version | u64 tensor_count | u64 metadata_kv_count
//   metadata_kv_count x { string key | u32 value_type | value }
//   tensor_count x { string name | u32 n_dims | u64 ne[n_dims] | u32 ggml_type | u64 offset }
//   padding to `general.alignment` (default 32) | tensor data
// A string is a u64 length followed by that many bytes (no NUL). An array value is u32 element
// type, u64 count, then the elements; arrays may nest.
//
// The file is memory-mapped read-only. Every count, length, offset, dimension product and tensor
// size is checked against the file size (with overflow checks) before it is used, so a truncated or
// corrupt file produces an error naming the file, the field and the problem instead of a crash.
//
// Limitations: big-endian GGUF files are rejected; version 1 (32-bit counts) is rejected.
#ifndef QBIAS_GGUF_H
#define QBIAS_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ggml_types.h"

typedef enum {
    GGUF_TYPE_UINT8 = 0,
    GGUF_TYPE_INT8 = 1,
    GGUF_TYPE_UINT16 = 2,
    GGUF_TYPE_INT16 = 3,
    GGUF_TYPE_UINT32 = 4,
    GGUF_TYPE_INT32 = 5,
    GGUF_TYPE_FLOAT32 = 6,
    GGUF_TYPE_BOOL = 7,
    GGUF_TYPE_STRING = 8,
    GGUF_TYPE_ARRAY = 9,
    GGUF_TYPE_UINT64 = 10,
    GGUF_TYPE_INT64 = 11,
    GGUF_TYPE_FLOAT64 = 12,
    GGUF_TYPE_COUNT = 13,
} GGUFType;

// A string inside the mapped file: not NUL-terminated.
typedef struct {
    const char *data;
    uint64_t len;
} GGUFString;

typedef struct GGUFValue GGUFValue;

typedef struct {
    GGUFType elem_type;
    uint64_t n;
    const uint8_t *raw;       // scalar elements: n * size, little-endian, possibly unaligned
    GGUFString *strings;      // elem_type STRING: n strings (owned array, data in the mapping)
    GGUFValue *items;         // elem_type ARRAY: n nested arrays (owned)
} GGUFArray;

struct GGUFValue {
    GGUFType type;
    union {
        uint64_t u64;   // UINT8, UINT16, UINT32, UINT64
        int64_t i64;    // INT8, INT16, INT32, INT64
        double f64;     // FLOAT32, FLOAT64
        bool b;         // BOOL
        GGUFString str; // STRING
        GGUFArray arr;  // ARRAY
    };
};

typedef struct {
    char *key; // owned, NUL-terminated
    GGUFValue value;
} GGUFKeyValue;

typedef struct {
    char *name;          // owned, NUL-terminated
    uint32_t n_dims;     // 1..4
    int64_t ne[4];       // ggml order: ne[0] is the contiguous dimension (columns); unused dims are 1
    GGMLType type;
    uint64_t offset;     // from the start of the data section
    const void *data;    // into the mapping
    size_t nbytes;
} GGUFTensor;

typedef struct {
    char *path;
    void *map;
    size_t size;
    uint32_t version;
    uint64_t n_kv;
    GGUFKeyValue *kv;
    uint64_t n_tensors;
    GGUFTensor *tensors;
    uint32_t alignment;
    size_t data_offset;
} GGUFFile;

// Opens and validates a GGUF file. Returns NULL with an error naming the file, the field and the
// problem. The caller closes the result with gguf_close(), which unmaps every pointer into it.
GGUFFile *gguf_open(const char *path);
void gguf_close(GGUFFile *f);

const char *gguf_type_name(GGUFType type);

// Returns the value of `key`, or NULL when the key is absent.
const GGUFValue *gguf_find(const GGUFFile *f, const char *key);

// Typed getters. Each returns 1 when the key is present with a compatible type and stores the value,
// 0 when the key is absent (leaving *out unchanged, so callers preset defaults), and -1 with an
// error naming the key, its actual type and the file when the type is incompatible.
int gguf_get_int(const GGUFFile *f, const char *key, int64_t *out);   // any integer type
int gguf_get_float(const GGUFFile *f, const char *key, double *out);  // FLOAT32/FLOAT64 or integer
int gguf_get_bool(const GGUFFile *f, const char *key, bool *out);
int gguf_get_string(const GGUFFile *f, const char *key, char **out);  // newly allocated copy
int gguf_get_array(const GGUFFile *f, const char *key, const GGUFArray **out);

// Element access for scalar arrays, converting from the stored type. The index must be < n.
double gguf_array_get_float(const GGUFArray *a, uint64_t i);
int64_t gguf_array_get_int(const GGUFArray *a, uint64_t i);

// Returns the tensor named `name`, or NULL.
const GGUFTensor *gguf_find_tensor(const GGUFFile *f, const char *name);

// Returns the number of elements of a tensor (the product of ne; checked at open).
static inline int64_t gguf_tensor_nelements(const GGUFTensor *t) {
    return t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3];
}

// ----------------------------------------------------------------------------
// Writing GGUF files (version 3). Used to save quantized models and to build test fixtures.

typedef struct GGUFWriter GGUFWriter;

GGUFWriter *gguf_writer_new(void);
void gguf_writer_free(GGUFWriter *w);

// Metadata setters. Keys are copied; adding a key twice is a programmer error (abort).
void gguf_writer_set_u32(GGUFWriter *w, const char *key, uint32_t value);
void gguf_writer_set_i32(GGUFWriter *w, const char *key, int32_t value);
void gguf_writer_set_u64(GGUFWriter *w, const char *key, uint64_t value);
void gguf_writer_set_f32(GGUFWriter *w, const char *key, float value);
void gguf_writer_set_f64(GGUFWriter *w, const char *key, double value);
void gguf_writer_set_bool(GGUFWriter *w, const char *key, bool value);
void gguf_writer_set_string(GGUFWriter *w, const char *key, const char *value);
// An array of scalars of `elem_type` (not STRING or ARRAY); `data` holds n little-endian values.
void gguf_writer_set_array(GGUFWriter *w, const char *key, GGUFType elem_type, const void *data,
                           uint64_t n);
void gguf_writer_set_string_array(GGUFWriter *w, const char *key, const char *const *values,
                                  uint64_t n);
// Copies one key with its value (any type, nested arrays included) from an open file.
void gguf_writer_copy_key(GGUFWriter *w, const GGUFFile *f, const char *key);

// Adds a tensor; `data` (nbytes, computed from type and shape) is copied when the file is written,
// so it must stay valid until gguf_writer_write() returns.
void gguf_writer_add_tensor(GGUFWriter *w, const char *name, GGMLType type, int n_dims,
                            const int64_t *ne, const void *data);

// Writes the file atomically (temporary file, then rename). Returns 0, or -1 with an error.
int gguf_writer_write(GGUFWriter *w, const char *path);

#endif
