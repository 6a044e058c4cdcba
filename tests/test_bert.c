// test_bert.c: the BERT classifier against reference logits of a random-weight
// BertForSequenceClassification (float64 PyTorch on the stored float32 weights).
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "../engine/bert.h"
#include "../engine/tokenizer.h"
#include "../engine/util.h"
#include "test.h"

TEST(bert_matches_reference_logits) {
    BertClassifier *b = bert_load(test_shared_path("reference/bert-tiny"));
    REQUIRE_MSG(b != NULL, "%s", err_msg());
    CHECK_EQ_INT(bert_num_labels(b), 6);
    CHECK(bert_multi_label(b));
    CHECK_STR(bert_label(b, 5), "identity_hate");

    char *text = NULL;
    size_t len = 0;
    REQUIRE_OK(file_read_all(test_shared_path("reference/bert-tiny/cases.jsonl"), &text, &len));
    int n_cases = 0;
    double max_diff = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        cJSON *c = cJSON_Parse(line);
        REQUIRE(c != NULL);
        const cJSON *ids_json = cJSON_GetObjectItem(c, "input_ids");
        int n = cJSON_GetArraySize(ids_json);
        int *ids = xmalloc((size_t)n * sizeof(int));
        for (int i = 0; i < n; i++) {
            ids[i] = cJSON_GetArrayItem(ids_json, i)->valueint;
        }
        float logits[6], scores[6];
        REQUIRE_OK(bert_classify(b, ids, n, logits, scores));
        const cJSON *expected = cJSON_GetObjectItem(c, "logits_f64");
        const cJSON *expected_scores = cJSON_GetObjectItem(c, "sigmoid_f64");
        for (int i = 0; i < 6; i++) {
            double d = fabs(logits[i] - cJSON_GetArrayItem(expected, i)->valuedouble);
            max_diff = d > max_diff ? d : max_diff;
            // float32 PyTorch differs from the float64 reference by up to 2.5e-6 on these cases.
            CHECK_MSG(d <= 1e-5, "case %s label %d: logit %.7g vs %.7g",
                      cJSON_GetObjectItem(c, "name")->valuestring, i, logits[i],
                      cJSON_GetArrayItem(expected, i)->valuedouble);
            CHECK_NEAR(scores[i], cJSON_GetArrayItem(expected_scores, i)->valuedouble, 1e-5);
        }
        free(ids);
        cJSON_Delete(c);
        n_cases++;
    }
    CHECK_EQ_INT(n_cases, 10);
    printf("  max |logit difference| over 10 cases: %.3g\n", max_diff);
    free(text);
    bert_free(b);
}

TEST(bert_rejects_bad_input) {
    BertClassifier *b = bert_load(test_shared_path("reference/bert-tiny"));
    REQUIRE_MSG(b != NULL, "%s", err_msg());
    float logits[6];
    int ids[3] = {101, 40000, 102};
    CHECK(bert_classify(b, ids, 3, logits, NULL) == -1);
    CHECK(strstr(err_msg(), "outside the vocabulary") != NULL);
    CHECK(bert_classify(b, ids, 0, logits, NULL) == -1);
    int *long_ids = xcalloc(600, sizeof(int));
    CHECK(bert_classify(b, long_ids, 600, logits, NULL) == -1);
    CHECK(strstr(err_msg(), "1..512") != NULL);
    free(long_ids);
    bert_free(b);

    // A decoder model folder is not a BERT classifier.
    CHECK(bert_load(test_shared_path("reference/tiny-models/qwen2-tiny/hf")) == NULL);
    CHECK(strstr(err_msg(), "model_type") != NULL);
}

// From text: WordPiece ids (vocab.txt) and the logits of the reference, including the case
// truncated to 512 tokens.
TEST(bert_classifies_text_like_reference) {
    const char *folder = test_shared_path("reference/bert-tiny");
    BertClassifier *b = bert_load(folder);
    REQUIRE_MSG(b != NULL, "%s", err_msg());
    Tokenizer *tok = tokenizer_load_hf(folder);
    REQUIRE_MSG(tok != NULL, "%s", err_msg());
    char *text = NULL;
    size_t len = 0;
    REQUIRE_OK(file_read_all(test_shared_path("reference/bert-tiny/cases.jsonl"), &text, &len));
    int n_cases = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        cJSON *c = cJSON_Parse(line);
        REQUIRE(c != NULL);
        float logits[6], scores[6];
        REQUIRE_OK(bert_classify_text(b, tok, cJSON_GetObjectItem(c, "text")->valuestring, logits,
                                      scores));
        const cJSON *expected = cJSON_GetObjectItem(c, "logits_f64");
        for (int i = 0; i < 6; i++) {
            CHECK_MSG(fabs(logits[i] - cJSON_GetArrayItem(expected, i)->valuedouble) <= 1e-5,
                      "case %s label %d: %.7g vs %.7g", cJSON_GetObjectItem(c, "name")->valuestring,
                      i, logits[i], cJSON_GetArrayItem(expected, i)->valuedouble);
        }
        cJSON_Delete(c);
        n_cases++;
    }
    CHECK_EQ_INT(n_cases, 10);
    free(text);
    tokenizer_free(tok);
    bert_free(b);
}
