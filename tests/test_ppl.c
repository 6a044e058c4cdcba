// test_ppl.c: perplexity and KL divergence over WikiText-2 on stories260K.
#include <stdlib.h>
#include <string.h>

#include "../engine/ppl.h"
#include "../engine/util.h"
#include "test.h"

static Model *make(const Model *base, const char *text) {
    QuantSpec spec;
    char error[512];
    REQUIRE_MSG(quant_spec_parse(text, &spec, error, sizeof error) == 0, "%s", error);
    Model *v = model_make_variant(base, &spec);
    REQUIRE_MSG(v != NULL, "%s", err_msg());
    return v;
}

TEST(ppl_orders_rtn_bit_widths) {
    Model *base = model_load(test_shared_path("models/stories260K/stories260K.gguf"));
    REQUIRE_MSG(base != NULL, "%s", err_msg());
    char *text = NULL;
    size_t len = 0;
    REQUIRE_OK(file_read_all(test_shared_path("data/wikitext-2-raw/wiki.test.raw"), &text, &len));
    len = len > 60000 ? 60000 : len;
    int *tokens = NULL, n_tokens = 0;
    REQUIRE_OK(tokenizer_encode(base->tokenizer, text, len, true, false, &tokens, &n_tokens));

    const char *specs[] = {"fp32", "fp32", "rtn:w8g128", "rtn:w4g128", "rtn:w3g128"};
    Model *variants[5];
    for (int i = 0; i < 5; i++) {
        variants[i] = make(base, specs[i]);
    }
    PplResult r[5];
    REQUIRE_OK(ppl_run((const Model *const *)variants, 5, tokens, n_tokens, 256, 20, NULL, NULL, r));

    // Chunks of 256 tokens score their last 127 positions.
    CHECK_EQ_INT(r[0].n_tokens, 20 * 127);
    CHECK(r[0].ppl > 1 && isfinite(r[0].ppl) && r[0].ppl_se > 0);
    // The same model against itself: identical distributions.
    CHECK(r[1].ppl == r[0].ppl);
    CHECK(r[1].kld_mean == 0 && r[1].kld_max == 0);
    CHECK(r[1].same_top == 1.0);
    // Fewer bits cost more: W8 within 1% of fp32, W4 above W8, W3 above W4.
    CHECK_MSG(fabs(r[2].ppl / r[0].ppl - 1) < 0.01, "w8 %.4f vs fp32 %.4f", r[2].ppl, r[0].ppl);
    CHECK_MSG(r[3].ppl > r[2].ppl && r[4].ppl > r[3].ppl, "ppl w8 %.3f w4 %.3f w3 %.3f", r[2].ppl,
              r[3].ppl, r[4].ppl);
    CHECK(r[2].kld_mean < r[3].kld_mean && r[3].kld_mean < r[4].kld_mean);
    CHECK(r[2].same_top > r[3].same_top);
    CHECK(r[3].kld_median <= r[3].kld_p99 && r[3].kld_p99 <= r[3].kld_max);

    for (int i = 0; i < 5; i++) {
        model_free(variants[i]);
    }
    free(tokens);
    free(text);
    model_free(base);
}

TEST(ppl_rejects_short_text_and_bad_ctx) {
    Model *base = model_load(test_shared_path("models/stories260K/stories260K.gguf"));
    REQUIRE(base != NULL);
    const Model *variants[1] = {base};
    int tokens[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    PplResult r[1];
    CHECK(ppl_run(variants, 1, tokens, 10, 64, 0, NULL, NULL, r) == -1);
    CHECK(strstr(err_msg(), "fewer than one chunk") != NULL);
    CHECK(ppl_run(variants, 1, tokens, 10, 7, 0, NULL, NULL, r) == -1);
    CHECK(strstr(err_msg(), "even number") != NULL);
    model_free(base);
}
