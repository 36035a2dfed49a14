// Refresh the conversation list every few seconds so new conversations appear without a reload.
(function () {
  "use strict";
  var body = document.getElementById("conversation-rows");
  if (!body || !window.fetch) { return; }
  var url = body.getAttribute("data-refresh");
  function refresh() {
    fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) { if (html !== null) { body.innerHTML = html; } })
      .catch(function () { /* offline for a moment: try again next time */ });
  }
  window.setInterval(refresh, 4000);
})();
