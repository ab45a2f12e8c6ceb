// A multi-label answer's per-label 2x2 matrices ([[tn, fp], [fn, tp]] at score >= 0.5), one
// small card per label with its recall and precision, as the /confusion route gives them. A
// click on a count (or Enter) asks for the examples of that cell.

import { h, classLabel, fmt } from "./dom.js";
import { countsOfMatrix, labelHeadings, twoByTwo } from "./two_by_two.js";

// The label's value (1 set, 0 absent) [actual, predicted] of each count.
const CELL_VALUES = { tp: [1, 1], fn: [1, 0], fp: [0, 1], tn: [0, 0] };

/**
 * One label's card: its name, the four counts and its recall / precision; onCell(index,
 * actual, predicted) runs when a count is picked.
 */
function labelCard(name, matrix, entry, index, onCell) {
  return h(
    "div",
    { class: "label-card", "data-label": String(index) },
    h("div", { class: "label-name", text: name, title: name }),
    twoByTwo({
      counts: countsOfMatrix(matrix),
      headings: labelHeadings(),
      ariaLabel: `Label ${name}: counts at threshold 0.5`,
      className: "label-grid",
      onCell: (key) => onCell(index, ...CELL_VALUES[key]),
    }),
    h("div", {
      class: "label-figures",
      text: `recall ${fmt(entry && entry.recall)} \u00b7 precision ${fmt(entry && entry.precision)}`,
    }),
  );
}

/**
 * The grid of every label's card for a multi-label /confusion answer `c`; onCell(label,
 * actual, predicted) runs when a count of a card is picked.
 */
export function labelMatrices(c, onCell) {
  const names = Array.isArray(c.class_names) ? c.class_names : [];
  const perClass = Array.isArray(c.per_class) ? c.per_class : [];
  const cards = c.matrices.map((matrix, k) =>
    labelCard(classLabel(names[k], k), matrix, perClass[k], k, onCell),
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
