// Refresh the conversation list's first page every few seconds so new conversations appear
// without a reload. Deeper pages are left alone: refilling them would lose the agent's place.
(function () {
  "use strict";
  var body = document.getElementById("conversation-rows");
  if (!body || !window.fetch || !window.DOMParser) { return; }
  if (body.getAttribute("data-poll") === "off") { return; }
  // The URL carries the view and filters the page was rendered with.
  var url = body.getAttribute("data-refresh");
  var last = null;

  function rowsOf(html) {
    // The server escaped every customer text; parsing into an inert document (no scripts run)
    // and moving its rows avoids innerHTML on the live page altogether.
    var doc = new DOMParser().parseFromString("<table><tbody>" + html + "</tbody></table>", "text/html");
    var parsed = doc.querySelector("tbody");
    return parsed ? Array.prototype.slice.call(parsed.children) : [];
  }

  function refresh() {
    if (document.hidden) { return; }
    fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) {
        if (html === null || html === last) { return; }
        last = html;
        var rows = rowsOf(html).map(function (row) { return document.importNode(row, true); });
        while (body.firstChild) { body.removeChild(body.firstChild); }
        rows.forEach(function (row) { body.appendChild(row); });
        // Lets other scripts (keyboard selection) restore their state on the new rows.
        body.dispatchEvent(new CustomEvent("rows:refreshed", { bubbles: true }));
      })
      .catch(function () { /* offline for a moment: try again next time */ });
  }
  window.setInterval(refresh, 4000);
})();
