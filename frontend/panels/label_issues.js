// The examples whose given label confident learning flags at one epoch (the /label_issues
// answer): how many and what share, and the listed ones with their given and suggested
// classes, the least likely given label first.

import { h, classLabel, fill, fmt, fmtInt, fmtPct } from "../dom.js";
import { card, examplePreview, showState } from "./common.js";

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
    const rows = listed.map((e) =>
      h(
        "tr",
        { class: "issue" },
        h("td", { class: "preview" }, examplePreview(e.preview)),
        h("td", { class: "example-id", text: String(e.id) }),
        h("td", { class: "given-name", text: name(e.given_name, e.given) }),
        h("td", { class: "num", "data-metric": "given_score", text: fmt(e.given_score) }),
        h("td", { class: "suggested-name", text: name(e.suggested_name, e.suggested) }),
        h("td", { class: "num", "data-metric": "suggested_score", text: fmt(e.suggested_score) }),
      ),
    );
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
      listed.length
        ? h(
            "div",
            { class: "scroll" },
            h(
              "table",
              { class: "label-issues", "aria-label": "Examples whose given label is doubtful" },
              h(
                "thead",
                null,
                h(
                  "tr",
                  null,
                  ["Preview", "Id", "Given", "Given score", "Suggested", "Suggested score"].map(
                    (text) => h("th", { scope: "col", text }),
                  ),
                ),
              ),
              h("tbody", null, rows),
            ),
          )
        : h("p", { class: "muted", text: "No example's label is flagged at this epoch." }),
      h("p", {
        class: "caption",
        text: "confident learning: the least likely given label first; suggested: the class it assigns",
      }),
    );
  }

  return { element: section, update };
}
