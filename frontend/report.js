// The HTML report (`tb-metricsdiag report --format html`): each run's latest epoch drawn by the
// tab's own panels, fed with the route answers the report embeds instead of asking the server.
// tb_metricsdiag/html_report.py writes the answers and report_loader.js calls render().

import { h, fill, fmt, isNum } from "./dom.js";
import { followTheme } from "./theme.js";
import { card, pageHead } from "./panels/common.js";
import * as noticesPanel from "./panels/notices.js";
import * as findingsPanel from "./panels/findings.js";
import * as summaryPanel from "./panels/summary.js";
import * as confusionPanel from "./panels/confusion.js";
import * as perClassPanel from "./panels/per_class.js";
import * as pairsPanel from "./panels/pairs.js";
import * as examplesPanel from "./panels/examples.js";
import * as prPanel from "./panels/pr.js";
import * as calibrationPanel from "./panels/calibration.js";
import * as curvesPanel from "./panels/curves.js";

const NOT_FOUND = 404;
const VERDICTS = new Map([
  [true, "pass"],
  [false, "fail"],
  [null, "n/a"],
]);

/**
 * Draws `report` ({title, version, runs: [{entry, diagnostics, requirements,
 * requirements_skipped, curves, confusion, pr, calibration}], skipped}) into `root`: a list of
 * the runs, then each run's findings, requirements and panels.
 */
export function render(root, report) {
  followTheme();
  const runs = Array.isArray(report.runs) ? report.runs : [];
  const skipped = Array.isArray(report.skipped) ? report.skipped : [];
  fill(
    root,
    pageHead(
      `${report.title} \u00b7 ${runs.length} run${runs.length === 1 ? "" : "s"} \u00b7 tb-metricsdiag ${report.version}`,
    ),
    runIndex(runs),
    skipped.length
      ? h("p", {
          class: "muted report-skipped",
          text: `Left out while looking for runs: ${skipped.map((s) => `${s.count} ${s.reason}`).join("; ")}.`,
        })
      : null,
  );
  runs.forEach((doc, i) => {
    const section = h("section", { class: "run-report", id: runAnchor(i) });
    root.append(section);
    drawRun(section, doc);
  });
}

function runAnchor(i) {
  return `run-${i + 1}`;
}

/** The list of runs, each linking to its section, with its counts of findings. */
function runIndex(runs) {
  return h(
    "nav",
    { class: "run-index", "aria-label": "Runs" },
    h(
      "ol",
      null,
      runs.map((doc, i) => {
        const findings = doc.diagnostics?.findings || [];
        const count = (severity) => findings.filter((f) => f?.severity === severity).length;
        const badges = ["error", "warning"]
          .filter((severity) => count(severity))
          .map((severity) =>
            h("span", { class: `badge ${severity}`, text: `${count(severity)} ${severity}` }),
          );
        return h(
          "li",
          null,
          h("a", { href: `#${runAnchor(i)}`, text: String(doc.entry?.run) }),
          " ",
          badges,
        );
      }),
    ),
  );
}

/** One run: its notices, findings, requirements and, with counts, the panels of its epoch. */
function drawRun(section, doc) {
  const entry = doc.entry || {};
  const classNames = Array.isArray(entry.class_names) ? entry.class_names : [];
  const hasCounts = Boolean(doc.confusion);
  section.append(h("h2", { class: "run-name", text: String(entry.run) }));
  noticesPanel.create(section).update({ notices: runNotices(entry, hasCounts) });
  findingsPanel.create(section, {}).update({
    diagnostics: doc.diagnostics,
    classNames,
    canJump: false,
    hasCounts,
  });
  if (Array.isArray(doc.requirements) || doc.requirements_skipped)
    section.append(requirementsCard(doc.requirements, doc.requirements_skipped));

  const steps = Array.isArray(entry.steps) ? entry.steps.filter(isNum) : [];
  if (hasCounts) drawEpoch(section, doc, entry, classNames);
  const curves = curvesPanel.create(section, {});
  const over = (doc.diagnostics?.findings || []).find((f) => f?.rule === "overfitting");
  showAnswer(curves, doc.curves, (answer) => ({
    curves: answer,
    onset: isNum(over?.evidence?.onset_epoch) ? over.evidence.onset_epoch : null,
    step: steps.length ? steps[steps.length - 1] : null,
    canPick: false,
  }));
}

/** The confusion matrix, per-class figures, PR curves and calibration of the latest epoch. */
function drawEpoch(section, doc, entry, classNames) {
  let prClass = Number.isInteger(entry.default_class) ? entry.default_class : 0;
  let threshold = null; // the threshold the reader chose; null: the best-F1 point
  const prAnswers = doc.pr || {};
  const actions = {
    selectPrClass: (classIndex) => showPR(classIndex),
    showPrClass: (classIndex) => {
      showPR(classIndex);
      panels.pr.reveal();
    },
    setThreshold: (value) => {
      threshold = value;
    },
    showExamples: () =>
      panels.examples.update({
        empty:
          "This report holds no examples: open the run in TensorBoard's Metrics Diagnostics tab to list a cell's examples.",
      }),
    closeExamples: () => panels.examples.update({ hidden: true }),
    loadFullMatrix: () => {}, // the report holds the answer the route gives unasked
  };
  const summary = summaryPanel.create(section);
  const grid = h("div", { class: "layout-grid" });
  section.append(grid);
  const confusion = confusionPanel.create(grid, actions);
  const beside = h("div", { class: "side-column span-5" });
  grid.append(beside);
  const panels = {
    confusion,
    perClass: perClassPanel.create(beside, actions),
    pairs: pairsPanel.create(beside, actions),
    examples: examplesPanel.create(grid, actions),
    pr: prPanel.create(grid, actions),
    calibration: calibrationPanel.create(grid),
  };

  const shown = doc.confusion;
  if (shown.doc) {
    summary.update({ confusion: shown.doc });
    for (const panel of [confusion, panels.perClass, panels.pairs])
      panel.update({ confusion: shown.doc });
  } else {
    summary.update({});
    panels.perClass.update({});
    panels.pairs.update({});
    confusion.update({ error: shown.error });
  }
  showAnswer(
    panels.calibration,
    doc.calibration,
    (calibration) => ({ calibration, task: entry.task, classNames }),
    "This run was recorded without calibration bins.",
  );

  function showPR(classIndex) {
    if (classIndex !== prClass) threshold = null;
    prClass = classIndex;
    const picker = { classNames, classIndex, task: entry.task };
    const answer = prAnswers[String(classIndex)];
    if (!answer) {
      panels.pr.update({
        empty: `This report holds the PR curves of ${Object.keys(prAnswers).length} of the ${classNames.length} classes; TensorBoard's Metrics Diagnostics tab shows every class.`,
        ...picker,
      });
      return;
    }
    showAnswer(panels.pr, answer, (pr) =>
      Array.isArray(pr.thresholds) && pr.thresholds.length
        ? { pr, threshold, minRecall: "", minPrecision: "", ...picker }
        : { empty: "No threshold counts are stored for this class at this epoch.", ...picker },
    );
  }
  showPR(prClass);
}

/**
 * Shows an embedded answer ({doc} or {error, status}) in `panel`: shown(doc), or the route's
 * error (its message as an empty state where the route had nothing, 404, or `notFound`).
 */
function showAnswer(panel, answer, shown, notFound = null) {
  if (!answer) return;
  if (answer.doc) panel.update(shown(answer.doc));
  else if (answer.status === NOT_FOUND) panel.update({ empty: notFound ?? answer.error });
  else panel.update({ error: answer.error });
}

/** The notices of a run: its data cannot be read, or it has no counts. */
function runNotices(entry, hasCounts) {
  if (entry.error)
    return [
      {
        kind: "error",
        title: "This run's metricsdiag data cannot be read.",
        detail: String(entry.error),
      },
    ];
  if (!hasCounts)
    return [
      {
        kind: "info",
        title: "This run has no confusion counts.",
        detail: "It has training curves only; the findings above are those its curves allow.",
      },
    ];
  return [];
}

/** The requirements (`--require`) checked on the run: one row per result, failed first. */
function requirementsCard(results, skipped) {
  const { section, body } = card({ title: "Requirements", bodyClass: "requirements" });
  if (!Array.isArray(results)) {
    fill(body, h("p", { class: "muted", text: `Not checked: ${skipped}.` }));
    return section;
  }
  const order = (r) => (r.passed === false ? 0 : r.passed === true ? 1 : 2);
  const rows = [...results].sort((a, b) => order(a) - order(b));
  const interval = (r) => (isNum(r.lower) ? `${fmt(r.lower)}\u2013${fmt(r.upper)}` : "");
  // A slice of `@KEY=*` under --min-slice-size is skipped, not "not applicable".
  const verdict = (r) => (r.skipped ? "skipped" : VERDICTS.get(r.passed ?? null));
  const sliced = rows.some((r) => r.slice);
  const where = (r) => (r.slice ? `${r.slice.key}=${r.slice.value} (${r.slice.support} rows)` : "");
  fill(
    body,
    h(
      "table",
      // The per-class table's look: a table of figures per class.
      { class: "per-class requirements-table", "aria-label": "Requirements" },
      h(
        "thead",
        null,
        h(
          "tr",
          null,
          ["Verdict", "Requirement", "Class", ...(sliced ? ["Slice"] : [])]
            .concat(["Value", "95% interval", "Bound", "Note"])
            .map((text) => h("th", { scope: "col", text })),
        ),
      ),
      h(
        "tbody",
        null,
        rows.map((r) =>
          h(
            "tr",
            { class: `verdict-${verdict(r)}` },
            h("td", { class: "verdict", text: verdict(r) }),
            h("td", null, h("code", { text: String(r.expr) })),
            h("td", { text: r.class === null || r.class === undefined ? "" : String(r.class) }),
            sliced ? h("td", { class: "slice", text: where(r) }) : null,
            h("td", { class: "num", "data-metric": "value", text: fmt(r.value) }),
            h("td", { class: "num", text: interval(r) }),
            h("td", { class: "num", text: fmt(r.bound) }),
            h("td", {
              text:
                r.applicable === false
                  ? `${r.skipped ? "skipped" : "not applicable"}: ${r.reason}`
                  : isNum(r.baseline)
                    ? `baseline ${fmt(r.baseline)}`
                    : "",
            }),
          ),
        ),
      ),
    ),
  );
  return section;
}
