// safetensors.h: a reader for Hugging Face safetensors files and sharded checkpoints.
//
// Layout (huggingface/safetensors, docs "Format"): an 8-byte little-endian header length N, then N
// bytes of JSON mapping each tensor name to {"dtype", "shape", "data_offsets": [begin, end]} (plus
// an optional "__metadata__" object of strings), then the data. Offsets are relative to the start
// of the data, which follows the header directly.
//
// The file is memory-mapped read-only and validated before any tensor is used: the header length
// is sane, the JSON is an object of well-formed entries, every dtype is known, every byte range
// lies inside the data and has exactly the size its dtype and shape imply (products checked for
// overflow), ranges neither overlap nor leave holes, and no name appears twice. A malformed file
// gives an error naming the file, the tensor and the problem.
#ifndef QBIAS_SAFETENSORS_H
#define QBIAS_SAFETENSORS_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    ST_BOOL, ST_U8, ST_I8, ST_I16, ST_U16, ST_F16, ST_BF16, ST_I32, ST_U32, ST_F32, ST_F64,
    ST_I64, ST_U64, ST_F8_E4M3, ST_F8_E5M2, ST_DTYPE_COUNT,
} SafeDType;

#define SAFETENSORS_MAX_DIMS 8

typedef struct {
    char *name;        // owned
    SafeDType dtype;
    int n_dims;        // 0 for a scalar
    int64_t shape[SAFETENSORS_MAX_DIMS]; // row-major (PyTorch order): shape[n_dims - 1] is contiguous
    const void *data;  // into the mapping
    size_t nbytes;
} SafeTensor;

typedef struct {
    char *path;
    void *map;
    size_t size;
    SafeTensor *tensors;
    int n_tensors;
    cJSON *metadata;   // the "__metadata__" object, or NULL
} SafeTensorsFile;

// Opens and validates one file. Returns NULL with an error. Close with safetensors_close().
SafeTensorsFile *safetensors_open(const char *path);
void safetensors_close(SafeTensorsFile *f);

const char *safetensors_dtype_name(SafeDType dtype);
size_t safetensors_dtype_size(SafeDType dtype);

// A checkpoint of one or more files: model.safetensors, or model.safetensors.index.json with its
// shards (every tensor named in the index's weight_map must be in the shard the map names).
typedef struct {
    SafeTensorsFile **files;
    int n_files;
} SafeTensorsSet;

// Opens the checkpoint in a Hugging Face model folder. Returns NULL with an error naming the folder
// and the missing or invalid file. Free with safetensors_set_close().
SafeTensorsSet *safetensors_open_folder(const char *folder);
void safetensors_set_close(SafeTensorsSet *set);

// Returns the tensor called `name` in any file of the set, or NULL.
const SafeTensor *safetensors_find(const SafeTensorsSet *set, const char *name);

#endif
