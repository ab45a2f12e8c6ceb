// The precision-recall or ROC curve of one class, with a threshold marker that can be dragged
// or moved with the arrow keys.

import { s, isNum, fmt, fmtThreshold } from "../dom.js";
import { layoutLabels, svgPoint, textWidth, unitAxes } from "./axes.js";

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
    const [grid, axes] = unitAxes({
      X: (v) => this.x(v),
      Y: (v) => this.y(v),
      H: this.H,
      m: this.m,
      xTitle: this.axes.x,
      yTitle: this.axes.y,
      verticalGrid: true,
      axisLines: ["x", "y"],
    });
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
