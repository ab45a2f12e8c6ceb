// The confusion matrix of one epoch, as counts or normalised by true or predicted class (the
// choice is remembered in localStorage).

import { h, fill, fmt, fmtInt, fmtPct, isNum, storageGet, storageSet } from "../dom.js";
import { card, segmented, showState } from "./common.js";
import { labelMatrices } from "./label_matrices.js";

const NORMALIZE_KEY = "metricsdiag.normalize";
const MODES = [
  ["counts", "Counts"],
  ["true", "Normalized by true class"],
  ["pred", "Normalized by predicted class"],
];

/** update({loading} | {error} | {confusion}): `confusion` is the /confusion answer. */
export function create(container) {
  const stored = storageGet(NORMALIZE_KEY, "counts");
  let mode = MODES.some(([value]) => value === stored) ? stored : "counts";
  let shown = null;

  const modeGroup = segmented("Confusion matrix values", MODES, mode, (value) => {
    mode = value;
    storageSet(NORMALIZE_KEY, value);
    if (shown) render(shown);
  });
  const { section, body } = card({
    title: "Confusion matrix",
    span: "span-7",
    bodyClass: "matrix-wrap",
    tools: modeGroup,
  });
  container.append(section);

  function update(data) {
    const state = showState(body, data, {
      loadingText: "Loading the confusion matrix\u2026",
      errorTitle: "Could not load the confusion matrix.",
      keepWhileLoading: true,
    });
    if (state) {
      if (!data.loading) shown = null;
      return;
    }
    shown = data.confusion;
    render(shown);
  }

  function render(c) {
    modeGroup.hidden = Array.isArray(c.matrices);
    if (Array.isArray(c.matrices)) {
      fill(body, labelMatrices(c));
      return;
    }
    const names = Array.isArray(c.class_names) ? c.class_names : [];
    const matrix = Array.isArray(c.matrix) ? c.matrix : null;
    if (!matrix) {
      fill(body, h("p", { class: "muted", text: "No confusion matrix in this answer." }));
      return;
    }
    const n = matrix.length;
    const name = (i) => names[i] ?? String(i);
    const norm = mode === "counts" ? null : c.normalized && c.normalized[mode];
    let maxCount = 0;
    for (const row of matrix) for (const v of row) if (isNum(v)) maxCount = Math.max(maxCount, v);
    const sum = (values) => values.reduce((a, b) => a + (isNum(b) ? b : 0), 0);
    const rowSums = matrix.map(sum);
    const colSums = n ? matrix[0].map((_, j) => sum(matrix.map((row) => row[j]))) : [];
    const dense = n > 8;

    const table = h("table", {
      class: `confusion mode-${mode}${dense ? " dense" : ""}${
        dense && names.some((x) => String(x).length > 4) ? " vertical-heads" : ""
      }`,
      "aria-label": `Confusion matrix, ${c.split} split, epoch ${c.step}; rows are actual classes, columns predicted classes`,
    });
    table.append(
      h(
        "thead",
        null,
        h(
          "tr",
          null,
          h(
            "th",
            { class: "corner", rowspan: "2", colspan: "2", scope: "col" },
            h("span", { class: "axis-hint", text: "actual \u2193 / predicted \u2192" }),
          ),
          h("th", {
            class: "axis-name",
            colspan: String(n),
            scope: "colgroup",
            text: "Predicted class",
          }),
        ),
        h(
          "tr",
          null,
          matrix.map((_, j) =>
            h(
              "th",
              { scope: "col", class: "col-name", title: name(j) },
              h("span", { text: name(j) }),
            ),
          ),
        ),
      ),
    );
    const tbody = h("tbody");
    for (let i = 0; i < n; i++) {
      const tr = h("tr");
      if (i === 0) {
        tr.append(
          h(
            "th",
            { class: "axis-name vertical", rowspan: String(n), scope: "rowgroup" },
            h("span", { text: "Actual class" }),
          ),
        );
      }
      tr.append(h("th", { scope: "row", class: "row-name", title: name(i), text: name(i) }));
      for (let j = 0; j < n; j++) tr.append(cell(i, j));
      tr.append(
        h("td", {
          class: "total",
          title: "Actual examples of this class",
          text: fmtInt(rowSums[i]),
        }),
      );
      tbody.append(tr);
    }
    tbody.append(
      h(
        "tr",
        { class: "totals" },
        h("td", { colspan: "2", class: "total-label", text: "predicted total" }),
        colSums.map((v) => h("td", { class: "total", text: fmtInt(v) })),
        h("td", { class: "total grand", title: "All examples", text: fmtInt(c.total) }),
      ),
    );
    table.append(tbody);

    function cell(i, j) {
      const count = matrix[i][j];
      const ratio = norm && norm[i] ? norm[i][j] : null;
      let intensity;
      if (mode === "counts") intensity = maxCount > 0 && isNum(count) ? count / maxCount : 0;
      else intensity = isNum(ratio) ? ratio : 0;
      let title = `actual ${name(i)}, predicted ${name(j)}: ${fmtInt(count)}`;
      if (mode === "true") title += ` (${fmtPct(ratio)} of actual ${name(i)})`;
      if (mode === "pred") title += ` (${fmtPct(ratio)} of predicted ${name(j)})`;
      return h(
        "td",
        {
          class: `cell ${i === j ? "diag" : "off"}${intensity > 0.55 ? " strong" : ""}`,
          style: {
            "--a": (0.06 + 0.94 * Math.sqrt(Math.max(0, Math.min(1, intensity)))).toFixed(3),
          },
          "data-row": String(i),
          "data-col": String(j),
          title,
        },
        mode === "counts"
          ? h("span", { class: "main count", text: fmtInt(count) })
          : [
              h("span", { class: "main ratio", text: fmt(ratio, 2) }),
              h("span", { class: "sub count", text: fmtInt(count) }),
            ],
      );
    }

    const legend = {
      counts: "counts; darker = more examples",
      true: "each row sums to 1 (recall on the diagonal)",
      pred: "each column sums to 1 (precision on the diagonal)",
    }[mode];
    fill(
      body,
      h("div", { class: "scroll" }, table),
      h("p", {
        class: "caption",
        text: `${c.split} split \u00b7 epoch ${c.step} \u00b7 ${legend}`,
      }),
    );
  }

  return { element: section, update };
}
