// The page's entry: the key field, the tabs (also reachable with the arrow keys), the model pickers filled
// from GET /v1/models, and each view wired up.

import { apiKey, callJson, setApiKey } from "./api.js";
import { initCompare } from "./compare.js";
import { clearError, el, fill, showError } from "./dom.js";
import { initMine } from "./mine.js";
import { initModels, renderModels } from "./models.js";
import { initSenses } from "./senses.js";

const $ = (id) => document.getElementById(id);

function pickerCards(cards, family) {
  if (family === "any") return cards;
  return cards.filter((c) => (family === "backpack" ? c.family === "backpack" : c.family !== "backpack"));
}

/** Fill every model picker with the cards of its family, keeping a choice that is still served. */
function fillPickers(cards) {
  for (const picker of document.querySelectorAll("select.model-picker")) {
    const kept = picker.value;
    const mine = pickerCards(cards, picker.dataset.family);
    const preferred = mine.find((c) => c.id === kept) || mine.find((c) => c.default) ||
      mine.find((c) => c.family !== "backpack") || mine[0];
    fill(picker, mine.map((c) => el("option", { value: c.id, selected: c === preferred,
      text: `${c.id}${c.default ? " (default)" : ""}` })));
    picker.disabled = mine.length === 0;
    if (mine.length === 0) fill(picker, el("option", { value: "", text: "no model served" }));
  }
}

/** Refetch the served models: the pickers and the Models view follow. */
async function reloadModels() {
  const list = await callJson("GET", "v1/models");
  fillPickers(list.data);
  renderModels(list);
  return list;
}

async function reloadShowingErrors() {
  const box = $("global-error");
  clearError(box);
  try {
    await reloadModels();
  } catch (err) {
    showError(box, err);
  }
}

function selectTab(tab, focus = false) {
  for (const other of document.querySelectorAll('[role="tab"]')) {
    const on = other === tab;
    other.setAttribute("aria-selected", String(on));
    $(other.getAttribute("aria-controls")).hidden = !on;
  }
  if (focus) tab.focus();
  history.replaceState(null, "", `#${tab.id.replace("tab-", "")}`);
}

function initTabs() {
  const tabs = [...document.querySelectorAll('[role="tab"]')];
  tabs.forEach((tab, i) => {
    tab.addEventListener("click", () => selectTab(tab));
    tab.addEventListener("keydown", (event) => {
      const step = { ArrowRight: 1, ArrowLeft: -1 }[event.key];
      if (step) selectTab(tabs[(i + step + tabs.length) % tabs.length], true);
    });
  });
  const fromHash = () => {
    const wanted = tabs.find((t) => t.id === `tab-${location.hash.slice(1)}`);
    if (wanted) selectTab(wanted);
  };
  window.addEventListener("hashchange", fromHash);
  fromHash();
}

function initKey() {
  const field = $("api-key");
  field.value = apiKey();
  field.addEventListener("change", () => {
    setApiKey(field.value.trim());
    reloadShowingErrors();
  });
  $("key-forget").addEventListener("click", () => {
    field.value = "";
    setApiKey("");
    reloadShowingErrors();
  });
}

initKey();
initTabs();
initCompare();
initMine();
initSenses();
initModels(reloadModels);
reloadShowingErrors();
