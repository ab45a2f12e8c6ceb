// What every chart shares: tick values and their labels, the grid and tick labels of a chart
// over [0, 1] x [0, 1], labels placed in the margin above a plot, and pointer positions in a
// chart's own units.

import { s, isNum } from "../dom.js";

export function niceTicks(lo, hi, count = 5) {
  if (!isNum(lo) || !isNum(hi)) return [];
  if (hi === lo) {
    const pad = Math.abs(lo) > 0 ? Math.abs(lo) * 0.1 : 1;
    lo -= pad;
    hi += pad;
  }
  const raw = (hi - lo) / count;
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const norm = raw / mag;
  const step = (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * mag;
  const ticks = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) {
    ticks.push(Math.abs(v) < step * 1e-9 ? 0 : v);
  }
  return ticks;
}

export function tickLabel(v, ticks) {
  const step = ticks.length > 1 ? Math.abs(ticks[1] - ticks[0]) : 1;
  const decimals = step >= 1 ? 0 : Math.min(6, Math.ceil(-Math.log10(step) - 1e-9));
  return v.toFixed(decimals);
}

export function svgPoint(svg, evt) {
  const ctm = svg.getScreenCTM();
  if (!ctm) return null;
  const pt = new DOMPoint(evt.clientX, evt.clientY).matrixTransform(ctm.inverse());
  return pt;
}

// Labels go in the margin above the plot, never over the data: a label is centred on its x
// (kept inside [lo, hi]) and moved to the next row when it would touch one already placed.
const LABEL_GAP = 6;

/** Approximate width in px of `text` at `fontSize` (sans-serif digits and lower case). */
export function textWidth(text, fontSize) {
  return String(text).length * fontSize * 0.6;
}

/** [{x, width}] -> [{x (clamped centre), row}], rows counted from 0. */
export function layoutLabels(labels, lo, hi) {
  const rowsEnd = [];
  const placed = labels.map((label, i) => ({ i, width: label.width, x: label.x }));
  placed.sort((a, b) => a.x - b.x);
  const out = new Array(labels.length);
  for (const p of placed) {
    const half = Math.min(p.width / 2, (hi - lo) / 2);
    const x = Math.max(lo + half, Math.min(hi - half, p.x));
    let row = rowsEnd.findIndex((end) => end + LABEL_GAP <= x - half);
    if (row < 0) row = rowsEnd.length;
    rowsEnd[row] = x + half;
    out[p.i] = { x, row };
  }
  return out;
}

/**
 * Grid lines every 0.2 and tick labels of a chart whose x and y both run over [0, 1], and the
 * axis titles (yTitle optional). Returns [grid, axes] groups for the caller's svg.
 */
export function unitAxes({ X, Y, H, m, xTitle, yTitle = null }) {
  const grid = s("g", { class: "grid" });
  const axes = s("g", { class: "axes" });
  for (let i = 0; i <= 10; i += 2) {
    const v = i / 10;
    grid.append(s("line", { x1: X(0), x2: X(1), y1: Y(v), y2: Y(v) }));
    axes.append(
      s("text", { x: X(0) - 6, y: Y(v) + 4, "text-anchor": "end", text: v.toFixed(1) }),
      s("text", { x: X(v), y: H - m.b + 14, "text-anchor": "middle", text: v.toFixed(1) }),
    );
  }
  axes.append(
    s("text", { class: "axis-title", x: X(0.5), y: H - 4, "text-anchor": "middle", text: xTitle }),
  );
  if (yTitle !== null) {
    axes.append(
      s("text", {
        class: "axis-title",
        x: 12,
        y: Y(0.5),
        "text-anchor": "middle",
        transform: `rotate(-90 12 ${Y(0.5)})`,
        text: yTitle,
      }),
    );
  }
  return [grid, axes];
}
