// What changed since the epoch before (the /flips answer): the examples the model got right
// before and wrong now, and the reverse, matched by id, the most confident first.

import { h, classLabel, fill, fmt, fmtInt } from "../dom.js";
import { card, examplesTable, showState } from "./common.js";

const KINDS = [
  ["became_wrong", "Became wrong"],
  ["became_right", "Became right"],
];

/**
 * update({loading} | {error} | {empty} | {flips, classNames}): `flips` is the /flips answer,
 * `classNames` the run's class names (a class the answer does not know is a dash).
 */
export function create(container) {
  const { section, body } = card({
    title: "Changed since the epoch before",
    span: "span-12",
    bodyClass: "flips-wrap",
  });
  container.append(section);

  function update(data) {
    const state = showState(body, data, {
      loadingText: "Loading what changed\u2026",
      errorTitle: "Could not load what changed.",
    });
    if (state) return;
    const doc = data.flips;
    const names = Array.isArray(data.classNames) ? data.classNames : [];
    const name = (i) => (Number.isInteger(i) ? classLabel(names[i], i) : "\u2014");
    const part = ([kind, title]) => {
      const group = doc[kind] || {};
      const listed = Array.isArray(group.examples) ? group.examples : [];
      return h(
        "div",
        { class: `flips-part ${kind}`, "data-kind": kind },
        h(
          "h3",
          null,
          h("span", { text: `${title}: ` }),
          h("span", { class: "flip-count", text: fmtInt(group.count) }),
        ),
        examplesTable({
          className: "flips",
          ariaLabel: title,
          headings: ["Actual", "Predicted before", "Predicted now", "Score before", "Score now"],
          examples: listed,
          cells: (e) => [
            h("td", { class: "true-name", text: name(e.true) }),
            h("td", { class: "before-pred-name", text: name(e.before_pred) }),
            h("td", { class: "pred-name", text: name(e.pred) }),
            h("td", { class: "num", "data-metric": "before_score", text: fmt(e.before_score) }),
            h("td", { class: "num", "data-metric": "score", text: fmt(e.score) }),
          ],
          emptyText: "None.",
        }),
      );
    };
    fill(
      body,
      KINDS.map(part),
      h("p", {
        class: "caption",
        text: `epoch ${doc.before?.step} \u2192 ${doc.after?.step} (${doc.after?.split}); score: the probability of the class predicted then; a class the evaluation did not keep is a dash`,
      }),
    );
  }

  return { element: section, update };
}
