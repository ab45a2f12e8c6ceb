// The examples of one confusion cell (the /examples answer): a cell of the confusion table or a
// confused pair, a heatmap block (its largest cell) or a multi-label card's count opens it. Each
// example with its preview, id, score (the predicted class's probability) and the actual class's
// probability, in the route's order. A multi-label cell is one label set or absent, predicted or
// not.

import { h, classLabel, fill, fmt, fmtInt } from "../dom.js";
import { card, examplesTable, showState } from "./common.js";

/**
 * actions: closeExamples().
 * update({loading} | {error} | {empty} | {examples}): `examples` is the /examples answer;
 * update({hidden: true}) hides the panel.
 */
export function create(container, actions) {
  const close = h("button", {
    type: "button",
    class: "btn small",
    text: "Close",
    title: "Close the examples of this cell",
    onclick: () => actions.closeExamples(),
  });
  const { section, body } = card({
    title: "Examples of a cell",
    span: "span-12",
    bodyClass: "examples-wrap",
    tools: close,
  });
  section.hidden = true;
  container.append(section);

  function update(data) {
    section.hidden = Boolean(data.hidden);
    if (data.hidden) {
      body.replaceChildren();
      return;
    }
    const state = showState(body, data, {
      loadingText: "Loading the examples\u2026",
      errorTitle: "Could not load the examples of this cell.",
    });
    if (state) return;
    const doc = data.examples;
    const label = Number.isInteger(doc.class) ? classLabel(doc.class_name, doc.class) : null;
    const trueName =
      label === null ? classLabel(doc.true_name, doc.true) : doc.true ? "set" : "absent";
    const predName =
      label === null
        ? classLabel(doc.pred_name, doc.pred)
        : doc.pred
          ? "predicted"
          : "not predicted";
    const listed = Array.isArray(doc.examples) ? doc.examples : [];
    fill(
      body,
      h(
        "p",
        { class: "examples-head" },
        label === null
          ? null
          : [
              h("span", { text: "label " }),
              h("strong", { class: "cell-label", text: label }),
              ": ",
            ],
        h("span", { text: "actual " }),
        h("strong", { class: "cell-true", text: trueName }),
        h("span", { text: " \u2192 predicted " }),
        h("strong", { class: "cell-pred", text: predName }),
        h("span", { text: ": " }),
        h("span", { class: "cell-count", text: fmtInt(doc.count) }),
        h("span", {
          text: ` examples at epoch ${doc.step} (${doc.split}), ${fmtInt(listed.length)} kept`,
        }),
        doc.slice && typeof doc.slice.key === "string"
          ? [
              h("span", { text: "; slice " }),
              h("strong", { class: "cell-slice", text: `${doc.slice.key} = ${doc.slice.value}` }),
            ]
          : null,
      ),
      examplesTable({
        className: "examples",
        ariaLabel: "Examples of the cell",
        headings: ["Score", "Actual class score", "Actual", "Predicted"],
        examples: listed,
        cells: (e) => [
          h("td", { class: "num", "data-metric": "score", text: fmt(e.score) }),
          h("td", { class: "num", "data-metric": "true_score", text: fmt(e.true_score) }),
          h("td", { class: "true-name", text: trueName }),
          h("td", { class: "pred-name", text: predName }),
        ],
        emptyText: "No example of this cell was kept.",
      }),
      h("p", {
        class: "caption",
        text:
          doc.true === doc.pred
            ? "right answers, the least confident first; score: the probability of the predicted class"
            : "errors, the most confident first; score: the probability of the predicted class",
      }),
    );
  }

  return { element: section, update };
}
