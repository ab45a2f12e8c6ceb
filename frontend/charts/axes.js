// What every chart shares: the one drawing of a chart's grid, tick labels, axis lines and axis
// titles (chartAxes; unitAxes over [0, 1] x [0, 1]), tick values and their labels, labels
// placed in the margin above a plot, and pointer positions in a chart's own units.

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

// Where the axes' text sits, in svg units: the baseline of the x tick labels below the plot,
// the right end of the y tick labels left of it, the x title's baseline above the chart's
// bottom and the (rotated) y title's centre from its left edge. Compact charts, drawn small
// beside other figures, keep their text closer.
const TEXT_PLACES = {
  regular: { xTicks: 16, yTicks: 8, xTitle: 6, yTitle: 14 },
  compact: { xTicks: 14, yTicks: 6, xTitle: 4, yTitle: 12 },
};

/** The ticks of a [0, 1] axis: every 0.2. */
const UNIT_TICKS = [0, 2, 4, 6, 8, 10].map((i) => i / 10);

/** A [0, 1] tick's label. */
const unitTickLabel = (v) => v.toFixed(1);

/**
 * The grid and axes of a chart, as [grid, axes] groups for the caller's svg. The plot spans
 * x over `xDomain` and y over `yDomain` ([low, high]), mapped to svg units by X and Y; its
 * bottom margin `m.b` holds the x tick labels (the chart's height `H`), its left margin the
 * y tick labels. Grid lines run across at every y tick, and with `verticalGrid` up at every x
 * tick; `axisLines` names the axis lines drawn ("x" along the plot's bottom, "y" up its left
 * side). Tick labels are `xLabel(v)` / `yLabel(v)`; `yTitle` may be null; `compact` places
 * the text as TEXT_PLACES.compact does.
 */
export function chartAxes({
  X,
  Y,
  H,
  m,
  xDomain,
  yDomain,
  xTicks,
  yTicks,
  xLabel,
  yLabel,
  xTitle,
  yTitle = null,
  verticalGrid = false,
  axisLines = [],
  compact = false,
}) {
  const place = compact ? TEXT_PLACES.compact : TEXT_PLACES.regular;
  const [left, right] = xDomain.map(X);
  const [bottom, top] = yDomain.map(Y);
  const grid = s("g", { class: "grid" });
  const axes = s("g", { class: "axes" });
  for (const v of yTicks) {
    grid.append(s("line", { x1: left, x2: right, y1: Y(v), y2: Y(v) }));
    axes.append(
      s("text", { x: left - place.yTicks, y: Y(v) + 4, "text-anchor": "end", text: yLabel(v) }),
    );
  }
  for (const v of xTicks) {
    if (verticalGrid) grid.append(s("line", { x1: X(v), x2: X(v), y1: bottom, y2: top }));
    axes.append(
      s("text", { x: X(v), y: H - m.b + place.xTicks, "text-anchor": "middle", text: xLabel(v) }),
    );
  }
  if (axisLines.includes("x")) {
    axes.append(s("line", { class: "axis", x1: left, x2: right, y1: bottom, y2: bottom }));
  }
  if (axisLines.includes("y")) {
    axes.append(s("line", { class: "axis", x1: left, x2: left, y1: bottom, y2: top }));
  }
  axes.append(
    s("text", {
      class: "axis-title",
      x: (left + right) / 2,
      y: H - place.xTitle,
      "text-anchor": "middle",
      text: xTitle,
    }),
  );
  if (yTitle !== null) {
    const middle = (bottom + top) / 2;
    axes.append(
      s("text", {
        class: "axis-title",
        x: place.yTitle,
        y: middle,
        "text-anchor": "middle",
        transform: `rotate(-90 ${place.yTitle} ${middle})`,
        text: yTitle,
      }),
    );
  }
  return [grid, axes];
}

/** chartAxes of a chart whose x and y both run over [0, 1], with ticks every 0.2. */
export function unitAxes(options) {
  return chartAxes({
    xDomain: [0, 1],
    yDomain: [0, 1],
    xTicks: UNIT_TICKS,
    yTicks: UNIT_TICKS,
    xLabel: unitTickLabel,
    yLabel: unitTickLabel,
    ...options,
  });
}
