// Findings of the diagnostics engine, in the server's order (worst first), with links to the
// epoch and to the PR curve of the class a finding names; below them the rules that could not
// run, each with the step that would let it run (`not_run[i].how`; those without one are left
// out).

import { h, fill, fmtEvidence, fmtThreshold, isNum } from "../dom.js";
import { card, showState } from "./common.js";

const SEVERITY_ICON = { error: "\u2716", warning: "\u26A0", info: "\u2139" };

/**
 * actions: jumpToStep(step), showOnPR(classIndex, threshold, step).
 * update({loading} | {error} | {empty} | {diagnostics, classNames, canJump, hasCounts}):
 * `diagnostics` is the /diagnostics answer; `canJump` whether the run has epochs to show.
 */
export function create(container, actions) {
  const { section, body } = card({ title: "Findings", bodyClass: "findings" });
  container.append(section);

  function update(data) {
    if (
      showState(body, data, {
        loadingText: "Loading findings\u2026",
        errorTitle: "Could not load the findings.",
      })
    ) {
      return;
    }
    const { diagnostics, classNames, canJump, hasCounts } = data;
    const findings = Array.isArray(diagnostics.findings)
      ? diagnostics.findings.filter(Boolean)
      : [];
    const notRun = Array.isArray(diagnostics.not_run) ? diagnostics.not_run.filter(Boolean) : [];
    // A rule that could not run is listed only with the step that would let it run (a notice
    // nobody can act on is noise), rules of the same reason and step together.
    const actionable = notCheckedGroups(notRun);
    const parts = [];
    if (findings.length) {
      const counts = {};
      for (const f of findings) counts[severityOf(f)] = (counts[severityOf(f)] || 0) + 1;
      parts.push(
        h(
          "p",
          { class: "findings-summary" },
          ["error", "warning", "info"]
            .filter((sev) => counts[sev])
            .map((sev) =>
              h("span", {
                class: `badge ${sev}`,
                text: `${counts[sev]} ${sev}${counts[sev] > 1 && sev !== "info" ? "s" : ""}`,
              }),
            ),
        ),
        h(
          "ol",
          { class: "finding-list" },
          findings.map((f) => findingItem(f, { classNames, canJump, hasCounts })),
        ),
      );
    } else if (notRun.some((n) => !n.optional)) {
      parts.push(
        h("p", { class: "findings-partial", text: "No problems found by the checks that ran." }),
      );
    } else {
      parts.push(h("p", { class: "all-good", text: "\u2714 No problems detected for this run." }));
    }
    if (actionable.length) {
      parts.push(
        h(
          "div",
          { class: "not-run" },
          h("strong", { text: "Not checked:" }),
          h(
            "ul",
            null,
            actionable.map(({ rules, reason, how }) =>
              h(
                "li",
                { class: "not-run-item", "data-rule": rules.join(" ") },
                rules.map((rule, k) => [k ? ", " : "", h("code", { class: "rule", text: rule })]),
                reason ? ` (${reason}). ` : ". ",
                h("span", {
                  class: "not-run-how",
                  text: `To check ${rules.length > 1 ? "them" : "it"}: ${how.replace(/\.$/, "")}.`,
                }),
              ),
            ),
          ),
        ),
      );
    }
    fill(body, parts);
  }

  function findingItem(f, { classNames, canJump, hasCounts }) {
    const sev = severityOf(f);
    const hasStep = isNum(f.step) && canJump;
    const item = h("li", { class: `finding ${sev}${hasStep ? " clickable" : ""}` });
    const evidence = f.evidence && typeof f.evidence === "object" ? f.evidence : {};
    item.append(
      h(
        "div",
        { class: "finding-head" },
        h("span", { class: `badge ${sev}`, text: `${SEVERITY_ICON[sev]} ${sev}` }),
        h("h3", { text: f.title || f.rule || "Finding" }),
        f.rule ? h("code", { class: "rule", text: f.rule }) : null,
        isNum(f.step) ? h("span", { class: "finding-step", text: `epoch ${f.step}` }) : null,
      ),
    );
    if (f.detail) item.append(h("p", { class: "detail", text: f.detail }));
    const entries = Object.entries(evidence);
    if (entries.length) {
      item.append(
        h(
          "dl",
          { class: "evidence" },
          entries.map(([k, v]) =>
            h("div", null, h("dt", { text: k }), h("dd", { text: fmtEvidence(v) })),
          ),
        ),
      );
    }
    if (f.suggestion) {
      item.append(
        h("p", { class: "suggestion" }, h("strong", { text: "Suggestion: " }), f.suggestion),
      );
    }
    const classIndex = namedClass(evidence, classNames);
    if (classIndex !== null && hasCounts && canJump) {
      const thr = evidence.best_threshold;
      item.append(
        h("button", {
          type: "button",
          class: "btn small",
          text: isNum(thr)
            ? `Show threshold ${fmtThreshold(thr)} on the PR curve`
            : "Show this class on the PR curve",
          onclick: (evt) => {
            evt.stopPropagation();
            actions.showOnPR(classIndex, thr, f.step);
          },
        }),
        " ",
      );
    }
    if (hasStep) {
      item.append(
        h("button", {
          type: "button",
          class: "btn small",
          text: `Show epoch ${f.step}`,
          "aria-label": `Show epoch ${f.step} for finding: ${f.title || f.rule || ""}`,
          onclick: (evt) => {
            evt.stopPropagation();
            actions.jumpToStep(f.step);
          },
        }),
      );
      item.addEventListener("click", (evt) => {
        if (evt.target.closest("button, a, input, select")) return;
        actions.jumpToStep(f.step);
      });
    }
    return item;
  }

  return { element: section, update };
}

/**
 * The rules of `not_run` that have a step (`how`), as [{rules, reason, how}]: those of the same
 * reason and step in one entry, in the order of their first rule.
 */
function notCheckedGroups(notRun) {
  const groups = new Map();
  for (const n of notRun) {
    if (typeof n.how !== "string" || !n.how) continue;
    const reason = typeof n.reason === "string" ? n.reason : "";
    const key = JSON.stringify([reason, n.how]);
    if (!groups.has(key)) groups.set(key, { rules: [], reason, how: n.how });
    groups.get(key).rules.push(String(n.rule ?? "?"));
  }
  return [...groups.values()];
}

function severityOf(f) {
  return Object.hasOwn(SEVERITY_ICON, f.severity) ? f.severity : "info";
}

/** The index of the class a finding's evidence names, if any. */
function namedClass(evidence, classNames) {
  for (const key of ["class_index", "worst_class_index"]) {
    const k = evidence[key];
    if (Number.isInteger(k) && k >= 0 && k < classNames.length) return k;
  }
  for (const key of ["positive_class", "worst_class", "class"]) {
    if (typeof evidence[key] === "string" && classNames.includes(evidence[key])) {
      return classNames.indexOf(evidence[key]);
    }
  }
  return null;
}
