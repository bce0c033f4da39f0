// The inbox's only script: a Copy button for the draft reply. Everything else works without JavaScript.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  for (const button of document.querySelectorAll("button.copy[data-copy]")) {
    const source = document.getElementById(button.dataset.copy);
    if (!source || !navigator.clipboard) continue;
    button.hidden = false;
    button.addEventListener("click", async () => {
      try {
        await navigator.clipboard.writeText(source.value);
        button.textContent = "Copied";
      } catch (error) {
        source.select();
        button.textContent = "Press Ctrl+C to copy";
      }
    });
  }
});
