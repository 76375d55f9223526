// Small DOM helpers shared by the views: building elements, showing errors, running a button's work.

const SVG_NS = "http://www.w3.org/2000/svg";

function apply(node, attrs, children) {
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "text") node.textContent = String(value);
    else if (name === "dataset") Object.assign(node.dataset, value);
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined) node.append(child);
  }
  return node;
}

/** An HTML element: `el("td", {class: "num", text: "0.91"})`; attributes, "text", "dataset", "on<event>". */
export function el(tag, attrs = {}, ...children) {
  return apply(document.createElement(tag), attrs, children);
}

/** An SVG element, with the same conventions as `el`. */
export function svgEl(tag, attrs = {}, ...children) {
  return apply(document.createElementNS(SVG_NS, tag), attrs, children);
}

/** Replace a container's content. */
export function fill(container, ...children) {
  container.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined));
}

/** Show an error in `box`: the HTTP status, the error code and the message (and the field at fault). */
export function showError(box, err) {
  const status = err.status === undefined ? "" : err.status === 0 ? "no answer" : `HTTP ${err.status}`;
  const code = err.code || (err.name === "SyntaxError" ? "bad_response" : "client_error");
  fill(
    box,
    status ? el("span", { class: "error-status", text: status }) : null,
    el("code", { class: "error-code", text: code }),
    el("span", { class: "error-message", text: err.message || String(err) }),
    err.param ? el("span", { class: "error-param", text: `field: ${err.param}` }) : null,
  );
  box.hidden = false;
}

/** Hide and empty an error box. */
export function clearError(box) {
  box.hidden = true;
  box.replaceChildren();
}

/** Run `work` with `button` disabled and `errorBox` cleared first; a failure is shown, never swallowed. */
export async function running(button, errorBox, work) {
  clearError(errorBox);
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  try {
    return await work();
  } catch (err) {
    showError(errorBox, err);
    return undefined;
  } finally {
    button.disabled = false;
    button.removeAttribute("aria-busy");
  }
}

/** The non-blank lines of a text, trimmed (the service refuses blank texts). */
export function lines(text) {
  return text.split(/\r?\n/).map((line) => line.trim()).filter((line) => line.length > 0);
}

/** A number with `digits` significant digits (no exponent for everyday sizes), "–" for null. */
export function sig(value, digits = 4) {
  return value === null || value === undefined || Number.isNaN(value) ? "–" : String(Number(value.toPrecision(digits)));
}

/** Decimals that tell apart values spread over `span` (at least 3). */
export function decimalsFor(span) {
  return span > 0 ? Math.min(8, Math.max(3, Math.ceil(-Math.log10(span)) + 2)) : 3;
}

/** A number with `digits` decimals, "–" for null. */
export function fmt(value, digits = 3) {
  return value === null || value === undefined || Number.isNaN(value) ? "–" : Number(value).toFixed(digits);
}
