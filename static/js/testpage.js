// The Test page: JSON editors (syntax check with line/column as you type, pretty-format,
// size against the limit), tag chips, keyboard shortcuts, a guard against running with
// invalid input. The server validates everything again; this only makes mistakes visible
// before a round trip. No framework, no build step.
(function () {
  "use strict";

  // --- JSON: a checker that says where and what, a formatter that keeps literals -------

  const WS = { " ": 1, "\t": 1, "\n": 1, "\r": 1 };
  const ESCAPES = { '"': 1, "\\": 1, "/": 1, b: 1, f: 1, n: 1, r: 1, t: 1 };
  const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
  const WORD = /[A-Za-z_$][\w$]*/y;
  const NOT_JSON_WORDS = {
    True: "Use true (JSON literals are lowercase)",
    False: "Use false (JSON literals are lowercase)",
    None: "Use null (JSON has no None)",
    NaN: "NaN is not a JSON value",
    Infinity: "Infinity is not a JSON value",
    undefined: "undefined is not a JSON value: use null",
  };

  // Returns null when `text` is valid JSON (or blank), else {message, offset}.
  // Iterative, so deep nesting cannot overflow the stack.
  function checkJson(text) {
    const n = text.length;
    const stack = []; // open containers: {close, at}
    let i = 0;
    let expect = "value"; // value | key | colon | next
    let opened = false; // right after "{" or "[": the closing bracket is allowed
    const fail = function (message, at) { return { message: message, offset: at === undefined ? i : at }; };
    const found = function () { return i >= n ? "the end of the text" : "'" + text[i] + "'"; };

    function scanString() {
      const start = i;
      let j = i + 1;
      while (j < n) {
        const code = text.charCodeAt(j);
        if (code === 34) { i = j + 1; return null; }
        if (code === 92) {
          const e = text[j + 1];
          if (e === "u") {
            if (!/^[0-9a-fA-F]{4}$/.test(text.substr(j + 2, 4))) return fail("Invalid \\u escape: it needs four hex digits", j);
            j += 6;
            continue;
          }
          if (!ESCAPES[e]) return fail("Invalid escape '\\" + (e === undefined ? "" : e) + "' in a string", j);
          j += 2;
          continue;
        }
        if (code < 0x20) {
          return fail(code === 10 ? "Line break inside a string: close the string or write \\n" : "Control character inside a string: escape it", j);
        }
        j++;
      }
      return fail("Unterminated string: a closing \" is missing", start);
    }

    function scanValue(c) {
      if (c === '"') return scanString();
      if (c === "-" || (c >= "0" && c <= "9")) {
        NUMBER.lastIndex = i;
        const match = NUMBER.exec(text);
        const end = match ? i + match[0].length : i;
        if (!match || /[\w.+-]/.test(text[end] || "")) {
          const token = /[\w.+-]+/y;
          token.lastIndex = i;
          return fail("Invalid number '" + (token.exec(text) || [c])[0] + "'");
        }
        i = end;
        return null;
      }
      WORD.lastIndex = i;
      const word = WORD.exec(text);
      if (word) {
        if (word[0] === "true" || word[0] === "false" || word[0] === "null") { i += word[0].length; return null; }
        return fail(NOT_JSON_WORDS[word[0]] || "Expected a value, found '" + word[0] + "' (strings need double quotes)");
      }
      if (c === "'") return fail("Strings need double quotes, not single quotes");
      if (c === "/") return fail("Comments are not allowed in JSON");
      return fail(i >= n ? "Unexpected end of the text: a value is missing" : "Expected a value, found " + found());
    }

    while (i < n && WS[text[i]]) i++;
    if (i >= n) return null; // blank counts as {} (the server agrees)
    for (;;) {
      while (i < n && WS[text[i]]) i++;
      const c = text[i];
      const top = stack[stack.length - 1];
      if (expect === "value" || expect === "key") {
        if (top && c === top.close) {
          if (!opened) return fail("Trailing comma before '" + c + "'");
          stack.pop();
          i++;
          opened = false;
          expect = "next";
          continue;
        }
        opened = false;
        if (expect === "key") {
          if (c !== '"') {
            return fail(c === "'" ? "Property names need double quotes, not single quotes"
              : i >= n ? "Unexpected end of the text: a property name is missing"
              : "Expected a property name in double quotes, found " + found());
          }
          const error = scanString();
          if (error) return error;
          expect = "colon";
          continue;
        }
        if (c === "{" || c === "[") {
          stack.push({ close: c === "{" ? "}" : "]", at: i });
          i++;
          opened = true;
          expect = c === "{" ? "key" : "value";
          continue;
        }
        const error = scanValue(c);
        if (error) return error;
        expect = "next";
        continue;
      }
      if (expect === "colon") {
        if (c !== ":") return fail("Expected ':' after the property name, found " + found());
        i++;
        expect = "value";
        continue;
      }
      // expect === "next": after a complete value
      if (!top) return i >= n ? null : fail("Unexpected " + found() + " after the end of the JSON value");
      if (c === ",") { i++; expect = top.close === "}" ? "key" : "value"; continue; }
      if (c === top.close) { stack.pop(); i++; continue; }
      if (i >= n) {
        const where = position(text, top.at);
        return fail("Missing '" + top.close + "' to close the '" + text[top.at] + "' at line " + where.line + ", column " + where.column);
      }
      return fail(top.close === "}" ? "Expected ',' or '}' after a property value, found " + found()
        : "Expected ',' or ']' after an array item, found " + found());
    }
  }

  function position(text, offset) {
    let line = 1, lineStart = 0;
    for (let k = text.indexOf("\n"); k !== -1 && k < offset; k = text.indexOf("\n", k + 1)) {
      line++;
      lineStart = k + 1;
    }
    return { line: line, column: offset - lineStart + 1 };
  }

  // Re-indent valid JSON token by token: numbers and strings are copied as written, so
  // big integers and escapes survive (JSON.parse + stringify would round 2^53+ numbers).
  // indent 0 gives the compact form the server stores and measures.
  function formatJson(text, indent) {
    const out = [];
    const n = text.length;
    let depth = 0, i = 0;
    const newline = function () { return indent ? "\n" + " ".repeat(depth * indent) : ""; };
    while (i < n) {
      const c = text[i];
      if (WS[c]) { i++; continue; }
      if (c === '"') {
        let j = i + 1;
        while (j < n && text[j] !== '"') j += text[j] === "\\" ? 2 : 1;
        out.push(text.slice(i, j + 1));
        i = j + 1;
        continue;
      }
      if (c === "{" || c === "[") {
        let j = i + 1;
        while (j < n && WS[text[j]]) j++;
        const close = c === "{" ? "}" : "]";
        if (text[j] === close) { out.push(c + close); i = j + 1; continue; }
        depth++;
        out.push(c + newline());
        i++;
        continue;
      }
      if (c === "}" || c === "]") { depth--; out.push(newline() + c); i++; continue; }
      if (c === ",") { out.push("," + newline()); i++; continue; }
      if (c === ":") { out.push(indent ? ": " : ":"); i++; continue; }
      let j = i;
      while (j < n && !WS[text[j]] && ",:{}[]\"".indexOf(text[j]) === -1) j++;
      out.push(text.slice(i, j));
      i = j;
    }
    return out.join("");
  }

  const encoder = new TextEncoder();
  function formatBytes(bytes) {
    if (bytes < 1024) return bytes + " B";
    if (bytes < 1024 * 1024) return (bytes / 1024).toFixed(1) + " KB";
    return (bytes / 1024 / 1024).toFixed(2) + " MB";
  }

  // --- editors ----------------------------------------------------------------------

  // state per textarea: {ok, error, bytes, over}
  function analyse(textarea) {
    const text = textarea.value;
    const error = checkJson(text);
    const label = textarea.dataset.json === "metadata" ? "Metadata" : "Payload";
    if (error) {
      const where = position(text, error.offset);
      return { ok: false, offset: error.offset, line: where.line, message: "Invalid JSON at line " + where.line + ", column " + where.column + ": " + error.message };
    }
    const compact = text.trim() ? formatJson(text, 0) : "{}";
    if (textarea.hasAttribute("data-object") && compact[0] !== "{") {
      return { ok: false, message: label + " must be a JSON object", bytes: encoder.encode(compact).length };
    }
    const bytes = encoder.encode(compact).length;
    const limit = Number(textarea.dataset.limit);
    if (bytes > limit) {
      return { ok: false, over: true, bytes: bytes, message: label + " exceeds the maximum size of " + textarea.dataset.limitText + " (it is " + formatBytes(bytes) + ")" };
    }
    return { ok: true, bytes: bytes, message: "Valid JSON" + (text.trim() ? "" : " (empty means {})") };
  }

  function renderEditor(textarea) {
    const result = analyse(textarea);
    textarea._state = result;
    const editor = textarea.closest("[data-editor]");
    const status = editor.querySelector("[data-status]");
    status.classList.toggle("is-bad", !result.ok);
    status.classList.toggle("is-good", result.ok);
    status.textContent = result.message;
    if (result.offset !== undefined) {
      const jump = document.createElement("button");
      jump.type = "button";
      jump.className = "link";
      jump.textContent = "Go to error";
      jump.addEventListener("click", function () {
        textarea.focus();
        textarea.setSelectionRange(result.offset, Math.min(result.offset + 1, textarea.value.length));
        scrollToLine(textarea, result.line);
      });
      status.append(" ", jump);
    }
    textarea.setAttribute("aria-invalid", result.ok ? "false" : "true");
    const tab = document.getElementById("tab-" + textarea.dataset.json);
    if (tab) tab.classList.toggle("is-bad", !result.ok);
    renderGutter(textarea, result.ok ? null : result.line);
    renderMeter();
  }

  function scrollToLine(textarea, line) {
    const lineHeight = parseFloat(getComputedStyle(textarea).lineHeight) || 18;
    textarea.scrollTop = Math.max(0, (line - 3) * lineHeight);
  }

  function renderGutter(textarea, badLine) {
    const gutter = textarea.closest(".editor-body").querySelector(".editor-gutter");
    if (!gutter) return;
    let lines = 1;
    for (let k = textarea.value.indexOf("\n"); k !== -1; k = textarea.value.indexOf("\n", k + 1)) lines++;
    if (gutter._lines !== lines || gutter._bad !== badLine) {
      const parts = [];
      for (let k = 1; k <= lines; k++) parts.push(k === badLine ? "\u0000" + k + "\u0000" : String(k));
      gutter.textContent = "";
      // Only the bad line gets an element; the rest stays one text node (cheap at 100k lines).
      parts.join("\n").split("\u0000").forEach(function (chunk, index) {
        if (index % 2 === 1) {
          const mark = document.createElement("span");
          mark.className = "is-bad-line";
          mark.textContent = chunk;
          gutter.append(mark);
        } else {
          gutter.append(chunk);
        }
      });
      gutter.append("\n\n"); // room for the textarea's horizontal scrollbar
      gutter._lines = lines;
      gutter._bad = badLine;
    }
    gutter.scrollTop = textarea.scrollTop;
  }

  function activeTextarea() {
    const panel = document.querySelector("[data-editor]:not([hidden])");
    return panel && panel.querySelector("textarea[data-json]");
  }

  function renderMeter() {
    const meter = document.querySelector("[data-size-meter]");
    const textarea = activeTextarea();
    if (!meter || !textarea || !textarea._state) return;
    const bytes = textarea._state.bytes;
    const limit = Number(textarea.dataset.limit);
    meter.textContent = "";
    meter.classList.toggle("is-over", bytes > limit);
    meter.classList.toggle("is-near", bytes <= limit && bytes > limit * 0.8);
    if (bytes === undefined) {
      meter.textContent = "max " + textarea.dataset.limitText;
      return;
    }
    const bar = document.createElement("span");
    bar.className = "size-bar";
    const fill = document.createElement("i");
    fill.style.width = Math.min(100, (bytes / limit) * 100).toFixed(1) + "%";
    bar.append(fill);
    meter.append(bar, formatBytes(bytes) + " of " + textarea.dataset.limitText);
  }

  function initEditor(textarea) {
    if (textarea._ready) return;
    textarea._ready = true;
    let timer = null;
    textarea.addEventListener("input", function () {
      clearTimeout(timer);
      // Big documents are checked once typing pauses; small ones at once.
      timer = setTimeout(function () { renderEditor(textarea); }, textarea.value.length > 200000 ? 300 : 60);
    });
    textarea.addEventListener("scroll", function () {
      const gutter = textarea.closest(".editor-body").querySelector(".editor-gutter");
      if (gutter) gutter.scrollTop = textarea.scrollTop;
    });
    textarea.addEventListener("keydown", function (event) {
      // Tab indents inside the editor; Escape then Tab leaves it (keyboard users are not trapped).
      if (event.key === "Escape") { textarea._escaped = true; return; }
      if (event.key === "Tab" && !event.shiftKey && !textarea._escaped && !event.ctrlKey && !event.metaKey) {
        event.preventDefault();
        document.execCommand("insertText", false, "  ");
      }
      if (event.key !== "Tab") textarea._escaped = false;
    });
    // A server-side error stays visible until the text changes.
    if (!textarea.closest("[data-editor]").querySelector(".editor-status.is-bad")) renderEditor(textarea);
    else {
      textarea._state = analyse(textarea);
      renderGutter(textarea, textarea._state.ok ? null : textarea._state.line);
      const tab = document.getElementById("tab-" + textarea.dataset.json);
      if (tab) tab.classList.add("is-bad");
    }
  }

  function formatActive() {
    const textarea = activeTextarea();
    if (!textarea) return;
    const error = checkJson(textarea.value);
    if (error) { renderEditor(textarea); textarea.focus(); return; }
    const pretty = textarea.value.trim() ? formatJson(textarea.value, 2) : "{}";
    textarea.focus();
    textarea.select();
    // insertText keeps the browser's undo history (Ctrl+Z restores the original).
    if (!document.execCommand("insertText", false, pretty)) textarea.value = pretty;
    textarea.setSelectionRange(0, 0);
    textarea.scrollTop = 0;
    renderEditor(textarea);
  }

  function selectTab(name, focus) {
    document.querySelectorAll("[data-tab]").forEach(function (tab) {
      const on = tab.dataset.tab === name;
      tab.setAttribute("aria-selected", on ? "true" : "false");
      tab.tabIndex = on ? 0 : -1;
      if (on && focus) tab.focus();
    });
    document.querySelectorAll("[data-editor]").forEach(function (panel) {
      panel.hidden = panel.dataset.editor !== name;
    });
    const textarea = activeTextarea();
    if (textarea) renderGutter(textarea, textarea._state && !textarea._state.ok ? textarea._state.line : null);
    renderMeter();
  }

  // --- tags as chips ----------------------------------------------------------------

  function initTags(field) {
    if (field._ready) return;
    field._ready = true;
    const form = document.getElementById("test-form");
    const max = Number(form.dataset.maxTags);
    const maxLength = Number(form.dataset.maxTagLength);
    const box = field.querySelector("[data-tag-box]");
    const entry = field.querySelector("[data-tag-entry]");
    const count = field.querySelector("[data-tag-count]");
    const errorLine = field.querySelector("[data-tag-error]");

    const current = function () {
      return Array.from(box.querySelectorAll("[data-tag-chip] input")).map(function (input) { return input.value; });
    };
    const showError = function (message) {
      errorLine.textContent = message || "";
      errorLine.hidden = !message;
      field.classList.toggle("has-error", !!message);
    };
    const update = function () {
      const n = current().length;
      count.textContent = n + "/" + max;
      count.classList.toggle("is-over", n > max);
    };

    // Adds the comma-separated tags in `text`; false (with a message) when one breaks a rule.
    field.commit = function () {
      const text = entry.value;
      if (!text.trim()) { showError(""); return true; }
      const tags = current();
      const pending = [];
      for (const raw of text.split(",")) {
        const tag = raw.trim();
        if (!tag || tags.indexOf(tag) !== -1 || pending.indexOf(tag) !== -1) continue;
        if (tag.length > maxLength) { showError("Tags must be less than " + maxLength + " characters (this one has " + tag.length + ")"); return false; }
        pending.push(tag);
      }
      if (tags.length + pending.length > max) {
        showError("Runs can only have " + max + " tags, you're trying to set " + (tags.length + pending.length) + ".");
        return false;
      }
      pending.forEach(function (tag) { box.insertBefore(chip(tag), entry); });
      entry.value = "";
      showError("");
      update();
      entry.dispatchEvent(new Event("change", { bubbles: true }));
      return true;
    };

    function chip(tag) {
      const element = document.createElement("span");
      element.className = "tag-chip";
      element.setAttribute("data-tag-chip", "");
      const label = document.createElement("span");
      label.className = "tag-text";
      label.textContent = tag;
      const remove = document.createElement("button");
      remove.type = "button";
      remove.className = "tag-remove";
      remove.setAttribute("data-remove-tag", "");
      remove.setAttribute("aria-label", "Remove tag " + tag);
      remove.innerHTML = '<svg class="icon" aria-hidden="true"><use href="#i-x"></use></svg>';
      const input = document.createElement("input");
      input.type = "hidden";
      input.name = "tags";
      input.value = tag;
      input.setAttribute("form", "test-form");
      element.append(label, remove, input);
      return element;
    }

    entry.addEventListener("keydown", function (event) {
      if (event.key === "Enter" && !event.ctrlKey && !event.metaKey) {
        event.preventDefault();
        field.commit();
      } else if (event.key === "," ) {
        event.preventDefault();
        field.commit();
      } else if (event.key === "Backspace" && !entry.value) {
        const chips = box.querySelectorAll("[data-tag-chip]");
        if (chips.length) { chips[chips.length - 1].remove(); showError(""); update(); }
      }
    });
    entry.addEventListener("input", function () {
      if (entry.value.indexOf(",") !== -1) field.commit(); // pasted a list
    });
    entry.addEventListener("blur", function () { field.commit(); });
    box.addEventListener("click", function (event) {
      const remove = event.target.closest("[data-remove-tag]");
      if (remove) {
        remove.closest("[data-tag-chip]").remove();
        showError("");
        update();
        entry.dispatchEvent(new Event("change", { bubbles: true }));
      }
      entry.focus();
    });
    update();
  }

  // --- the form: guard, dirty state, keyboard ----------------------------------------

  // Once the form has unsaved edits, loading a previous run or a template asks first
  // (through hx-confirm, which app.js shows as the dashboard's confirmation dialog).
  function markDirty(dirty) {
    document.querySelectorAll("[data-loads-form]").forEach(function (link) {
      if (!dirty) { link.removeAttribute("hx-confirm"); return; }
      link.setAttribute("hx-confirm", "Your unsaved changes to the payload, metadata and options will be replaced.");
      link.dataset.confirmTitle = "Discard your changes?";
      link.dataset.confirmAction = "Discard changes";
    });
  }

  function initForm(form) {
    if (form._ready) return;
    form._ready = true;
    markDirty(false);
    const workspace = document.getElementById("test-workspace");
    const edited = function (event) {
      if (event.target.form === form) markDirty(true);
    };
    workspace.addEventListener("input", edited);
    workspace.addEventListener("change", edited);

    form.addEventListener("submit", function (event) {
      const saving = event.submitter && event.submitter.hasAttribute("data-save-template");
      const problem = firstProblem(saving);
      if (problem) {
        event.preventDefault();
        problem();
        return;
      }
      if (form._submitting) { event.preventDefault(); return; }
      form._submitting = true;
      markDirty(false);
      const button = saving ? event.submitter : document.querySelector("[data-run-test]");
      // Disable after the browser has read the submitter (a disabled one would not count).
      setTimeout(function () {
        button.disabled = true;
        button.classList.add("is-busy");
        if (!saving) button.querySelector("[data-run-label]").textContent = "Running…";
      }, 0);
    });
  }

  // The first thing that stops the form from being sent, as a function that shows it.
  function firstProblem(saving) {
    const tags = document.querySelector("[data-tags]");
    if (tags && tags.commit && !tags.commit()) return function () { tags.querySelector("[data-tag-entry]").focus(); };
    for (const textarea of document.querySelectorAll("textarea[data-json]")) {
      renderEditor(textarea);
      if (!textarea._state.ok) {
        return function () {
          selectTab(textarea.dataset.json);
          textarea.focus();
          if (textarea._state.offset !== undefined) {
            textarea.setSelectionRange(textarea._state.offset, textarea._state.offset);
            scrollToLine(textarea, textarea._state.line);
          }
        };
      }
    }
    const name = document.querySelector("[data-template-name]");
    if (saving && name && !name.value.trim()) {
      return function () {
        name.closest(".template-save").classList.add("has-error");
        name.focus();
      };
    }
    return null;
  }

  function submitWith(selector) {
    const form = document.getElementById("test-form");
    const button = document.querySelector(selector);
    if (form && button && !button.disabled) form.requestSubmit(button);
  }

  function typing(target) {
    const tag = (target.tagName || "").toLowerCase();
    return tag === "input" || tag === "textarea" || tag === "select" || target.isContentEditable;
  }

  document.addEventListener("keydown", function (event) {
    if (!document.getElementById("test-form")) return;
    const mod = event.ctrlKey || event.metaKey;
    if (mod && event.key === "Enter") {
      event.preventDefault();
      submitWith("[data-run-test]");
      return;
    }
    if (event.shiftKey && event.altKey && (event.code === "KeyF")) {
      event.preventDefault();
      formatActive();
      return;
    }
    const target = event.target;
    // Enter in an option field must not run the test (only Ctrl/Cmd+Enter does).
    if (event.key === "Enter" && target.matches && target.matches("input[form=test-form]:not([type=hidden])")) {
      event.preventDefault();
      if (target.hasAttribute("data-template-name")) submitWith("[data-save-template]");
      return;
    }
    if (event.key === "/" && !typing(target) && !mod) {
      const switcher = document.querySelector("[data-task-switcher]");
      if (switcher) {
        event.preventDefault();
        switcher.open = true;
        switcher.querySelector("[data-filter-input]").focus();
      }
    }
  });

  document.addEventListener("click", function (event) {
    const tab = event.target.closest("[data-tab]");
    if (tab) { selectTab(tab.dataset.tab); return; }
    if (event.target.closest("[data-format]")) formatActive();
  });

  document.addEventListener("keydown", function (event) {
    const tab = event.target.closest && event.target.closest("[role=tab][data-tab]");
    if (!tab || (event.key !== "ArrowRight" && event.key !== "ArrowLeft")) return;
    const tabs = Array.from(document.querySelectorAll("[role=tab][data-tab]"));
    const next = tabs[(tabs.indexOf(tab) + (event.key === "ArrowRight" ? 1 : tabs.length - 1)) % tabs.length];
    selectTab(next.dataset.tab, true);
  });

  // Opening "Rename" puts the cursor in the name; Escape closes it again.
  document.addEventListener("toggle", function (event) {
    const rename = event.target;
    if (!rename.matches || !rename.matches(".template-rename") || !rename.open) return;
    const input = rename.querySelector("input[name=name]");
    input.focus();
    input.select();
  }, true);
  document.addEventListener("keydown", function (event) {
    const rename = event.key === "Escape" && event.target.closest && event.target.closest(".template-rename[open]");
    if (!rename) return;
    rename.open = false;
    rename.querySelector("summary").focus();
  });

  // Back from the run page (bfcache): the form is usable again.
  window.addEventListener("pageshow", function (event) {
    if (!event.persisted) return;
    const form = document.getElementById("test-form");
    if (form) form._submitting = false;
    document.querySelectorAll("[data-run-test], [data-save-template]").forEach(function (button) {
      button.disabled = false;
      button.classList.remove("is-busy");
    });
    const label = document.querySelector("[data-run-label]");
    if (label) label.textContent = "Run test";
  });

  // --- task pickers: the header's switcher and the /test/ list --------------------------

  function initFilterList(list) {
    if (list._ready) return;
    list._ready = true;
    const input = list.querySelector("[data-filter-input]");
    const items = Array.from(list.querySelectorAll("[data-filter-text]"));
    const empty = list.querySelector(".switcher-empty");
    const visible = function () { return items.filter(function (item) { return !item.hidden; }); };
    input.addEventListener("input", function () {
      const words = input.value.toLowerCase().split(/\s+/).filter(Boolean);
      items.forEach(function (item) {
        const text = item.dataset.filterText.toLowerCase();
        item.hidden = !words.every(function (word) { return text.indexOf(word) !== -1; });
      });
      if (empty) empty.hidden = visible().length > 0;
    });
    list.addEventListener("keydown", function (event) {
      const shown = visible();
      const index = shown.indexOf(document.activeElement);
      if (event.key === "ArrowDown" || event.key === "ArrowUp") {
        event.preventDefault();
        const step = event.key === "ArrowDown" ? 1 : -1;
        const next = index === -1 ? (step > 0 ? shown[0] : shown[shown.length - 1]) : shown[index + step];
        if (next) next.focus();
        else if (step < 0) input.focus();
      } else if (event.key === "Enter" && document.activeElement === input && shown.length) {
        event.preventDefault();
        shown[0].click();
      }
    });
  }

  function initTaskList(input) {
    if (input._ready) return;
    input._ready = true;
    const rows = function () { return Array.from(document.querySelectorAll(".test-task-link")); };
    const open = function () { const first = rows()[0]; if (first) first.click(); };
    // Enter opens the first task listed for what was typed: typed faster than the
    // search's debounce, the list still shows the previous search, so search now and wait.
    const openWhenListed = function () {
      const wanted = input.value.trim();
      const listed = function () {
        const list = document.getElementById("test-task-list");
        return list && list.dataset.query === wanted;
      };
      if (listed()) { open(); return; }
      const wait = function () {
        if (!listed()) return;
        document.body.removeEventListener("htmx:afterSettle", wait);
        open();
      };
      document.body.addEventListener("htmx:afterSettle", wait);
      if (!input.classList.contains("htmx-request")) htmx.trigger(input, "search");
    };
    input.addEventListener("keydown", function (event) {
      if (event.key === "Enter") {
        event.preventDefault();
        openWhenListed();
      } else if (event.key === "ArrowDown") {
        event.preventDefault();
        const first = rows()[0];
        if (first) first.focus();
      }
    });
    document.addEventListener("keydown", function (event) {
      const links = rows();
      const index = links.indexOf(document.activeElement);
      if (index === -1 || (event.key !== "ArrowDown" && event.key !== "ArrowUp")) return;
      event.preventDefault();
      const next = links[index + (event.key === "ArrowDown" ? 1 : -1)];
      if (next) next.focus();
      else if (event.key === "ArrowUp") input.focus();
    });
  }

  // --- wiring: on load and after every htmx swap ----------------------------------------

  function init(root) {
    const scope = root && root.querySelectorAll ? root : document;
    const each = function (selector, fn) {
      if (scope.matches && scope.matches(selector)) fn(scope);
      scope.querySelectorAll(selector).forEach(fn);
    };
    each("#test-form", initForm);
    each("textarea[data-json]", initEditor);
    each("[data-tags]", initTags);
    each("[data-filter-list]", initFilterList);
    each("[data-test-search]", initTaskList);
    renderMeter();
    const mac = /Mac|iPhone|iPad/.test(navigator.platform || navigator.userAgent);
    document.querySelectorAll("[data-mod-key]").forEach(function (key) { key.textContent = mac ? "⌘" : "Ctrl"; });
  }

  document.addEventListener("htmx:load", function (event) { init(event.detail.elt); });
  document.addEventListener("htmx:historyRestore", function () { init(document); });
  document.addEventListener("DOMContentLoaded", function () { init(document); });

  // For tests and the curious: the checker and formatter are pure functions.
  window.runwatchJson = { check: checkJson, format: formatJson, position: position };
})();
