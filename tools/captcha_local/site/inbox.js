// The demo's inbox: what the local submission bus delivered, polled from /inbox.json, newest first.
// Each entry shows the form as the event carries it and the text the notification email carries
// (rendered from the template's own input transformer by the local stack).
(function () {
  "use strict";

  const list = document.getElementById("inbox-list");
  const empty = document.getElementById("inbox-empty");
  let shown = "";

  function render(entries) {
    const key = JSON.stringify(entries);
    if (key === shown) return;
    shown = key;
    list.replaceChildren(...entries.map(entry));
    empty.hidden = entries.length > 0;
  }

  function entry(item) {
    const detail = item.detail;
    const article = document.createElement("article");
    article.className = "submission";
    article.dataset.submissionId = detail.submission_id;
    article.dataset.tokenSha256 = detail.verification.token_sha256;
    const heading = document.createElement("h3");
    heading.textContent = `${detail.provider} · ${detail.received_at}` + (detail.verification.degraded ? " · degraded" : "");
    const fields = document.createElement("dl");
    for (const [name, value] of Object.entries(detail.form)) {
      const term = document.createElement("dt");
      term.textContent = name;
      const description = document.createElement("dd");
      description.textContent = Array.isArray(value) ? value.join(", ") : String(value);
      fields.append(term, description);
    }
    const emailTitle = document.createElement("h4");
    emailTitle.textContent = "Notification email";
    const email = document.createElement("pre");
    email.className = "email";
    email.textContent = item.email || "(not delivered to the email target yet)";
    article.append(heading, fields, emailTitle, email);
    return article;
  }

  async function poll() {
    try {
      const response = await fetch("inbox.json", { cache: "no-store" });
      if (response.ok) render(await response.json());
    } catch (error) {
      // The local stack is stopping or restarting; the next poll tries again.
    }
    setTimeout(poll, 1000);
  }

  poll();
})();
