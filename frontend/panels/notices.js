// Notices about the selected run (no counts, no validation split, unreadable data, several
// trainings in one log directory) and about the server (runs could not be loaded).

import { h } from "../dom.js";

/** update({notices: [{kind: "error"|"warning"|"info", title, detail}]}). */
export function create(container) {
  const element = h("div", { class: "notice-area" });
  container.append(element);
  return {
    element,
    update({ notices }) {
      element.replaceChildren(
        ...notices.map(({ kind, title, detail }) =>
          h(
            "div",
            { class: `notice ${kind}`, role: kind === "error" ? "alert" : "note" },
            h("strong", { text: title }),
            detail ? h("span", { text: detail }) : null,
          ),
        ),
      );
    },
  };
}
