// resolver.h: finds and verifies the data files and models that qbias uses.
//
// Every data set and bundled model has a manifest, data/<name>.json, that lists its files with
// their size, SHA-256 and a download URL pinned to a commit (docs/data.md describes the format).
// The resolver looks for a manifest's file in three places, in this order:
//
//   1. the user directory: the --data-dir argument, else $QBIAS_DATA_DIR, as <dir>/<name>/<path>;
//   2. the cache: $QBIAS_CACHE_DIR, else $XDG_CACHE_HOME/qbias, else ~/.cache/qbias, as
//      <cache>/<name>/<path>;
//   3. the shared folder: $QBIAS_SHARED_DIR, else <repository root>/../shared, as
//      <shared>/<shared_dir>/<path>.
//
// The first copy found is checked (size, then SHA-256) and used. A copy that fails the check is an
// error, not a reason to search on, so that a damaged file is never silently bypassed. Manifests
// are read from $QBIAS_MANIFEST_DIR, else <repository root>/data. The repository root is the
// parent of the folder that holds the running executable (build/qbias or build/qbias_tests).
//
// The environment is read once, in resolver_new(). A Resolver may be shared by threads: its
// manifest and hash caches are guarded by a mutex.
#ifndef QBIAS_RESOLVER_H
#define QBIAS_RESOLVER_H

#include <stdint.h>

// One file of a manifest.
typedef struct ManifestFile {
    char *path;                 // relative path under <dir>/<name>/ and <shared>/<shared_dir>/
    int64_t bytes;              // expected size
    char sha256[65];            // expected SHA-256, 64 lowercase hex digits
    char *url;                  // download URL pinned to a commit; NULL when the file must be built
    // Only for files without a URL: the downloadable inputs and the commands that build the file.
    struct ManifestFile *build_inputs;
    int n_build_inputs;
    char **build_steps;
    int n_build_steps;
} ManifestFile;

typedef struct {
    char *manifest_path;        // the JSON file this was read from
    char *name;                 // equals the manifest's file name without ".json"
    char *kind;                 // "dataset" or "model"
    char *description;
    char *shared_dir;           // folder under the shared tree, e.g. "data/stereoset"
    char *source_repository;    // repository URL
    char *source_commit;        // 40-digit commit id
    char *license;
    char *citation;
    char *model_file;           // model manifests: the path of the GGUF in files; NULL otherwise
    ManifestFile *files;
    int n_files;
} Manifest;

// Reads and validates a manifest. Returns 0, or -1 with an error naming the file and the invalid
// field. On success free the manifest with manifest_free().
int manifest_load(const char *path, Manifest *out);
void manifest_free(Manifest *manifest);

typedef struct Resolver Resolver;

// Creates a resolver. `data_dir` is the --data-dir argument, or NULL to use $QBIAS_DATA_DIR; when
// that is unset too, the user directory is skipped. Never returns NULL, because a location that
// cannot be determined is reported by the lookups that need it. Free with resolver_free().
Resolver *resolver_new(const char *data_dir);
void resolver_free(Resolver *resolver);

// Returns the manifest called `name`, loading it on first use. The manifest is owned by the
// resolver and valid until resolver_free(). Returns NULL with an error when it is missing (the
// message lists the available names) or invalid.
const Manifest *resolver_manifest(const Resolver *resolver, const char *name);

// Finds file `path` of manifest `name` and verifies it. Returns a newly allocated path that the
// caller frees, or NULL with an error. The error for a missing file lists every place searched, the
// download URL, the expected SHA-256 and the cache path to put the file at. The error for a corrupt
// copy names the file, the expected and actual SHA-256 and what to do.
char *resolver_find(const Resolver *resolver, const char *name, const char *path);

// Resolves a --model argument: an existing file is returned as given; otherwise `model` must name
// a model manifest (e.g. "stories260K"), whose GGUF file is found and verified as resolver_find()
// does. Returns a newly allocated path that the caller frees, or NULL with an error.
char *resolver_find_model(const Resolver *resolver, const char *model);

// Lists the manifest names, sorted, as one newly allocated string "a, b, c" for help text. `kind`
// ("dataset" or "model") keeps only manifests of that kind; NULL keeps all. Returns NULL with an
// error when the manifest folder cannot be read or a manifest is invalid.
char *resolver_list(const Resolver *resolver, const char *kind);

// Returns the cache folder (see above), or NULL when none can be determined (HOME and
// QBIAS_CACHE_DIR unset). Owned by the resolver; the folder may not exist yet.
const char *resolver_cache_dir(const Resolver *resolver);

#endif
