// Mine: two lists → aligned pairs with margin scores (POST /v1/bitext/mine), or a mining job for large inputs;
// a threshold slider filters the table and the histogram, and the kept pairs download as TSV.

import { ApiError, callJson } from "./api.js";
import { histogram } from "./charts.js";
import { decimalsFor, el, fill, fmt, lines, running, showError } from "./dom.js";
import { runJob } from "./jobs.js";

// Table rows drawn at once; the TSV holds every pair kept by the threshold.
const SHOWN_ROWS = 500;
const $ = (id) => document.getElementById(id);

async function fileText(file) {
  if (!file.name.endsWith(".gz")) return file.text();
  const stream = file.stream().pipeThrough(new DecompressionStream("gzip"));
  return new Response(stream).text();
}

function side(textsId, filesId) {
  const files = lines($(filesId).value);
  return files.length > 0 ? { files } : { texts: lines($(textsId).value) };
}

function request() {
  const body = { src: side("mine-src", "mine-src-files"), tgt: side("mine-tgt", "mine-tgt-files") };
  for (const [name, s] of Object.entries(body)) {
    if (s.texts && s.texts.length === 0) throw new Error(`the ${name === "src" ? "source" : "target"} list is empty`);
  }
  const k = Number($("mine-k").value);
  return { ...body, model: $("mine-model").value || undefined, margin: $("mine-margin").value,
    retrieval: $("mine-retrieval").value, k: Number.isInteger(k) && k > 0 ? k : 4 };
}

function tsv(pairs) {
  const clean = (text) => text.replace(/[\t\r\n]+/g, " ");
  const rows = pairs.map((p) => [p.src_id, p.tgt_id, p.score ?? "", p.cosine, clean(p.src_text), clean(p.tgt_text)]);
  return [["src_id", "tgt_id", "score", "cosine", "src_text", "tgt_text"], ...rows].map((r) => r.join("\t")).join("\n");
}

function download(pairs) {
  const url = URL.createObjectURL(new Blob([`${tsv(pairs)}\n`], { type: "text/tab-separated-values" }));
  const link = el("a", { href: url, download: "mined-pairs.tsv" });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

function row(p) {
  return el("tr", { dataset: { score: p.score ?? "" } },
    el("td", { class: "num", text: fmt(p.score, 4) }), el("td", { class: "num", text: fmt(p.cosine, 4) }),
    el("td", { text: p.src_text }), el("td", { text: p.tgt_text }));
}

/** Draw the pairs kept at `threshold`: the count, the histogram, the table's first rows. */
function redraw(state, threshold) {
  // A pair without a score (ratio over a zero neighbourhood) is kept only while nothing is filtered out.
  const kept = state.pairs.filter((p) => (p.score === null ? threshold <= state.lo : p.score >= threshold));
  state.kept = kept;
  const shown = fmt(threshold, state.digits);
  state.output.textContent = shown;
  state.count.textContent = `${kept.length} of ${state.pairs.length} pairs with score ≥ ${shown}`;
  fill(state.chart, state.scores.length ? histogram(state.scores, threshold) : null);
  const more = kept.length > SHOWN_ROWS ? el("p", { class: "note", text: `first ${SHOWN_ROWS} shown` }) : null;
  fill(state.body, kept.slice(0, SHOWN_ROWS).map(row));
  fill(state.more, more);
}

function render(result, pairs, note) {
  const scores = pairs.map((p) => p.score).filter((s) => s !== null && Number.isFinite(s));
  const lo = scores.length ? Math.min(...scores) : 0;
  const hi = scores.length ? Math.max(...scores) : 1;
  const slider = el("input", { id: "mine-threshold", type: "range", min: lo, max: hi, value: lo,
    step: Math.max((hi - lo) / 200, 1e-4) });
  const state = { pairs, scores, lo, digits: decimalsFor(hi - lo), kept: pairs, output: el("output", { for: "mine-threshold", id: "mine-threshold-value" }),
    count: el("p", { id: "mine-count", class: "count" }), chart: el("div", { class: "chart scroll" }),
    body: el("tbody"), more: el("div") };
  slider.addEventListener("input", () => redraw(state, Number(slider.value)));
  const table = el("table", { class: "pairs" }, el("thead", {}, el("tr", {},
    ...["score", "cosine", "source", "target"].map((h) => el("th", { scope: "col", text: h })))), state.body);
  fill(result,
    el("p", { class: "note", text: note }),
    el("div", { class: "row" }, el("label", { for: "mine-threshold", text: "Threshold" }), slider, state.output,
      el("button", { type: "button", id: "mine-download", text: "Download TSV", onclick: () => download(state.kept) })),
    state.count, state.chart, el("div", { class: "scroll" }, table), state.more);
  redraw(state, lo);
}

async function mine(view) {
  const body = request();
  fill(view.result);
  view.box.hidden = true;
  const asJob = $("mine-as-job").checked || "files" in body.src || "files" in body.tgt;
  if (!asJob) {
    try {
      const answer = await callJson("POST", "v1/bitext/mine", body);
      render(view.result, answer.pairs, `${answer.model} · ${answer.usage.total_tokens} tokens · answered at once`);
      return;
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 413)) throw err;
      view.notice = `over the per-request limit (${err.message}); sent as a mining job`;
    }
  }
  view.cancel = false;
  view.cancelButton.hidden = false;
  try {
    const { job, pairs } = await runJob(body, view);
    render(view.result, pairs, [view.notice, `${job.model} · mining job ${job.id}`].filter(Boolean).join(" · "));
  } finally {
    view.cancelButton.hidden = true;
    view.notice = "";
  }
}

function readInto(input, textarea, errorBox) {
  input.addEventListener("change", async () => {
    const [file] = input.files;
    if (!file) return;
    try {
      textarea.value = await fileText(file);
    } catch (err) {
      showError(errorBox, new Error(`${file.name} could not be read: ${err.message}`));
    }
  });
}

/** Wire the Mine view. */
export function initMine() {
  const view = { result: $("mine-result"), box: $("mine-job"), stage: $("mine-stage"), progress: $("mine-progress"),
    cancelButton: $("mine-cancel"), cancel: false, notice: "" };
  view.cancelled = () => view.cancel;
  readInto($("mine-src-file"), $("mine-src"), $("mine-error"));
  readInto($("mine-tgt-file"), $("mine-tgt"), $("mine-error"));
  view.cancelButton.addEventListener("click", () => { view.cancel = true; });
  const button = $("mine-run");
  button.addEventListener("click", () => running(button, $("mine-error"), () => mine(view)));
}
