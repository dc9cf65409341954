// The scenario page's audience-link panel: the Copy button beside the URL shown once.
// Delegated, because htmx swaps the panel in after each create and revoke.
(() => {
  "use strict";

  function selectText(element) {
    const range = document.createRange();
    range.selectNodeContents(element);
    const selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }

  document.addEventListener("click", async (event) => {
    const button = event.target.closest("[data-copy]");
    if (!button) return;
    const source = document.getElementById(button.dataset.copy);
    const note = button.parentElement.querySelector("[data-copy-note]");
    if (!source) return;
    const text = source.textContent.trim();
    try {
      // Only in a secure context (https, or localhost): elsewhere, select it for Ctrl+C.
      await navigator.clipboard.writeText(text);
      if (note) note.textContent = "copied";
    } catch {
      selectText(source);
      if (note) note.textContent = "selected: press Ctrl+C (or ⌘C) to copy";
    }
  });
})();
