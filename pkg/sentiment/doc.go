// Package sentiment is the built-in Chinese/English sentiment analyser of omnibus: a lexicon
// and a handful of rules, no model and no segmenter, used when no vendor (Tencent Cloud NLP,
// Aliyun, iFlytek) is configured or reachable.
package sentiment
