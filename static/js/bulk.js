// Bulk actions on the runs list: the ticked runs are kept (per environment, for this
// tab) across pages, filter changes and live row updates; "Bulk action" opens the
// panel with the current filters (location.search) and the ticked runs.
// Select-all-on-page and shift-click ranges are static/js/app.js's (they fire the
// change events this file listens to).
(function () {
  "use strict";

  function panel() { return document.getElementById("bulk-panel"); }
  function storageKey() { return "runwatch.bulk.selection." + (panel() ? panel().dataset.env : ""); }

  function loadSelection() {
    try { return new Set(JSON.parse(sessionStorage.getItem(storageKey()) || "[]")); } catch (e) { return new Set(); }
  }
  let selected = null;
  function saveSelection() {
    try { sessionStorage.setItem(storageKey(), JSON.stringify(Array.from(selected))); } catch (e) { /* private mode */ }
  }

  // Reflect the kept selection on whatever rows the page shows now (after a swap).
  function sync() {
    if (!panel()) return;
    if (!selected) selected = loadSelection();
    document.querySelectorAll("#runs-body .row-select").forEach(function (box) { box.checked = selected.has(box.value); });
    showCount();
  }

  // The header box and the "N selected" counter follow the ticked boxes.
  function showCount() {
    const boxes = Array.from(document.querySelectorAll("#runs-body .row-select"));
    const all = document.querySelector("#runs-table .select-all");
    if (all) {
      const ticked = boxes.filter(function (b) { return b.checked; }).length;
      all.checked = boxes.length > 0 && ticked === boxes.length;
      all.indeterminate = ticked > 0 && ticked < boxes.length;
    }
    const counter = document.getElementById("bulk-selected");
    if (counter) {
      counter.hidden = selected.size === 0;
      const count = counter.querySelector("[data-bulk-count]");
      if (count) count.textContent = selected.size + " selected";
    }
  }

  document.addEventListener("change", function (event) {
    const box = event.target;
    if (!panel() || !(box instanceof HTMLInputElement) || !box.classList.contains("row-select")) return;
    if (box.checked) selected.add(box.value); else selected.delete(box.value);
    saveSelection();
    showCount();
  });

  function openPanel(action) {
    const dialog = panel();
    if (!dialog) return;
    const values = { query: location.search.replace(/^\?/, ""), target: selected.size ? "selection" : "filter" };
    if (selected.size) values.runIds = Array.from(selected);
    if (action) values.action = action;
    document.getElementById("bulk-panel-body").innerHTML = '<div class="dialog-body muted">Counting runs…</div>';
    if (!dialog.open) dialog.showModal();
    htmx.ajax("POST", dialog.dataset.previewUrl, { target: "#bulk-panel-body", swap: "innerHTML", values: values });
  }

  document.addEventListener("click", function (event) {
    const opener = event.target.closest("[data-bulk-open]");
    if (opener) { event.preventDefault(); openPanel(); return; }
    const clear = event.target.closest("[data-bulk-clear]");
    if (clear) { selected.clear(); saveSelection(); sync(); }
  });

  // Typing a name changes no count: keep the panel (and its confirm button) in place.
  document.addEventListener("change", function (event) {
    if (event.target.name === "name" && event.target.form && event.target.form.id === "bulk-form") event.stopPropagation();
  }, true);

  // Enter in the panel must not submit without the confirmation: route it to the
  // confirm button instead.
  document.addEventListener("submit", function (event) {
    if (event.target.id !== "bulk-form") return;
    event.preventDefault();
    const submit = document.getElementById("bulk-submit");
    if (submit && !submit.disabled) submit.click();
  }, true);

  // A bulk action was created: the ticked runs have been dealt with.
  document.addEventListener("htmx:beforeRequest", function (event) {
    if (event.detail.elt && event.detail.elt.id === "bulk-submit") sessionStorage.removeItem(storageKey());
  });

  htmx.onLoad(function () { sync(); });
  document.addEventListener("DOMContentLoaded", function () {
    sync();
    // ?bulk=open (the "New bulk action" button) or ?bulk=replay opens the panel.
    const wanted = new URLSearchParams(location.search).get("bulk");
    if (panel() && wanted) {
      const url = new URL(location.href);
      url.searchParams.delete("bulk");
      history.replaceState(history.state, "", url);
      openPanel(wanted === "replay" ? "replay" : null);
    }
  });
})();
