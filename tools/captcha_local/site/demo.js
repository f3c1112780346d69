// Builds one form per provider from /config.js, loads each provider's widget script (the sandbox's
// stand-in, or the real widget with --real), and wires the two ways a static site sends a form.
(function (demo) {
  "use strict";

  // One entry per provider in the layer's registry, passed in by /config.js.
  const PROVIDERS = demo.providers;

  document.getElementById("mode").textContent = demo.sandbox
    ? "Tokens come from the local provider sandbox: click the widget to get one."
    : "Using the real providers' widgets and verify APIs.";

  const template = document.getElementById("provider-form");
  const container = document.getElementById("forms");

  for (const provider of PROVIDERS) {
    const section = template.content.firstElementChild.cloneNode(true);
    section.id = provider.id;
    section.querySelector("h2").textContent = provider.title;
    const form = section.querySelector("form");
    form.action = `${demo.apiUrl}/verify/${provider.id}`;
    const widget = document.createElement("div");
    widget.className = provider.className;
    widget.setAttribute(provider.sitekeyAttribute, demo.sitekeys[provider.id]);
    if (provider.versionAttribute && demo.friendlyApiVersion === "v2") {
      widget.setAttribute(provider.versionAttribute, "v2");
    }
    section.querySelector(".widget").appendChild(widget);
    section.querySelector(".fetch").addEventListener("click", async () => {
      await sendWithFetch(provider.id, form, section.querySelector(".result"));
      resetWidget(section);
    });
    container.appendChild(section);
  }

  // Back to this page from the thank-you or error page: the browser may restore it as it was
  // (back/forward cache), widget "verified" and its spent token still in the form.
  window.addEventListener("pageshow", (event) => {
    if (event.persisted) document.querySelectorAll("section.provider").forEach(resetWidget);
  });

  // A token is single use: once sent, the widget must be solved again before the next send.
  function resetWidget(section) {
    section.querySelectorAll(".widget > *").forEach((widget) => widget.dispatchEvent(new Event("captcha:reset")));
  }

  // Widget scripts scan the page when they run, so they load after the forms exist.
  for (const provider of PROVIDERS) {
    const script = document.createElement("script");
    script.src = demo.widgetScripts[provider.id];
    script.async = false;
    document.body.appendChild(script);
  }

  // What came back, first in one line (provider, status, code, request id), then in full.
  function outcome(answer) {
    if (answer.success === true) return answer.degraded ? "degraded" : "verified";
    return (answer["error-codes"] || []).join(" ") || answer.message || "failed";
  }

  async function sendWithFetch(providerId, form, output) {
    output.textContent = "sending…";
    try {
      const response = await fetch(form.action, {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify(Object.fromEntries(new FormData(form))),
      });
      const answer = await response.json();
      const requestId = response.headers.get("apigw-requestid") || "n/a";
      output.dataset.status = String(response.status);
      output.dataset.success = String(answer.success);
      output.dataset.requestId = requestId;
      const summary = document.createElement("span");
      summary.className = "summary";
      summary.textContent = `${answer.provider || providerId} · HTTP ${response.status} · ${outcome(answer)} · request ${requestId}`;
      output.replaceChildren(summary, JSON.stringify(answer, null, 2));
    } catch (error) {
      output.dataset.status = "network-error";
      output.textContent = `Request failed: ${error}`;
    }
  }
})(window.CAPTCHA_DEMO);
