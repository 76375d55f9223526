// Senses: a sentence for a Backpack model (POST /v1/senses) → per token its sense weights as bars and each
// sense's top words; with a next word, the (position, sense) terms of its logit as a waterfall that ends at it.

import { callJson } from "./api.js";
import { waterfall } from "./charts.js";
import { el, fill, fmt, running, sig } from "./dom.js";

// Terms drawn one by one; the rest are summed into one bar. The API returns at most 1000 terms (MAX_TOP).
const DRAWN_TERMS = 12;
const ALL_TERMS = 1000;
const $ = (id) => document.getElementById(id);

function shown(token) {
  return JSON.stringify(token);
}

function senseRow(sense, scale) {
  const bar = el("div", { class: "sense-bar", dataset: { weight: sense.weight, sense: sense.sense } });
  bar.style.width = `${(100 * sense.weight) / scale}%`;
  return el("div", { class: "sense" },
    el("span", { class: "sense-id", text: `s${sense.sense}` }),
    el("div", { class: "track", title: `weight ${fmt(sense.weight, 4)}` }, bar),
    el("span", { class: "num", text: fmt(sense.weight, 3) }),
    el("span", { class: "words", text: sense.top_words.join(" · ") }));
}

function tokenCard(token, scale) {
  return el("article", { class: "token", dataset: { position: token.position } },
    el("h4", {}, el("span", { class: "pos", text: String(token.position) }), ` ${shown(token.text)}`),
    ...token.senses.map((s) => senseRow(s, scale)));
}

/** The parts the waterfall draws: the largest terms, the other terms summed, and any terms not returned. */
export function logitParts(next, tokenCount, senseCount) {
  const terms = next.contributions;
  const parts = terms.slice(0, DRAWN_TERMS).map((c) => ({
    label: `${c.position} ${shown(c.token)} · s${c.sense}`, value: c.value,
  }));
  const rest = terms.slice(DRAWN_TERMS);
  if (rest.length) parts.push({ label: `${rest.length} other terms`, value: rest.reduce((a, c) => a + c.value, 0) });
  const missing = tokenCount * senseCount - terms.length;
  if (missing > 0) {
    const returned = terms.reduce((a, c) => a + c.value, 0);
    parts.push({ label: `${missing} terms not returned`, value: next.logit - returned });
  }
  return parts;
}

function contributionChart(next, tokenCount, senseCount) {
  const parts = logitParts(next, tokenCount, senseCount);
  const sum = parts.reduce((a, p) => a + p.value, 0);
  return el("div", { class: "contributions" },
    el("h3", { text: `Logit of ${shown(next.word)} after the sentence` }),
    el("p", { class: "note", id: "senses-logit", dataset: { logit: next.logit, sum } },
      `logit ${sig(next.logit)}; the ${next.contributions.length} terms returned add up to ${sig(sum)}`),
    el("div", { class: "scroll" }, waterfall(parts, next.logit, `logit of ${shown(next.word)}`)));
}

async function explain() {
  const nextWord = $("senses-next").value.trim();
  const body = { input: $("senses-input").value, model: $("senses-model").value || undefined,
    next_word: nextWord || undefined, top_contributions: ALL_TERMS };
  const answer = await callJson("POST", "v1/senses", body);
  const senseCount = answer.tokens[0]?.senses.length || 0;
  const scale = Math.max(...answer.tokens.flatMap((t) => t.senses.map((s) => s.weight)), 1e-9);
  fill($("senses-result"),
    el("p", { class: "note", text: `${answer.model} · ${answer.tokens.length} tokens × ${senseCount} senses · `
      + `bars: what the last position draws from each sense, scaled to the largest (${fmt(scale, 3)})` }),
    answer.next_word ? contributionChart(answer.next_word, answer.tokens.length, senseCount) : null,
    el("h3", { text: "Senses per token" }),
    el("div", { class: "tokens" }, answer.tokens.map((t) => tokenCard(t, scale))));
}

/** Wire the Senses view. */
export function initSenses() {
  const button = $("senses-run");
  button.addEventListener("click", () => running(button, $("senses-error"), explain));
}
