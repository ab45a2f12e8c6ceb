// SVG charts drawn by hand: the PR curve with a draggable threshold, and line charts for the
// training curves. No dependencies.

import { s, isNum, fmt, fmtThreshold } from "./dom.js";

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

function tickLabel(v, ticks) {
  const step = ticks.length > 1 ? Math.abs(ticks[1] - ticks[0]) : 1;
  const decimals = step >= 1 ? 0 : Math.min(6, Math.ceil(-Math.log10(step) - 1e-9));
  return v.toFixed(decimals);
}

function svgPoint(svg, evt) {
  const ctm = svg.getScreenCTM();
  if (!ctm) return null;
  const pt = new DOMPoint(evt.clientX, evt.clientY).matrixTransform(ctm.inverse());
  return pt;
}

// Labels go in the margin above the plot, never over the data: a label is centred on its x
// (kept inside [lo, hi]) and moved to the next row when it would touch one already placed.
const LABEL_GAP = 6;

/** Approximate width in px of `text` at `fontSize` (sans-serif digits and lower case). */
function textWidth(text, fontSize) {
  return String(text).length * fontSize * 0.6;
}

/** [{x, width}] -> [{x (clamped centre), row}], rows counted from 0. */
function layoutLabels(labels, lo, hi) {
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

const CURSOR_FONT = 12;
const CURSOR_ROW = 16;

// The two views of a /pr answer: [x, y] of the point at threshold index i, and axis titles.
const CURVE_AXES = {
  pr: { xy: (pr, i) => [pr.recall[i], pr.precision[i]], x: "Recall", y: "Precision" },
  roc: {
    xy: (pr, i) => [Array.isArray(pr.fpr) ? pr.fpr[i] : null, pr.recall[i]],
    x: "False positive rate",
    y: "True positive rate (recall)",
  },
};

/**
 * Precision-recall (mode "pr") or ROC (mode "roc") curve for one class with a threshold marker
 * that can be dragged or moved with the arrow keys. `onChange(index)` receives the new index
 * into pr.thresholds.
 */
export class PRChart {
  constructor(pr, { onChange, ariaLabel, mode = "pr" }) {
    this.pr = pr;
    this.onChange = onChange;
    this.axes = CURVE_AXES[mode] || CURVE_AXES.pr;
    this.mode = mode;
    this.W = 460;
    this.H = 340 + CURSOR_ROW;
    // The top margin holds the threshold label, so that it never covers the curve.
    this.m = { l: 50, r: 16, t: 14 + CURSOR_ROW, b: 42 };
    this.index = 0;
    this.svg = s("svg", {
      class: "chart pr-chart",
      viewBox: `0 0 ${this.W} ${this.H}`,
      role: "slider",
      tabindex: "0",
      "aria-label": ariaLabel,
      "aria-valuemin": "0",
      "aria-valuemax": String(Math.max(0, pr.thresholds.length - 1)),
      "aria-orientation": "horizontal",
    });
    this.draw();
    this.bindEvents();
  }

  x(r) {
    return this.m.l + r * (this.W - this.m.l - this.m.r);
  }

  y(p) {
    return this.H - this.m.b - p * (this.H - this.m.t - this.m.b);
  }

  draw() {
    const { pr, svg } = this;
    const grid = s("g", { class: "grid" });
    const axes = s("g", { class: "axes" });
    for (let i = 0; i <= 10; i += 2) {
      const v = i / 10;
      grid.append(
        s("line", { x1: this.x(v), x2: this.x(v), y1: this.y(0), y2: this.y(1) }),
        s("line", { x1: this.x(0), x2: this.x(1), y1: this.y(v), y2: this.y(v) }),
      );
      axes.append(
        s("text", { x: this.x(v), y: this.y(0) + 16, "text-anchor": "middle", text: v.toFixed(1) }),
        s("text", { x: this.x(0) - 8, y: this.y(v) + 4, "text-anchor": "end", text: v.toFixed(1) }),
      );
    }
    axes.append(
      s("line", { class: "axis", x1: this.x(0), x2: this.x(1), y1: this.y(0), y2: this.y(0) }),
      s("line", { class: "axis", x1: this.x(0), x2: this.x(0), y1: this.y(0), y2: this.y(1) }),
      s("text", {
        class: "axis-title",
        x: this.x(0.5),
        y: this.H - 6,
        "text-anchor": "middle",
        text: this.axes.x,
      }),
      s("text", {
        class: "axis-title",
        x: 14,
        y: this.y(0.5),
        "text-anchor": "middle",
        transform: `rotate(-90 14 ${this.y(0.5)})`,
        text: this.axes.y,
      }),
    );
    // Iso-F1 contours help read the F1 of any point on the PR curve; ROC gets the chance line.
    const iso = s("g", { class: "iso-f1" });
    if (this.mode === "roc") {
      iso.append(
        s("line", { class: "chance", x1: this.x(0), y1: this.y(0), x2: this.x(1), y2: this.y(1) }),
      );
    }
    for (const f of this.mode === "roc" ? [] : [0.2, 0.4, 0.6, 0.8]) {
      const pts = [];
      for (let r = f / (2 - f) + 1e-6; r <= 1.0001; r += 0.01) {
        const p = (f * r) / (2 * r - f);
        if (p <= 1.0001 && p >= 0)
          pts.push(`${this.x(Math.min(r, 1)).toFixed(1)},${this.y(p).toFixed(1)}`);
      }
      if (pts.length > 1) {
        iso.append(s("polyline", { points: pts.join(" ") }));
        const labelR = 0.98;
        const labelP = (f * labelR) / (2 * labelR - f);
        iso.append(
          s("text", {
            x: this.x(labelR) - 2,
            y: this.y(labelP) - 3,
            "text-anchor": "end",
            text: `F1=${f}`,
          }),
        );
      }
    }

    // The curve: one point per stored threshold whose precision is defined.
    this.points = [];
    for (let i = 0; i < pr.thresholds.length; i++) {
      const [r, p] = this.axes.xy(pr, i);
      if (isNum(p) && isNum(r)) this.points.push({ i, px: this.x(r), py: this.y(p) });
    }
    const d = this.points
      .map((pt, k) => `${k ? "L" : "M"}${pt.px.toFixed(2)},${pt.py.toFixed(2)}`)
      .join("");
    const curve = s("path", { class: "pr-line", d: d || "M0,0" });
    const area = s("path", {
      class: "pr-area",
      d: this.points.length
        ? `${d}L${this.points[this.points.length - 1].px.toFixed(2)},${this.y(0)}L${this.points[0].px.toFixed(2)},${this.y(0)}Z`
        : "M0,0",
    });

    const marks = s("g", { class: "marks" });
    const op = (o, cls, label) => {
      if (!o || !Number.isInteger(o.index)) return;
      const [ox, oy] = this.axes.xy(pr, o.index);
      if (!isNum(ox) || !isNum(oy)) return;
      const cx = this.x(ox);
      const cy = this.y(oy);
      const g = s("g", { class: `op ${cls}` });
      g.append(
        s("title", {
          text: `${label}: threshold ${fmtThreshold(o.threshold)}, precision ${fmt(o.precision)}, recall ${fmt(o.recall)}`,
        }),
      );
      if (cls === "best") {
        g.append(
          s("path", { d: `M${cx},${cy - 7}L${cx + 7},${cy}L${cx},${cy + 7}L${cx - 7},${cy}Z` }),
        );
      } else if (cls === "min-cost") {
        g.append(s("path", { d: `M${cx},${cy - 8}L${cx + 7},${cy + 5}L${cx - 7},${cy + 5}Z` }));
      } else {
        g.append(s("rect", { x: cx - 5, y: cy - 5, width: 10, height: 10 }));
      }
      marks.append(g);
    };
    op(pr.at_recall, "at-recall", "Threshold for the recall target");
    op(pr.at_precision, "at-precision", "Threshold for the precision target");
    op(pr.best_f1, "best", "Best F1");
    op(pr.min_cost, "min-cost", "Lowest expected cost");

    this.cross = s("g", { class: "cursor" });
    this.vline = s("line", { class: "guide" });
    this.hline = s("line", { class: "guide" });
    this.dot = s("circle", { class: "handle", r: 7 });
    this.label = s("text", { class: "cursor-label" });
    this.cross.append(this.vline, this.hline, this.dot, this.label);

    this.hit = s("rect", {
      class: "hit",
      x: this.m.l,
      y: this.m.t,
      width: this.W - this.m.l - this.m.r,
      height: this.H - this.m.t - this.m.b,
    });
    svg.append(grid, iso, area, axes, curve, marks, this.hit, this.cross);
  }

  setIndex(i) {
    const pr = this.pr;
    this.index = i;
    const [r, p] = this.axes.xy(pr, i);
    const t = pr.thresholds[i];
    this.svg.setAttribute("aria-valuenow", String(i));
    this.svg.setAttribute(
      "aria-valuetext",
      `threshold ${fmtThreshold(t)}, ${this.axes.y.toLowerCase()} ${fmt(p)}, ${this.axes.x.toLowerCase()} ${fmt(r)}`,
    );
    if (!isNum(p) || !isNum(r)) {
      this.cross.setAttribute("visibility", "hidden");
      return;
    }
    this.cross.removeAttribute("visibility");
    const cx = this.x(r);
    const cy = this.y(p);
    this.vline.setAttribute("x1", cx);
    this.vline.setAttribute("x2", cx);
    this.vline.setAttribute("y1", this.y(0));
    this.vline.setAttribute("y2", this.m.t - CURSOR_ROW + 4);
    this.hline.setAttribute("x1", this.x(0));
    this.hline.setAttribute("x2", cx);
    this.hline.setAttribute("y1", cy);
    this.hline.setAttribute("y2", cy);
    this.dot.setAttribute("cx", cx);
    this.dot.setAttribute("cy", cy);
    const text = `t = ${fmtThreshold(t)}`;
    const [{ x }] = layoutLabels(
      [{ x: cx, width: textWidth(text, CURSOR_FONT) }],
      this.x(0),
      this.x(1),
    );
    this.label.setAttribute("x", x);
    this.label.setAttribute("y", this.m.t - CURSOR_ROW + 2);
    this.label.setAttribute("text-anchor", "middle");
    this.label.textContent = text;
  }

  nearest(pt) {
    let best = null;
    let bestD = Infinity;
    for (const q of this.points) {
      const d = (q.px - pt.x) ** 2 + (q.py - pt.y) ** 2;
      if (
        d < bestD - 1e-6 ||
        (Math.abs(d - bestD) <= 1e-6 &&
          best &&
          Math.abs(q.i - this.index) < Math.abs(best.i - this.index))
      ) {
        best = q;
        bestD = d;
      }
    }
    return best ? best.i : null;
  }

  bindEvents() {
    const svg = this.svg;
    let dragging = false;
    const move = (evt) => {
      const pt = svgPoint(svg, evt);
      if (!pt) return;
      const i = this.nearest(pt);
      if (i !== null && i !== this.index) this.onChange(i);
    };
    svg.addEventListener("pointerdown", (evt) => {
      if (evt.button !== 0) return;
      dragging = true;
      try {
        svg.setPointerCapture(evt.pointerId);
      } catch (err) {
        // Capture is a nicety; dragging still works inside the chart without it.
      }
      svg.classList.add("dragging");
      move(evt);
      evt.preventDefault();
    });
    svg.addEventListener("pointermove", (evt) => {
      if (dragging) move(evt);
    });
    const stop = () => {
      dragging = false;
      svg.classList.remove("dragging");
    };
    svg.addEventListener("pointerup", stop);
    svg.addEventListener("pointercancel", stop);
    svg.addEventListener("keydown", (evt) => {
      const last = this.pr.thresholds.length - 1;
      let i = this.index;
      if (evt.key === "ArrowRight" || evt.key === "ArrowUp") i += 1;
      else if (evt.key === "ArrowLeft" || evt.key === "ArrowDown") i -= 1;
      else if (evt.key === "PageUp") i += 10;
      else if (evt.key === "PageDown") i -= 10;
      else if (evt.key === "Home") i = 0;
      else if (evt.key === "End") i = last;
      else return;
      evt.preventDefault();
      i = Math.max(0, Math.min(last, i));
      if (i !== this.index) this.onChange(i);
    });
  }
}

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

  const grid = s("g", { class: "grid" });
  const axes = s("g", { class: "axes" });
  for (const v of yt) {
    grid.append(s("line", { x1: m.l, x2: W - m.r, y1: Y(v), y2: Y(v) }));
    axes.append(
      s("text", { x: m.l - 8, y: Y(v) + 4, "text-anchor": "end", text: tickLabel(v, yt) }),
    );
  }
  let xt = niceTicks(xmin, xmax, 8).filter((v) => Number.isInteger(Math.round(v * 1e9) / 1e9));
  if (!xt.length) xt = [Math.round(xmin)];
  for (const v of xt) {
    axes.append(
      s("text", { x: X(v), y: H - m.b + 16, "text-anchor": "middle", text: String(Math.round(v)) }),
    );
  }
  axes.append(
    s("line", { class: "axis", x1: m.l, x2: W - m.r, y1: H - m.b, y2: H - m.b }),
    s("text", {
      class: "axis-title",
      x: (m.l + W - m.r) / 2,
      y: H - 6,
      "text-anchor": "middle",
      text: "Epoch (step)",
    }),
    s("text", {
      class: "axis-title",
      x: 14,
      y: (m.t + H - m.b) / 2,
      "text-anchor": "middle",
      transform: `rotate(-90 14 ${(m.t + H - m.b) / 2})`,
      text: yLabel,
    }),
  );
  svg.append(grid, axes);

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
