// chat_source.h: finds a model's chat template and its special-token texts.
#ifndef QBIAS_CHAT_SOURCE_H
#define QBIAS_CHAT_SOURCE_H

// Reads the chat template of a model and the texts of its BOS and EOS tokens, as transformers
// passes them to the template. `path` is a GGUF file (key tokenizer.chat_template; BOS/EOS from the
// tokenizer ids) or a Hugging Face folder (tokenizer_config.json's chat_template, a string or the
// entry named "default" of a list, and its bos_token/eos_token, strings or {"content": ...}).
// On success sets *template_text, and *bos and *eos (NULL when the model has none); the caller
// frees all three. Returns -1 with an error naming the file when there is no chat template.
int chat_source_read(const char *path, char **template_text, char **bos, char **eos);

#endif
