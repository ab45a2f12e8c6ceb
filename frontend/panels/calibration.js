// Calibration of one epoch: the reliability diagram (per score bin, the accuracy of a
// multi-class run's top-label confidence, or the fraction of positives of a binary or
// multi-label run's positive-class probability, against the diagonal; the bins' counts in a
// strip below), ECE, MCE and the direction of the miscalibration, as the /calibration route
// gives them.

import { h, s, fill, fmt, fmtInt, isNum } from "../dom.js";
import { unitAxes } from "../charts.js";
import { card, showState } from "./common.js";

const DIRECTION = { over: "over-confident", under: "under-confident" };
// What the bins hold, by the run's task (/runs `task`): the score on x, the observed share on
// y. Binary bins hold the positive class's probability and multi-label bins every label's;
// multi-class bins the top label's confidence.
const AXES = {
  multiclass: { x: "Confidence (top class)", y: "Accuracy", bars: "accuracy" },
  binary: { x: "Predicted probability", y: "Fraction of positives", bars: "fraction of positives" },
  multilabel: {
    x: "Predicted probability",
    y: "Fraction of labels set",
    bars: "fraction of labels set",
  },
};

/**
 * update({loading} | {error} | {empty} | {calibration, task, classNames}): `calibration` is
 * the route's answer, `task` the run's task as /runs gives it (it names the axes) and
 * `classNames` the run's class names (a binary run's positive class is its second).
 */
export function create(container) {
  const { section, body } = card({
    title: "Calibration",
    span: "span-5",
    bodyClass: "calibration-body",
  });
  container.append(section);

  function update(data) {
    if (
      showState(body, data, {
        loadingText: "Loading the calibration bins\u2026",
        errorTitle: "Could not load the calibration bins.",
        keepWhileLoading: true,
      })
    ) {
      return;
    }
    const c = data.calibration;
    const bins = Array.isArray(c.bins) ? c.bins : [];
    const axes = AXES[data.task] || AXES.multiclass;
    const names = Array.isArray(data.classNames) ? data.classNames : [];
    const positive =
      data.task === "binary" && names.length === 2 ? ` (class \u201c${names[1]}\u201d)` : "";
    const stats = h(
      "div",
      { class: "cal-stats" },
      stat("ECE", "ece", fmt(c.ece)),
      stat("MCE", "mce", fmt(c.mce)),
      stat("Direction", "direction", DIRECTION[c.direction] ?? "\u2014"),
    );
    fill(
      body,
      stats,
      reliabilityDiagram(bins, axes),
      h("p", {
        class: "caption",
        text: `${c.split} split \u00b7 epoch ${c.step} \u00b7 ${fmtInt(c.examples)} examples \u00b7 bars: ${axes.bars}${positive} per bin of ${axes.x.toLowerCase()}; the diagonal is perfect calibration; the strip below counts the examples per bin`,
      }),
    );
  }

  return { element: section, update };
}

function stat(label, metric, value) {
  return h(
    "div",
    { class: "cal-stat" },
    h("span", { class: "stat-label", text: label }),
    h("span", { class: "stat-value", "data-metric": metric, text: value }),
  );
}

function reliabilityDiagram(bins, axes) {
  const W = 420;
  const m = { l: 46, r: 12, t: 10, b: 34 };
  const plotH = 240;
  const stripH = 46;
  const H = m.t + plotH + 18 + stripH + m.b;
  const X = (v) => m.l + v * (W - m.l - m.r);
  const Y = (v) => m.t + plotH - v * plotH;
  const stripTop = m.t + plotH + 18;
  const svg = s("svg", {
    class: "chart reliability",
    viewBox: `0 0 ${W} ${H}`,
    role: "img",
    "aria-label": `Reliability diagram: ${axes.bars} per bin of ${axes.x.toLowerCase()}`,
  });
  const [grid, frame] = unitAxes({ X, Y, H, m, xTitle: axes.x, yTitle: axes.y });
  const bars = s("g", { class: "bars" });
  const strip = s("g", { class: "count-strip" });
  const maxCount = Math.max(1, ...bins.map((b) => (isNum(b.count) ? b.count : 0)));
  bins.forEach((b, k) => {
    if (!isNum(b.lower) || !isNum(b.upper)) return;
    const x = X(b.lower) + 1;
    const w = Math.max(1, X(b.upper) - X(b.lower) - 2);
    const label = `${axes.x.toLowerCase()} ${fmt(b.lower, 2)}\u2013${fmt(b.upper, 2)}: ${fmtInt(b.count)} examples, ${axes.bars} ${fmt(b.accuracy)}, mean score ${fmt(b.confidence)}`;
    if (isNum(b.accuracy)) {
      const bar = s("rect", {
        class: "bar",
        "data-bin": String(k),
        x,
        y: Y(b.accuracy),
        width: w,
        height: Y(0) - Y(b.accuracy),
      });
      bar.append(s("title", { text: label }));
      bars.append(bar);
    }
    const ch = isNum(b.count) ? (b.count / maxCount) * (stripH - 12) : 0;
    const cnt = s("rect", {
      class: "count-bar",
      x,
      y: stripTop + stripH - ch,
      width: w,
      height: ch,
    });
    cnt.append(s("title", { text: label }));
    strip.append(
      cnt,
      s("text", {
        class: "bin-count",
        "data-bin": String(k),
        x: x + w / 2,
        y: stripTop + stripH - ch - 2,
        "text-anchor": "middle",
        text: fmtInt(b.count),
      }),
    );
  });
  const diag = s("line", { class: "chance", x1: X(0), y1: Y(0), x2: X(1), y2: Y(1) });
  frame.append(
    s("line", { class: "axis", x1: X(0), x2: X(1), y1: Y(0), y2: Y(0) }),
    s("line", {
      class: "axis",
      x1: X(0),
      x2: X(1),
      y1: stripTop + stripH,
      y2: stripTop + stripH,
    }),
  );
  svg.append(grid, bars, diag, frame, strip);
  return svg;
}
