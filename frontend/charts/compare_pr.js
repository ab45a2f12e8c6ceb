// The precision-recall curves of one class before and after, in one chart (the comparison).

import { s, isNum } from "../dom.js";
import { unitAxes } from "./axes.js";

export function twoCurves(before, after) {
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
  const [grid, axes] = unitAxes({ X, Y, H, m, xTitle: "Recall", compact: true });
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
