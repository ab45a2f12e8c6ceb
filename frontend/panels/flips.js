// What changed between two evaluations (the /flips answer): the examples the model got right
// before and wrong now, and the reverse, matched by id, the most confident first. The tab shows
// it twice: since the epoch before, and since the comparison's "before" (another epoch or run).

import { h, classLabel, fill, fmt, fmtInt } from "../dom.js";
import { card, examplesTable, showState } from "./common.js";

const KINDS = [
  ["became_wrong", "Became wrong"],
  ["became_right", "Became right"],
];

/** The flips since the epoch before (see flipsCard). */
export function create(container) {
  return flipsCard(container, "Changed since the epoch before", "flips-wrap");
}

/** The flips since the comparison's "before" (see flipsCard). */
export function createForComparison(container) {
  return flipsCard(container, "Changed since the comparison's before", "compare-flips-wrap");
}

/**
 * A card titled `title` whose body has class `bodyClass`.
 * update({loading} | {error} | {empty} | {flips, classNames}): `flips` is the /flips answer,
 * `classNames` the run's class names (a class the answer does not know is a dash).
 */
function flipsCard(container, title, bodyClass) {
  const { section, body } = card({ title, span: "span-12", bodyClass });
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
    const before = doc.before || {};
    const after = doc.after || {};
    const which = (side) =>
      before.run === after.run ? `epoch ${side.step}` : `${side.run} epoch ${side.step}`;
    fill(
      body,
      KINDS.map(part),
      h("p", {
        class: "caption",
        text: `${which(before)} \u2192 ${which(after)} (${after.split}); score: the probability of the class predicted then; a class the evaluation did not keep is a dash`,
      }),
    );
  }

  return { element: section, update };
}
