// The charts, drawn as SVG by hand: a similarity heatmap, a histogram, grouped bars and a waterfall.
// Every drawn datum carries its number in a data- attribute, so what is shown can be checked.

import { decimalsFor, fmt, sig, svgEl } from "./dom.js";

// Characters of a heatmap row label before it is cut (the whole text is its tooltip).
const LABEL_CHARS = 42;

function shorten(text, chars) {
  return text.length > chars ? `${text.slice(0, chars - 1)}…` : text;
}

/** Light to dark blue for t in [0, 1]. */
function shade(t) {
  const clamped = Math.max(0, Math.min(1, t));
  return `hsl(212, ${45 + 25 * clamped}%, ${96 - 62 * clamped}%)`;
}

/** An n x n heatmap of `matrix` (cosines), rows labelled by `labels`, columns by their numbers. */
export function heatmap(labels, matrix) {
  const n = labels.length;
  const cell = 56;
  const left = Math.min(320, 24 + 7 * Math.max(...labels.map((l) => Math.min(l.length, LABEL_CHARS))));
  const top = 22;
  const off = matrix.flatMap((row, i) => row.filter((_, j) => j !== i));
  const lo = Math.min(0.99, ...off);
  const chart = svgEl("svg", {
    class: "heatmap", viewBox: `0 0 ${left + n * cell} ${top + n * cell}`, role: "img",
    "aria-label": `cosine similarity of ${n} texts`,
  });
  labels.forEach((label, i) => {
    const y = top + i * cell + cell / 2;
    chart.append(svgEl("text", { x: left - 6, y, class: "label row-label", "text-anchor": "end",
      "dominant-baseline": "middle" }, svgEl("title", { text: label }), `${i + 1}. ${shorten(label, LABEL_CHARS)}`));
    chart.append(svgEl("text", { x: left + i * cell + cell / 2, y: top - 6, class: "label", "text-anchor": "middle",
      text: String(i + 1) }));
  });
  matrix.forEach((row, i) => row.forEach((value, j) => {
    const t = (value - lo) / (1 - lo || 1);
    const x = left + j * cell;
    const y = top + i * cell;
    chart.append(svgEl("g", { class: "cell", dataset: { i, j, value } },
      svgEl("title", { text: `${i + 1} ↔ ${j + 1}: ${fmt(value, 4)}` }),
      svgEl("rect", { x, y, width: cell - 2, height: cell - 2, rx: 3, fill: shade(t) }),
      svgEl("text", { x: x + cell / 2 - 1, y: y + cell / 2, "text-anchor": "middle", "dominant-baseline": "middle",
        class: t > 0.55 ? "value light" : "value", text: fmt(value, 2) })));
  }));
  return chart;
}

/** A histogram of `values` in `bins` bins; bins below `threshold` are dimmed, the threshold drawn as a line. */
export function histogram(values, threshold, bins = 20) {
  const width = 600;
  const height = 150;
  const base = height - 20;
  const lo = Math.min(...values);
  const hi = Math.max(...values);
  const span = hi - lo || 1;
  const counts = new Array(bins).fill(0);
  for (const v of values) counts[Math.min(bins - 1, Math.floor(((v - lo) / span) * bins))] += 1;
  const most = Math.max(...counts, 1);
  const step = width / bins;
  const chart = svgEl("svg", { class: "histogram", viewBox: `0 0 ${width} ${height}`, role: "img",
    "aria-label": `histogram of ${values.length} scores` });
  counts.forEach((count, b) => {
    const h = ((base - 8) * count) / most;
    const upper = lo + ((b + 1) * span) / bins;
    chart.append(svgEl("rect", { class: upper < threshold ? "bin below" : "bin", x: b * step + 1, y: base - h,
      width: step - 2, height: h, dataset: { count } }, svgEl("title", { text: `${count} pairs` })));
  });
  const tx = ((threshold - lo) / span) * width;
  chart.append(svgEl("line", { class: "threshold", x1: tx, x2: tx, y1: 0, y2: base }));
  const digits = decimalsFor(hi - lo);
  chart.append(svgEl("text", { class: "label", x: 0, y: height - 4, text: fmt(lo, digits) }));
  chart.append(svgEl("text", { class: "label", x: width, y: height - 4, "text-anchor": "end", text: fmt(hi, digits) }));
  return chart;
}

/** Horizontal bars in groups: [{label, bars: [{label, value}]}]; values on a 0..100 scale when all fit. */
export function groupedBars(groups, caption) {
  const width = 600;
  const left = 150;
  const row = 20;
  const all = groups.flatMap((g) => g.bars.map((b) => b.value));
  const max = all.every((v) => v <= 100) ? 100 : Math.max(...all, 1);
  const height = groups.reduce((h, g) => h + (g.bars.length + 1) * row, 0) + 4;
  const chart = svgEl("svg", { class: "bars", viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": caption });
  let y = 0;
  for (const group of groups) {
    chart.append(svgEl("text", { class: "group-label", x: 0, y: y + row - 6, text: group.label }));
    y += row;
    for (const bar of group.bars) {
      const w = Math.max(0, ((width - left - 60) * bar.value) / max);
      chart.append(svgEl("text", { class: "label", x: left - 6, y: y + row - 6, "text-anchor": "end", text: bar.label }));
      chart.append(svgEl("rect", { class: "bar", x: left, y: y + 3, width: w, height: row - 6,
        dataset: { group: group.label, metric: bar.label, value: bar.value } }));
      chart.append(svgEl("text", { class: "label", x: left + w + 4, y: y + row - 6, text: fmt(bar.value, 2) }));
      y += row;
    }
  }
  return chart;
}

/** A waterfall of `parts` ([{label, value}]) that ends in a bar for their `total`, on one horizontal axis. */
export function waterfall(parts, total, totalLabel) {
  const width = 600;
  const left = 210;
  const row = 22;
  let running = 0;
  const spans = parts.map((p) => {
    const start = running;
    running += p.value;
    return [start, running];
  });
  const ends = [0, total, ...spans.flat()];
  const lo = Math.min(...ends);
  const hi = Math.max(...ends);
  const right = 70; // the column of values
  const scale = (v) => left + ((width - left - right - 10) * (v - lo)) / (hi - lo || 1);
  const height = (parts.length + 1) * row + 6;
  const chart = svgEl("svg", { class: "waterfall", viewBox: `0 0 ${width} ${height}`, role: "img",
    "aria-label": `${parts.length} terms adding up to ${fmt(total)}` });
  chart.append(svgEl("line", { class: "zero", x1: scale(0), x2: scale(0), y1: 0, y2: height }));
  const bar = (y, a, b, cls, label, value, data) => {
    chart.append(svgEl("text", { class: "label", x: left - 6, y: y + row - 7, "text-anchor": "end", text: label }));
    chart.append(svgEl("rect", { class: cls, x: Math.min(scale(a), scale(b)), y: y + 3,
      width: Math.max(1, Math.abs(scale(b) - scale(a))), height: row - 6, dataset: data },
    svgEl("title", { text: `${label}: ${sig(value)}` })));
    chart.append(svgEl("text", { class: "label", x: width, y: y + row - 7, "text-anchor": "end", text: sig(value, 3) }));
  };
  parts.forEach((p, i) => bar(i * row, spans[i][0], spans[i][1], p.value >= 0 ? "part up" : "part down",
    shorten(p.label, 30), p.value, { value: p.value }));
  bar(parts.length * row, 0, total, "total", totalLabel, total, { total });
  return chart;
}
