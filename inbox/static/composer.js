// The reply composer: live character count, canned replies, presence of colleagues.
// All strings come from data attributes rendered by the template; user text only via
// textContent and value, never as HTML.
(function () {
  "use strict";
  var form = document.querySelector("form.composer");
  var textarea = document.getElementById("reply-text");
  if (!form || !textarea) { return; }
  var token = form.querySelector("input[name=csrf_token]");
  var csrf = token ? token.value : "";

  function fill(template, values) {
    return Object.keys(values).reduce(function (text, key) {
      return text.split("{" + key + "}").join(String(values[key]));
    }, template);
  }

  // Character count: an approximation in code points; the server counts as the platform does.
  var count = document.getElementById("reply-count");
  var limit = parseInt(form.getAttribute("data-limit"), 10);
  var signature = form.getAttribute("data-signature") || "";
  function signed(text) {
    text = text.trim();
    if (!text || !signature || text.slice(-signature.length) === signature) { return text; }
    return text + " " + signature;
  }
  function updateCount() {
    if (!count) { return; }
    var length = Array.from(signed(textarea.value)).length;
    if (limit > 0) {
      count.textContent = fill(form.getAttribute("data-count-limit"), { count: length, limit: limit });
      count.classList.toggle("over", length > limit);
    } else {
      count.textContent = fill(form.getAttribute("data-count-plain"), { count: length });
    }
  }
  textarea.addEventListener("input", updateCount);
  updateCount();

  // Canned replies: fetched with placeholders filled in for this conversation.
  var select = document.getElementById("canned-select");
  var cannedForm = select ? select.form : null;
  if (select && cannedForm && window.fetch) {
    var insertButton = cannedForm.querySelector("button[type=submit]");
    if (insertButton) { insertButton.hidden = true; }
    select.addEventListener("change", function () {
      if (!select.value) { return; }
      var url = cannedForm.getAttribute("data-resolve") + "?canned=" + encodeURIComponent(select.value);
      fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (data) {
          if (!data || typeof data.text !== "string") { return; }
          if (textarea.value.trim()) {
            // Keep the agent's draft: insert at the cursor, on a line of its own.
            var start = textarea.selectionStart;
            var before = textarea.value.slice(0, start);
            var text = before && !/\s$/.test(before) ? "\n" + data.text : data.text;
            textarea.setRangeText(text, start, textarea.selectionEnd, "end");
          } else {
            textarea.value = data.text;
          }
          select.value = "";
          textarea.focus();
          updateCount();
          markTyping();
        })
        .catch(function () { /* offline: nothing inserted; choosing again retries */ });
    });
  }

  // Presence: a heartbeat every few seconds; the answer names colleagues on this conversation.
  var box = document.getElementById("presence");
  if (!box || !window.fetch) { return; }
  var presenceUrl = box.getAttribute("data-url");
  var lastInput = 0;
  var typingSent = false;
  function typingNow() { return Date.now() - lastInput < 4000 && textarea.value.trim() !== ""; }
  function show(others) {
    while (box.firstChild) { box.removeChild(box.firstChild); }
    others.forEach(function (other) {
      var line = document.createElement("p");
      line.className = other.typing ? "typing" : "viewing";
      line.textContent = fill(box.getAttribute(other.typing ? "data-typing" : "data-viewing"),
        { name: other.name });
      box.appendChild(line);
    });
  }
  function beat() {
    typingSent = typingNow();
    var body = new URLSearchParams({ typing: typingSent ? "1" : "0" });
    fetch(presenceUrl, {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRFToken": csrf, "Accept": "application/json" },
      body: body
    })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (data) { if (data && Array.isArray(data.others)) { show(data.others); } })
      .catch(function () { /* offline for a moment: the next beat tries again */ });
  }
  function markTyping() {
    lastInput = Date.now();
    // Tell colleagues at once when typing starts; the regular beat tells when it stops.
    if (!typingSent) { beat(); }
  }
  textarea.addEventListener("input", markTyping);
  beat();
  window.setInterval(beat, 5000);
  window.addEventListener("pagehide", function () {
    if (!navigator.sendBeacon) { return; }
    var data = new FormData();
    data.append("csrf_token", csrf);
    data.append("leave", "1");
    navigator.sendBeacon(presenceUrl, data);
  });
})();
