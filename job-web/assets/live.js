// Live refresh for the jobsmith dashboard. Every few seconds, while the tab is visible and live
// is on, fetch this same page again (same URL, so the filter stays) and swap in the parts marked
// `data-live`, keeping every checkbox the user ticked. The header's toggle pauses it; the choice
// is remembered in this browser. Without this script the pages work the same, just still.
(function () {
  "use strict";
  var KEY = "jobsmith-live";
  var toggle = document.getElementById("live-toggle");
  if (!toggle) {
    return;
  }
  var every = Number(document.body.getAttribute("data-live-ms")) || 3000;
  var paused = window.localStorage.getItem(KEY) === "off";
  function show() {
    toggle.textContent = paused ? "Live: paused" : "Live: on";
    toggle.setAttribute("aria-pressed", paused ? "false" : "true");
  }
  toggle.addEventListener("click", function () {
    paused = !paused;
    window.localStorage.setItem(KEY, paused ? "off" : "on");
    show();
  });
  show();
  function ticked(root) {
    var seen = {};
    root.querySelectorAll("input[type=checkbox]:checked").forEach(function (box) {
      seen[box.name + "=" + box.value] = true;
    });
    return seen;
  }
  function refresh() {
    if (paused || document.hidden) {
      return;
    }
    fetch(window.location.href, { credentials: "same-origin", headers: { "x-jobsmith-live": "1" } })
      .then(function (response) {
        return response.ok ? response.text() : null;
      })
      .then(function (html) {
        if (html === null) {
          return;
        }
        var fresh = new DOMParser().parseFromString(html, "text/html");
        document.querySelectorAll("[data-live]").forEach(function (old) {
          var next = fresh.getElementById(old.id);
          // Never pull a field out from under the user's cursor.
          if (!next || old.contains(document.activeElement)) {
            return;
          }
          var keep = ticked(old);
          next.querySelectorAll("input[type=checkbox]").forEach(function (box) {
            box.checked = keep[box.name + "=" + box.value] === true;
          });
          old.replaceWith(document.importNode(next, true));
        });
        document.body.setAttribute("data-refreshed", String(Date.now()));
      })
      .catch(function () {
        // A failed refresh leaves the page as it was; the next one tries again.
      });
  }
  window.setInterval(refresh, every);
})();
