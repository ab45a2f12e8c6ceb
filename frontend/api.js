// The plugin's HTTP API as seen from the tab: one JSON fetch helper, and channels whose older
// answers are dropped when a newer request of the same channel has been made.
//
// The iframe's <base href="plugin/metricsdiag/"> makes relative URLs reach the plugin routes.

export class ApiError extends Error {
  constructor(message, status) {
    super(message);
    this.status = status;
  }
}

/**
 * GETs a plugin route and returns its JSON object; throws ApiError with the server's own
 * message (`{"error": ...}`) or a plain one when the server could not be reached.
 * Parameters that are undefined, null or "" are left out of the query.
 */
export async function getJSON(route, params = {}, signal = undefined) {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") query.set(key, String(value));
  }
  const qs = query.toString();
  let resp;
  try {
    resp = await fetch(`./${route}${qs ? "?" + qs : ""}`, {
      headers: { Accept: "application/json" },
      cache: "no-store",
      signal,
    });
  } catch (err) {
    throw new ApiError(`Could not reach the TensorBoard server (${err.message || err}).`, 0);
  }
  const text = await resp.text();
  let body = null;
  try {
    body = JSON.parse(text);
  } catch (err) {
    body = null;
  }
  if (!resp.ok) {
    const message =
      body && typeof body.error === "string"
        ? body.error
        : `${resp.status} ${resp.statusText}`.trim();
    throw new ApiError(message || `HTTP ${resp.status}`, resp.status);
  }
  if (body === null || typeof body !== "object") {
    throw new ApiError(`The server sent no valid JSON for /${route}.`, resp.status);
  }
  return body;
}

/**
 * Requests grouped in named channels ("confusion", "pr", ...): a new request of a channel
 * aborts the one before it, so an old answer can never overwrite a newer selection.
 */
export class LatestRequests {
  constructor() {
    this.controllers = new Map();
  }

  /**
   * getJSON(route, params) as the latest request of `channel`. Resolves to the JSON object,
   * or to null when a later request of the channel (or cancel) superseded this one; a
   * superseded request never throws.
   */
  async latest(channel, route, params = {}) {
    const previous = this.controllers.get(channel);
    if (previous) previous.abort();
    const controller = new AbortController();
    this.controllers.set(channel, controller);
    try {
      const body = await getJSON(route, params, controller.signal);
      return controller.signal.aborted ? null : body;
    } catch (err) {
      if (controller.signal.aborted) return null;
      throw err;
    } finally {
      if (this.controllers.get(channel) === controller) this.controllers.delete(channel);
    }
  }

  /** Aborts the requests in flight of `channels` (all when none is named); they resolve to null. */
  cancel(...channels) {
    for (const channel of channels.length ? channels : [...this.controllers.keys()]) {
      const controller = this.controllers.get(channel);
      if (controller) controller.abort();
      this.controllers.delete(channel);
    }
  }
}
