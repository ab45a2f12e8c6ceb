// Small DOM helpers for the Metrics Diagnostics tab.
//
// Every piece of user data (run names, class names, finding text, evidence) goes through
// textContent, createTextNode or setAttribute. Nothing in this tab ever assigns HTML markup.

const SVG_NS = "http://www.w3.org/2000/svg";

function setAttrs(el, attrs) {
  if (!attrs) return;
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") {
      el.setAttribute("class", String(value));
    } else if (key === "text") {
      el.textContent = String(value);
    } else if (key === "style" && typeof value === "object") {
      for (const [prop, v] of Object.entries(value)) {
        if (v !== undefined && v !== null) el.style.setProperty(prop, String(v));
      }
    } else if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2).toLowerCase(), value);
    } else if (key === "value" && "value" in el) {
      el.value = String(value);
    } else if (key === "checked" || key === "selected" || key === "disabled") {
      el[key] = Boolean(value);
    } else {
      el.setAttribute(key, value === true ? "" : String(value));
    }
  }
}

function appendChildren(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Creates an HTML element; strings among the children become text nodes. */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  appendChildren(el, children);
  return el;
}

/** Creates an SVG element. */
export function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  setAttrs(el, attrs);
  appendChildren(el, children);
  return el;
}

/** Replaces an element's children. */
export function fill(el, ...children) {
  el.replaceChildren();
  appendChildren(el, children);
  return el;
}

export function isNum(x) {
  return typeof x === "number" && Number.isFinite(x);
}

/** A ratio with 3 decimals, or an em dash when undefined. */
export function fmt(x, digits = 3) {
  return isNum(x) ? x.toFixed(digits) : "\u2014";
}

/** Decimals beyond which a threshold is shown in exponent form (near 0) or rounded (near 1). */
const MAX_THRESHOLD_DECIMALS = 9;

/**
 * A score threshold with 3 decimals, or more near 0 and 1: 3 significant digits of its distance
 * to the nearer end (0.000123, 0.0227, 0.999877), since the default grid is spaced in logit and
 * "0.000" would name a dozen stored thresholds. Trailing zeros past the third decimal go.
 */
export function fmtThreshold(t) {
  if (!isNum(t)) return "\u2014";
  const distance = Math.min(Math.abs(t), Math.abs(1 - t));
  if (distance === 0) return t.toFixed(3);
  const digits = Math.max(3, 2 - Math.floor(Math.log10(distance)));
  if (digits > MAX_THRESHOLD_DECIMALS && Math.abs(t) < 0.5) return t.toExponential(2);
  return t.toFixed(Math.min(digits, MAX_THRESHOLD_DECIMALS)).replace(/(\.\d{3}\d*?)0+$/, "$1");
}

/** The text naming a class: its name, or its index where it has none. */
export function classLabel(name, index) {
  return String(name ?? index);
}

export function fmtPct(x, digits = 1) {
  return isNum(x) ? (x * 100).toFixed(digits) + "%" : "\u2014";
}

export function fmtInt(x) {
  return isNum(x) ? Math.round(x).toLocaleString("en-US") : "\u2014";
}

/** A value from a finding's evidence, as plain text. */
export function fmtEvidence(value) {
  if (value === null || value === undefined) return "\u2014";
  if (typeof value === "number") {
    if (!Number.isFinite(value)) return String(value);
    if (Number.isInteger(value)) return String(value);
    const abs = Math.abs(value);
    return abs !== 0 && (abs < 1e-3 || abs >= 1e6)
      ? value.toExponential(3)
      : String(+value.toFixed(4));
  }
  if (typeof value === "string") return value;
  if (typeof value === "boolean") return value ? "yes" : "no";
  try {
    return JSON.stringify(value);
  } catch (err) {
    return String(value);
  }
}

export function storageGet(key, fallback) {
  try {
    const v = window.localStorage.getItem(key);
    return v === null ? fallback : v;
  } catch (err) {
    return fallback;
  }
}

export function storageSet(key, value) {
  try {
    window.localStorage.setItem(key, value);
  } catch (err) {
    // Storage may be disabled (private mode, sandboxing): the choice is then per session.
  }
}

let idCounter = 0;
export function uid(prefix) {
  idCounter += 1;
  return `md-${prefix}-${idCounter}`;
}
