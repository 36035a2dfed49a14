// Keyboard shortcuts for agents: j/k move through the list, Enter/o open, r reply, e close,
// a assign to me, / search, ? help. No text of its own: labels live in the templates.
(function () {
  "use strict";

  var ROW = "tr.conversation-row";
  var SELECTED = "selected";
  // The list refills its rows by polling; the selection follows the conversation, not the row.
  var selectedId = null;

  function typingIn(element) {
    if (!element || element === document.body) { return false; }
    var tag = element.tagName;
    return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || element.isContentEditable;
  }

  function rows() {
    return Array.prototype.slice.call(document.querySelectorAll(ROW));
  }

  function selectedRow() {
    return document.querySelector(ROW + "." + SELECTED);
  }

  function mark(row, on) {
    row.classList.toggle(SELECTED, on);
    row.setAttribute("aria-selected", on ? "true" : "false");
  }

  function select(row, focus) {
    rows().forEach(function (other) { if (other !== row) { mark(other, false); } });
    mark(row, true);
    selectedId = row.getAttribute("data-conversation-id");
    // Focus lets screen readers announce the row; it never steals focus from a field.
    row.setAttribute("tabindex", "-1");
    if (focus) { row.focus({ preventScroll: true }); }
    row.scrollIntoView({ block: "nearest" });
  }

  function move(step) {
    var all = rows();
    if (!all.length) { return; }
    var index = all.indexOf(selectedRow());
    var next = index < 0 ? 0 : Math.min(all.length - 1, Math.max(0, index + step));
    select(all[next], true);
  }

  function openSelected() {
    var row = selectedRow();
    var href = row && row.getAttribute("data-href");
    if (!href) { return false; }
    var target = new URL(href, window.location.href);
    // Only ever follow our own pages.
    if (target.origin !== window.location.origin) { return false; }
    window.location.assign(target.href);
    return true;
  }

  function reselect() {
    if (selectedId === null) { return; }
    var again = rows().filter(function (row) {
      return row.getAttribute("data-conversation-id") === selectedId;
    })[0];
    if (again && !again.classList.contains(SELECTED)) {
      var lostFocus = document.activeElement === null || document.activeElement === document.body;
      select(again, lostFocus);
    }
  }

  function click(selector) {
    var button = document.querySelector(selector);
    if (!button || button.disabled) { return false; }
    button.click();
    return true;
  }

  function focusField(id) {
    var field = document.getElementById(id);
    if (!field) { return false; }
    field.focus();
    if (typeof field.select === "function" && field.type === "search") { field.select(); }
    return true;
  }

  function help() {
    return document.getElementById("shortcuts-help");
  }

  function toggleHelp() {
    var dialog = help();
    if (!dialog || typeof dialog.showModal !== "function") { return false; }
    if (dialog.open) { dialog.close(); } else { dialog.showModal(); }
    return true;
  }

  function onRowLink(target) {
    // Enter on a focused link or button does what that element does.
    return !target || target === document.body || target === document.documentElement ||
      (target.matches && target.matches(ROW));
  }

  var actions = {
    j: function () { move(1); return rows().length > 0; },
    k: function () { move(-1); return rows().length > 0; },
    o: openSelected,
    r: function () { return focusField("reply-text"); },
    e: function () { return click('[data-shortcut="close"]'); },
    a: function () { return click('[data-shortcut="assign-me"]'); },
    "/": function () { return focusField("search-q"); },
    "?": toggleHelp
  };

  document.addEventListener("keydown", function (event) {
    if (event.defaultPrevented || event.isComposing) { return; }
    if (event.ctrlKey || event.altKey || event.metaKey) { return; }
    var target = event.target;
    if (typingIn(target)) {
      if (event.key === "Escape") { target.blur(); }
      return;
    }
    var dialog = help();
    if (dialog && dialog.open) {
      // The open dialog handles Esc itself; only '?' closes it too.
      if (event.key === "?") { dialog.close(); event.preventDefault(); }
      return;
    }
    var key = event.key;
    // Caps Lock should not switch the shortcuts off.
    if (!event.shiftKey && key.length === 1) { key = key.toLowerCase(); }
    var handled = false;
    if (key === "Enter") {
      handled = onRowLink(target) && openSelected();
    } else if (Object.prototype.hasOwnProperty.call(actions, key)) {
      handled = actions[key]();
    }
    if (handled) { event.preventDefault(); }
  });

  document.addEventListener("click", function (event) {
    var opener = event.target.closest && event.target.closest("[data-shortcuts-open]");
    var closer = event.target.closest && event.target.closest("[data-shortcuts-close]");
    if (opener && toggleHelp()) { event.preventDefault(); }
    if (closer && help()) { help().close(); }
  });

  document.addEventListener("DOMContentLoaded", function () {
    var body = document.getElementById("conversation-rows");
    if (body && window.MutationObserver) {
      new MutationObserver(reselect).observe(body, { childList: true });
    }
    // The help button only makes sense once the shortcuts work.
    Array.prototype.forEach.call(document.querySelectorAll("[data-shortcuts-open]"), function (b) {
      b.hidden = false;
    });
  });
})();
