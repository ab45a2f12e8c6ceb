// Compare two (run, epoch) pairs: the signed difference of the confusion matrices (counts or
// row shares; one colour for better, one for worse), per-class precision / recall / F1 / AP
// before -> after, and both PR curves of the selected class. "Did my change help the rare
// class, and what did it cost the others?"

import { h, s, fill, fmt, fmtInt, isNum, uid } from "../dom.js";
import { unitAxes } from "../charts.js";
import { MANY_CLASSES, card, segmented, showState } from "./common.js";

const METRICS = [
  ["precision", "Precision"],
  ["recall", "Recall"],
  ["f1", "F1"],
  ["ap", "AP"],
];

/**
 * actions: setCompareBase(run, step).
 * update({runs, run, steps, step} as the "before" picker) and then
 * ({loading} | {error} | {compare, prBefore, prAfter}).
 */
export function create(container, actions) {
  let mode = "counts";
  let shown = null;
  const ids = { run: uid("cmprun"), step: uid("cmpstep") };
  const runSelect = h("select", {
    id: ids.run,
    "aria-label": "Run to compare with",
    onchange: () => actions.setCompareBase(runSelect.value, null),
  });
  const stepSelect = h("select", {
    id: ids.step,
    "aria-label": "Epoch to compare with",
    onchange: () => actions.setCompareBase(runSelect.value, Number(stepSelect.value)),
  });
  const modeGroup = segmented(
    "Values",
    [
      ["counts", "Counts"],
      ["true", "Row-normalised"],
    ],
    mode,
    (value) => {
      mode = value;
      if (shown) render(shown);
    },
  );
  const { section, body } = card({
    title: "Compare with another epoch or run",
    span: "span-12",
    bodyClass: "compare-body",
    tools: h(
      "div",
      { class: "head-tools" },
      h("label", { for: ids.run, text: "Before: run" }),
      runSelect,
      h("label", { for: ids.step, text: "epoch" }),
      stepSelect,
      modeGroup,
    ),
  });
  container.append(section);

  function setPicker({ runs, run, steps, step }) {
    runSelect.replaceChildren(...runs.map((r) => h("option", { value: r, text: r })));
    runSelect.value = run;
    stepSelect.replaceChildren(
      ...steps.map((st) => h("option", { value: String(st), text: `epoch ${st}` })),
    );
    stepSelect.value = String(step);
  }

  function update(data) {
    if (data.picker) {
      setPicker(data.picker);
      return;
    }
    if (
      showState(body, data, {
        loadingText: "Loading the comparison\u2026",
        errorTitle: "Could not compare.",
        keepWhileLoading: true,
      })
    ) {
      if (!data.loading) shown = null;
      return;
    }
    shown = data;
    render(data);
  }

  function render({ compare: c, prBefore, prAfter, classIndex }) {
    const names = Array.isArray(c.class_names) ? c.class_names : [];
    const d = c.difference || {};
    const values = mode === "counts" ? d.counts : d.true;
    const improvement = Array.isArray(d.improvement) ? d.improvement : [];
    const name = (i) => String(names[i] ?? i);
    const signed = (v, digits) =>
      isNum(v) ? (v > 0 ? "+" : "") + (digits === null ? fmtInt(v) : fmt(v, digits)) : "\u2014";
    // A many-class difference matrix is too large to read as a table; the per-class changes
    // below say which classes moved.
    const matrix =
      c.difference_form === "labels"
        ? h("p", {
            class: "muted",
            text: "Multi-label: each label's change is in the table below.",
          })
        : names.length > MANY_CLASSES
          ? h("p", {
              class: "muted",
              text: `The change of the matrix is shown up to ${MANY_CLASSES} classes; this run has ${names.length}.`,
            })
          : h(
              "table",
              {
                class: "diff-matrix",
                "aria-label": "Confusion matrix after minus before; rows actual, columns predicted",
              },
              h(
                "thead",
                null,
                h(
                  "tr",
                  null,
                  h("th", { class: "diff-corner", text: "actual \u2193 / predicted \u2192" }),
                  names.map((_, j) => h("th", { scope: "col", class: "diff-col", text: name(j) })),
                ),
              ),
              h(
                "tbody",
                null,
                (Array.isArray(values) ? values : []).map((row, i) =>
                  h(
                    "tr",
                    null,
                    h("th", { scope: "row", class: "diff-row", text: name(i) }),
                    row.map((v, j) => {
                      const better = improvement[i]?.[j];
                      const cls = better > 0 ? "better" : better < 0 ? "worse" : "same";
                      return h("td", {
                        class: `diff ${cls}`,
                        "data-row": String(i),
                        "data-col": String(j),
                        title: `actual ${name(i)}, predicted ${name(j)}: ${signed(v, mode === "counts" ? null : 3)} (${cls})`,
                        text: signed(v, mode === "counts" ? null : 3),
                      });
                    }),
                  ),
                ),
              ),
            );
    const per = Array.isArray(c.per_class) ? c.per_class : [];
    const changeCell = (p, key) => {
      const change = p[`${key}_change`];
      const cls = isNum(change) ? (change > 0 ? "better" : change < 0 ? "worse" : "same") : "same";
      return h(
        "td",
        { class: `num change ${cls}`, "data-metric": key },
        h("span", { class: "before", text: fmt(p[`${key}_before`]) }),
        " \u2192 ",
        h("span", { class: "after", text: fmt(p[key]) }),
        " ",
        h("span", { class: "delta", text: `(${signed(change, 3)})` }),
      );
    };
    const table = h(
      "table",
      { class: "compare-table", "aria-label": "Per-class changes, before to after" },
      h(
        "thead",
        null,
        h(
          "tr",
          null,
          h("th", { scope: "col", text: "Class" }),
          METRICS.map(([, label]) => h("th", { scope: "col", class: "num", text: label })),
          h("th", { scope: "col", class: "num", text: "Support" }),
        ),
      ),
      h(
        "tbody",
        null,
        per.map((p, i) =>
          h(
            "tr",
            { "data-class": String(i) },
            h("th", { scope: "row", text: String(p.name ?? i) }),
            METRICS.map(([key]) => changeCell(p, key)),
            h("td", {
              class: "num",
              text: `${fmtInt(p.support_before)} \u2192 ${fmtInt(p.support)}`,
            }),
          ),
        ),
      ),
    );
    const b = c.before || {};
    const a = c.after || {};
    const multilabel = c.difference_form === "labels";
    const figures = multilabel
      ? [
          ["accuracy", "subset accuracy"],
          ["hamming_loss", "Hamming loss"],
          ["macro_f1", "macro F1"],
        ]
      : [
          ["accuracy", "accuracy"],
          ["balanced_accuracy", "balanced accuracy"],
          ["macro_f1", "macro F1"],
        ];
    const summary = figures
      .map(([k, label]) => `${label} ${fmt(c[k]?.before)} \u2192 ${fmt(c[k]?.after)}`)
      .join(" \u00b7 ");
    fill(
      body,
      h(
        "p",
        { class: "caption compare-what" },
        `Before: ${b.run}, epoch ${b.step} \u00b7 after: ${a.run}, epoch ${a.step} (${a.split}) \u00b7 ${summary}`,
      ),
      h(
        "div",
        { class: "compare-layout" },
        h(
          "div",
          null,
          h("h3", { text: "Change of the confusion matrix (after \u2212 before)" }),
          h("div", { class: "scroll" }, matrix),
          h("p", {
            class: "caption",
            text: "green: better (more on the diagonal, less elsewhere) \u00b7 red: worse",
          }),
        ),
        h(
          "div",
          null,
          h("h3", { text: `PR curves of class \u201c${name(classIndex)}\u201d` }),
          twoCurves(prBefore, prAfter),
          h(
            "ul",
            { class: "legend" },
            h(
              "li",
              null,
              h("span", { class: "key line before" }),
              `before (AP ${fmt(prBefore?.average_precision)})`,
            ),
            h(
              "li",
              null,
              h("span", { class: "key line after" }),
              `after (AP ${fmt(prAfter?.average_precision)})`,
            ),
          ),
        ),
      ),
      h("div", { class: "scroll" }, table),
    );
  }

  return { element: section, update };
}

function twoCurves(before, after) {
  const W = 360;
  const H = 260;
  const m = { l: 42, r: 10, t: 10, b: 32 };
  const X = (v) => m.l + v * (W - m.l - m.r);
  const Y = (v) => H - m.b - v * (H - m.t - m.b);
  const svg = s("svg", {
    class: "chart compare-pr",
    viewBox: `0 0 ${W} ${H}`,
    role: "img",
    "aria-label": "Precision-recall curves before and after",
  });
  const [grid, axes] = unitAxes({ X, Y, H, m, xTitle: "Recall" });
  svg.append(grid, axes);
  for (const [pr, cls] of [
    [before, "before"],
    [after, "after"],
  ]) {
    if (!pr || !Array.isArray(pr.recall)) continue;
    let d = "";
    pr.recall.forEach((r, i) => {
      const p = pr.precision[i];
      if (isNum(r) && isNum(p)) d += `${d ? "L" : "M"}${X(r).toFixed(2)},${Y(p).toFixed(2)}`;
    });
    svg.append(s("path", { class: `pr-line ${cls}`, d: d || "M0,0" }));
  }
  return svg;
}
