// Follows TensorBoard's dark mode when the parent page is reachable, else the OS setting.

/**
 * Sets <html data-theme="dark|light"> now and whenever the theme changes. Returns a function
 * that stops following (removes the media listener and disconnects the observer).
 */
export function followTheme() {
  const root = document.documentElement;
  const media = window.matchMedia ? window.matchMedia("(prefers-color-scheme: dark)") : null;
  let parentBody = null;
  try {
    if (window.parent && window.parent !== window && window.parent.document) {
      parentBody = window.parent.document.body;
    }
  } catch (err) {
    parentBody = null; // cross-origin or detached: fall back to prefers-color-scheme
  }
  const apply = () => {
    const dark = parentBody ? parentBody.classList.contains("dark-mode") : Boolean(media?.matches);
    root.dataset.theme = dark ? "dark" : "light";
  };
  apply();
  if (media && media.addEventListener) media.addEventListener("change", apply);
  let observer = null;
  if (parentBody && window.MutationObserver) {
    try {
      observer = new MutationObserver(apply);
      observer.observe(parentBody, { attributes: true, attributeFilter: ["class"] });
    } catch (err) {
      observer = null; // observing the parent is best effort
    }
  }
  return () => {
    if (media && media.removeEventListener) media.removeEventListener("change", apply);
    if (observer) observer.disconnect();
  };
}
