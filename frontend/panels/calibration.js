// Calibration of one epoch: the reliability diagram (per score bin, the accuracy of a
// multi-class run's top-label confidence, or the fraction of positives of a binary or
// multi-label run's positive-class probability, against the diagonal; the bins' counts in a
// strip below), ECE, MCE and the direction of the miscalibration, as the /calibration route
// gives them.

import { h, fill, fmt, fmtInt } from "../dom.js";
import { reliabilityDiagram } from "../charts/reliability.js";
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
