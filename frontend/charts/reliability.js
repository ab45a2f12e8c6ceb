// The reliability diagram of one epoch's calibration bins: per bin, the observed share against
// the diagonal of perfect calibration, and the bins' counts in a strip below.

import { s, fmt, fmtInt, isNum } from "../dom.js";
import { unitAxes } from "./axes.js";

export function reliabilityDiagram(bins, axes) {
  const W = 420;
  const m = { l: 46, r: 12, t: 10, b: 34 };
  const plotH = 240;
  const stripH = 46;
  const H = m.t + plotH + 18 + stripH + m.b;
  const X = (v) => m.l + v * (W - m.l - m.r);
  const Y = (v) => m.t + plotH - v * plotH;
  const stripTop = m.t + plotH + 18;
  const svg = s("svg", {
    class: "chart reliability",
    viewBox: `0 0 ${W} ${H}`,
    role: "img",
    "aria-label": `Reliability diagram: ${axes.bars} per bin of ${axes.x.toLowerCase()}`,
  });
  const [grid, frame] = unitAxes({
    X,
    Y,
    H,
    m,
    xTitle: axes.x,
    yTitle: axes.y,
    axisLines: ["x"],
    compact: true,
  });
  const bars = s("g", { class: "bars" });
  const strip = s("g", { class: "count-strip" });
  const maxCount = Math.max(1, ...bins.map((b) => (isNum(b.count) ? b.count : 0)));
  bins.forEach((b, k) => {
    if (!isNum(b.lower) || !isNum(b.upper)) return;
    const x = X(b.lower) + 1;
    const w = Math.max(1, X(b.upper) - X(b.lower) - 2);
    const label = `${axes.x.toLowerCase()} ${fmt(b.lower, 2)}\u2013${fmt(b.upper, 2)}: ${fmtInt(b.count)} examples, ${axes.bars} ${fmt(b.accuracy)}, mean score ${fmt(b.confidence)}`;
    if (isNum(b.accuracy)) {
      const bar = s("rect", {
        class: "bar",
        "data-bin": String(k),
        x,
        y: Y(b.accuracy),
        width: w,
        height: Y(0) - Y(b.accuracy),
      });
      bar.append(s("title", { text: label }));
      bars.append(bar);
    }
    const ch = isNum(b.count) ? (b.count / maxCount) * (stripH - 12) : 0;
    const cnt = s("rect", {
      class: "count-bar",
      x,
      y: stripTop + stripH - ch,
      width: w,
      height: ch,
    });
    cnt.append(s("title", { text: label }));
    strip.append(
      cnt,
      s("text", {
        class: "bin-count",
        "data-bin": String(k),
        x: x + w / 2,
        y: stripTop + stripH - ch - 2,
        "text-anchor": "middle",
        text: fmtInt(b.count),
      }),
    );
  });
  const diag = s("line", { class: "chance", x1: X(0), y1: Y(0), x2: X(1), y2: Y(1) });
  // The count strip's baseline.
  frame.append(
    s("line", {
      class: "axis",
      x1: X(0),
      x2: X(1),
      y1: stripTop + stripH,
      y2: stripTop + stripH,
    }),
  );
  svg.append(grid, bars, diag, frame, strip);
  return svg;
}
