// The slice picker: "All rows" or one value of a group key (issue 26's slices). The chosen
// slice scopes the confusion matrix (with the summary, per-class table and confused pairs), the
// PR curve, the calibration and the examples of a cell; the other panels show every row. It sits
// in the toolbar and is hidden for runs written without groups. Values are user text: option
// texts only.

import { h, fmtInt, uid } from "../dom.js";

const ALL_ROWS = "";

/** The option value naming a slice. */
function optionValue(key, value) {
  return JSON.stringify([key, value]);
}

/**
 * `container` is the toolbar's element: the picker goes before its last item (the status and
 * Refresh button).
 * actions: selectSlice({key, value} | null).
 * update({tables, selected}): `tables` is [{key, doc}] (doc: that key's /slices answer; entries
 * without one are left out), `selected` the chosen {key, value} or null (all rows).
 */
export function create(container, actions) {
  const id = uid("slice");
  const select = h("select", {
    id,
    "aria-label": "Slice",
    onchange: () => {
      if (select.value === ALL_ROWS) actions.selectSlice(null);
      else {
        const [key, value] = JSON.parse(select.value);
        actions.selectSlice({ key, value });
      }
    },
  });
  const scope = h("span", { class: "slice-scope muted", "aria-live": "polite" });
  const element = h(
    "div",
    { class: "field slice-field" },
    h("label", { for: id, text: "Slice" }),
    h("div", { class: "slice-row" }, select, scope),
  );
  element.hidden = true;
  container.insertBefore(element, container.lastElementChild);

  let listed = ""; // the options shown, as JSON

  function update({ tables = [], selected = null }) {
    const keys = tables.filter((t) => t.doc && Array.isArray(t.doc.slices));
    element.hidden = keys.length === 0 && !selected;
    const groups = keys.map((t) => ({
      key: t.key,
      values: t.doc.slices
        .filter((e) => e && typeof e.value === "string")
        .map((e) => ({ value: e.value, support: e.support }))
        .sort((a, b) => a.value.localeCompare(b.value, undefined, { numeric: true })),
    }));
    // The chosen slice stays listed while the answers that list it load or fail.
    if (selected && !groups.some((g) => g.key === selected.key)) {
      groups.push({ key: selected.key, values: [] });
    }
    const chosenGroup = selected && groups.find((g) => g.key === selected.key);
    if (chosenGroup && !chosenGroup.values.some((v) => v.value === selected.value)) {
      chosenGroup.values.push({ value: selected.value, support: null });
    }
    const key = JSON.stringify(groups);
    if (key !== listed) {
      listed = key;
      select.replaceChildren(
        h("option", { value: ALL_ROWS, text: "All rows" }),
        ...groups.map((g) => {
          const group = h("optgroup");
          group.label = g.key;
          group.append(
            ...g.values.map((v) =>
              h("option", {
                value: optionValue(g.key, v.value),
                text: `${g.key} = ${v.value}${v.support === null ? "" : ` (${fmtInt(v.support)})`}`,
              }),
            ),
          );
          return group;
        }),
      );
    }
    select.value = selected ? optionValue(selected.key, selected.value) : ALL_ROWS;
    scope.textContent = selected
      ? "scopes the matrix, per-class table, pairs, PR curve, calibration and examples"
      : "";
    element.classList.toggle("active", Boolean(selected));
  }

  return { element, update };
}
