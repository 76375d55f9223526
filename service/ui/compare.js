// Compare: texts (one per line) → their embeddings (POST /v1/embeddings) → every pair's cosine as a heatmap.
// The vectors come back L2-normalised, so a cosine is a dot product; one call embeds all n texts, where
// /v1/similarity would embed each text n times over n² pairs.

import { callJson } from "./api.js";
import { heatmap } from "./charts.js";
import { el, fill, lines, running } from "./dom.js";

function dot(a, b) {
  let sum = 0;
  for (let i = 0; i < a.length; i += 1) sum += a[i] * b[i];
  return sum;
}

/** The n x n cosine matrix of normalised vectors. */
export function cosines(vectors) {
  return vectors.map((a) => vectors.map((b) => dot(a, b)));
}

async function compare(ids) {
  const texts = lines(ids.texts.value);
  if (texts.length < 2) throw new Error("give at least two texts, one per line");
  const body = { input: texts, model: ids.model.value || undefined };
  const answer = await callJson("POST", "v1/embeddings", body);
  const vectors = [...answer.data].sort((a, b) => a.index - b.index).map((d) => d.embedding);
  const matrix = cosines(vectors);
  fill(
    ids.result,
    el("p", { class: "note", text: `${answer.model} · ${answer.usage.total_tokens} tokens · cosine similarity` }),
    el("div", { class: "scroll" }, heatmap(texts, matrix)),
  );
}

/** Wire the Compare view. */
export function initCompare() {
  const ids = {
    texts: document.getElementById("compare-texts"),
    model: document.getElementById("compare-model"),
    result: document.getElementById("compare-result"),
    error: document.getElementById("compare-error"),
  };
  const button = document.getElementById("compare-run");
  button.addEventListener("click", () => running(button, ids.error, () => compare(ids)));
}
