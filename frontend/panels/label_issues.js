// The examples whose given label confident learning flags at one epoch (the /label_issues
// answer): how many and what share, and the listed ones with their given and suggested
// classes, the least likely given label first.

import { h, classLabel, fill, fmt, fmtInt, fmtPct } from "../dom.js";
import { card, examplesTable, showState } from "./common.js";

/** update({loading} | {error} | {empty} | {issues}): `issues` is the /label_issues answer. */
export function create(container) {
  const { section, body } = card({
    title: "Possible label issues",
    span: "span-12",
    bodyClass: "label-issues-wrap",
  });
  container.append(section);

  function update(data) {
    const state = showState(body, data, {
      loadingText: "Loading the label issues\u2026",
      errorTitle: "Could not load the label issues.",
    });
    if (state) return;
    const doc = data.issues;
    const names = Array.isArray(doc.class_names) ? doc.class_names : [];
    const name = (given, index) => classLabel(given ?? names[index], index);
    const listed = Array.isArray(doc.examples) ? doc.examples : [];
    fill(
      body,
      h(
        "p",
        { class: "issues-head" },
        h("span", { class: "issue-count", text: fmtInt(doc.count) }),
        h("span", { text: " examples flagged (" }),
        h("span", { class: "issue-share", text: fmtPct(doc.share) }),
        h("span", { text: ` of the ${doc.split} split at epoch ${doc.step})` }),
      ),
      examplesTable({
        className: "label-issues",
        ariaLabel: "Examples whose given label is doubtful",
        headings: ["Given", "Given score", "Suggested", "Suggested score"],
        examples: listed,
        cells: (e) => [
          h("td", { class: "given-name", text: name(e.given_name, e.given) }),
          h("td", { class: "num", "data-metric": "given_score", text: fmt(e.given_score) }),
          h("td", { class: "suggested-name", text: name(e.suggested_name, e.suggested) }),
          h("td", { class: "num", "data-metric": "suggested_score", text: fmt(e.suggested_score) }),
        ],
        emptyText: "No example's label is flagged at this epoch.",
      }),
      h("p", {
        class: "caption",
        text: "confident learning: the least likely given label first; suggested: the class it assigns",
      }),
    );
  }

  return { element: section, update };
}
