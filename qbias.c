// qbias.c: the command-line entry point. Dispatches subcommands implemented in the rooms below.
#include <stdio.h>
#include <string.h>

#include "engine/bench.h"
#include "engine/gguf.h"
#include "engine/util.h"

static int cmd_info(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: qbias info MODEL\n");
        return 2;
    }
    GGUFFile *f = gguf_open(argv[1]);
    if (!f) {
        fprintf(stderr, "error: %s\n", err_msg());
        return 1;
    }
    printf("GGUF v%u, %llu keys, %llu tensors\n", f->version, (unsigned long long)f->n_kv,
           (unsigned long long)f->n_tensors);
    for (uint64_t i = 0; i < f->n_kv; i++) {
        printf("  %s: %s\n", f->kv[i].key, gguf_type_name(f->kv[i].value.type));
    }
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        const GGUFTensor *t = &f->tensors[i];
        printf("  %-32s %-5s [%lld, %lld, %lld, %lld]\n", t->name, ggml_type_name(t->type),
               (long long)t->ne[0], (long long)t->ne[1], (long long)t->ne[2], (long long)t->ne[3]);
    }
    gguf_close(f);
    return 0;
}

int main(int argc, char **argv) {
    if (argc >= 2 && strcmp(argv[1], "info") == 0) {
        return cmd_info(argc - 1, argv + 1);
    }
    if (argc >= 2 && strcmp(argv[1], "bench") == 0) {
        return bench_main(argc - 1, argv + 1);
    }
    fprintf(stderr, "usage: qbias info MODEL\n");
    return 2;
}
