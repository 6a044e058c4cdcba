// a16_instances.h: the weight-only loops' instances, included by avx512.c and avx2.c.
//
// The includer defines a16_range(w, bits, fp16, symmetric, row0, row1, x, y) as an always-inline
// function. Each instance calls it with constants, so that the compiler folds away the branches
// on the container size, the scale format (fp16 or fp32) and the zero point (symmetric or stored).

// a16_range_<bits>_<fp16><symmetric>, e.g. a16_range_4_11 for 4-bit codes, fp16 scales, symmetric.
#define A16_INSTANCE(bits, fp16, symmetric)                                                        \
    static void a16_range_##bits##_##fp16##symmetric(const KQuantMatrix *w, int row0, int row1,   \
                                                     const float *x, float *y) {                  \
        a16_range(w, bits, fp16, symmetric, row0, row1, x, y);                                   \
    }
#define A16_INSTANCES(bits)                                                                        \
    A16_INSTANCE(bits, 0, 0)                                                                       \
    A16_INSTANCE(bits, 0, 1)                                                                       \
    A16_INSTANCE(bits, 1, 0)                                                                       \
    A16_INSTANCE(bits, 1, 1)

// Returns the kind of scale and zero point of w, 0 .. 3 in the order of A16_INSTANCES.
static inline int a16_kind(const KQuantMatrix *w) {
    return (w->fp16_scales ? 2 : 0) + (w->zeros == NULL ? 1 : 0);
}
