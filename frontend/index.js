// Metrics Diagnostics: TensorBoard loads this ES module in the tab's iframe and calls render().
//
// Security: all data from the server is inserted as text (see dom.js); never as markup.

import { h } from "./dom.js";
import { App } from "./app.js";

let app = null;

function loadStyles() {
  if (document.getElementById("metricsdiag-style")) return;
  document.head.appendChild(
    h("link", {
      id: "metricsdiag-style",
      rel: "stylesheet",
      href: new URL("./style.css", import.meta.url).href,
    }),
  );
}

/** Entry point called by TensorBoard's plugin iframe; a second call replaces the first tab. */
export function render() {
  loadStyles();
  document.title = "Metrics diagnostics";
  let root = document.getElementById("metricsdiag-root");
  if (!root) {
    root = h("main", { id: "metricsdiag-root", class: "md-app" });
    document.body.appendChild(root);
  }
  if (app) app.destroy();
  app = new App(root);
  app.start();
  return app;
}
