// test_safetensors.c: the safetensors reader on real Hugging Face files and on files with every
// kind of header damage, plus sharded checkpoints.
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "../engine/safetensors.h"
#include "../engine/util.h"
#include "test.h"

TEST(safetensors_reads_real_files) {
    const char *files[] = {
        "reference/tiny-models/qwen2-tiny/hf/model.safetensors",
        "reference/tiny-models/llama3-tiny/hf/model.safetensors",
        "reference/bert-tiny/model.safetensors",
        "models/tiny-random-bert/model.safetensors",
        "models/tiny-random-gpt2-fullvocab/model.safetensors",
    };
    for (size_t i = 0; i < ARRAY_LEN(files); i++) {
        SafeTensorsFile *f = safetensors_open(test_shared_path(files[i]));
        CHECK_MSG(f != NULL, "%s: %s", files[i], err_msg());
        if (f) {
            CHECK(f->n_tensors > 0);
            safetensors_close(f);
        }
    }

    // llama3-tiny: F16 embeddings, F32 elsewhere, [out, in] shapes.
    SafeTensorsSet *set = safetensors_open_folder(test_shared_path("reference/tiny-models/llama3-tiny/hf"));
    REQUIRE_MSG(set != NULL, "%s", err_msg());
    const SafeTensor *embd = safetensors_find(set, "model.embed_tokens.weight");
    REQUIRE(embd != NULL);
    CHECK_EQ_INT(embd->dtype, ST_F16);
    CHECK(embd->n_dims == 2 && embd->shape[0] == 50257 && embd->shape[1] == 32);
    const SafeTensor *q = safetensors_find(set, "model.layers.1.self_attn.q_proj.weight");
    REQUIRE(q != NULL);
    CHECK_EQ_INT(q->dtype, ST_F32);
    CHECK(q->shape[0] == 32 && q->shape[1] == 32);
    CHECK(safetensors_find(set, "model.layers.2.self_attn.q_proj.weight") == NULL);
    safetensors_set_close(set);
}

// Writes a safetensors file from (name, dtype, shape, offsets) entries and raw data. The header
// is padded with spaces to a multiple of 8 bytes, as the reference writer does.
static char *write_file(const char *dir, const char *name, const char *header_json,
                        const void *data, size_t data_len) {
    size_t header_len = strlen(header_json);
    size_t padded = (header_len + 7) / 8 * 8;
    StrBuf b;
    sb_init(&b);
    uint64_t n = padded;
    sb_append_n(&b, (const char *)&n, 8);
    sb_append(&b, header_json);
    for (size_t i = header_len; i < padded; i++) {
        sb_append_n(&b, " ", 1);
    }
    sb_append_n(&b, data, data_len);
    char *path = path_join(dir, name);
    REQUIRE_OK(file_write_atomic(path, b.data, b.len));
    sb_free(&b);
    return path;
}

static const float sample_data[6] = {1, 2, 3, 4, 5, 6};

static void check_rejected(const char *header, size_t data_len, const char *expected) {
    const char *dir = test_tmp_dir();
    char *path = write_file(dir, "bad.safetensors", header, sample_data, data_len);
    SafeTensorsFile *f = safetensors_open(path);
    CHECK_MSG(f == NULL, "header %s was accepted", header);
    if (f) {
        safetensors_close(f);
    } else {
        CHECK_MSG(strstr(err_msg(), expected) != NULL, "error '%s' lacks '%s'", err_msg(), expected);
        CHECK_MSG(strstr(err_msg(), path) != NULL, "error '%s' does not name the file", err_msg());
    }
    free(path);
}

TEST(safetensors_accepts_valid_header) {
    const char *dir = test_tmp_dir();
    char *path = write_file(dir, "ok.safetensors",
                            "{\"__metadata__\":{\"format\":\"pt\"},"
                            "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[16,24]},"
                            "\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}",
                            sample_data, 24);
    SafeTensorsFile *f = safetensors_open(path);
    REQUIRE_MSG(f != NULL, "%s", err_msg());
    CHECK_EQ_INT(f->n_tensors, 2);
    CHECK(f->metadata != NULL);
    CHECK_STR(f->tensors[0].name, "a");
    CHECK(((const float *)f->tensors[1].data)[1] == 6.0f);
    safetensors_close(f);
    free(path);
}

TEST(safetensors_rejects_damaged_headers) {
    check_rejected("{\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,12]}}", 24,
                   "needs 16 bytes");
    check_rejected("{\"a\":{\"dtype\":\"Q4\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8,
                   "unknown dtype 'Q4'");
    check_rejected("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                   "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
                   12, "overlaps");
    check_rejected("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", 16,
                   "belong to no tensor");
    check_rejected("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 16,
                   "after the last tensor");
    check_rejected("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8,
                   "past the 8 data bytes");
    check_rejected("{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8,
                   "dimension 0");
    check_rejected("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8,
                   "begin <= end");
    check_rejected("{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8, "data_offsets");
    check_rejected("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                   "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}",
                   16, "appears twice");
    check_rejected("{\"__metadata__\":{\"x\":1}}", 0, "__metadata__");
    check_rejected("[1,2]", 0, "does not start with '{'");
    check_rejected("{\"a\":", 0, "not a JSON object");
    check_rejected("{\"a\":{\"dtype\":\"F32\",\"shape\":[9007199254740992,4096],"
                   "\"data_offsets\":[0,8]}}",
                   8, "overflow");
}

TEST(safetensors_rejects_bad_lengths) {
    const char *dir = test_tmp_dir();
    char *path = path_join(dir, "short.safetensors");
    REQUIRE_OK(file_write_atomic(path, "1234", 4));
    CHECK(safetensors_open(path) == NULL);
    CHECK(strstr(err_msg(), "too short") != NULL);

    uint64_t huge = 1ull << 40;
    char bytes[16] = {0};
    memcpy(bytes, &huge, 8);
    REQUIRE_OK(file_write_atomic(path, bytes, 16));
    CHECK(safetensors_open(path) == NULL);
    CHECK(strstr(err_msg(), "header length") != NULL);
    free(path);
}

// Every prefix of a real file is rejected with an error, never a crash.
TEST(safetensors_rejects_every_truncation) {
    char *data = NULL;
    size_t len = 0;
    REQUIRE_OK(file_read_all(test_shared_path("models/tiny-random-gpt2-vocab21/model.safetensors"),
                             &data, &len));
    char *cut = path_join(test_tmp_dir(), "cut.safetensors");
    int accepted = 0;
    for (size_t n = 0; n < len; n += (n < 2048 ? 1 : 97)) {
        REQUIRE_OK(file_write_atomic(cut, data, n));
        SafeTensorsFile *f = safetensors_open(cut);
        if (f) {
            accepted++;
            safetensors_close(f);
        }
    }
    CHECK_EQ_INT(accepted, 0);
    free(cut);
    free(data);
}

TEST(safetensors_reads_sharded_checkpoint) {
    const char *dir = test_tmp_dir();
    char *a = write_file(dir, "model-00001-of-00002.safetensors",
                         "{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
                         sample_data, 8);
    char *b = write_file(dir, "model-00002-of-00002.safetensors",
                         "{\"y\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}",
                         sample_data + 2, 16);
    char *index = path_join(dir, "model.safetensors.index.json");
    const char *good = "{\"metadata\":{},\"weight_map\":{\"x\":\"model-00001-of-00002.safetensors\","
                       "\"y\":\"model-00002-of-00002.safetensors\"}}";
    REQUIRE_OK(file_write_atomic(index, good, strlen(good)));
    SafeTensorsSet *set = safetensors_open_folder(dir);
    REQUIRE_MSG(set != NULL, "%s", err_msg());
    CHECK_EQ_INT(set->n_files, 2);
    const SafeTensor *y = safetensors_find(set, "y");
    REQUIRE(y != NULL);
    CHECK(((const float *)y->data)[3] == 6.0f);
    safetensors_set_close(set);

    const char *wrong_shard = "{\"weight_map\":{\"x\":\"model-00002-of-00002.safetensors\"}}";
    REQUIRE_OK(file_write_atomic(index, wrong_shard, strlen(wrong_shard)));
    CHECK(safetensors_open_folder(dir) == NULL);
    CHECK(strstr(err_msg(), "does not contain it") != NULL);

    const char *traversal = "{\"weight_map\":{\"x\":\"../model-00001-of-00002.safetensors\"}}";
    REQUIRE_OK(file_write_atomic(index, traversal, strlen(traversal)));
    CHECK(safetensors_open_folder(dir) == NULL);
    CHECK(strstr(err_msg(), "same folder") != NULL);

    const char *missing = "{\"weight_map\":{\"x\":\"model-00003-of-00003.safetensors\"}}";
    REQUIRE_OK(file_write_atomic(index, missing, strlen(missing)));
    CHECK(safetensors_open_folder(dir) == NULL);
    CHECK(strstr(err_msg(), "model-00003-of-00003.safetensors") != NULL);

    char *empty_dir = path_join(dir, "empty");
    REQUIRE_OK(dir_create(empty_dir));
    CHECK(safetensors_open_folder(empty_dir) == NULL);
    CHECK(strstr(err_msg(), "neither model.safetensors") != NULL);
    free(empty_dir);
    free(a);
    free(b);
    free(index);
}
