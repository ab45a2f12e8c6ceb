// Per-class precision, recall, F1 and support of one epoch; a class name opens its PR curve.

import { h, fill, fmt, fmtInt, isNum } from "../dom.js";
import { card } from "./common.js";

// A highlight for the eye only: the diagnostics judge low recall with their own rules.
const LOW_RECALL = 0.5;

/**
 * actions: showPrClass(classIndex).
 * update({confusion}) shows the per_class list of a /confusion answer; update({}) clears.
 */
export function create(container, actions) {
  const { section, body } = card({
    title: "Per-class metrics",
    span: "span-5",
    bodyClass: "table-wrap",
  });
  container.append(section);

  function update({ confusion = null }) {
    const per = confusion && Array.isArray(confusion.per_class) ? confusion.per_class : [];
    if (!confusion) {
      body.replaceChildren();
      return;
    }
    const supports = per.map((p) => p.support).filter(isNum);
    const maxSupport = supports.length ? Math.max(...supports) : 0;
    const rows = per.map((p, i) => {
      const low = isNum(p.recall) && p.recall < LOW_RECALL;
      const width = maxSupport && isNum(p.support) ? (p.support / maxSupport) * 100 : 0;
      return h(
        "tr",
        { class: low ? "low" : "", "data-class": String(i) },
        h(
          "th",
          { scope: "row" },
          h("button", {
            type: "button",
            class: "link",
            text: p.name ?? String(i),
            title: "Show the PR curve of this class",
            onclick: () => actions.showPrClass(i),
          }),
          low
            ? h("span", { class: "flag", title: `Recall below ${LOW_RECALL}`, text: "low recall" })
            : null,
        ),
        h("td", { class: "num", "data-metric": "precision", text: fmt(p.precision) }),
        h("td", { class: "num", "data-metric": "recall", text: fmt(p.recall) }),
        h("td", { class: "num", "data-metric": "f1", text: fmt(p.f1) }),
        h(
          "td",
          { class: "num support", "data-metric": "support" },
          h("span", { class: "support-bar", style: { "--w": `${width.toFixed(1)}%` } }),
          h("span", { text: fmtInt(p.support) }),
        ),
      );
    });
    const table = h(
      "table",
      { class: "per-class", "aria-label": "Per-class precision, recall, F1 and support" },
      h(
        "thead",
        null,
        h(
          "tr",
          null,
          ["Class", "Precision", "Recall", "F1", "Support"].map((t, k) =>
            h("th", { scope: "col", class: k ? "num" : "", text: t }),
          ),
        ),
      ),
      h("tbody", null, rows),
    );
    fill(body, h("div", { class: "scroll" }, table));
  }

  return { element: section, update };
}
