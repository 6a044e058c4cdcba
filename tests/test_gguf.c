// test_gguf.c: the GGUF reader on real files, on files written by the GGUF writer, and on
// truncated and corrupt files (which must give errors naming the file, never crash).
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../engine/gguf.h"
#include "../engine/model.h"
#include "../engine/util.h"
#include "test.h"

// Writes a small file with every metadata type, a nested array and two tensors.
static char *write_fixture(const char *dir, const char *name, bool with_tensors) {
    char *path = path_join(dir, name);
    GGUFWriter *w = gguf_writer_new();
    gguf_writer_set_string(w, "general.architecture", "test");
    gguf_writer_set_u32(w, "test.u32", 4000000000u);
    gguf_writer_set_i32(w, "test.i32", -7);
    gguf_writer_set_u64(w, "test.u64", 1ull << 40);
    gguf_writer_set_f32(w, "test.f32", 0.25f);
    gguf_writer_set_f64(w, "test.f64", -1.5);
    gguf_writer_set_bool(w, "test.bool", true);
    int32_t ints[3] = {1, -2, 3};
    gguf_writer_set_array(w, "test.ints", GGUF_TYPE_INT32, ints, 3);
    uint8_t bytes[2] = {9, 250};
    gguf_writer_set_array(w, "test.u8s", GGUF_TYPE_UINT8, bytes, 2);
    const char *strings[3] = {"a", "", "long string with spaces"};
    gguf_writer_set_string_array(w, "test.strings", strings, 3);

    static float matrix[4 * 8];
    static uint16_t halves[32];
    for (int i = 0; i < 32; i++) {
        matrix[i] = (float)i * 0.5f;
        halves[i] = (uint16_t)(0x3c00 + i); // fp16 values near 1.0
    }
    if (with_tensors) {
        int64_t ne_m[2] = {8, 4}, ne_h[1] = {32};
        gguf_writer_add_tensor(w, "matrix", GGML_TYPE_F32, 2, ne_m, matrix);
        gguf_writer_add_tensor(w, "halves", GGML_TYPE_F16, 1, ne_h, halves);
    }
    REQUIRE_OK(gguf_writer_write(w, path));
    gguf_writer_free(w);
    return path;
}

TEST(gguf_reads_every_value_type) {
    char *path = write_fixture(test_tmp_dir(), "all.gguf", true);
    GGUFFile *f = gguf_open(path);
    REQUIRE_MSG(f != NULL, "%s", err_msg());
    CHECK_EQ_INT(f->version, 3);
    CHECK_EQ_INT(f->n_kv, 10);
    CHECK_EQ_INT(f->n_tensors, 2);
    CHECK_EQ_INT(f->alignment, 32);

    int64_t i = 0;
    double d = 0;
    bool b = false;
    char *s = NULL;
    CHECK(gguf_get_int(f, "test.u32", &i) == 1 && i == 4000000000ll);
    CHECK(gguf_get_int(f, "test.i32", &i) == 1 && i == -7);
    CHECK(gguf_get_int(f, "test.u64", &i) == 1 && i == (1ll << 40));
    CHECK(gguf_get_float(f, "test.f32", &d) == 1 && d == 0.25);
    CHECK(gguf_get_float(f, "test.f64", &d) == 1 && d == -1.5);
    CHECK(gguf_get_bool(f, "test.bool", &b) == 1 && b);
    CHECK(gguf_get_string(f, "general.architecture", &s) == 1);
    CHECK_STR(s, "test");
    free(s);
    CHECK(gguf_get_int(f, "absent.key", &i) == 0);

    // A type mismatch is an error that names the key and both types.
    CHECK(gguf_get_string(f, "test.u32", &s) == -1);
    CHECK(strstr(err_msg(), "test.u32") && strstr(err_msg(), "uint32") && strstr(err_msg(), "string"));

    const GGUFArray *a = NULL;
    REQUIRE(gguf_get_array(f, "test.ints", &a) == 1);
    CHECK_EQ_INT(a->n, 3);
    CHECK_EQ_INT(gguf_array_get_int(a, 1), -2);
    REQUIRE(gguf_get_array(f, "test.u8s", &a) == 1);
    CHECK_EQ_INT(gguf_array_get_int(a, 1), 250);
    REQUIRE(gguf_get_array(f, "test.strings", &a) == 1);
    CHECK_EQ_INT(a->strings[1].len, 0);
    CHECK(a->strings[2].len == 23 && memcmp(a->strings[2].data, "long string with spaces", 23) == 0);

    const GGUFTensor *t = gguf_find_tensor(f, "matrix");
    REQUIRE(t != NULL);
    CHECK(t->ne[0] == 8 && t->ne[1] == 4 && t->n_dims == 2 && t->type == GGML_TYPE_F32);
    CHECK_EQ_INT(t->nbytes, 128);
    CHECK(((const float *)t->data)[5] == 2.5f);
    CHECK_EQ_INT((uintptr_t)t->data % 32, 0);
    t = gguf_find_tensor(f, "halves");
    REQUIRE(t != NULL);
    CHECK_EQ_INT(t->offset % 32, 0);
    CHECK(((const uint16_t *)t->data)[3] == 0x3c03);
    gguf_close(f);
    free(path);
}

TEST(gguf_reads_vocab_only_file) {
    char *path = write_fixture(test_tmp_dir(), "vocab.gguf", false);
    GGUFFile *f = gguf_open(path);
    REQUIRE_MSG(f != NULL, "%s", err_msg());
    CHECK_EQ_INT(f->n_tensors, 0);
    gguf_close(f);
    free(path);

    // A real vocabulary-only file from llama.cpp.
    f = gguf_open(test_shared_path("models/llama.cpp-vocab-tests/ggml-vocab-llama-spm.gguf"));
    REQUIRE_MSG(f != NULL, "%s", err_msg());
    CHECK_EQ_INT(f->n_tensors, 0);
    const GGUFArray *tokens = NULL;
    CHECK(gguf_get_array(f, "tokenizer.ggml.tokens", &tokens) == 1 && tokens->n == 32000);
    gguf_close(f);
}

TEST(gguf_reads_real_model) {
    GGUFFile *f = gguf_open(test_shared_path("models/stories260K/stories260K.gguf"));
    REQUIRE_MSG(f != NULL, "%s", err_msg());
    CHECK_EQ_INT(f->n_tensors, 48);
    const GGUFTensor *t = gguf_find_tensor(f, "blk.4.ffn_down.weight");
    REQUIRE(t != NULL);
    CHECK(t->ne[0] == 172 && t->ne[1] == 64);
    gguf_close(f);
}

TEST(gguf_honours_alignment_key) {
    const char *dir = test_tmp_dir();
    char *path = path_join(dir, "aligned.gguf");
    GGUFWriter *w = gguf_writer_new();
    gguf_writer_set_u32(w, "general.alignment", 256);
    float a[3] = {1, 2, 3}, b[5] = {4, 5, 6, 7, 8};
    int64_t ne_a[1] = {3}, ne_b[1] = {5};
    gguf_writer_add_tensor(w, "a", GGML_TYPE_F32, 1, ne_a, a);
    gguf_writer_add_tensor(w, "b", GGML_TYPE_F32, 1, ne_b, b);
    REQUIRE_OK(gguf_writer_write(w, path));
    gguf_writer_free(w);

    GGUFFile *f = gguf_open(path);
    REQUIRE_MSG(f != NULL, "%s", err_msg());
    CHECK_EQ_INT(f->alignment, 256);
    CHECK_EQ_INT(f->data_offset % 256, 0);
    const GGUFTensor *t = gguf_find_tensor(f, "b");
    REQUIRE(t != NULL);
    CHECK_EQ_INT(t->offset, 256);
    CHECK(((const float *)t->data)[4] == 8.0f);
    gguf_close(f);
    free(path);
}

// Every prefix of a valid file must be rejected with an error naming the file.
TEST(gguf_rejects_every_truncation) {
    const char *dir = test_tmp_dir();
    char *path = write_fixture(dir, "full.gguf", true);
    char *data = NULL;
    size_t len = 0;
    REQUIRE_OK(file_read_all(path, &data, &len));
    char *cut = path_join(dir, "cut.gguf");

    int n_rejected = 0;
    for (size_t n = 1; n < len; n++) {
        REQUIRE_OK(file_write_atomic(cut, data, n));
        GGUFFile *f = gguf_open(cut);
        if (f) {
            test_fail(__FILE__, __LINE__, "a file cut to %zu of %zu bytes was accepted", n, len);
            gguf_close(f);
            continue;
        }
        CHECK_MSG(strstr(err_msg(), cut) != NULL, "error for %zu bytes does not name the file: %s",
                  n, err_msg());
        n_rejected++;
    }
    CHECK_EQ_INT(n_rejected, (long long)len - 1);
    free(cut);
    free(data);
    free(path);
}

// Applies `patch` at the first occurrence of `anchor` (+ delta) in a copy of the fixture and checks
// that opening it fails with an error containing `expected`.
static void check_corruption(const char *anchor, int delta, const void *patch, size_t patch_len,
                             const char *expected) {
    const char *dir = test_tmp_dir();
    char *path = write_fixture(dir, "base.gguf", true);
    char *data = NULL;
    size_t len = 0;
    REQUIRE_OK(file_read_all(path, &data, &len));
    char *at = anchor ? memmem(data, len, anchor, strlen(anchor)) : data;
    REQUIRE_MSG(at != NULL, "anchor '%s' not found", anchor);
    at += delta;
    REQUIRE(at >= data && at + patch_len <= data + len);
    memcpy(at, patch, patch_len);

    char *bad = path_join(dir, "bad.gguf");
    REQUIRE_OK(file_write_atomic(bad, data, len));
    GGUFFile *f = gguf_open(bad);
    CHECK_MSG(f == NULL, "corruption near '%s' was accepted", anchor ? anchor : "start");
    if (f) {
        gguf_close(f);
    } else {
        CHECK_MSG(strstr(err_msg(), expected) != NULL, "error '%s' lacks '%s'", err_msg(),
                  expected);
        CHECK_MSG(strstr(err_msg(), bad) != NULL, "error '%s' does not name the file", err_msg());
    }
    free(bad);
    free(data);
    free(path);
}

TEST(gguf_rejects_corrupt_headers) {
    check_corruption(NULL, 0, "GGML", 4, "not a GGUF file");
    uint32_t v1 = 1, v99 = 99, v_be = 0x03000000;
    check_corruption(NULL, 4, &v1, 4, "version 1");
    check_corruption(NULL, 4, &v99, 4, "unsupported GGUF version 99");
    check_corruption(NULL, 4, &v_be, 4, "big-endian");
    uint64_t huge = 1ull << 60;
    check_corruption(NULL, 8, &huge, 8, "tensors");   // tensor count
    check_corruption(NULL, 16, &huge, 8, "metadata"); // key count
}

TEST(gguf_rejects_corrupt_metadata) {
    uint64_t huge = 1ull << 50;
    // The length prefix of the key "test.i32" (8 bytes before its text).
    check_corruption("test.i32", -8, &huge, 8, "string length");
    uint32_t bad_type = 77;
    check_corruption("test.i32", 8, &bad_type, 4, "invalid value type 77");
    uint8_t bad_bool = 5;
    check_corruption("test.bool", 9 + 4, &bad_bool, 1, "invalid bool");
    // Array element count of test.ints (after key, type, element type).
    check_corruption("test.ints", 9 + 4 + 4, &huge, 8, "elements");
    check_corruption("test.strings", 12 + 4 + 4, &huge, 8, "strings");
    // Rename test.f64 to test.f32: a duplicate key.
    check_corruption("test.f64", 0, "test.f32", 8, "duplicate metadata key");
}

TEST(gguf_rejects_corrupt_tensor_infos) {
    // Fields after the name "matrix": n_dims (4), ne[0], ne[1] (8 each), type (4), offset (8).
    uint32_t five = 5, unknown_type = 31, q4 = GGML_TYPE_Q4_0;
    uint64_t zero = 0, huge = 1ull << 62, misaligned = 3, past_end = 1 << 20;
    check_corruption("matrix", 6, &five, 4, "5 dimensions");
    check_corruption("matrix", 10, &zero, 8, "dimension 0 is 0");
    check_corruption("matrix", 10, &huge, 8, "overflows");
    check_corruption("matrix", 26, &unknown_type, 4, "unknown ggml type 31");
    check_corruption("matrix", 26, &q4, 4, "not a multiple of the block size");
    check_corruption("matrix", 30, &misaligned, 8, "not a multiple of the alignment");
    check_corruption("matrix", 30, &past_end, 8, "past the end");
    // Point "halves" at offset 0, where "matrix" lives.
    check_corruption("halves", 6 + 4 + 8 + 4, &zero, 8, "overlap");
    check_corruption("halves", 0, "matrix", 6, "duplicate tensor name");
}

TEST(gguf_rejects_missing_and_empty_files) {
    const char *dir = test_tmp_dir();
    char *missing = path_join(dir, "missing.gguf");
    CHECK(gguf_open(missing) == NULL);
    CHECK(strstr(err_msg(), "missing.gguf") && strstr(err_msg(), "No such file"));
    char *empty = path_join(dir, "empty.gguf");
    REQUIRE_OK(file_write_atomic(empty, "", 0));
    CHECK(gguf_open(empty) == NULL);
    CHECK(strstr(err_msg(), "empty"));
    free(missing);
    free(empty);
}

// Copies stories260K into a new file, leaving out `skip_tensor` and replacing the shape of
// `reshape_tensor`, then checks that model_load reports `expected`.
static void check_model_error(const char *skip_tensor, const char *reshape_tensor,
                              const char *expected) {
    GGUFFile *src = gguf_open(test_shared_path("models/stories260K/stories260K.gguf"));
    REQUIRE(src != NULL);
    GGUFWriter *w = gguf_writer_new();
    for (uint64_t i = 0; i < src->n_kv; i++) {
        gguf_writer_copy_key(w, src, src->kv[i].key);
    }
    for (uint64_t i = 0; i < src->n_tensors; i++) {
        const GGUFTensor *t = &src->tensors[i];
        if (skip_tensor && strcmp(t->name, skip_tensor) == 0) {
            continue;
        }
        int64_t ne[4] = {t->ne[0], t->ne[1], t->ne[2], t->ne[3]};
        if (reshape_tensor && strcmp(t->name, reshape_tensor) == 0) {
            ne[0] = t->ne[1];
            ne[1] = t->ne[0];
        }
        gguf_writer_add_tensor(w, t->name, t->type, (int)t->n_dims, ne, t->data);
    }
    char *path = path_join(test_tmp_dir(), "model.gguf");
    REQUIRE_OK(gguf_writer_write(w, path));
    gguf_writer_free(w);
    gguf_close(src);

    Model *m = model_load(path);
    CHECK_MSG(m == NULL, "a broken model was loaded");
    if (m) {
        model_free(m);
    } else {
        CHECK_MSG(strstr(err_msg(), expected) != NULL, "error '%s' lacks '%s'", err_msg(), expected);
    }
    free(path);
}

TEST(model_rejects_missing_or_misshaped_tensor) {
    check_model_error("blk.2.attn_v.weight", NULL, "tensor 'blk.2.attn_v.weight' is missing");
    check_model_error(NULL, "blk.0.ffn_down.weight", "blk.0.ffn_down.weight' has shape");
    check_model_error("output_norm.weight", NULL, "'output_norm.weight' is missing");
}

// A copy of the real model through the writer loads and gives the same weights.
TEST(gguf_writer_round_trips_real_model) {
    GGUFFile *src = gguf_open(test_shared_path("models/stories260K/stories260K.gguf"));
    REQUIRE(src != NULL);
    GGUFWriter *w = gguf_writer_new();
    for (uint64_t i = 0; i < src->n_kv; i++) {
        gguf_writer_copy_key(w, src, src->kv[i].key);
    }
    for (uint64_t i = 0; i < src->n_tensors; i++) {
        const GGUFTensor *t = &src->tensors[i];
        gguf_writer_add_tensor(w, t->name, t->type, (int)t->n_dims, t->ne, t->data);
    }
    char *path = path_join(test_tmp_dir(), "copy.gguf");
    REQUIRE_OK(gguf_writer_write(w, path));
    gguf_writer_free(w);

    GGUFFile *copy = gguf_open(path);
    REQUIRE_MSG(copy != NULL, "%s", err_msg());
    CHECK_EQ_INT(copy->n_kv, src->n_kv);
    CHECK_EQ_INT(copy->n_tensors, src->n_tensors);
    for (uint64_t i = 0; i < src->n_tensors; i++) {
        const GGUFTensor *a = &src->tensors[i], *b = gguf_find_tensor(copy, a->name);
        REQUIRE(b != NULL);
        CHECK(a->nbytes == b->nbytes && memcmp(a->data, b->data, a->nbytes) == 0);
    }
    const GGUFArray *ta = NULL, *tb = NULL;
    REQUIRE(gguf_get_array(src, "tokenizer.ggml.tokens", &ta) == 1);
    REQUIRE(gguf_get_array(copy, "tokenizer.ggml.tokens", &tb) == 1);
    CHECK_EQ_INT(ta->n, tb->n);
    gguf_close(copy);
    gguf_close(src);
    free(path);
}

// Builds a GGUF file byte by byte with a nested array value (an array of arrays of int32), which
// the writer's typed setters do not produce.
TEST(gguf_reads_nested_arrays) {
    StrBuf b;
    sb_init(&b);
    uint32_t version = 3, array = GGUF_TYPE_ARRAY, i32 = GGUF_TYPE_INT32;
    uint64_t n_tensors = 0, n_kv = 1, key_len = 11, outer = 2, inner = 3;
    sb_append_n(&b, "GGUF", 4);
    sb_append_n(&b, (const char *)&version, 4);
    sb_append_n(&b, (const char *)&n_tensors, 8);
    sb_append_n(&b, (const char *)&n_kv, 8);
    sb_append_n(&b, (const char *)&key_len, 8);
    sb_append_n(&b, "test.nested", 11);
    sb_append_n(&b, (const char *)&array, 4);
    sb_append_n(&b, (const char *)&array, 4); // element type of the outer array
    sb_append_n(&b, (const char *)&outer, 8);
    for (int k = 0; k < 2; k++) {
        sb_append_n(&b, (const char *)&i32, 4);
        sb_append_n(&b, (const char *)&inner, 8);
        for (int32_t v = 0; v < 3; v++) {
            int32_t value = 10 * k + v;
            sb_append_n(&b, (const char *)&value, 4);
        }
    }
    char *path = path_join(test_tmp_dir(), "nested.gguf");
    REQUIRE_OK(file_write_atomic(path, b.data, b.len));
    GGUFFile *f = gguf_open(path);
    REQUIRE_MSG(f != NULL, "%s", err_msg());
    const GGUFArray *a = NULL;
    REQUIRE(gguf_get_array(f, "test.nested", &a) == 1);
    CHECK_EQ_INT(a->elem_type, GGUF_TYPE_ARRAY);
    REQUIRE(a->n == 2 && a->items != NULL);
    CHECK_EQ_INT(a->items[1].arr.n, 3);
    CHECK_EQ_INT(gguf_array_get_int(&a->items[1].arr, 2), 12);

    // The writer copies nested arrays unchanged.
    GGUFWriter *w = gguf_writer_new();
    gguf_writer_copy_key(w, f, "test.nested");
    char *copy_path = path_join(test_tmp_dir(), "nested-copy.gguf");
    REQUIRE_OK(gguf_writer_write(w, copy_path));
    gguf_writer_free(w);
    GGUFFile *copy = gguf_open(copy_path);
    REQUIRE_MSG(copy != NULL, "%s", err_msg());
    REQUIRE(gguf_get_array(copy, "test.nested", &a) == 1);
    CHECK_EQ_INT(gguf_array_get_int(&a->items[0].arr, 1), 1);
    gguf_close(copy);
    gguf_close(f);
    free(copy_path);
    free(path);
    sb_free(&b);
}

// A temporary file registered by an atomic write is deleted when SIGTERM ends the process, and
// the process still dies of that signal.
TEST(temp_file_removed_on_signal) {
    char *path = xasprintf("%s/partial.gguf.tmp", test_tmp_dir());
    char *kept = xasprintf("%s/released.tmp", test_tmp_dir());
    pid_t child = fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        FILE *f = fopen(path, "wb");
        FILE *g = fopen(kept, "wb");
        if (!f || !g) {
            _exit(3);
        }
        fputs("partial", f);
        fclose(f);
        fclose(g);
        temp_file_register(path);
        temp_file_register(kept);
        temp_file_release(kept);
        raise(SIGTERM);
        _exit(4);
    }
    int status = 0;
    REQUIRE(waitpid(child, &status, 0) == child);
    CHECK_MSG(WIFSIGNALED(status), "child status %d", status);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM);
    CHECK_MSG(access(path, F_OK) != 0, "%s survived the signal", path);
    CHECK_MSG(access(kept, F_OK) == 0, "%s was released but deleted", kept);
    free(kept);
    free(path);
}

// A signal ignored when qbias starts (nohup) stays ignored after the handlers are installed.
TEST(ignored_signal_stays_ignored) {
    pid_t child = fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        signal(SIGHUP, SIG_IGN);
        interrupt_message_set("interrupted");
        raise(SIGHUP);
        _exit(7);
    }
    int status = 0;
    REQUIRE(waitpid(child, &status, 0) == child);
    REQUIRE_MSG(WIFEXITED(status), "the child died of signal %d",
                WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    CHECK_EQ_INT(WEXITSTATUS(status), 7);
}

// The interrupt message reaches stderr when a signal ends the process.
TEST(interrupt_message_printed_on_signal) {
    char *err_path = xasprintf("%s/stderr.txt", test_tmp_dir());
    pid_t child = fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        if (!freopen(err_path, "w", stderr)) {
            _exit(3);
        }
        interrupt_message_set("interrupted; run the same command to resume");
        raise(SIGINT);
        _exit(4);
    }
    int status = 0;
    REQUIRE(waitpid(child, &status, 0) == child);
    REQUIRE(WIFSIGNALED(status));
    CHECK_EQ_INT(WTERMSIG(status), SIGINT);
    char *text = NULL;
    size_t len = 0;
    REQUIRE_OK(file_read_all(err_path, &text, &len));
    CHECK_STR(text, "interrupted; run the same command to resume\n");
    free(text);
    free(err_path);
}
