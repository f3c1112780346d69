// Stand-in for a CAPTCHA provider's browser widget, served by the local provider sandbox
// (tools/captcha_local/sandbox/) at /<provider>/widget.js; the sandbox fills in the
// config below. Nothing is solved: a click asks the sandbox to issue a token, which then
// travels with the form exactly as the real widget's token would.
(function (config) {
  "use strict";

  // Only valid while this script first runs; resolving against it keeps the demo page free
  // of any sandbox URL.
  const issueUrl = new URL("issue", document.currentScript.src).href;

  function hiddenInput(container, name) {
    const existing = Array.from(container.querySelectorAll('input[type="hidden"]')).find(
      (input) => input.name === name,
    );
    if (existing) return existing;
    const input = document.createElement("input");
    input.type = "hidden";
    input.name = name;
    container.appendChild(input);
    return input;
  }

  function issueRequest(widget) {
    const request = { sitekey: widget.getAttribute(config.sitekeyAttribute) || "" };
    const version = config.versionAttribute && widget.getAttribute(config.versionAttribute);
    if (version) request.version = version;
    // A file:// page has the opaque origin "null", which a real provider would not record.
    if (window.location.origin !== "null") request.origin = window.location.origin;
    return request;
  }

  async function solve(widget, button, status) {
    widget.setAttribute("data-state", "solving");
    button.disabled = true;
    status.textContent = "verifying…";
    try {
      const response = await fetch(issueUrl, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(issueRequest(widget)),
      });
      const answer = await response.json();
      if (!response.ok) throw new Error(answer.error || `HTTP ${response.status}`);
      hiddenInput(widget.closest("form") || widget, answer.field).value = answer.token;
      widget.setAttribute("data-field", answer.field);
      widget.setAttribute("data-state", "solved");
      status.textContent = "verified (sandbox)";
    } catch (error) {
      widget.setAttribute("data-state", "error");
      button.disabled = false;
      status.textContent = `sandbox error: ${error.message}`;
    }
  }

  function render(widget) {
    // Already rendered, or the other brand's div when two brands share the same markup.
    if (widget.hasAttribute("data-state")) return;
    if (config.skipSitekeys.includes(widget.getAttribute(config.sitekeyAttribute))) return;
    widget.setAttribute("data-state", "ready");
    widget.setAttribute("data-sandbox-provider", config.provider);
    const button = document.createElement("button");
    button.type = "button"; // never submits the form by itself
    button.textContent = "Sandbox: I'm not a robot";
    const status = document.createElement("span");
    status.setAttribute("aria-live", "polite");
    button.addEventListener("click", () => solve(widget, button, status));
    // Like a real widget's reset(): the token is gone and a new solve is needed (a token is
    // single use, so the page resets the widget once it has been sent).
    widget.addEventListener("captcha:reset", () => {
      const field = widget.getAttribute("data-field");
      if (field) hiddenInput(widget.closest("form") || widget, field).value = "";
      widget.setAttribute("data-state", "ready");
      button.disabled = false;
      status.textContent = "";
    });
    widget.append(button, " ", status);
  }

  function renderAll() {
    document.querySelectorAll(config.selector).forEach(render);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", renderAll);
  } else {
    renderAll();
  }
})(__SANDBOX_CONFIG__);
