// bert.h: BERT sequence classifiers (Hugging Face BertForSequenceClassification), such as the
// toxicity classifier unitary/toxic-bert that the reference study scores generations with.
//
// Forward pass (transformers' BertModel, post-layer-norm):
//   h = LayerNorm(word[ids] + position[0..n-1] + token_type[0])
//   per layer: a = MultiHeadSelfAttention(h) (no mask: one unpadded sequence)
//              h1 = LayerNorm(a Wo^T + bo + h)
//              h = LayerNorm(act(h1 Wi^T + bi) Wout^T + bout + h1)
//   pooled = tanh(h[0] Wp^T + bp)      (h[0] is the [CLS] position)
//   logits = pooled Wc^T + bc
// Scores are sigmoid(logits) for problem_type "multi_label_classification", softmax otherwise.
// All weights are converted to fp32 at load (BERT-base is 110M parameters, 440 MB in fp32).
#ifndef QBIAS_BERT_H
#define QBIAS_BERT_H

#include <stdbool.h>

typedef struct BertClassifier BertClassifier;

// Loads config.json and the safetensors checkpoint of a Hugging Face folder. Returns NULL with an
// error naming the file and the missing or invalid field or tensor. Free with bert_free().
BertClassifier *bert_load(const char *folder);
void bert_free(BertClassifier *b);

int bert_num_labels(const BertClassifier *b);
// Returns the name of label i (from config.json's id2label), valid until bert_free().
const char *bert_label(const BertClassifier *b, int i);
// Returns true when scores are sigmoids of independent labels (multi-label), false for softmax.
bool bert_multi_label(const BertClassifier *b);
// Maximum sequence length in tokens (max_position_embeddings).
int bert_max_tokens(const BertClassifier *b);

// Classifies one sequence of token ids ([CLS] ... [SEP], at most bert_max_tokens()). Writes
// bert_num_labels() logits and scores (scores may be NULL). Returns 0, or -1 with an error for an
// empty or too long sequence or an id outside the vocabulary.
int bert_classify(const BertClassifier *b, const int *ids, int n, float *logits, float *scores);

struct Tokenizer;

// Tokenizes `text` with the classifier's WordPiece tokenizer ([CLS] text [SEP]), truncating the
// word pieces so the sequence fits bert_max_tokens() as the Hugging Face pipeline does with
// truncation on, and classifies it. Writes bert_num_labels() logits and scores. Returns 0 or -1.
int bert_classify_text(const BertClassifier *b, const struct Tokenizer *tok, const char *text,
                       float *logits, float *scores);

#endif
