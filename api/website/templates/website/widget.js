// <treatment-status slug="exosomes"></treatment-status>: the clinic's current position on one
// treatment, read from the Treatment Policy API and drawn in a shadow root, with a link to its page.
// One script, served by the API; no framework and no build step on the website's side.
// If the API does not answer within the timeout (the `timeout` attribute, in ms, or {{ timeout }}),
// the element shows a neutral fallback, never "offered" or "bookable". Whatever the element holds
// in the page (a link, say) shows until the script runs, and for browsers without JavaScript.
(() => {
  "use strict";
  if (window.customElements === undefined || customElements.get("treatment-status")) return;
  const script = document.currentScript;
  // The API is wherever this script came from (the website's origin must be in TPA_CORS_ORIGINS).
  const API = new URL("v1/treatments/", script && script.src ? script.src : {{ (base ~ "/")|tojson }});
  const PAGES = {{ base|tojson }};  // TPA_PUBLIC_BASE_URL: where the full positions are read
  const POSITIONS = {{ positions|tojson }};
  const TEXT = {{ text|tojson }};
  const TIMEOUT_MS = {{ timeout|tojson }};
  const CSS = `
    :host { display: block; font: inherit; color: inherit; }
    :host([hidden]) { display: none; }
    .box { border: 1px solid currentColor; border-left-width: 0.35em; border-radius: 0.4em;
           padding: 0.75em 1em; max-width: 40em; overflow-wrap: anywhere; }
    .status { font-weight: 700; margin: 0 0 0.25em; }
    .reason { margin: 0 0 0.5em; }
    a { color: inherit; }
    [data-position="approved"] { border-left-color: #1a7f37; }
    [data-position="not_approved"], [data-position="withdrawn"] { border-left-color: #b42318; }
    [data-position="under_review"], [data-position="suspended_pending_review"] { border-left-color: #9a6700; }
  `;

  class TreatmentStatus extends HTMLElement {
    static get observedAttributes() { return ["slug"]; }

    connectedCallback() { this.load(); }

    attributeChangedCallback(_name, old, value) { if (this.isConnected && old !== null && old !== value) this.load(); }

    get root() {
      if (this.shadowRoot) return this.shadowRoot;
      const root = this.attachShadow({ mode: "open" });
      try {  // a constructed sheet needs no inline <style>, so no 'unsafe-inline' on the site
        const sheet = new CSSStyleSheet();
        sheet.replaceSync(CSS);
        root.adoptedStyleSheets = [sheet];
      } catch (_) {
        const style = document.createElement("style");
        style.textContent = CSS;
        root.append(style);
      }
      return root;
    }

    async load() {
      const slug = (this.getAttribute("slug") || "").trim();
      const attempt = (this.attempt = {});
      const page = slug ? `${PAGES}/treatments/${encodeURIComponent(slug)}` : `${PAGES}/`;
      this.draw("loading", null, [["p", "status", TEXT.loading]]);
      const timeout = Number(this.getAttribute("timeout")) || TIMEOUT_MS;
      const controller = new AbortController();
      const timer = setTimeout(() => controller.abort(), timeout);
      try {
        if (!slug) throw new Error("no slug");
        const response = await fetch(new URL(encodeURIComponent(slug), API), {
          headers: { Accept: "application/json" }, mode: "cors", credentials: "omit",
          cache: "no-cache", signal: controller.signal,  // revalidate: a decision shows at once
        });
        if (!response.ok) throw new Error(`HTTP ${response.status}`);
        const treatment = await response.json();
        // The API's `bookable` is the booking rule's answer: approved but not bookable is suspended.
        const key = treatment.status === "approved" && treatment.bookable !== true
          ? "suspended_pending_review" : treatment.status;
        const position = POSITIONS[key];
        if (!position || attempt !== this.attempt) throw new Error("unknown position");
        this.draw("loaded", key, [
          ["p", "status", `${treatment.name}: ${position.label}`],
          ["p", "reason", treatment.status_reason || position.headline],
          ["a", "link", TEXT.link, page],
        ]);
      } catch (_) {
        if (attempt === this.attempt) {
          this.draw("fallback", null, [["p", "reason", TEXT.fallback], ["a", "link", TEXT.fallbackLink, page]]);
        }
      } finally {
        clearTimeout(timer);
      }
    }

    draw(state, position, parts) {
      const box = document.createElement("div");
      box.className = "box";
      box.setAttribute("part", "box");
      box.setAttribute("role", "status");
      if (position) box.dataset.position = position;
      for (const [tag, name, text, href] of parts) {
        const node = document.createElement(tag);
        node.className = name;
        node.setAttribute("part", name);
        node.textContent = text;  // text only: nothing from the API is read as HTML
        if (href) node.href = href;
        box.append(tag === "a" ? wrap(node) : node);
      }
      this.root.replaceChildren(...[...this.root.children].filter((n) => n.tagName === "STYLE"), box);
      this.dataset.state = state;
      if (position) this.dataset.position = position; else delete this.dataset.position;
    }
  }

  function wrap(link) {
    const p = document.createElement("p");
    p.append(link);
    return p;
  }

  customElements.define("treatment-status", TreatmentStatus);
})();
