// The demo's inbox: what reached a person for each submission, polled from /inbox.json, newest
// first. The email is the message moto's SES received from the real notifications function
// (headers, text part, and the HTML part in a sandboxed frame that runs nothing); the webhook is
// the body the local sink was posted. Every visitor value is set as text, never as markup.
(function () {
  "use strict";

  const list = document.getElementById("inbox-list");
  const empty = document.getElementById("inbox-empty");
  const SHOWN_HEADERS = ["From", "To", "Reply-To", "Subject", "Date"];
  let shown = "";

  function render(entries) {
    const key = JSON.stringify(entries);
    if (key === shown) return;
    shown = key;
    list.replaceChildren(...entries.map(entry));
    empty.hidden = entries.length > 0;
  }

  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function emailView(mail, title) {
    const box = element("div", "mail");
    box.append(element("h4", "", title));
    const headers = element("dl", "headers");
    for (const [name, value] of mail.headers) {
      if (!SHOWN_HEADERS.includes(name)) continue;
      headers.append(element("dt", "", name), element("dd", "", value));
    }
    box.append(headers, element("pre", "email", mail.text));
    if (mail.html) {
      const frame = document.createElement("iframe");
      frame.className = "email-html";
      frame.title = "HTML part";
      frame.setAttribute("sandbox", ""); // no scripts, no forms, no navigation
      frame.srcdoc = mail.html;
      box.append(element("h5", "", "HTML part"), frame);
    }
    const source = element("details", "source");
    source.append(element("summary", "", "Message source"), element("pre", "raw", mail.raw));
    box.append(source);
    return box;
  }

  function webhookView(hook) {
    const box = element("div", "hook");
    box.append(element("h4", "", "Webhook"));
    const headers = element("dl", "headers");
    for (const [name, value] of Object.entries(hook.headers)) {
      headers.append(element("dt", "", name), element("dd", "", value));
    }
    let body = hook.body;
    try {
      body = JSON.stringify(JSON.parse(hook.body), null, 2);
    } catch (error) {
      // Not JSON: shown as received.
    }
    box.append(headers, element("pre", "webhook", body));
    return box;
  }

  function entry(item) {
    const detail = item.detail;
    const article = element("article", "submission");
    article.dataset.submissionId = detail.submission_id;
    article.dataset.tokenSha256 = (detail.verification || {}).token_sha256 || "";
    const heading = element("h3", "", `${detail.provider} · ${detail.received_at}` + (detail.verification.degraded ? " · degraded" : ""));
    const fields = element("dl", "fields");
    for (const [name, value] of Object.entries(detail.form)) {
      fields.append(element("dt", "", name), element("dd", "", Array.isArray(value) ? value.join(", ") : String(value)));
    }
    article.append(heading, fields);
    for (const mail of item.email || []) article.append(emailView(mail, "Email to the owner (as SES received it)"));
    for (const mail of item.autoresponse || []) article.append(emailView(mail, "Autoresponse to the visitor"));
    for (const hook of item.webhook || []) article.append(webhookView(hook));
    if (!item.email && !item.webhook) article.append(element("p", "pending", "Not delivered yet."));
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
