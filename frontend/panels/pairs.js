// The most confused pairs of classes of one epoch (the route's `confused_pairs`: the largest
// off-diagonal cells), each with its count and its share of the actual class; a pair opens the
// PR curve of its actual class, its "examples" button the pair's examples.

import { h, classLabel, fill, fmtInt, fmtPct, isNum } from "../dom.js";
import { card } from "./common.js";

/**
 * actions: showPrClass(classIndex), showExamples(actual, predicted).
 * update({confusion}) lists `confusion.confused_pairs` (the panel hides when the answer has
 * none); update({}) clears.
 */
export function create(container, actions) {
  const { section, body } = card({
    title: "Most confused pairs",
    span: "span-5",
    bodyClass: "pairs-wrap",
  });
  section.hidden = true;
  container.append(section);

  function update({ confusion = null }) {
    const pairs =
      confusion && Array.isArray(confusion.confused_pairs) ? confusion.confused_pairs : null;
    section.hidden = pairs === null;
    if (!pairs) {
      body.replaceChildren();
      return;
    }
    const names = Array.isArray(confusion.class_names) ? confusion.class_names : [];
    const name = (i) => classLabel(names[i], i);
    const valid = pairs.filter(
      (p) => p && Number.isInteger(p.actual) && Number.isInteger(p.predicted) && isNum(p.count),
    );
    if (!valid.length) {
      fill(body, h("p", { class: "muted", text: "No example is confused at this epoch." }));
      return;
    }
    const rows = valid.map((p, k) =>
      h(
        "tr",
        { "data-actual": String(p.actual), "data-predicted": String(p.predicted) },
        h("td", { class: "num rank", text: String(k + 1) }),
        h(
          "th",
          { scope: "row" },
          h(
            "button",
            {
              type: "button",
              class: "link pair",
              title: `Show the PR curve of ${name(p.actual)}`,
              onclick: () => actions.showPrClass(p.actual),
            },
            h("span", { class: "pair-actual", text: name(p.actual) }),
            " \u2192 ",
            h("span", { class: "pair-predicted", text: name(p.predicted) }),
          ),
        ),
        h("td", { class: "num", "data-metric": "count", text: fmtInt(p.count) }),
        h("td", { class: "num", "data-metric": "share", text: fmtPct(p.share) }),
        h(
          "td",
          null,
          h("button", {
            type: "button",
            class: "link pair-examples",
            text: "examples",
            title: `List the examples of actual ${name(p.actual)} predicted as ${name(p.predicted)}`,
            onclick: () => actions.showExamples(p.actual, p.predicted),
          }),
        ),
      ),
    );
    fill(
      body,
      h(
        "div",
        { class: "scroll" },
        h(
          "table",
          { class: "pairs", "aria-label": "Most confused pairs: actual class, predicted class" },
          h(
            "thead",
            null,
            h(
              "tr",
              null,
              h("th", { scope: "col", class: "num", text: "#" }),
              h("th", { scope: "col", text: "Actual \u2192 predicted" }),
              h("th", { scope: "col", class: "num", text: "Count" }),
              h("th", { scope: "col", class: "num", text: "Share of actual" }),
              h("th", { scope: "col", text: "Examples" }),
            ),
          ),
          h("tbody", null, rows),
        ),
      ),
      h("p", {
        class: "caption",
        text: `${confusion.split} split \u00b7 epoch ${confusion.step} \u00b7 the largest off-diagonal cells; share: the count over the actual class's examples`,
      }),
    );
  }

  return { element: section, update };
}
