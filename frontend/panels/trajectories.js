// Per-class recall, precision or F1 over the epochs (the /trajectories answer, worst latest F1
// first): "which class stopped improving, and when". A class line or legend entry opens its
// PR curve; a click elsewhere on the chart shows that epoch.

import { h, fill, uid } from "../dom.js";
import { lineChart } from "../charts.js";
import { card, showState } from "./common.js";

const METRICS = [
  ["recall", "Recall"],
  ["precision", "Precision"],
  ["f1", "F1"],
];
const COLOURS = 8; // classes beyond this reuse the palette (style.css .traj-N)

/**
 * actions: jumpToStep(step), selectPrClassAndShow(classIndex).
 * update({loading} | {error} | {empty} | {trajectories, step}).
 */
export function create(container, actions) {
  let metric = "recall";
  let shown = null;
  const pickerId = uid("trajmetric");
  const picker = h(
    "select",
    {
      id: pickerId,
      "aria-label": "Metric of the per-class trajectories",
      onchange: () => {
        metric = picker.value;
        if (shown) render(shown);
      },
    },
    METRICS.map(([value, label]) => h("option", { value, text: label })),
  );
  const { section, body } = card({
    title: "Per-class trajectories",
    span: "span-7",
    bodyClass: "trajectories-body",
    tools: h("div", { class: "head-tools" }, h("label", { for: pickerId, text: "Metric" }), picker),
  });
  container.append(section);

  function update(data) {
    if (
      showState(body, data, {
        loadingText: "Loading the per-class trajectories\u2026",
        errorTitle: "Could not load the per-class trajectories.",
        keepWhileLoading: true,
      })
    ) {
      if (!data.loading) shown = null;
      return;
    }
    shown = data;
    render(data);
  }

  function render({ trajectories: t, step }) {
    const classes = Array.isArray(t.classes) ? t.classes : [];
    const steps = Array.isArray(t.steps) ? t.steps : [];
    const label = METRICS.find(([v]) => v === metric)[1];
    const series = classes.map((c, k) => ({
      label: String(c.name ?? c.index),
      cls: `traj traj-${k % COLOURS}`,
      steps,
      values: Array.isArray(c[metric]) ? c[metric] : [],
    }));
    const chart = lineChart({
      series,
      current: step,
      yLabel: label,
      ariaLabel: `${label} of every class per epoch, worst classes first`,
      onPick: (x) => actions.jumpToStep(x),
      percent: true,
    });
    // A click on a class's line (or its dots) picks the class; elsewhere the epoch.
    chart.querySelectorAll("path.series").forEach((path, k) => {
      path.setAttribute("data-class", String(classes[k].index));
      path.addEventListener("click", (evt) => {
        evt.stopPropagation();
        actions.selectPrClassAndShow(classes[k].index);
      });
    });
    const legend = h(
      "ul",
      { class: "legend traj-legend" },
      classes.map((c, k) =>
        h(
          "li",
          null,
          h("span", { class: `key line traj traj-${k % COLOURS}` }),
          h("button", {
            type: "button",
            class: "link",
            "data-class": String(c.index),
            text: String(c.name ?? c.index),
            title: "Show the PR curve of this class",
            onclick: () => actions.selectPrClassAndShow(c.index),
          }),
        ),
      ),
    );
    fill(
      body,
      legend,
      chart,
      h("p", {
        class: "caption",
        text: `${t.split} split \u00b7 classes ordered by their latest F1, worst first \u00b7 click a line or a name for its PR curve, elsewhere for that epoch`,
      }),
    );
  }

  return { element: section, update };
}
