// OneDoor workbench: the little behaviour that htmx attributes do not cover.
// No inline script anywhere (the content security policy forbids it).
(function () {
  "use strict";

  function nextMemberIndex(button) {
    var rows = document.querySelectorAll("#members .member-row");
    var next = parseInt(button.getAttribute("data-next") || "0", 10);
    rows.forEach(function (row) {
      var i = parseInt(row.getAttribute("data-index"), 10);
      if (i >= next) { next = i + 1; }
    });
    button.setAttribute("data-next", String(next + 1));
    return next;
  }

  document.addEventListener("click", function (event) {
    var target = event.target;
    if (!(target instanceof Element)) { return; }
    if (target.id === "add-member") {
      var index = nextMemberIndex(target);
      htmx.ajax("GET", "/applications/new/member-row?index=" + index, { target: "#members", swap: "beforeend" })
        .then(function () {
          var row = document.querySelector('#members .member-row[data-index="' + index + '"] input');
          if (row) { row.focus(); }
        });
    } else if (target.classList.contains("remove-member")) {
      var row = target.closest(".member-row");
      if (row) {
        row.remove();
        var add = document.getElementById("add-member");
        if (add) { add.focus(); }
      }
    } else if (target.classList.contains("print-button")) {
      window.print();
    }
  });

  // The case view refreshes itself; keep an open timeline open across refreshes.
  document.addEventListener("htmx:beforeSwap", function (event) {
    var old = event.detail.target;
    if (old && old.id === "case-live") {
      var details = old.querySelector("details.timeline");
      window.__timelineOpen = !!(details && details.open);
    }
  });
  document.addEventListener("htmx:afterSwap", function (event) {
    var live = document.getElementById("case-live");
    if (live && window.__timelineOpen) {
      var details = live.querySelector("details.timeline");
      if (details) { details.open = true; }
    }
  });
})();
