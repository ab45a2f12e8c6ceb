// The HTML report's loader (tb_metricsdiag/html_report.py embeds it as the page's one inline
// script, allowed by its hash). The report's modules are embedded as text, each import of
// another written "md:<path>", in dependency order (the entry last): each becomes a blob:
// module whose imports name the blob: URLs of those before it, so that nothing is fetched.

const PREFIX = "md:";

function embedded(id) {
  return JSON.parse(document.getElementById(id).textContent);
}

async function load() {
  const root = document.getElementById("metricsdiag-root");
  try {
    const modules = embedded("metricsdiag-modules");
    const report = embedded("metricsdiag-report");
    const urls = new Map();
    for (const { path, source } of modules) {
      let text = source;
      for (const [name, url] of urls) {
        text = text.split(JSON.stringify(PREFIX + name)).join(JSON.stringify(url));
      }
      urls.set(path, URL.createObjectURL(new Blob([text], { type: "text/javascript" })));
    }
    const entry = await import(urls.get(modules[modules.length - 1].path));
    entry.render(root, report);
  } catch (err) {
    const message = document.createElement("p");
    message.textContent = `This report could not be drawn: ${err.message}`;
    root.replaceChildren(message);
    throw err;
  }
}

load();
