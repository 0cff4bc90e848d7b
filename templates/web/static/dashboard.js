// Keyboard shortcuts on the queue: j/k move between letters, a/r/e act on the current one,
// ? shows the help. Keys typed into a form field are left alone. No other script runs.
(function () {
  "use strict";
  var list = document.querySelector("[data-keyboard=queue]");
  var help = document.getElementById("shortcuts");
  var current = -1;

  function letters() {
    return list ? Array.prototype.slice.call(list.querySelectorAll("article.letter")) : [];
  }

  function select(index) {
    var all = letters();
    if (!all.length) return null;
    current = Math.max(0, Math.min(index, all.length - 1));
    all.forEach(function (letter, i) { letter.classList.toggle("current", i === current); });
    all[current].focus({ preventScroll: true });
    all[current].scrollIntoView({ block: "start", behavior: "smooth" });
    return all[current];
  }

  function act(shortcut) {
    // Acting on a letter needs one selected first, so a stray key never decides by itself.
    if (current < 0) { select(0); return; }
    var control = letters()[current].querySelector('[data-shortcut="' + shortcut + '"]');
    if (!control) return;
    if (control.tagName === "SELECT") { control.focus(); } else { control.click(); }
  }

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.target.closest && event.target.closest("input, textarea, select, button, [contenteditable]")) return;
    var key = event.key;
    if (key === "?" && help) { help.open = !help.open; event.preventDefault(); return; }
    if (!list) return;
    if (key === "j") { select(current + 1); }
    else if (key === "k") { select(current - 1); }
    else if (key === "a" || key === "r" || key === "e") { act(key); }
    else { return; }
    event.preventDefault();
  });
})();
