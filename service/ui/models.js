// Models: the served versions (GET /v1/models), one model's card with its evaluation (GET /v1/models/{id}),
// and promote / roll back of an alias (POST /v1/models/{name}/promote and /rollback, admin key).

import { callJson } from "./api.js";
import { groupedBars } from "./charts.js";
import { clearError, el, fill, running, showError } from "./dom.js";

const $ = (id) => document.getElementById(id);
const state = { selected: null, reload: async () => {} };

function aliasText(aliases) {
  const entries = Object.entries(aliases || {});
  return entries.length ? entries.map(([alias, v]) => `${alias} → ${v}`).join(", ") : "–";
}

function modelRow(card) {
  const open = el("button", { type: "button", class: "link", text: card.name, onclick: () => showDetail(card.name) });
  return el("tr", { dataset: { name: card.name, version: card.version } },
    el("td", {}, open), el("td", { class: "num", text: String(card.version) }),
    el("td", { text: aliasText(card.aliases) }),
    el("td", { class: "default", text: card.default ? "default" : "" }),
    el("td", { text: card.family }), el("td", { class: "num", text: String(card.dimension) }),
    el("td", { text: card.variant }), el("td", { text: card.provider }));
}

/** Draw the list of served models and any load failures. */
export function renderModels(list) {
  const head = ["model", "served", "aliases", "", "family", "dim", "variant", "provider"];
  const table = el("table", { class: "models" },
    el("thead", {}, el("tr", {}, head.map((h) => el("th", { scope: "col", text: h })))),
    el("tbody", {}, list.data.map(modelRow)));
  const failures = Object.entries(list.failures || list.errors || {}).map(([name, f]) =>
    el("li", { text: `${name}: ${typeof f === "string" ? f : f.message}` }));
  fill($("models-list"), el("div", { class: "scroll" }, table),
    failures.length ? el("ul", { class: "failures" }, failures) : null);
}

/** The evaluation as bar groups: one group per task, one bar per metric in percent (the threshold left out). */
export function evaluationGroups(evaluation) {
  const order = ([task]) => `${task.startsWith("tatoeba") ? 0 : 1}${task}`;
  return Object.entries(evaluation || {}).sort((a, b) => order(a).localeCompare(order(b))).map(([task, metrics]) => ({
    label: task,
    bars: Object.entries(metrics).filter(([m]) => m !== "threshold").map(([label, value]) => ({ label, value })),
  })).filter((group) => group.bars.length > 0);
}

function facts(card) {
  const rows = [["served", `${card.name}:${card.version} (${card.variant}, ${card.provider})`],
    ["versions", (card.versions || []).join(", ") || "–"], ["aliases", aliasText(card.aliases)],
    ["languages", (card.languages || []).join(", ") || "–"], ["family", `${card.family}, ${card.dimension} dims`],
    ["default", card.default ? "yes: requests without a model get it" : "no"]];
  return rows.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { text: v })]);
}

async function showDetail(name) {
  const detail = $("model-detail");
  clearError($("models-error"));
  try {
    const card = await callJson("GET", `v1/models/${encodeURIComponent(name)}`);
    state.selected = card;
    $("detail-title").textContent = `${card.name}:${card.version}`;
    fill($("detail-facts"), facts(card));
    const groups = evaluationGroups(card.evaluation);
    fill($("detail-evaluation"), el("h4", { text: "Evaluation (percent; Tatoeba accuracy, BUCC F1)" }),
      groups.length ? el("div", { class: "scroll" }, groupedBars(groups, `evaluation of ${card.name}`))
        : el("p", { class: "note", text: "none recorded" }));
    const versions = card.versions && card.versions.length ? card.versions : [card.version];
    fill($("release-version"), versions.map((v) => el("option", { value: v, text: String(v), selected: v === card.version })));
    detail.hidden = false;
  } catch (err) {
    showError($("models-error"), err);
  }
}

async function release(action) {
  const name = state.selected.name;
  const alias = $("release-alias").value.trim() || undefined;
  const body = action === "promote" ? { version: Number($("release-version").value), alias } : { alias };
  const r = await callJson("POST", `v1/models/${encodeURIComponent(name)}/${action}`, body);
  $("release-result").textContent =
    `${r.name} ${r.alias}: ${r.previous ?? "none"} → ${r.version}; serving ${r.served ?? "none"}`;
  $("release-result").dataset.served = r.served ?? "";
  await state.reload();
  await showDetail(name);
}

/** Wire the Models view; `reload` refetches the list (and the model pickers) through app.js. */
export function initModels(reload) {
  state.reload = reload;
  const refresh = $("models-refresh");
  refresh.addEventListener("click", () => running(refresh, $("models-error"), reload));
  for (const action of ["promote", "rollback"]) {
    const button = $(`release-${action}`);
    button.addEventListener("click", () => running(button, $("detail-error"), () => release(action)));
  }
}
