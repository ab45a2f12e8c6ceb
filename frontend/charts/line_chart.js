// A line chart of per-epoch series (the training curves, the per-class trajectories), with
// labelled markers above the plot.

import { s, isNum, fmt } from "../dom.js";
import { chartAxes, layoutLabels, niceTicks, svgPoint, textWidth, tickLabel } from "./axes.js";

const MARKER_FONT = 11;
const MARKER_ROW = 14;

/**
 * A line chart of per-epoch series. series: [{label, cls, steps, values}] (null values leave
 * gaps); markers: [{x, label, cls}] vertical lines, labelled above the plot; current: the
 * selected epoch or null. With `hoverable`, each series also gets a wide transparent
 * `path.series-hit` (data-series: its index) under the lines, the target of the pointer;
 * every series' dots lie above every line.
 */
export function lineChart({
  series,
  markers = [],
  current = null,
  yLabel,
  ariaLabel,
  onPick,
  percent = false,
  hoverable = false,
}) {
  const W = 520;
  const m = { l: 52, r: 14, t: 14, b: 38 };

  let xmin = Infinity;
  let xmax = -Infinity;
  let ymin = Infinity;
  let ymax = -Infinity;
  for (const ser of series) {
    ser.steps.forEach((st, k) => {
      const v = ser.values[k];
      if (!isNum(st)) return;
      xmin = Math.min(xmin, st);
      xmax = Math.max(xmax, st);
      if (isNum(v)) {
        ymin = Math.min(ymin, v);
        ymax = Math.max(ymax, v);
      }
    });
  }
  if (!isNum(xmin) || !isNum(ymin)) {
    const empty = s("svg", {
      class: "chart line-chart",
      viewBox: `0 0 ${W} 240`,
      role: "img",
      "aria-label": ariaLabel,
    });
    empty.append(
      s("text", {
        x: W / 2,
        y: 120,
        "text-anchor": "middle",
        class: "empty-text",
        text: "No data",
      }),
    );
    return empty;
  }
  if (xmax === xmin) {
    xmin -= 0.5;
    xmax += 0.5;
  }
  const X = (v) => m.l + ((v - xmin) / (xmax - xmin)) * (W - m.l - m.r);
  // Marker labels get rows of their own above the plot; the chart grows by those rows.
  const shown = markers.filter((mk) => isNum(mk.x));
  const places = layoutLabels(
    shown.map((mk) => ({ x: X(mk.x), width: textWidth(mk.label, MARKER_FONT) })),
    m.l,
    W - m.r,
  );
  const rows = places.reduce((n, p) => Math.max(n, p.row + 1), 0);
  m.t += rows * MARKER_ROW;
  const H = 226 + m.t;
  if (percent) {
    ymin = Math.max(0, Math.min(ymin, 1) - 0.05);
    ymax = Math.min(1, ymax + 0.05);
  } else {
    const pad = (ymax - ymin) * 0.08 || Math.abs(ymax) * 0.1 || 1;
    ymin -= pad;
    ymax += pad;
    if (ymin < 0 && Math.min(...series.flatMap((x) => x.values.filter(isNum))) >= 0) ymin = 0;
  }
  const yt = niceTicks(ymin, ymax, 5);
  if (yt.length) {
    ymin = Math.min(ymin, yt[0]);
    ymax = Math.max(ymax, yt[yt.length - 1]);
  }
  const svg = s("svg", {
    class: "chart line-chart",
    viewBox: `0 0 ${W} ${H}`,
    role: "img",
    "aria-label": ariaLabel,
  });
  const Y = (v) => H - m.b - ((v - ymin) / (ymax - ymin || 1)) * (H - m.t - m.b);

  let xt = niceTicks(xmin, xmax, 8).filter((v) => Number.isInteger(Math.round(v * 1e9) / 1e9));
  if (!xt.length) xt = [Math.round(xmin)];
  svg.append(
    ...chartAxes({
      X,
      Y,
      H,
      m,
      xDomain: [xmin, xmax],
      yDomain: [ymin, ymax],
      xTicks: xt,
      yTicks: yt,
      xLabel: (v) => String(Math.round(v)),
      yLabel: (v) => tickLabel(v, yt),
      xTitle: "Epoch (step)",
      yTitle: yLabel,
      axisLines: ["x"],
    }),
  );

  const markG = s("g", { class: "markers" });
  shown.forEach((mk, k) => {
    const x = X(mk.x);
    const { x: labelX, row } = places[k];
    const labelY = m.t - 4 - row * MARKER_ROW;
    const g = s("g", { class: `marker ${mk.cls || ""}` });
    g.append(
      s("line", { x1: x, x2: x, y1: m.t, y2: H - m.b }),
      s("text", {
        class: "marker-label",
        x: labelX,
        y: labelY,
        "text-anchor": "middle",
        text: mk.label,
      }),
    );
    markG.append(g);
  });
  if (isNum(current)) {
    const x = X(current);
    markG.append(s("line", { class: "current", x1: x, x2: x, y1: m.t, y2: H - m.b }));
  }
  svg.append(markG);

  const hits = s("g", { class: "series-hits" });
  const lines = s("g", { class: "series-lines" });
  const allDots = s("g", { class: "series-dots" });
  series.forEach((ser, k) => {
    let d = "";
    let pen = false;
    const dots = s("g", { class: `dots ${ser.cls}`, "data-series": String(k) });
    ser.steps.forEach((st, k) => {
      const v = ser.values[k];
      if (!isNum(st) || !isNum(v)) {
        pen = false;
        return;
      }
      d += `${pen ? "L" : "M"}${X(st).toFixed(2)},${Y(v).toFixed(2)}`;
      pen = true;
      const c = s("circle", { cx: X(st), cy: Y(v), r: ser.steps.length > 60 ? 0 : 2.6 });
      c.append(s("title", { text: `${ser.label}, epoch ${st}: ${fmt(v, 4)}` }));
      dots.append(c);
    });
    const path = { d: d || "M0,0", "data-series": String(k) };
    lines.append(s("path", { class: `series ${ser.cls}`, ...path }));
    if (hoverable) hits.append(s("path", { class: "series-hit", ...path }));
    allDots.append(dots);
  });
  if (hoverable) svg.classList.add("hoverable");
  svg.append(hits, lines, allDots);

  if (onPick) {
    svg.classList.add("pickable");
    svg.addEventListener("click", (evt) => {
      const pt = svgPoint(svg, evt);
      if (!pt) return;
      const stepValue = xmin + ((pt.x - m.l) / (W - m.l - m.r)) * (xmax - xmin);
      onPick(stepValue);
    });
  }
  return svg;
}
