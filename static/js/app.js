// Small, framework-free helpers for the dashboard: relative times, copy buttons, menus,
// dialogs and confirmations, the runs filter bar, JSON editors, the live-feed indicator,
// snapshot refresh after a reconnect, and keyboard shortcuts.
(function () {
  "use strict";

  // --- times ---------------------------------------------------------------------
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
    if (ms < 1000) return Math.max(0, Math.round(ms)) + "ms";
    const seconds = ms / 1000;
    if (seconds < 60) return seconds.toFixed(1) + "s";
    const m = Math.floor(seconds / 60), s = Math.floor(seconds % 60);
    if (m < 60) return m + "m " + s + "s";
    const h = Math.floor(m / 60);
    if (h < 48) return h + "h " + (m % 60) + "m";
    return Math.floor(h / 24) + "d " + (h % 24) + "h";
  }

  const localFormat = new Intl.DateTimeFormat(undefined, {
    year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit",
  });

  function refreshTimes(root) {
    (root || document).querySelectorAll("time[data-relative]").forEach(function (el) {
      const date = new Date(el.getAttribute("datetime"));
      el.textContent = relative(date);
      if (!el.dataset.localTitle) {
        // The server renders the exact UTC time; add the viewer's local time.
        el.title = localFormat.format(date) + " (local)\n" + el.title;
        el.dataset.localTitle = "1";
      }
    });
    (root || document).querySelectorAll("[data-live-duration]").forEach(function (el) {
      el.textContent = formatDuration(Date.now() - new Date(el.dataset.liveDuration).getTime());
    });
  }
  setInterval(function () { refreshTimes(); }, 1000);

  // --- toasts ----------------------------------------------------------------------
  function toast(message, kind) {
    let box = document.querySelector(".toasts");
    if (!box) {
      box = document.createElement("div");
      box.className = "toasts";
      box.setAttribute("role", "status");
      document.body.appendChild(box);
    }
    const item = document.createElement("div");
    item.className = "toast toast-" + (kind || "info");
    item.textContent = message;
    box.appendChild(item);
    setTimeout(function () { item.remove(); }, 5000);
  }
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll(".toasts .toast").forEach(function (item) {
      setTimeout(function () { item.remove(); }, 6000);
    });
  });
  document.addEventListener("htmx:responseError", function (event) {
    const status = event.detail.xhr ? event.detail.xhr.status : "";
    toast(status === 404 ? "Not found: it may have been deleted, or you lost access." : "The request failed (" + status + "). Try again.", "error");
  });
  document.addEventListener("htmx:sendError", function () { toast("The server could not be reached.", "error"); });

  // --- copy ------------------------------------------------------------------------
  function flashCopied(button) {
    button.classList.add("copied");
    setTimeout(function () { button.classList.remove("copied"); }, 1200);
  }
  function copyText(text, button) {
    const done = function () { flashCopied(button); };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () { fallbackCopy(text); done(); });
    } else {
      fallbackCopy(text);
      done();
    }
  }
  function fallbackCopy(text) {
    const area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.appendChild(area);
    area.select();
    try { document.execCommand("copy"); } catch (e) { /* nothing else to try */ }
    area.remove();
  }
  document.addEventListener("click", function (event) {
    const button = event.target.closest("[data-copy], [data-copy-target], [data-copy-url]");
    if (!button) return;
    event.preventDefault();
    event.stopPropagation();
    if (button.dataset.copyUrl) {
      // Secrets are fetched when copied rather than kept in the page.
      fetch(button.dataset.copyUrl, { credentials: "same-origin", cache: "no-store" })
        .then(function (r) { if (!r.ok) throw new Error(r.status); return r.text(); })
        .then(function (text) { copyText(text, button); })
        .catch(function () { toast("Could not copy the key.", "error"); });
    } else if (button.dataset.copyTarget) {
      const source = document.querySelector(button.dataset.copyTarget);
      if (source) copyText(source.dataset.value || source.textContent, button);
    } else {
      copyText(button.dataset.copy, button);
    }
  });

  // --- menus -------------------------------------------------------------------------
  function closeMenus(except) {
    document.querySelectorAll("details.menu[open]").forEach(function (menu) {
      if (menu !== except && !menu.contains(except)) menu.removeAttribute("open");
    });
  }
  document.addEventListener("click", function (event) {
    const inside = event.target.closest("details.menu");
    closeMenus(inside);
    // A chosen menu item closes its menu (filter panels stay open while editing).
    const item = event.target.closest(".menu-items > a, .menu-items > button");
    if (item && inside && !inside.classList.contains("filter-menu")) inside.removeAttribute("open");
  });
  // Menus inside scrolling tables are positioned against the viewport so the table's
  // overflow does not clip them.
  document.addEventListener("toggle", function (event) {
    const menu = event.target;
    if (!(menu instanceof HTMLDetailsElement) || !menu.classList.contains("menu")) return;
    if (menu.open && menu.classList.contains("row-menu")) fillRowMenu(menu);
    const items = menu.querySelector(".menu-items");
    if (!items) return;
    if (!menu.open) { items.classList.remove("is-fixed"); return; }
    closeMenus(menu);
    if (menu.closest(".table-wrap")) {
      const rect = menu.querySelector("summary").getBoundingClientRect();
      items.classList.add("is-fixed");
      const height = items.offsetHeight;
      const below = window.innerHeight - rect.bottom;
      items.style.top = (below > height + 8 ? rect.bottom + 4 : Math.max(8, rect.top - height - 4)) + "px";
      items.style.left = Math.max(8, rect.right - items.offsetWidth) + "px";
      items.style.right = "auto";
    }
    const first = items.querySelector("input[type=search], a, button, input");
    if (first && event.target.dataset.keyboardOpened) first.focus();
  }, true);
  // A run row carries only its menu's button: the items are built here when it opens,
  // from the row's data. Rows are what the live feed pushes to every open runs list,
  // so every byte of a row is sent many times over (docs/realtime.md).
  function fillRowMenu(menu) {
    if (menu.querySelector(".menu-items")) return;
    const row = menu.closest("tr.run-row");
    if (!row) return;
    const runId = row.id.replace(/^run-/, "");
    const runUrl = row.dataset.href;
    const task = row.querySelector(".task-name");
    const items = document.createElement("div");
    items.className = "menu-items";
    items.setAttribute("role", "menu");
    function item(tag, iconName, label, attrs) {
      const el = document.createElement(tag);
      el.setAttribute("role", "menuitem");
      if (tag === "button") el.type = "button";
      Object.keys(attrs).forEach(function (name) { el.setAttribute(name, attrs[name]); });
      el.innerHTML = '<svg class="icon" aria-hidden="true"><use href="#i-' + iconName + '"></use></svg> ';
      el.appendChild(document.createTextNode(label));
      items.appendChild(el);
    }
    item("a", "arrow-right", "Open run", { href: runUrl });
    item("button", "copy", "Copy run ID", { "data-copy": runId });
    item("button", "replay", "Replay…", {
      class: "menu-replay", "hx-get": runUrl + "replay", "hx-target": "#dialogs", "hx-swap": "innerHTML",
    });
    if (menu.hasAttribute("data-cancelable")) {
      item("button", "ban", "Cancel run…", {
        class: "danger menu-cancel", "hx-post": runUrl + "cancel",
        "hx-confirm": "Cancel run " + runId + " (" + (task ? task.textContent : "") + ")? Its in-progress child runs are canceled too.",
        "data-confirm-title": "Cancel this run?", "data-confirm-action": "Cancel run",
        "hx-target": "#" + row.id, "hx-swap": "outerHTML",
      });
    }
    menu.appendChild(items);
    htmx.process(items);
  }
  window.addEventListener("scroll", function () {
    document.querySelectorAll(".table-wrap details.menu[open]").forEach(function (m) { m.removeAttribute("open"); });
  }, true);
  // Arrow keys move between the items of an open menu.
  document.addEventListener("keydown", function (event) {
    if (event.key !== "ArrowDown" && event.key !== "ArrowUp") return;
    const menu = event.target.closest && event.target.closest("details.menu[open]");
    if (!menu || menu.classList.contains("filter-menu")) return;
    const items = Array.from(menu.querySelectorAll(".menu-items > a, .menu-items > button"));
    if (!items.length) return;
    event.preventDefault();
    const index = items.indexOf(document.activeElement);
    const next = event.key === "ArrowDown" ? (index + 1) % items.length : (index - 1 + items.length) % items.length;
    items[next].focus({ preventScroll: true });  // a scroll closes table menus
  });

  // --- dialogs and confirmations ----------------------------------------------------------
  function showDialog(dialog) {
    if (!dialog.open) dialog.showModal();
    const field = dialog.querySelector("[autofocus], textarea, input:not([type=hidden]), select");
    if (field && !dialog.querySelector("[data-json-editor]")) field.focus();
  }
  htmx.onLoad(function (root) {
    const scope = root.querySelectorAll ? root : document;
    const dialogs = Array.from(scope.querySelectorAll("dialog[data-autoshow]"));
    if (root.matches && root.matches("dialog[data-autoshow]")) dialogs.push(root);
    dialogs.forEach(showDialog);
    scope.querySelectorAll("[data-json-editor]").forEach(validateJsonEditor);
    refreshTimes(root.querySelectorAll ? root : document);
  });
  document.addEventListener("close", function (event) {
    const dialog = event.target;
    if (dialog instanceof HTMLDialogElement && dialog.closest("#dialogs")) dialog.remove();
  }, true);
  document.addEventListener("click", function (event) {
    const closer = event.target.closest("[data-close-dialog]");
    if (closer) { closer.closest("dialog").close(); return; }
    const opener = event.target.closest("[data-open-dialog]");
    if (opener) { const d = document.getElementById(opener.dataset.openDialog); if (d) showDialog(d); return; }
    // A click on the backdrop closes the dialog.
    if (event.target instanceof HTMLDialogElement && event.target.open) {
      const r = event.target.getBoundingClientRect();
      if (event.clientX < r.left || event.clientX > r.right || event.clientY < r.top || event.clientY > r.bottom) event.target.close();
    }
  });

  // hx-confirm opens a styled dialog instead of window.confirm.
  document.addEventListener("htmx:confirm", function (event) {
    if (!event.detail.question) return;
    event.preventDefault();
    const trigger = event.detail.elt;
    if (trigger.dataset.confirmed) {  // confirmed already, before a live update replaced it
      delete trigger.dataset.confirmed;
      event.detail.issueRequest(true);
      return;
    }
    const dialog = document.createElement("dialog");
    dialog.className = "dialog dialog-narrow confirm-dialog";
    dialog.innerHTML =
      '<div class="dialog-body"><div class="dialog-head"><h2></h2></div><p class="confirm-question"></p>' +
      '<div class="dialog-foot"><button type="button" class="btn" data-close-dialog>Keep it</button>' +
      '<button type="button" class="btn btn-danger" data-confirm-ok></button></div></div>';
    dialog.querySelector("h2").textContent = trigger.dataset.confirmTitle || "Are you sure?";
    dialog.querySelector(".confirm-question").textContent = event.detail.question;
    dialog.querySelector("[data-confirm-ok]").textContent = trigger.dataset.confirmAction || "Confirm";
    dialog.addEventListener("close", function () { dialog.remove(); });
    dialog.querySelector("[data-confirm-ok]").addEventListener("click", function () {
      dialog.close();
      if (document.body.contains(trigger)) { event.detail.issueRequest(true); return; }
      // A live update replaced the trigger (its row) while the dialog was open: htmx
      // would drop the request, so send it from the replacement (gone: nothing to do).
      const path = trigger.getAttribute("hx-post");
      const selector = '[hx-post="' + CSS.escape(path || "") + '"]';
      let current = path && document.querySelector(selector);
      const target = trigger.getAttribute("hx-target") || "";
      const menu = !current && target.startsWith("#run-") && document.querySelector(target + " details.row-menu");
      if (menu) { fillRowMenu(menu); current = menu.querySelector(selector); }  // a row menu is built when opened
      if (!current) return;
      current.dataset.confirmed = "1";
      htmx.ajax("POST", path, { source: current });
    });
    document.getElementById("dialogs").appendChild(dialog);
    dialog.showModal();
    dialog.querySelector("[data-confirm-ok]").focus();
  });

  // Tabs (role=tab with aria-controls).
  document.addEventListener("click", function (event) {
    const tab = event.target.closest("[role=tab]");
    if (!tab) return;
    const list = tab.closest("[role=tablist]");
    list.querySelectorAll("[role=tab]").forEach(function (other) {
      const selected = other === tab;
      other.setAttribute("aria-selected", selected ? "true" : "false");
      const pane = document.getElementById(other.getAttribute("aria-controls"));
      if (pane) pane.hidden = !selected;
    });
  });

  // --- JSON editors: validated as you type -------------------------------------------
  function validateJsonEditor(area) {
    const status = area.parentElement.querySelector("[data-json-status]");
    const text = area.value.trim();
    let message = "", ok = true;
    if (text) {
      try {
        const value = JSON.parse(text);
        if (area.dataset.jsonEditor === "object" && (typeof value !== "object" || value === null || Array.isArray(value))) {
          ok = false; message = "Must be a JSON object ({…})";
        } else {
          message = "Valid JSON · " + new Blob([JSON.stringify(value)]).size.toLocaleString() + " bytes";
        }
      } catch (error) {
        ok = false;
        message = describeJsonError(text, error);
      }
    } else {
      message = area.dataset.jsonEditor === "object" ? "Empty: {}" : "Empty: no payload";
    }
    area.classList.toggle("is-invalid", !ok);
    area.setAttribute("aria-invalid", ok ? "false" : "true");
    if (status) {
      status.textContent = message;
      status.className = "editor-status " + (ok ? "is-ok" : "is-error");
    }
    const form = area.closest("form");
    if (form) {
      const invalid = form.querySelector("[data-json-editor].is-invalid");
      form.querySelectorAll("[type=submit]").forEach(function (b) { b.disabled = !!invalid; });
    }
  }
  function describeJsonError(text, error) {
    const match = /position (\d+)/.exec(error.message);
    if (!match) return "Invalid JSON: " + error.message;
    const before = text.slice(0, Number(match[1])).split("\n");
    return "Invalid JSON at line " + before.length + ", column " + (before[before.length - 1].length + 1) + ": " + error.message.replace(/ in JSON at position \d+.*$/, "");
  }
  document.addEventListener("input", function (event) {
    if (event.target.matches("[data-json-editor]")) validateJsonEditor(event.target);
  });
  document.addEventListener("keydown", function (event) {
    // Tab inserts two spaces in code editors (Shift+Tab still leaves the field).
    if (event.key !== "Tab" || event.shiftKey || !event.target.matches("textarea.code-editor")) return;
    event.preventDefault();
    event.target.setRangeText("  ", event.target.selectionStart, event.target.selectionEnd, "end");
    event.target.dispatchEvent(new Event("input", { bubbles: true }));
  });

  // --- runs filter bar -------------------------------------------------------------------
  const DEFAULTS = { size: "25", period: "7d" };
  // Keep shared links short: drop empty and default values from the filter form's query.
  document.addEventListener("htmx:configRequest", function (event) {
    const elt = event.detail.elt;
    if (!elt.matches || !(elt.matches("#run-filters") || (elt.form && elt.form.id === "run-filters"))) return;
    const data = event.detail.formData;
    Array.from(new Set(data.keys())).forEach(function (key) {
      const values = data.getAll(key).filter(function (v) { return String(v).trim() !== ""; });
      data.delete(key);
      values.forEach(function (v) { if (DEFAULTS[key] !== v || values.length > 1) data.append(key, v); });
    });
  });
  document.addEventListener("change", function (event) {
    const input = event.target;
    if (input.dataset.clears) {
      // Picking a period clears a custom from/to range (and the reverse).
      input.dataset.clears.split(",").forEach(function (name) {
        input.form.querySelectorAll('[name="' + name + '"]').forEach(function (f) { f.value = ""; });
      });
    } else if (input.form && input.form.id === "run-filters" && (input.name === "from" || input.name === "to") && input.value) {
      input.form.querySelectorAll('[name="period"]').forEach(function (r) { r.checked = false; });
    }
  }, true);
  // Removing a chip clears the matching controls, so the form and the table agree.
  document.addEventListener("click", function (event) {
    const chip = event.target.closest("[data-unset]");
    const form = document.getElementById("run-filters");
    if (!chip || !form) return;
    event.preventDefault();
    event.stopPropagation();
    const names = chip.dataset.unset === "*" ? null : (chip.dataset.unset === "period" ? ["period", "from", "to"] : [chip.dataset.unset]);
    form.querySelectorAll("input, select").forEach(function (field) {
      if (!field.name || field.name === "size") return;
      if (names && names.indexOf(field.name) < 0) return;
      if (field.type === "checkbox") field.checked = false;
      else if (field.type === "radio") field.checked = field.value === DEFAULTS[field.name];
      else field.value = "";
    });
    htmx.trigger(form, "change");
  }, true);
  // Searchable checkbox lists inside filter menus.
  document.addEventListener("input", function (event) {
    if (!event.target.matches("[data-filter-list]")) return;
    const needle = event.target.value.toLowerCase();
    event.target.parentElement.querySelectorAll(".check").forEach(function (label) {
      label.hidden = needle && label.textContent.toLowerCase().indexOf(needle) < 0;
    });
  });
  // Rows open their run when clicked anywhere that is not a control.
  document.addEventListener("click", function (event) {
    const row = event.target.closest("tr[data-href]");
    if (!row || event.target.closest("a, button, input, label, summary, details, select")) return;
    if (window.getSelection && String(window.getSelection())) return;  // selecting text
    if (event.metaKey || event.ctrlKey) window.open(row.dataset.href, "_blank");
    else window.location.href = row.dataset.href;
  });

  // Row selection for bulk actions: select all on the page, shift-click ranges.
  let lastChecked = null;
  document.addEventListener("click", function (event) {
    const box = event.target;
    if (!(box instanceof HTMLInputElement)) return;
    const table = box.closest("table");
    if (!table) return;
    const boxes = Array.from(table.querySelectorAll("tbody .row-select"));
    if (box.classList.contains("select-all")) {
      boxes.forEach(function (b) { b.checked = box.checked; b.dispatchEvent(new Event("change", { bubbles: true })); });
      return;
    }
    if (!box.classList.contains("row-select")) return;
    if (event.shiftKey && lastChecked && boxes.indexOf(lastChecked) >= 0) {
      const [a, b] = [boxes.indexOf(lastChecked), boxes.indexOf(box)].sort(function (x, y) { return x - y; });
      boxes.slice(a, b + 1).forEach(function (other) { other.checked = box.checked; other.dispatchEvent(new Event("change", { bubbles: true })); });
    }
    lastChecked = box;
  });

  // Run page: which events to show (kept per browser).
  document.addEventListener("change", function (event) {
    const select = event.target.closest("[data-event-filter]");
    if (!select) return;
    const table = document.querySelector(select.dataset.eventFilter);
    if (table) table.dataset.show = select.value;
    try { localStorage.setItem("runwatch.eventFilter", select.value); } catch (e) { /* private mode */ }
  });
  document.addEventListener("DOMContentLoaded", function () {
    const select = document.querySelector("[data-event-filter]");
    let saved = null;
    try { saved = localStorage.getItem("runwatch.eventFilter"); } catch (e) { /* private mode */ }
    if (select && saved && select.querySelector('option[value="' + saved + '"]')) {
      select.value = saved;
      select.dispatchEvent(new Event("change", { bubbles: true }));
    }
    const events = document.querySelector(".events-wrap");
    if (events) events.scrollTop = events.scrollHeight;
  });
  // Keep the log tail in view while new lines arrive, unless the reader scrolled up.
  document.addEventListener("htmx:oobBeforeSwap", function () {
    const wrap = document.querySelector(".events-wrap");
    if (wrap) wrap.dataset.atBottom = wrap.scrollHeight - wrap.scrollTop - wrap.clientHeight < 40 ? "1" : "";
  });
  document.addEventListener("htmx:oobAfterSwap", function () {
    const wrap = document.querySelector(".events-wrap");
    if (wrap && wrap.dataset.atBottom) wrap.scrollTop = wrap.scrollHeight;
  });

  // "Runs" in a run page's breadcrumb goes back to the list as it was filtered.
  function rememberList() {
    if (document.getElementById("run-filters") && /\/runs\/$/.test(location.pathname)) {
      try { sessionStorage.setItem("runwatch.list:" + location.pathname, location.pathname + location.search); } catch (e) { /* private mode */ }
    }
  }
  document.addEventListener("htmx:pushedIntoHistory", rememberList);
  document.addEventListener("DOMContentLoaded", function () {
    rememberList();
    document.querySelectorAll("a[data-back-to-list]").forEach(function (link) {
      let saved = null;
      try { saved = sessionStorage.getItem("runwatch.list:" + new URL(link.href).pathname); } catch (e) { /* private mode */ }
      if (saved) link.href = saved;
    });
  });

  // --- live feed indicator and snapshot refresh ---------------------------------------------
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
  // Each watch change is numbered and every message says which one it answers, so a
  // message meant for what the page showed before (rows of the previous page, a
  // snapshot already on its way) cannot overwrite the table htmx just swapped in.
  let watchNumber = 0;
  document.addEventListener("htmx:wsOpen", function (event) { liveSocket = event.detail.socketWrapper; watchNumber = 0; });
  document.addEventListener("htmx:wsClose", function () { liveSocket = null; });
  document.addEventListener("htmx:wsBeforeMessage", function (event) {
    const state = /<div id="live-state"[^>]*>/.exec(event.detail.message.slice(-400));
    const answers = state && /data-watch="(\d+)"/.exec(state[0]);
    if (!answers || Number(answers[1]) >= watchNumber) return;
    event.preventDefault();
    const seq = /data-seq="(\d+)" data-ack/.exec(state[0]);  // still acknowledge it
    if (seq && event.detail.socketWrapper) event.detail.socketWrapper.send(JSON.stringify({ ack: Number(seq[1]) }));
  });
  document.addEventListener("htmx:wsAfterMessage", function (event) {
    const state = document.getElementById("live-state");
    if (state && state.dataset.state) setLive(state.dataset.state, state.title);
    // Acknowledge when asked: the server sends a busy tab fewer, fresher updates
    // instead of queueing them (flow control, see docs/realtime.md).
    if (state && state.hasAttribute("data-ack") && event.detail.socketWrapper) {
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
    watchNumber += 1;
    liveSocket.send(JSON.stringify({ watch: location.pathname + location.search, n: watchNumber }));
  });
  // After a reconnect, re-fetch what the page shows: elements marked data-resync-url
  // are reloaded from that URL (their own partial), so nothing missed stays stale.
  document.addEventListener("runwatch:resync", function () {
    document.querySelectorAll("[data-resync-url]").forEach(function (el) {
      htmx.ajax("GET", el.dataset.resyncUrl, { target: el, swap: "outerHTML" });
    });
  });

  // --- keyboard shortcuts ---------------------------------------------------------------------
  function visible(el) { return el && el.offsetParent !== null && !el.closest("[hidden]"); }
  function moveCursor(step) {
    const rows = Array.from(document.querySelectorAll("tbody tr[data-href]")).filter(visible);
    if (!rows.length) return;
    const current = document.querySelector("tr.is-cursor");
    let index = rows.indexOf(current);
    index = index < 0 ? (step > 0 ? 0 : rows.length - 1) : Math.max(0, Math.min(rows.length - 1, index + step));
    if (current) current.classList.remove("is-cursor");
    rows[index].classList.add("is-cursor");
    cursorId = rows[index].id;
    rows[index].scrollIntoView({ block: "nearest" });
  }
  // Live updates replace rows: put the cursor back on the row it was on.
  let cursorId = null;
  function restoreCursor() {
    const row = cursorId && document.getElementById(cursorId);
    if (row && !row.classList.contains("is-cursor")) row.classList.add("is-cursor");
  }
  document.addEventListener("htmx:oobAfterSwap", restoreCursor);
  document.addEventListener("htmx:afterSettle", restoreCursor);
  // ...and keep its actions menu open (with the focused item) while a live update
  // replaces the row, or a running run's menu would close before Cancel can be picked.
  let openMenu = null;
  document.addEventListener("htmx:oobBeforeSwap", function () {
    const menu = document.querySelector("tr[id] details.row-menu[open]");
    const items = menu ? Array.from(menu.querySelectorAll(".menu-items > a, .menu-items > button")) : [];
    openMenu = menu ? { row: menu.closest("tr").id, item: items.indexOf(document.activeElement) } : null;
  });
  document.addEventListener("htmx:oobAfterSwap", function () {
    if (!openMenu) return;
    const row = document.getElementById(openMenu.row);
    const menu = row && row.querySelector("details.row-menu");
    if (!menu || menu.open) return;
    menu.open = true;
    fillRowMenu(menu);  // the toggle event that would build the items comes later
    const item = menu.querySelectorAll(".menu-items > a, .menu-items > button")[openMenu.item];
    if (item) item.focus({ preventScroll: true });  // a scroll would close the menu
  });
  document.addEventListener("htmx:wsAfterMessage", restoreCursor);
  let prefix = null;
  document.addEventListener("keydown", function (event) {
    const tag = (event.target.tagName || "").toLowerCase();
    if (event.key === "Escape") {
      document.querySelectorAll("details.menu[open]").forEach(function (m) { m.removeAttribute("open"); });
      if (tag === "input" && event.target.type === "search") event.target.blur();
      return;
    }
    if (tag === "input" || tag === "textarea" || tag === "select" || event.target.isContentEditable) return;
    if (event.metaKey || event.ctrlKey || event.altKey) return;
    if (document.querySelector("dialog[open]")) return;
    if (event.key === "/") {
      const search = document.querySelector("[data-search]");
      if (search) { event.preventDefault(); search.focus(); search.select(); }
      return;
    }
    if (prefix) {
      const link = document.querySelector('[data-hotkey="' + prefix + " " + event.key.toLowerCase() + '"]');
      prefix = null;
      if (link) { event.preventDefault(); link.click(); }
      return;
    }
    if (event.key === "g") { prefix = "g"; setTimeout(function () { prefix = null; }, 1200); return; }
    if (event.key === "j" || event.key === "ArrowDown" && document.querySelector("tr.is-cursor")) { event.preventDefault(); moveCursor(1); return; }
    if (event.key === "k" || event.key === "ArrowUp" && document.querySelector("tr.is-cursor")) { event.preventDefault(); moveCursor(-1); return; }
    if ((event.key === "Enter" || event.key === "o") && document.querySelector("tr.is-cursor")) {
      event.preventDefault();
      window.location.href = document.querySelector("tr.is-cursor").dataset.href;
      return;
    }
    const opener = document.querySelector('[data-hotkey-open="' + event.key + '"]');
    if (opener) { event.preventDefault(); opener.dataset.keyboardOpened = "1"; opener.open = true; opener.querySelector("summary").focus(); return; }
    const direct = Array.from(document.querySelectorAll('[data-hotkey="' + event.key + '"]')).find(function (el) { return el.offsetParent !== null || el.closest(".sidebar"); });
    if (direct) { event.preventDefault(); direct.click(); }
  });

  document.addEventListener("DOMContentLoaded", function () {
    refreshTimes();
    document.documentElement.dataset.appReady = "1";  // handlers bound (browser tests wait on it)
  });
})();
