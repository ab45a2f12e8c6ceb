// The one layout of every 2x2 table of counts in the tab (the operating point's one-vs-rest
// counts, the counts at the lowest-cost threshold, each label of a multi-label run): actual
// positive over actual negative, predicted positive before predicted negative, each cell
// labelled with its abbreviation, the rows and columns with their names:
//
//                    predicted pos   predicted neg
//   actual pos           TP              FN
//   actual neg           FP              TN

import { h, fmtInt } from "./dom.js";

// [key, abbreviation, what the cell counts, whether the decision was right], row by row.
const LAYOUT = [
  [
    ["tp", "TP", "true positives", true],
    ["fn", "FN", "false negatives", false],
  ],
  [
    ["fp", "FP", "false positives", false],
    ["tn", "TN", "true negatives", true],
  ],
];

/**
 * The counts of a route's `[[tn, fp], [fn, tp]]` matrix (as scikit-learn orders them) as
 * {tp, fn, fp, tn}; undefined where the matrix lacks a cell.
 */
export function countsOfMatrix(matrix) {
  const m = Array.isArray(matrix) ? matrix : [];
  return { tn: m[0]?.[0], fp: m[0]?.[1], fn: m[1]?.[0], tp: m[1]?.[1] };
}

/** Row and column names of a one-vs-rest table of the class `positive` against `negative`. */
export function classHeadings(positive, negative) {
  return {
    rows: [`actual ${positive}`, `actual ${negative}`],
    cols: [`predicted ${positive}`, `predicted ${negative}`],
  };
}

/**
 * Row and column names of a table of one label of a multi-label run: the rows with the label
 * `name` set over those without it (`name` may be left out where the table is titled with it).
 */
export function labelHeadings(name = "") {
  const label = name ? `${name} ` : "";
  return { rows: [`${label}set`, `${label}absent`], cols: ["predicted", "not predicted"] };
}

/**
 * The table: counts {tp, fn, fp, tn}; headings {rows: [positive, negative], cols: [positive,
 * negative]} (see classHeadings, labelHeadings); `className` added to the table's class "two-by-two". Each
 * count cell is td.tbt-cell[data-metric=tp|fn|fp|tn] holding span.tbt-label and span.tbt-count,
 * titled with what it counts. With `onCell`, a click on a count cell (or Enter on it) calls
 * onCell(key).
 */
export function twoByTwo({ counts, headings, ariaLabel, className = "", onCell = null }) {
  const cell = ([key, abbreviation, meaning, right], row, col) =>
    h(
      "td",
      {
        class: `tbt-cell ${right ? "good" : "bad"}${onCell ? " pickable" : ""}`,
        "data-metric": key,
        title: `${meaning}: ${headings.rows[row]}, ${headings.cols[col]}${onCell ? "; click to list its examples" : ""}`,
        tabindex: onCell ? "0" : null,
        onclick: onCell ? () => onCell(key) : null,
        onkeydown: onCell
          ? (evt) => {
              if (evt.key === "Enter") onCell(key);
            }
          : null,
      },
      h("span", { class: "tbt-label", text: abbreviation }),
      " ",
      h("span", { class: "tbt-count", text: fmtInt(counts[key]) }),
    );
  return h(
    "table",
    { class: `two-by-two${className ? " " + className : ""}`, "aria-label": ariaLabel },
    h(
      "thead",
      null,
      h(
        "tr",
        null,
        h("th", { class: "tbt-corner" }),
        headings.cols.map((text) => h("th", { scope: "col", text })),
      ),
    ),
    h(
      "tbody",
      null,
      LAYOUT.map((cells, row) =>
        h(
          "tr",
          null,
          h("th", { scope: "row", text: headings.rows[row] }),
          cells.map((spec, col) => cell(spec, row, col)),
        ),
      ),
    ),
  );
}
