// format.c: allocation, packing and unpacking of the packed weight formats (format.h).
#include "format.h"

#include <stdlib.h>
#include <string.h>

#include "../kernels/half.h"
#include "rtn.h"

#define ALIGNMENT 64

const char *qformat_check(const QFormat *f) {
    if (f->code_bits < 2 || f->code_bits > 8) {
        return "code bits must be 2..8";
    }
    if (f->group < 0 || f->group % KQ_BLOCK_COLS != 0) {
        return "packed formats need a group of a multiple of 32 columns (32, 64, 128, ...) or one "
               "group per row";
    }
    return NULL;
}

int qformat_container_bits(const QFormat *f) {
    if (f->code_bits > 4) {
        return 8;
    }
    // The int8-activation tiles have no 3-bit layout; 2- and 3-bit codes use 4-bit containers.
    return f->code_bits == 3 && !f->int8_acts ? 3 : 4;
}

static size_t round_up(size_t n, size_t to) {
    return (n + to - 1) / to * to;
}

// Fills the view's sizes (not its pointers) for a [rows, cols] matrix.
static void describe(KQuantMatrix *v, int rows, int cols, const QFormat *f) {
    memset(v, 0, sizeof *v);
    v->rows = rows;
    v->cols = cols;
    v->cols_padded = (int)round_up((size_t)cols, KQ_BLOCK_COLS);
    v->bits = qformat_container_bits(f);
    v->group = f->group > 0 && f->group < cols ? f->group : cols;
    v->n_groups = (cols + v->group - 1) / v->group;
    v->zero_point = 1 << (f->code_bits - 1);
    v->fp16_scales = f->fp16_scales;
    v->layout = f->int8_acts ? KQ_TILES : KQ_ROWS;
    if (v->layout == KQ_TILES) {
        size_t chunk_cols = v->bits == 8 ? 4 : 8;
        v->stride = (size_t)v->cols_padded / chunk_cols * sizeof(QChunkTiles8);
    } else {
        size_t block_bytes = v->bits == 8   ? sizeof(QBlockRows8)
                             : v->bits == 4 ? sizeof(QBlockRows4)
                                            : sizeof(QBlockRows3);
        v->stride = (size_t)v->cols_padded / KQ_BLOCK_COLS * block_bytes;
    }
}

// Rows as stored: tiles pad them to a multiple of 16.
static size_t stored_rows(const KQuantMatrix *v) {
    return v->layout == KQ_TILES ? round_up((size_t)v->rows, KQ_TILE_ROWS) : (size_t)v->rows;
}

static size_t code_bytes(const KQuantMatrix *v) {
    size_t units = v->layout == KQ_TILES ? stored_rows(v) / KQ_TILE_ROWS : stored_rows(v);
    return units * v->stride;
}

static size_t group_count(const KQuantMatrix *v) {
    return stored_rows(v) * (size_t)v->n_groups;
}

double qformat_bits_per_weight(const QFormat *f, int rows, int cols) {
    KQuantMatrix v;
    describe(&v, rows, cols, f);
    double bytes = (double)code_bytes(&v);
    bytes += (double)group_count(&v) * (f->fp16_scales ? 2 : 4);
    if (!f->symmetric) {
        bytes += (double)group_count(&v);
    }
    return bytes * 8.0 / ((double)rows * (double)cols);
}

static size_t header_bytes(void) {
    return round_up(sizeof(QMatrix), ALIGNMENT);
}

void qmatrix_payload(const QMatrix *m, const void **data, size_t *nbytes) {
    *data = (const unsigned char *)m + header_bytes();
    *nbytes = m->nbytes - header_bytes();
}

// Returns the code of column col in a row stored in 32-column blocks only, as layouts before the
// superblocks did (4-bit before version 2, 3-bit before version 3).
static int blocks_only_code(const uint8_t *line, int bits, int col) {
    int i = col % KQ_BLOCK_COLS;
    if (bits == 4) {
        uint8_t byte = line[(size_t)(col / KQ_BLOCK_COLS) * sizeof(QBlockRows4) + i % 16];
        return i < 16 ? byte & 15 : byte >> 4;
    }
    const QBlockRows3 *block = (const QBlockRows3 *)(line + (size_t)(col / KQ_BLOCK_COLS) * sizeof(QBlockRows3));
    int low = (block->low[i % 8] >> (2 * (i / 8))) & 3;
    int high = (block->high[i / 8] >> (i % 8)) & 1;
    return low | high << 2;
}

// Converts KQ_ROWS codes from an older layout version to the current one: rows of blocks only
// become superblocks and blocks. Returns false when out of memory.
static bool convert_from_blocks_only(QMatrix *m) {
    KQuantMatrix *v = &m->view;
    uint8_t *old_line = malloc(v->stride);
    if (!old_line) {
        return false;
    }
    for (int row = 0; row < v->rows; row++) {
        uint8_t *line = (uint8_t *)v->codes + (size_t)row * v->stride;
        memcpy(old_line, line, v->stride);
        for (int col = 0; col < v->cols_padded; col++) {
            qmatrix_set_code(m, row, col, blocks_only_code(old_line, v->bits, col));
        }
    }
    free(old_line);
    return true;
}

QMatrix *qmatrix_from_payload(int rows, int cols, const QFormat *f, const void *data,
                              size_t nbytes, int version) {
    if (qformat_check(f) != NULL || version < 1 || version > QMATRIX_LAYOUT_VERSION) {
        return NULL;
    }
    QMatrix *m = qmatrix_new(rows, cols, f);
    if (!m) {
        return NULL;
    }
    if (m->nbytes - header_bytes() != nbytes) {
        free(m);
        return NULL;
    }
    memcpy((unsigned char *)m + header_bytes(), data, nbytes);
    bool blocks_only = m->view.layout == KQ_ROWS &&
                       ((m->view.bits == 4 && version < 2) || (m->view.bits == 3 && version < 3));
    if (blocks_only && !convert_from_blocks_only(m)) {
        free(m);
        return NULL;
    }
    return m;
}

QMatrix *qmatrix_new(int rows, int cols, const QFormat *f) {
    KQuantMatrix v;
    describe(&v, rows, cols, f);
    size_t header = header_bytes();
    size_t codes = round_up(code_bytes(&v), ALIGNMENT);
    size_t scales = round_up(group_count(&v) * (f->fp16_scales ? 2 : 4), ALIGNMENT);
    size_t zeros = f->symmetric ? 0 : round_up(group_count(&v), ALIGNMENT);
    size_t total = header + codes + scales + zeros;

    QMatrix *m = aligned_alloc(ALIGNMENT, total);
    if (!m) {
        return NULL;
    }
    memset(m, 0, total);
    unsigned char *base = (unsigned char *)m;
    m->view = v;
    m->view.codes = base + header;
    m->view.scales = base + header + codes;
    m->view.zeros = f->symmetric ? NULL : base + header + codes + scales;
    m->format = *f;
    m->nbytes = total;
    return m;
}

void qmatrix_set_code(QMatrix *m, int row, int col, int code) {
    KQuantMatrix *v = &m->view;
    uint8_t *codes = (uint8_t *)v->codes;
    uint8_t u = (uint8_t)code;
    if (v->layout == KQ_TILES) {
        uint8_t *tile = codes + (size_t)(row / KQ_TILE_ROWS) * v->stride;
        int r = row % KQ_TILE_ROWS;
        if (v->bits == 8) {
            tile[(size_t)(col / 4) * 64 + 4 * r + col % 4] = u;
            return;
        }
        int j = col % 8;
        uint8_t *byte = &tile[(size_t)(col / 8) * 64 + 4 * r + j % 4];
        *byte = j < 4 ? (uint8_t)((*byte & 0xf0) | u) : (uint8_t)((*byte & 0x0f) | u << 4);
        return;
    }

    uint8_t *line = codes + (size_t)row * v->stride;
    int i = col % KQ_BLOCK_COLS;
    if (v->bits == 8) {
        line[col] = u;
        return;
    }
    if (v->bits == 4) {
        int super_cols = kq_rows_super_cols(v);
        uint8_t *byte;
        bool low;
        if (col < super_cols) {
            // Nibble t of lane c % 16 of the superblock (QSuperRows4).
            int c = col % KQ_SUPER_COLS, t = c / 16;
            byte = &line[(size_t)(col / KQ_SUPER_COLS) * sizeof(QSuperRows4) + 4 * (c % 16) + t / 2];
            low = t % 2 == 0;
        } else {
            byte = &line[(size_t)super_cols / 2 +
                         (size_t)((col - super_cols) / KQ_BLOCK_COLS) * sizeof(QBlockRows4) + i % 16];
            low = i < 16;
        }
        *byte = low ? (uint8_t)((*byte & 0xf0) | u) : (uint8_t)((*byte & 0x0f) | u << 4);
        return;
    }
    int super_cols = kq_rows_super_cols(v);
    if (col < super_cols) {
        // Bits 3t .. 3t + 2 of the 24-bit word of lane c % 16 (QSuperRows3).
        int c = col % KQ_SUPER_COLS, t = c / 16;
        uint8_t *word = line + (size_t)(col / KQ_SUPER_COLS) * sizeof(QSuperRows3) + 3 * (c % 16);
        uint32_t word24 = (uint32_t)word[0] | (uint32_t)word[1] << 8 | (uint32_t)word[2] << 16;
        word24 = (word24 & ~(7u << (3 * t))) | (uint32_t)(u & 7) << (3 * t);
        word[0] = (uint8_t)word24;
        word[1] = (uint8_t)(word24 >> 8);
        word[2] = (uint8_t)(word24 >> 16);
        return;
    }
    QBlockRows3 *block = (QBlockRows3 *)(line + (size_t)super_cols / KQ_BLOCK_COLS * sizeof(QBlockRows3) +
                                         (size_t)((col - super_cols) / KQ_BLOCK_COLS) * sizeof(QBlockRows3));
    int shift = 2 * (i / 8);
    block->low[i % 8] = (uint8_t)((block->low[i % 8] & ~(3 << shift)) | (u & 3) << shift);
    uint8_t *high = &block->high[i / 8];
    *high = (uint8_t)((*high & ~(1 << (i % 8))) | ((u >> 2) & 1) << (i % 8));
}

// Index of (row, group) in the scale and zero arrays (layouts in kernels/kernels.h).
static size_t group_index(const KQuantMatrix *v, int row, int group) {
    if (v->layout == KQ_TILES) {
        return ((size_t)(row / KQ_TILE_ROWS) * (size_t)v->n_groups + (size_t)group) * KQ_TILE_ROWS +
               (size_t)(row % KQ_TILE_ROWS);
    }
    return (size_t)row * (size_t)v->n_groups + (size_t)group;
}

void qmatrix_set_group(QMatrix *m, int row, int group, float scale, int zero) {
    KQuantMatrix *v = &m->view;
    size_t index = group_index(v, row, group);
    if (v->fp16_scales) {
        ((uint16_t *)v->scales)[index] = fp32_to_fp16(scale);
    } else {
        ((float *)v->scales)[index] = scale;
    }
    if (v->zeros) {
        ((uint8_t *)v->zeros)[index] = (uint8_t)zero;
    }
}

void qmatrix_quantize_row_rtn(QMatrix *m, int row, const float *w) {
    const KQuantMatrix *v = &m->view;
    int bits = m->format.code_bits;
    int *q = malloc((size_t)v->group * sizeof(int));
    if (!q) {
        abort();
    }
    for (int g = 0; g < v->n_groups; g++) {
        int c0 = g * v->group;
        int n = v->cols - c0 < v->group ? v->cols - c0 : v->group;
        int zero = 0;
        float scale = rtn_quantize_group(w + c0, n, bits, m->format.symmetric, q, &zero);
        // Symmetric codes q in [-2^(b-1), 2^(b-1) - 1] are stored as u = q + 2^(b-1).
        int offset = m->format.symmetric ? v->zero_point : 0;
        for (int i = 0; i < n; i++) {
            qmatrix_set_code(m, row, c0 + i, q[i] + offset);
        }
        qmatrix_set_group(m, row, g, scale, zero);
    }
    free(q);
}

void qmatrix_dequantize_row(const QMatrix *m, int row, float *out) {
    const KQuantMatrix *v = &m->view;
    for (int k = 0; k < v->cols; k++) {
        int g = k / v->group;
        out[k] = (float)(kq_code(v, row, k) - kq_zero(v, row, g)) * kq_scale(v, row, g);
    }
}
