// Small, framework-free helpers for the dashboard: relative times, copy buttons,
// the live-feed indicator, snapshot refresh after a reconnect, keyboard shortcuts.
(function () {
  "use strict";

  function relative(date) {
    let seconds = Math.round((Date.now() - date.getTime()) / 1000);
    const future = seconds < 0;
    seconds = Math.abs(seconds);
    const units = [[86400, "d"], [3600, "h"], [60, "m"], [1, "s"]];
    let text = "0s";
    for (const [size, unit] of units) {
      if (seconds >= size || unit === "s") { text = Math.floor(seconds / size) + unit; break; }
    }
    return future ? "in " + text : text + " ago";
  }

  function formatDuration(ms) {
    if (ms < 1000) return ms + "ms";
    const seconds = ms / 1000;
    if (seconds < 60) return seconds.toFixed(1) + "s";
    const m = Math.floor(seconds / 60), s = Math.floor(seconds % 60);
    if (m < 60) return m + "m " + s + "s";
    return Math.floor(m / 60) + "h " + (m % 60) + "m";
  }

  function refreshTimes(root) {
    (root || document).querySelectorAll("time[data-relative]").forEach(function (el) {
      el.textContent = relative(new Date(el.getAttribute("datetime")));
    });
    (root || document).querySelectorAll("[data-live-duration]").forEach(function (el) {
      el.textContent = formatDuration(Date.now() - new Date(el.dataset.liveDuration).getTime());
    });
  }
  setInterval(refreshTimes, 1000);

  document.addEventListener("click", function (event) {
    const button = event.target.closest("[data-copy]");
    if (!button) return;
    navigator.clipboard.writeText(button.dataset.copy).then(function () {
      button.classList.add("copied");
      setTimeout(function () { button.classList.remove("copied"); }, 1200);
    });
  });

  // Close open <details> menus when clicking elsewhere or pressing Escape.
  document.addEventListener("click", function (event) {
    document.querySelectorAll("details.menu[open]").forEach(function (menu) {
      if (!menu.contains(event.target)) menu.removeAttribute("open");
    });
  });

  // --- live feed indicator and snapshot refresh ---------------------------------
  function setLive(state, title) {
    const indicator = document.getElementById("live-indicator");
    if (!indicator) return;
    indicator.className = "live live-" + state;
    indicator.textContent = { open: "live", connecting: "connecting", reconnecting: "reconnecting", down: "live feed down", paused: "paused" }[state] || state;
    indicator.title = title || "";
  }
  let everOpened = false;
  document.addEventListener("htmx:wsConnecting", function () { setLive(everOpened ? "reconnecting" : "connecting", "Connecting to the live feed…"); });
  document.addEventListener("htmx:wsOpen", function () {
    setLive("open", "Changes appear as they happen");
    if (everOpened) document.dispatchEvent(new CustomEvent("runwatch:resync"));
    everOpened = true;
  });
  document.addEventListener("htmx:wsClose", function () { setLive("reconnecting", "Live feed disconnected; reconnecting…"); });
  document.addEventListener("htmx:wsError", function () { setLive("reconnecting", "Live feed error; reconnecting…"); });
  // The server reports its own feed state (e.g. its database/Redis link is down) as an
  // element <div id="live-state" data-state="down|open"> swapped out-of-band.
  let liveSocket = null;
  document.addEventListener("htmx:wsOpen", function (event) { liveSocket = event.detail.socketWrapper; });
  document.addEventListener("htmx:wsClose", function () { liveSocket = null; });
  document.addEventListener("htmx:wsAfterMessage", function (event) {
    const state = document.getElementById("live-state");
    if (state && state.dataset.state) setLive(state.dataset.state, state.title);
    // Acknowledge the message: the server sends a busy tab fewer, fresher updates
    // instead of queueing them (flow control, see docs/realtime.md).
    if (state && state.dataset.seq && event.detail.socketWrapper) {
      event.detail.socketWrapper.send(JSON.stringify({ ack: Number(state.dataset.seq) }));
    }
    refreshTimes(document.getElementById("content"));
  });
  // Table rows cannot stand alone in a message, so the live feed wraps them in a
  // <tbody data-live-unwrap>; when such a wrapper replaces a row (outerHTML), swap in
  // its rows, not the wrapper.
  document.addEventListener("htmx:oobBeforeSwap", function (event) {
    const fragment = event.detail.fragment;
    const wrapper = fragment instanceof DocumentFragment ? fragment.firstElementChild : null;
    if (wrapper && wrapper.hasAttribute("data-live-unwrap")) wrapper.replaceWith(...wrapper.childNodes);
  });
  // When htmx swaps the runs table (other filters, another page, a resync), tell the
  // live feed what the page shows now: it answers with a fresh snapshot of the rows.
  document.addEventListener("htmx:afterSwap", function (event) {
    if (!liveSocket || !event.detail.xhr) return;
    const target = event.detail.target;
    if (!target || !(target.id === "runs-body" || target.querySelector("#runs-body"))) return;
    liveSocket.send(JSON.stringify({ watch: location.pathname + location.search }));
  });
  // After a reconnect, re-fetch what the page shows: elements marked data-resync-url
  // are reloaded from that URL (their own partial), so nothing missed stays stale.
  document.addEventListener("runwatch:resync", function () {
    document.querySelectorAll("[data-resync-url]").forEach(function (el) {
      htmx.ajax("GET", el.dataset.resyncUrl, { target: el, swap: "outerHTML" });
    });
  });

  // --- keyboard shortcuts: "g r" style navigation, "/" focuses search -----------
  let prefix = null;
  document.addEventListener("keydown", function (event) {
    const tag = (event.target.tagName || "").toLowerCase();
    if (tag === "input" || tag === "textarea" || tag === "select" || event.target.isContentEditable) return;
    if (event.metaKey || event.ctrlKey || event.altKey) return;
    if (event.key === "Escape") {
      document.querySelectorAll("details.menu[open]").forEach(function (m) { m.removeAttribute("open"); });
      return;
    }
    if (event.key === "/") {
      const search = document.querySelector("[data-search]");
      if (search) { event.preventDefault(); search.focus(); }
      return;
    }
    if (prefix) {
      const link = document.querySelector('[data-hotkey="' + prefix + " " + event.key + '"]');
      prefix = null;
      if (link) { event.preventDefault(); link.click(); }
      return;
    }
    if (event.key === "g") { prefix = "g"; setTimeout(function () { prefix = null; }, 1000); return; }
    const direct = document.querySelector('[data-hotkey="' + event.key + '"]');
    if (direct) { event.preventDefault(); direct.click(); }
  });

  document.addEventListener("DOMContentLoaded", function () { refreshTimes(); });
})();
