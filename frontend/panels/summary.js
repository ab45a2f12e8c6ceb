// Summary cards of one epoch: accuracy (flagged when no better than the majority class),
// balanced accuracy, macro F1, the majority baseline and the number of examples; of a
// multi-label run the subset accuracy, Hamming loss, macro F1 and rows. All as the /confusion
// route gives them.

import { h, fill, fmt, fmtInt } from "../dom.js";

/** update({confusion}) shows the cards of a /confusion answer; update({}) clears them. */
export function create(container) {
  const element = h("div", { class: "summary-cards" });
  container.append(element);

  function stat(metric, label, value, { hint = null, warn = false } = {}) {
    return h(
      "div",
      { class: `stat${warn ? " warn" : ""}`, title: hint || "" },
      h("span", { class: "stat-label", text: label }),
      h("span", { class: "stat-value", "data-metric": metric, text: value }),
      hint ? h("span", { class: "stat-hint", text: hint }) : null,
    );
  }

  function update({ confusion: c = null }) {
    if (!c) {
      element.replaceChildren();
      return;
    }
    const warn = c.no_better_than_majority === true;
    // [metric, label, hint, options] of each card, by the task's figures.
    const cards =
      c.task === "multilabel"
        ? [
            ["accuracy", "Subset accuracy", "rows whose whole label set is predicted exactly"],
            ["hamming_loss", "Hamming loss", "share of wrong (row, label) decisions"],
            ["macro_f1", "Macro F1", "unweighted mean of the per-label F1"],
          ]
        : [
            [
              "accuracy",
              "Accuracy",
              warn ? "no better than always predicting the majority class" : null,
              { warn },
            ],
            ["balanced_accuracy", "Balanced accuracy", "mean per-class recall"],
            ["macro_f1", "Macro F1", "unweighted mean of the per-class F1"],
            [
              "majority_baseline",
              "Majority baseline",
              "accuracy of always predicting the largest class",
            ],
          ];
    fill(
      element,
      ...cards.map(([metric, label, hint, options = {}]) =>
        stat(metric, label, fmt(c[metric]), { ...options, hint }),
      ),
      stat("total", "Examples", fmtInt(c.total), { hint: `${c.split}, epoch ${c.step}` }),
    );
  }

  return { element, update };
}
