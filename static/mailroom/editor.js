// Template editor: tabs, merge-tag insertion and preview width. Plain DOM, no inline
// script (CSP); HTMX (loaded by Unfold) does the live preview.
(function () {
  "use strict";
  let active = null;

  function panes() { return document.querySelectorAll("[data-pane]"); }

  function show(name) {
    panes().forEach(function (pane) { pane.hidden = pane.dataset.pane !== name; });
    document.querySelectorAll("[data-tab]").forEach(function (tab) {
      tab.setAttribute("aria-selected", String(tab.dataset.tab === name));
      tab.classList.toggle("bg-primary-600", tab.dataset.tab === name);
      tab.classList.toggle("text-white", tab.dataset.tab === name);
    });
    active = document.querySelector('[data-pane="' + name + '"]');
  }

  document.addEventListener("DOMContentLoaded", function () {
    if (!document.querySelector("[data-testid=template-editor]")) { return; }
    show("body");
    document.addEventListener("click", function (event) {
      const tab = event.target.closest("[data-tab]");
      if (tab) { show(tab.dataset.tab); return; }
      const tag = event.target.closest("[data-merge-tag]");
      if (tag && active) {
        const text = "{{ " + tag.dataset.mergeTag + " }}";
        const start = active.selectionStart, end = active.selectionEnd;
        active.setRangeText(text, start, end, "end");
        active.focus();
        active.dispatchEvent(new Event("input", { bubbles: true }));
        return;
      }
      const width = event.target.closest("[data-width]");
      if (width) {
        const frame = document.querySelector("[data-testid=preview-frame]");
        if (frame) { frame.style.width = width.dataset.width + "px"; }
        document.body.dataset.previewWidth = width.dataset.width;
      }
    });
    // Keep the chosen width when HTMX swaps a new preview in.
    document.body.addEventListener("htmx:afterSettle", function () {
      const frame = document.querySelector("[data-testid=preview-frame]");
      if (frame && document.body.dataset.previewWidth) { frame.style.width = document.body.dataset.previewWidth + "px"; }
    });
  });
})();
