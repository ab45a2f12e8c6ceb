// Per-class recall, precision or F1 over the epochs (the /trajectories answer, worst latest F1
// first): "which class stopped improving, and when". The chart draws the TRAJECTORY_LINES worst
// classes and the classes the user added by name; pointing at a line or a legend entry
// highlights that class, and a line or legend entry opens its PR curve; a click elsewhere on
// the chart shows that epoch.

import { h, classLabel, fill, fmt, uid } from "../dom.js";
import { lineChart } from "../charts/line_chart.js";
import { card, showState } from "./common.js";

const METRICS = [
  ["recall", "Recall"],
  ["precision", "Precision"],
  ["f1", "F1"],
];
/** The chart draws this many of the worst classes (more lines cannot be told apart). */
const TRAJECTORY_LINES = 10;
const COLOURS = 10; // one colour per line of the worst classes (style.css .traj-N)
const HOVER_HINT = "Point at a line or a name to highlight its class.";

/**
 * actions: jumpToStep(step), showPrClass(classIndex).
 * update({loading} | {error} | {empty} | {trajectories, step}).
 */
export function create(container, actions) {
  let metric = "recall";
  let shown = null;
  let added = []; // class indices the user added to the chart, in the order added
  let addedRun = null; // the run those classes belong to
  const ids = { metric: uid("trajmetric"), find: uid("trajfind"), names: uid("trajnames") };
  const picker = h(
    "select",
    {
      id: ids.metric,
      "aria-label": "Metric of the per-class trajectories",
      onchange: () => {
        metric = picker.value;
        if (shown) render(shown);
      },
    },
    METRICS.map(([value, label]) => h("option", { value, text: label })),
  );
  const nameList = h("datalist", { id: ids.names });
  const find = h("input", {
    id: ids.find,
    type: "search",
    class: "class-search",
    list: ids.names,
    placeholder: "add a class",
    "aria-label": "Add a class to the per-class trajectories",
    onkeydown: (evt) => {
      if (evt.key === "Enter") {
        evt.preventDefault();
        addByName(find.value);
      }
    },
    // Picking a suggestion of the list sets the whole name at once.
    oninput: (evt) => {
      if (evt.inputType === "insertReplacementText") addByName(find.value, true);
    },
  });
  const findArea = h("span", { class: "class-picker" }, find, nameList);
  const { section, body } = card({
    title: "Per-class trajectories",
    span: "span-7",
    bodyClass: "trajectories-body",
    tools: h(
      "div",
      { class: "head-tools" },
      findArea,
      h("label", { for: ids.metric, text: "Metric" }),
      picker,
    ),
  });
  container.append(section);
  const readout = h("p", { class: "traj-readout", "aria-live": "polite", text: HOVER_HINT });
  const findNote = h("p", { class: "muted traj-find-note", "aria-live": "polite" });

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
    if (data.trajectories.run !== addedRun) {
      added = [];
      addedRun = data.trajectories.run;
      findNote.textContent = "";
    }
    shown = data;
    render(data);
  }

  /** Adds the class named `text` (exactly, else the first name holding it, any case). */
  function addByName(text, exactOnly = false) {
    const classes = Array.isArray(shown?.trajectories.classes) ? shown.trajectories.classes : [];
    const query = text.trim().toLowerCase();
    if (!query) return;
    const nameOf = (c) => classLabel(c.name, c.index).toLowerCase();
    const found =
      classes.find((c) => nameOf(c) === query) ||
      (exactOnly ? null : classes.find((c) => nameOf(c).includes(query)));
    if (!found) {
      if (!exactOnly) findNote.textContent = `No class is named like \u201c${text.trim()}\u201d.`;
      return;
    }
    find.value = "";
    findNote.textContent = "";
    if (!added.includes(found.index)) added.push(found.index);
    render(shown);
    highlight(found.index);
  }

  function remove(classIndex) {
    added = added.filter((i) => i !== classIndex);
    render(shown);
  }

  let chart = null;
  let legend = null;

  /** Highlights the class `classIndex` (null: none) in the chart and the legend. */
  function highlight(classIndex) {
    if (!chart) return;
    const t = shown.trajectories;
    const steps = Array.isArray(t.steps) ? t.steps : [];
    const c = (t.classes || []).find((x) => x.index === classIndex);
    chart.classList.toggle("has-highlight", Boolean(c));
    for (const el of [...chart.querySelectorAll("[data-class]"), ...legend.children]) {
      el.classList.toggle("highlighted", Boolean(c) && el.dataset.class === String(classIndex));
    }
    if (!c) {
      readout.textContent = HOVER_HINT;
      return;
    }
    const values = Array.isArray(c[metric]) ? c[metric] : [];
    const label = METRICS.find(([v]) => v === metric)[1].toLowerCase();
    readout.textContent = `${classLabel(c.name, c.index)}: ${label} ${fmt(values[0])} at epoch ${steps[0]} \u2192 ${fmt(values[values.length - 1])} at epoch ${steps[steps.length - 1]}`;
  }

  function render({ trajectories: t, step }) {
    const classes = Array.isArray(t.classes) ? t.classes : [];
    const steps = Array.isArray(t.steps) ? t.steps : [];
    const label = METRICS.find(([v]) => v === metric)[1];
    const worst = classes.slice(0, TRAJECTORY_LINES);
    const extra = added
      .map((i) => classes.find((c) => c.index === i))
      .filter((c) => c && !worst.includes(c));
    const drawn = [...worst, ...extra];
    findArea.hidden = classes.length <= TRAJECTORY_LINES;
    if (!findArea.hidden && nameList.childElementCount !== classes.length) {
      nameList.replaceChildren(
        ...classes.map((c) => h("option", { value: classLabel(c.name, c.index) })),
      );
    }
    const series = drawn.map((c, k) => ({
      label: classLabel(c.name, c.index),
      cls: `traj traj-${k % COLOURS}`,
      steps,
      values: Array.isArray(c[metric]) ? c[metric] : [],
    }));
    chart = lineChart({
      series,
      current: step,
      yLabel: label,
      ariaLabel: `${label} per epoch of the ${drawn.length} classes shown, worst classes first`,
      onPick: (x) => actions.jumpToStep(x),
      percent: true,
      hoverable: true,
    });
    chart.querySelectorAll("[data-series]").forEach((el) => {
      el.dataset.class = String(drawn[Number(el.dataset.series)].index);
    });
    // A line picks its class (its PR curve); elsewhere the chart picks the epoch.
    chart.querySelectorAll("path.series-hit").forEach((path) => {
      const classIndex = Number(path.dataset.class);
      path.addEventListener("mouseenter", () => highlight(classIndex));
      path.addEventListener("mouseleave", () => highlight(null));
      path.addEventListener("click", (evt) => {
        evt.stopPropagation();
        actions.showPrClass(classIndex);
      });
    });
    legend = h(
      "ul",
      { class: "legend traj-legend" },
      drawn.map((c, k) =>
        h(
          "li",
          {
            "data-class": String(c.index),
            onmouseenter: () => highlight(c.index),
            onmouseleave: () => highlight(null),
            onfocusin: () => highlight(c.index),
            onfocusout: () => highlight(null),
          },
          h("span", { class: `key line traj traj-${k % COLOURS}` }),
          h("button", {
            type: "button",
            class: "link",
            "data-class": String(c.index),
            text: classLabel(c.name, c.index),
            title: "Show the PR curve of this class",
            onclick: () => actions.showPrClass(c.index),
          }),
          extra.includes(c)
            ? h("button", {
                type: "button",
                class: "remove",
                text: "\u00d7",
                title: "Remove from the chart",
                "aria-label": `Remove ${classLabel(c.name, c.index)} from the chart`,
                onclick: () => remove(c.index),
              })
            : null,
        ),
      ),
    );
    const which =
      classes.length > TRAJECTORY_LINES
        ? `the ${TRAJECTORY_LINES} classes of the worst latest F1 of ${classes.length}${extra.length ? ` and ${extra.length} added` : ""}; add others by name`
        : "classes ordered by their latest F1, worst first";
    fill(
      body,
      legend,
      chart,
      readout,
      findNote,
      h("p", {
        class: "caption",
        text: `${t.split} split \u00b7 ${which} \u00b7 click a line or a name for its PR curve, elsewhere for that epoch`,
      }),
    );
    readout.textContent = HOVER_HINT;
  }

  return { element: section, update };
}
