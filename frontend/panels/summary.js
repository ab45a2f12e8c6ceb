// Summary cards of one epoch: accuracy (flagged when no better than the majority class),
// balanced accuracy, macro F1, the majority baseline and the number of examples, all as the
// /confusion route gives them.

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
    if (c.task === "multilabel") {
      fill(
        element,
        stat("accuracy", "Subset accuracy", fmt(c.accuracy), {
          hint: "rows whose whole label set is predicted exactly",
        }),
        stat("hamming_loss", "Hamming loss", fmt(c.hamming_loss), {
          hint: "share of wrong (row, label) decisions",
        }),
        stat("macro_f1", "Macro F1", fmt(c.macro_f1), {
          hint: "unweighted mean of the per-label F1",
        }),
        stat("total", "Examples", fmtInt(c.total), { hint: `${c.split}, epoch ${c.step}` }),
      );
      return;
    }
    const warn = c.no_better_than_majority === true;
    fill(
      element,
      stat("accuracy", "Accuracy", fmt(c.accuracy), {
        warn,
        hint: warn ? "no better than always predicting the majority class" : null,
      }),
      stat("balanced_accuracy", "Balanced accuracy", fmt(c.balanced_accuracy), {
        hint: "mean per-class recall",
      }),
      stat("macro_f1", "Macro F1", fmt(c.macro_f1), {
        hint: "unweighted mean of the per-class F1",
      }),
      stat("majority_baseline", "Majority baseline", fmt(c.majority_baseline), {
        hint: "accuracy of always predicting the largest class",
      }),
      stat("total", "Examples", fmtInt(c.total), { hint: `${c.split}, epoch ${c.step}` }),
    );
  }

  return { element, update };
}
