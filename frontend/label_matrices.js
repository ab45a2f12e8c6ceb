// A multi-label answer's per-label 2x2 matrices ([[tn, fp], [fn, tp]] at score >= 0.5), one
// small card per label with its recall and precision, as the /confusion route gives them.

import { h, classLabel, fmt } from "./dom.js";
import { countsOfMatrix, labelHeadings, twoByTwo } from "./two_by_two.js";

/** One label's card: its name, the four counts and its recall / precision. */
function labelCard(name, matrix, entry, index) {
  return h(
    "div",
    { class: "label-card", "data-label": String(index) },
    h("div", { class: "label-name", text: name, title: name }),
    twoByTwo({
      counts: countsOfMatrix(matrix),
      headings: labelHeadings(),
      ariaLabel: `Label ${name}: counts at threshold 0.5`,
      className: "label-grid",
    }),
    h("div", {
      class: "label-figures",
      text: `recall ${fmt(entry && entry.recall)} \u00b7 precision ${fmt(entry && entry.precision)}`,
    }),
  );
}

/** The grid of every label's card for a multi-label /confusion answer `c`. */
export function labelMatrices(c) {
  const names = Array.isArray(c.class_names) ? c.class_names : [];
  const perClass = Array.isArray(c.per_class) ? c.per_class : [];
  const cards = c.matrices.map((matrix, k) =>
    labelCard(classLabel(names[k], k), matrix, perClass[k], k),
  );
  return h(
    "div",
    { class: "label-matrices" },
    h("p", {
      class: "muted",
      text: "Multi-label: each label decided on its own at score \u2265 0.5.",
    }),
    h("div", { class: "label-cards" }, ...cards),
  );
}
