// The web console's only script: parts of a page marked data-refresh="seconds" reload themselves from the server
// (the same page, fetched again), so a push's page shows new confirmations without a click. Paused while the tab
// is hidden; a failed fetch just waits for the next turn.
(function () {
  "use strict";
  function refresh(el) {
    if (document.hidden) return;
    fetch(window.location.href, { credentials: "same-origin", headers: { "X-Refresh": "1" } })
      .then(function (r) { return r.ok && !r.redirected ? r.text() : null; })
      .then(function (html) {
        if (html === null) return;
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById(el.id);
        if (fresh) el.innerHTML = fresh.innerHTML;
      })
      .catch(function () {});
  }
  document.querySelectorAll("[data-refresh]").forEach(function (el) {
    var seconds = Math.max(2, parseInt(el.getAttribute("data-refresh"), 10) || 10);
    setInterval(function () { refresh(el); }, seconds * 1000);
  });
})();
