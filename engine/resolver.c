// resolver.c: data manifests and the file resolver (see resolver.h).
#include "resolver.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

// ----------------------------------------------------------------------------
// Manifest parsing

// Accepts a relative path made of non-empty components other than "." and "..", so that a
// manifest can never point outside the folder it is resolved in.
static bool relative_path_is_safe(const char *path) {
    if (path[0] == '\0' || path[0] == '/' || strchr(path, '\\')) {
        return false;
    }
    const char *component = path;
    for (;;) {
        const char *slash = strchr(component, '/');
        size_t n = slash ? (size_t)(slash - component) : strlen(component);
        if (n == 0 || (n == 1 && component[0] == '.') ||
            (n == 2 && component[0] == '.' && component[1] == '.')) {
            return false;
        }
        if (!slash) {
            return true;
        }
        component = slash + 1;
    }
}

// Manifest names become file names, so they are limited to letters, digits, '_', '-' and '.'.
static bool manifest_name_is_valid(const char *name) {
    if (name[0] == '\0' || name[0] == '.') {
        return false;
    }
    for (const char *p = name; *p; p++) {
        bool ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                  *p == '_' || *p == '-' || *p == '.';
        if (!ok) {
            return false;
        }
    }
    return true;
}

static bool is_lower_hex(const char *s, size_t n) {
    if (strlen(s) != n) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) {
            return false;
        }
    }
    return true;
}

// Copies the non-empty string field `key` of `object` into *out. `where` names the object in the
// message, e.g. "files[1]".
static int json_get_string(const char *file, const cJSON *object, const char *where,
                           const char *key, char **out) {
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(object, key);
    if (!cJSON_IsString(item) || item->valuestring[0] == '\0') {
        return err_set("%s: %s%s\"%s\" is missing or not a non-empty string; see docs/data.md for "
                       "the manifest format",
                       file, where, where[0] ? "." : "", key);
    }
    *out = xstrdup(item->valuestring);
    return 0;
}

static void manifest_file_free(ManifestFile *f) {
    free(f->path);
    free(f->url);
    for (int i = 0; i < f->n_build_inputs; i++) {
        manifest_file_free(&f->build_inputs[i]);
    }
    free(f->build_inputs);
    for (int i = 0; i < f->n_build_steps; i++) {
        free(f->build_steps[i]);
    }
    free(f->build_steps);
    memset(f, 0, sizeof *f);
}

static int parse_file_entry(const char *file, const cJSON *item, const char *where,
                            bool url_required, ManifestFile *out);

// Reads the "build" object of a file without a URL: downloadable inputs and command lines.
static int parse_build(const char *file, const cJSON *build, const char *where, ManifestFile *out) {
    if (!cJSON_IsObject(build)) {
        return err_set("%s: %s has \"url\": null but no \"build\" object; a file without a "
                       "download URL must say how to build it",
                       file, where);
    }

    const cJSON *inputs = cJSON_GetObjectItemCaseSensitive(build, "inputs");
    const cJSON *steps = cJSON_GetObjectItemCaseSensitive(build, "steps");
    if (!cJSON_IsArray(inputs) || !cJSON_IsArray(steps) || cJSON_GetArraySize(steps) == 0) {
        return err_set("%s: %s.build needs an \"inputs\" array and a non-empty \"steps\" array",
                       file, where);
    }

    out->n_build_inputs = cJSON_GetArraySize(inputs);
    out->build_inputs = xcalloc((size_t)out->n_build_inputs, sizeof *out->build_inputs);
    for (int i = 0; i < out->n_build_inputs; i++) {
        char *input_where = xasprintf("%s.build.inputs[%d]", where, i);
        int rc = parse_file_entry(file, cJSON_GetArrayItem(inputs, i), input_where, true,
                                  &out->build_inputs[i]);
        free(input_where);
        if (rc != 0) {
            return -1;
        }
    }

    out->n_build_steps = cJSON_GetArraySize(steps);
    out->build_steps = xcalloc((size_t)out->n_build_steps, sizeof *out->build_steps);
    for (int i = 0; i < out->n_build_steps; i++) {
        const cJSON *step = cJSON_GetArrayItem(steps, i);
        if (!cJSON_IsString(step) || step->valuestring[0] == '\0') {
            return err_set("%s: %s.build.steps[%d] must be a non-empty string", file, where, i);
        }
        out->build_steps[i] = xstrdup(step->valuestring);
    }
    return 0;
}

static int parse_file_entry(const char *file, const cJSON *item, const char *where,
                            bool url_required, ManifestFile *out) {
    memset(out, 0, sizeof *out);
    if (!cJSON_IsObject(item)) {
        return err_set("%s: %s must be an object with path, bytes, sha256 and url", file, where);
    }

    if (json_get_string(file, item, where, "path", &out->path) != 0) {
        return -1;
    }
    if (!relative_path_is_safe(out->path)) {
        return err_set("%s: %s.path \"%s\" must be a relative path without \".\" or \"..\" "
                       "components",
                       file, where, out->path);
    }

    // cJSON reads numbers as doubles, which represent every integer up to 2^53 exactly.
    const cJSON *bytes = cJSON_GetObjectItemCaseSensitive(item, "bytes");
    if (!cJSON_IsNumber(bytes) || bytes->valuedouble < 0 || bytes->valuedouble > 9007199254740992.0 ||
        bytes->valuedouble != floor(bytes->valuedouble)) {
        return err_set("%s: %s.bytes must be the file size as a non-negative integer", file, where);
    }
    out->bytes = (int64_t)bytes->valuedouble;

    const cJSON *sha = cJSON_GetObjectItemCaseSensitive(item, "sha256");
    if (!cJSON_IsString(sha) || !is_lower_hex(sha->valuestring, 64)) {
        return err_set("%s: %s.sha256 must be 64 lowercase hex digits (the output of sha256sum)",
                       file, where);
    }
    memcpy(out->sha256, sha->valuestring, 65);

    const cJSON *url = cJSON_GetObjectItemCaseSensitive(item, "url");
    if (cJSON_IsString(url) && strncmp(url->valuestring, "https://", 8) == 0) {
        out->url = xstrdup(url->valuestring);
        return 0;
    }
    if (url_required || !cJSON_IsNull(url)) {
        return err_set("%s: %s.url must be an https:// URL pinned to a commit%s", file, where,
                       url_required ? "" : ", or null for a file that has a \"build\" object");
    }
    return parse_build(file, cJSON_GetObjectItemCaseSensitive(item, "build"), where, out);
}

// Fills every field but files from the parsed JSON root.
static int parse_manifest_header(const char *path, const cJSON *root, Manifest *out) {
    if (json_get_string(path, root, "", "name", &out->name) != 0 ||
        json_get_string(path, root, "", "kind", &out->kind) != 0 ||
        json_get_string(path, root, "", "description", &out->description) != 0 ||
        json_get_string(path, root, "", "shared_dir", &out->shared_dir) != 0 ||
        json_get_string(path, root, "", "license", &out->license) != 0 ||
        json_get_string(path, root, "", "citation", &out->citation) != 0) {
        return -1;
    }

    // The name must match the file name, because lookups go from the name to <name>.json.
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t name_len = strlen(out->name);
    if (strncmp(base, out->name, name_len) != 0 || strcmp(base + name_len, ".json") != 0) {
        return err_set("%s: \"name\" is \"%s\" but the file is %s; name the file <name>.json", path,
                       out->name, base);
    }
    if (!manifest_name_is_valid(out->name)) {
        return err_set("%s: \"name\" \"%s\" may contain only letters, digits, '_', '-' and '.'",
                       path, out->name);
    }
    if (strcmp(out->kind, "dataset") != 0 && strcmp(out->kind, "model") != 0) {
        return err_set("%s: \"kind\" is \"%s\"; expected \"dataset\" or \"model\"", path, out->kind);
    }
    if (!relative_path_is_safe(out->shared_dir)) {
        return err_set("%s: \"shared_dir\" \"%s\" must be a relative path such as data/<name>",
                       path, out->shared_dir);
    }

    const cJSON *source = cJSON_GetObjectItemCaseSensitive(root, "source");
    if (!cJSON_IsObject(source)) {
        return err_set("%s: \"source\" must be an object with \"repository\" and \"commit\"", path);
    }
    if (json_get_string(path, source, "source", "repository", &out->source_repository) != 0 ||
        json_get_string(path, source, "source", "commit", &out->source_commit) != 0) {
        return -1;
    }
    if (!is_lower_hex(out->source_commit, 40)) {
        return err_set("%s: source.commit \"%s\" must be a full 40-digit lowercase commit id", path,
                       out->source_commit);
    }
    return 0;
}

static int parse_manifest_files(const char *path, const cJSON *root, Manifest *out) {
    const cJSON *files = cJSON_GetObjectItemCaseSensitive(root, "files");
    if (!cJSON_IsArray(files) || cJSON_GetArraySize(files) == 0) {
        return err_set("%s: \"files\" must be a non-empty array of {path, bytes, sha256, url}", path);
    }

    out->n_files = cJSON_GetArraySize(files);
    out->files = xcalloc((size_t)out->n_files, sizeof *out->files);
    for (int i = 0; i < out->n_files; i++) {
        char where[32];
        snprintf(where, sizeof where, "files[%d]", i);
        if (parse_file_entry(path, cJSON_GetArrayItem(files, i), where, false, &out->files[i]) != 0) {
            return -1;
        }
        for (int j = 0; j < i; j++) {
            if (strcmp(out->files[j].path, out->files[i].path) == 0) {
                return err_set("%s: files[%d] and files[%d] have the same path \"%s\"", path, j, i,
                               out->files[i].path);
            }
        }
    }

    if (strcmp(out->kind, "model") != 0) {
        return 0;
    }
    if (json_get_string(path, root, "", "model_file", &out->model_file) != 0) {
        return -1;
    }
    for (int i = 0; i < out->n_files; i++) {
        if (strcmp(out->files[i].path, out->model_file) == 0) {
            return 0;
        }
    }
    return err_set("%s: \"model_file\" \"%s\" is not one of the paths in \"files\"", path,
                   out->model_file);
}

int manifest_load(const char *path, Manifest *out) {
    memset(out, 0, sizeof *out);
    char *text = NULL;
    size_t len = 0;
    if (file_read_all(path, &text, &len) != 0) {
        return -1;
    }

    const char *parse_end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &parse_end, false);
    const char *rest = parse_end;
    while (root && rest < text + len && strchr(" \t\r\n", *rest)) {
        rest++;
    }
    if (root && rest < text + len) {
        cJSON_Delete(root);
        root = NULL;
        parse_end = rest;
    }
    if (!cJSON_IsObject(root)) {
        long long line = 1;
        for (const char *p = text; parse_end && p < parse_end; p++) {
            line += *p == '\n';
        }
        err_set("%s:%lld: %s; a manifest is one JSON object (see docs/data.md)", path, line,
                root ? "the top level is not an object" : "invalid JSON");
        cJSON_Delete(root);
        free(text);
        return -1;
    }
    free(text);

    out->manifest_path = xstrdup(path);
    int rc = parse_manifest_header(path, root, out);
    if (rc == 0) {
        rc = parse_manifest_files(path, root, out);
    }
    cJSON_Delete(root);
    if (rc != 0) {
        manifest_free(out);
    }
    return rc;
}

void manifest_free(Manifest *manifest) {
    free(manifest->manifest_path);
    free(manifest->name);
    free(manifest->kind);
    free(manifest->description);
    free(manifest->shared_dir);
    free(manifest->source_repository);
    free(manifest->source_commit);
    free(manifest->license);
    free(manifest->citation);
    free(manifest->model_file);
    for (int i = 0; i < manifest->n_files; i++) {
        manifest_file_free(&manifest->files[i]);
    }
    free(manifest->files);
    memset(manifest, 0, sizeof *manifest);
}

// ----------------------------------------------------------------------------
// Resolver state

// A file's identity and content version: a copy that changes on disk gets a new size or mtime.
typedef struct {
    dev_t device;
    ino_t inode;
    off_t size;
    struct timespec mtime;
    char sha256[65];
} HashEntry;

// The resolver's caches. They sit behind a pointer so that lookups through a const Resolver can
// fill them.
typedef struct {
    pthread_mutex_t lock;
    Manifest **manifests;
    int n_manifests;
    HashEntry *hashes;
    int n_hashes;
} ResolverCache;

// A search location and where its value came from, for messages.
typedef struct {
    char *dir;          // NULL when not set
    const char *origin; // e.g. "QBIAS_DATA_DIR", or why it is not set
} Location;

struct Resolver {
    Location user;
    Location cache;
    Location shared;
    Location manifests;
    ResolverCache *state;
};

static const char *env_nonempty(const char *name) {
    const char *value = getenv(name);
    return value && value[0] ? value : NULL;
}

// Returns the parent of the folder that contains the running executable, or NULL when
// /proc/self/exe cannot be read (a system without procfs).
static char *repository_root(void) {
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) {
        return NULL;
    }
    exe[n] = '\0';

    for (int level = 0; level < 2; level++) {
        char *slash = strrchr(exe, '/');
        if (!slash) {
            return NULL;
        }
        if (slash == exe) {
            return xstrdup("/");
        }
        *slash = '\0';
    }
    return xstrdup(exe);
}

Resolver *resolver_new(const char *data_dir) {
    Resolver *r = xcalloc(1, sizeof *r);
    r->state = xcalloc(1, sizeof *r->state);
    pthread_mutex_init(&r->state->lock, NULL);

    if (data_dir && data_dir[0]) {
        r->user = (Location){xstrdup(data_dir), "--data-dir"};
    } else if (env_nonempty("QBIAS_DATA_DIR")) {
        r->user = (Location){xstrdup(env_nonempty("QBIAS_DATA_DIR")), "QBIAS_DATA_DIR"};
    } else {
        r->user = (Location){NULL, "not set; use --data-dir or QBIAS_DATA_DIR"};
    }

    if (env_nonempty("QBIAS_CACHE_DIR")) {
        r->cache = (Location){xstrdup(env_nonempty("QBIAS_CACHE_DIR")), "QBIAS_CACHE_DIR"};
    } else if (env_nonempty("XDG_CACHE_HOME")) {
        r->cache = (Location){path_join(env_nonempty("XDG_CACHE_HOME"), "qbias"),
                              "$XDG_CACHE_HOME/qbias"};
    } else if (env_nonempty("HOME")) {
        r->cache = (Location){path_join(env_nonempty("HOME"), ".cache/qbias"), "~/.cache/qbias"};
    } else {
        r->cache = (Location){NULL, "not set; HOME is unset, so set QBIAS_CACHE_DIR"};
    }

    char *root = repository_root();
    if (env_nonempty("QBIAS_SHARED_DIR")) {
        r->shared = (Location){xstrdup(env_nonempty("QBIAS_SHARED_DIR")), "QBIAS_SHARED_DIR"};
    } else if (root) {
        // realpath() drops the "..", for readable messages; it fails when the folder is missing.
        char *beside = path_join(root, "../shared");
        char *resolved = realpath(beside, NULL);
        r->shared = (Location){resolved ? resolved : xstrdup(beside), "<repository root>/../shared"};
        free(beside);
    } else {
        r->shared = (Location){NULL, "unknown; /proc/self/exe is unreadable, so set QBIAS_SHARED_DIR"};
    }
    if (env_nonempty("QBIAS_MANIFEST_DIR")) {
        r->manifests = (Location){xstrdup(env_nonempty("QBIAS_MANIFEST_DIR")), "QBIAS_MANIFEST_DIR"};
    } else if (root) {
        r->manifests = (Location){path_join(root, "data"), "<repository root>/data"};
    } else {
        r->manifests =
            (Location){NULL, "unknown; /proc/self/exe is unreadable, so set QBIAS_MANIFEST_DIR"};
    }
    free(root);
    return r;
}

void resolver_free(Resolver *resolver) {
    if (!resolver) {
        return;
    }
    ResolverCache *state = resolver->state;
    for (int i = 0; i < state->n_manifests; i++) {
        manifest_free(state->manifests[i]);
        free(state->manifests[i]);
    }
    free(state->manifests);
    free(state->hashes);
    pthread_mutex_destroy(&state->lock);
    free(state);
    free(resolver->user.dir);
    free(resolver->cache.dir);
    free(resolver->shared.dir);
    free(resolver->manifests.dir);
    free(resolver);
}

// ----------------------------------------------------------------------------
// Manifest lookup

static int compare_strings(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

// Collects the names of the *.json files in the manifest folder, sorted.
static int list_manifest_names(const Resolver *r, char ***names_out, int *n_out) {
    *names_out = NULL;
    *n_out = 0;
    if (!r->manifests.dir) {
        return err_set("manifest folder %s", r->manifests.origin);
    }
    DIR *dir = opendir(r->manifests.dir);
    if (!dir) {
        return err_set("cannot open the manifest folder %s (%s); set QBIAS_MANIFEST_DIR to the "
                       "repository's data folder",
                       r->manifests.dir, r->manifests.origin);
    }

    char **names = NULL;
    int n = 0, cap = 0;
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL) {
        size_t len = strlen(entry->d_name);
        if (len <= 5 || strcmp(entry->d_name + len - 5, ".json") != 0 || entry->d_name[0] == '.') {
            continue;
        }
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            names = xrealloc(names, (size_t)cap * sizeof *names);
        }
        names[n++] = xstrndup(entry->d_name, len - 5);
    }
    closedir(dir);

    qsort(names, (size_t)n, sizeof *names, compare_strings);
    *names_out = names;
    *n_out = n;
    return 0;
}

static void free_names(char **names, int n) {
    for (int i = 0; i < n; i++) {
        free(names[i]);
    }
    free(names);
}

static char *join_names(char **names, int n) {
    StrBuf joined;
    sb_init(&joined);
    for (int i = 0; i < n; i++) {
        sb_printf(&joined, "%s%s", i ? ", " : "", names[i]);
    }
    return joined.data;
}

// Returns <manifest folder>/<name>.json (caller frees), or NULL when the folder is unknown.
static char *manifest_file_path(const Resolver *r, const char *name) {
    if (!r->manifests.dir) {
        return NULL;
    }
    char *file_name = xasprintf("%s.json", name);
    char *path = path_join(r->manifests.dir, file_name);
    free(file_name);
    return path;
}

const Manifest *resolver_manifest(const Resolver *r, const char *name) {
    if (!manifest_name_is_valid(name)) {
        err_set("invalid data set or model name \"%s\": names contain only letters, digits, '_', "
                "'-' and '.'",
                name);
        return NULL;
    }

    ResolverCache *state = r->state;
    pthread_mutex_lock(&state->lock);
    for (int i = 0; i < state->n_manifests; i++) {
        if (strcmp(state->manifests[i]->name, name) == 0) {
            Manifest *found = state->manifests[i];
            pthread_mutex_unlock(&state->lock);
            return found;
        }
    }
    pthread_mutex_unlock(&state->lock);

    if (!r->manifests.dir) {
        err_set("no manifest for \"%s\": the manifest folder is %s", name, r->manifests.origin);
        return NULL;
    }
    char *path = manifest_file_path(r, name);
    if (!file_exists(path)) {
        char **names;
        int n;
        char *available = list_manifest_names(r, &names, &n) == 0 ? join_names(names, n) : NULL;
        err_set("no manifest named \"%s\": %s does not exist (manifest folder from %s). Available: "
                "%s",
                name, path, r->manifests.origin, available ? available : "(none)");
        if (available) {
            free_names(names, n);
            free(available);
        }
        free(path);
        return NULL;
    }

    Manifest *manifest = xcalloc(1, sizeof *manifest);
    int rc = manifest_load(path, manifest);
    free(path);
    if (rc != 0) {
        free(manifest);
        return NULL;
    }

    // Another thread may have loaded the same manifest meanwhile; keep the first one.
    pthread_mutex_lock(&state->lock);
    for (int i = 0; i < state->n_manifests; i++) {
        if (strcmp(state->manifests[i]->name, name) == 0) {
            Manifest *found = state->manifests[i];
            pthread_mutex_unlock(&state->lock);
            manifest_free(manifest);
            free(manifest);
            return found;
        }
    }
    state->manifests = xrealloc(state->manifests,
                                (size_t)(state->n_manifests + 1) * sizeof *state->manifests);
    state->manifests[state->n_manifests++] = manifest;
    pthread_mutex_unlock(&state->lock);
    return manifest;
}

char *resolver_list(const Resolver *r, const char *kind) {
    char **names;
    int n;
    if (list_manifest_names(r, &names, &n) != 0) {
        return NULL;
    }

    int n_matching = 0;
    for (int i = 0; i < n; i++) {
        if (kind) {
            const Manifest *m = resolver_manifest(r, names[i]);
            if (!m) {
                free_names(names, n);
                return NULL;
            }
            if (strcmp(m->kind, kind) != 0) {
                free(names[i]);
                continue;
            }
        }
        names[n_matching++] = names[i];
    }

    char *joined = join_names(names, n_matching);
    free_names(names, n_matching);
    return joined;
}

// ----------------------------------------------------------------------------
// Verification

// Computes the SHA-256 of `path`, reusing the result for a file whose identity, size and mtime
// have not changed since it was last hashed.
static int file_sha256_cached(const Resolver *r, const char *path, const struct stat *st,
                              char hex[65]) {
    ResolverCache *state = r->state;
    pthread_mutex_lock(&state->lock);
    for (int i = 0; i < state->n_hashes; i++) {
        const HashEntry *e = &state->hashes[i];
        if (e->device == st->st_dev && e->inode == st->st_ino && e->size == st->st_size &&
            e->mtime.tv_sec == st->st_mtim.tv_sec && e->mtime.tv_nsec == st->st_mtim.tv_nsec) {
            memcpy(hex, e->sha256, 65);
            pthread_mutex_unlock(&state->lock);
            return 0;
        }
    }
    pthread_mutex_unlock(&state->lock);

    // Hash outside the lock, so that threads resolving different files do not wait on each other.
    if (sha256_file(path, hex) != 0) {
        return -1;
    }

    pthread_mutex_lock(&state->lock);
    state->hashes = xrealloc(state->hashes, (size_t)(state->n_hashes + 1) * sizeof *state->hashes);
    HashEntry *e = &state->hashes[state->n_hashes++];
    *e = (HashEntry){st->st_dev, st->st_ino, st->st_size, st->st_mtim, {0}};
    memcpy(e->sha256, hex, 65);
    pthread_mutex_unlock(&state->lock);
    return 0;
}

// Checks a found copy: size first (cheap), then SHA-256. The next location to try is named in the
// message, because deleting a bad copy makes the resolver search on.
static int verify_copy(const Resolver *r, const Manifest *m, const ManifestFile *f,
                       const char *path) {
    struct stat st;
    if (stat(path, &st) != 0) {
        return err_set("%s: cannot read %s: %s", m->name, path, strerror(errno));
    }

    char actual[65];
    if (file_sha256_cached(r, path, &st, actual) != 0) {
        return err_prefix("%s", m->name);
    }
    if ((int64_t)st.st_size == f->bytes && strcmp(actual, f->sha256) == 0) {
        return 0;
    }

    StrBuf msg;
    sb_init(&msg);
    sb_printf(&msg,
              "%s: %s is corrupt or a different version: expected %lld bytes with SHA-256 %s, "
              "found %lld bytes with SHA-256 %s. ",
              m->name, path, (long long)f->bytes, f->sha256, (long long)st.st_size, actual);
    if (f->url) {
        sb_printf(&msg, "Replace it with a fresh download of %s", f->url);
    } else {
        sb_printf(&msg, "Replace it with a copy built by the \"build\" steps in %s",
                  m->manifest_path);
    }
    sb_append(&msg, ", or delete it so that the later search locations are used.");
    err_set("%s", msg.data);
    sb_free(&msg);
    return -1;
}

// ----------------------------------------------------------------------------
// Lookup

static const ManifestFile *manifest_find_file(const Manifest *m, const char *path) {
    for (int i = 0; i < m->n_files; i++) {
        if (strcmp(m->files[i].path, path) == 0) {
            return &m->files[i];
        }
    }
    return NULL;
}

// Builds the error for a file found nowhere.
static void report_missing(const Manifest *m, const ManifestFile *f,
                           const Location *locations, char **candidates, int n) {
    StrBuf msg;
    sb_init(&msg);
    sb_printf(&msg, "%s: file %s not found. Searched:\n", m->name, f->path);
    static const char *labels[] = {"user directory", "cache", "shared folder"};
    for (int i = 0; i < n; i++) {
        if (candidates[i]) {
            sb_printf(&msg, "  %d. %s (%s): %s\n", i + 1, labels[i], locations[i].origin,
                      candidates[i]);
        } else {
            sb_printf(&msg, "  %d. %s: %s\n", i + 1, labels[i], locations[i].origin);
        }
    }

    const char *target = candidates[1] ? candidates[1] : candidates[0];
    if (f->url) {
        sb_printf(&msg, "Download it from %s (%lld bytes, SHA-256 %s)", f->url,
                  (long long)f->bytes, f->sha256);
        if (target) {
            sb_printf(&msg, " and put it at %s, e.g.\n  curl -L --create-dirs -o '%s' '%s'", target,
                      target, f->url);
        } else {
            sb_append(&msg, " and put it in a folder given by QBIAS_CACHE_DIR or --data-dir");
        }
    } else {
        sb_printf(&msg, "It has no download URL: build it with the \"build\" steps in %s (SHA-256 "
                        "%s) and put it at %s",
                  m->manifest_path, f->sha256,
                  target ? target : "<dir>/<name>/<path> under QBIAS_CACHE_DIR or --data-dir");
    }
    err_set("%s", msg.data);
    sb_free(&msg);
}

static char *resolve_file(const Resolver *r, const Manifest *m, const ManifestFile *f) {
    const Location locations[3] = {r->user, r->cache, r->shared};
    char *candidates[3] = {NULL, NULL, NULL};
    for (int i = 0; i < 3; i++) {
        if (!locations[i].dir) {
            continue;
        }
        const char *subdir = i == 2 ? m->shared_dir : m->name;
        char *dir = path_join(locations[i].dir, subdir);
        candidates[i] = path_join(dir, f->path);
        free(dir);
    }

    // A user directory that does not exist is a mistake in the argument, not an empty place.
    if (r->user.dir && !dir_exists(r->user.dir)) {
        err_set("the data directory %s (%s) does not exist or is not a directory; fix the path, or "
                "leave it unset to use the cache and the shared folder",
                r->user.dir, r->user.origin);
        for (int i = 0; i < 3; i++) {
            free(candidates[i]);
        }
        return NULL;
    }

    // The first copy found decides: a corrupt copy is an error, not a reason to search on. So is
    // something that is there but is not a regular file (a directory, a FIFO, a symlink loop).
    char *found = NULL;
    int first = -1;
    int blocked = -1;
    int blocked_errno = 0;
    for (int i = 0; i < 3 && first < 0 && blocked < 0; i++) {
        if (!candidates[i]) {
            continue;
        }
        struct stat st;
        if (stat(candidates[i], &st) == 0) {
            if (S_ISREG(st.st_mode)) {
                first = i;
            } else {
                blocked = i;
            }
        } else if (errno != ENOENT && errno != ENOTDIR) {
            blocked = i;
            blocked_errno = errno;
        }
    }
    if (blocked >= 0) {
        err_set("%s: %s is there but is not a readable regular file (%s); remove it or replace it "
                "with the data file (SHA-256 %s)",
                m->name, candidates[blocked],
                blocked_errno ? strerror(blocked_errno) : "a directory or special file", f->sha256);
    } else if (first < 0) {
        report_missing(m, f, locations, candidates, 3);
    } else if (verify_copy(r, m, f, candidates[first]) == 0) {
        found = xstrdup(candidates[first]);
        log_debug("%s: using %s", m->name, found);
    }
    for (int i = 0; i < 3; i++) {
        free(candidates[i]);
    }
    return found;
}

char *resolver_find(const Resolver *r, const char *name, const char *path) {
    const Manifest *m = resolver_manifest(r, name);
    if (!m) {
        return NULL;
    }
    const ManifestFile *f = manifest_find_file(m, path);
    if (!f) {
        StrBuf files;
        sb_init(&files);
        for (int i = 0; i < m->n_files; i++) {
            sb_printf(&files, "%s%s", i ? ", " : "", m->files[i].path);
        }
        err_set("%s: the manifest %s lists no file \"%s\"; its files are: %s", name,
                m->manifest_path, path, files.data);
        sb_free(&files);
        return NULL;
    }
    return resolve_file(r, m, f);
}

char *resolver_find_model(const Resolver *r, const char *model) {
    if (file_exists(model) || dir_exists(model)) {
        return xstrdup(model); // a GGUF file or a Hugging Face folder
    }
    if (strchr(model, '/') || !manifest_name_is_valid(model)) {
        err_set("model file %s not found; pass the path of an existing GGUF file or the name of a "
                "bundled model",
                model);
        return NULL;
    }

    // A missing manifest means an unknown name; an invalid one keeps its own error.
    char *manifest_path = manifest_file_path(r, model);
    bool known_name = manifest_path && file_exists(manifest_path);
    free(manifest_path);
    if (!known_name) {
        char *known = resolver_list(r, "model");
        err_set("model \"%s\" is neither an existing file nor a known model name (known models: "
                "%s); pass the path of a GGUF file or one of these names",
                model, known ? known : "none");
        free(known);
        return NULL;
    }
    const Manifest *m = resolver_manifest(r, model);
    if (!m) {
        return NULL;
    }
    if (strcmp(m->kind, "model") != 0) {
        err_set("\"%s\" is a data set, not a model (its manifest %s has kind \"%s\"); pass a "
                "model name or the path of a GGUF file",
                model, m->manifest_path, m->kind);
        return NULL;
    }
    return resolver_find(r, model, m->model_file);
}

const char *resolver_cache_dir(const Resolver *resolver) {
    return resolver->cache.dir;
}
