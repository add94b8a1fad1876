// The idle-timeout warning (the GOV.UK Design System's timeout warning): before a session that
// has seen no request for a while ends, a dialog says so and offers to stay signed in. Staying
// asks the server to keep the session; doing nothing lets it end, and the page moves to the
// sign-in page that says why (so nothing is left on screen).
(function () {
  "use strict";
  var idle = Number(document.body.getAttribute("data-idle-seconds"));
  var dialog = document.getElementById("timeout-warning");
  var stay = document.getElementById("timeout-stay");
  var count = document.getElementById("timeout-count");
  if (!idle || !dialog || !stay || !count || typeof dialog.showModal !== "function") {
    return;
  }
  var warnBefore = Math.min(120, Math.floor(idle / 2));
  var warnTimer, endTimer, ticker, returnFocus;

  function words(seconds) {
    if (seconds >= 60) {
      var minutes = Math.ceil(seconds / 60);
      return minutes + (minutes === 1 ? " minute" : " minutes");
    }
    return seconds + (seconds === 1 ? " second" : " seconds");
  }

  function end() {
    window.location.href = "/console/sign-in?reason=timeout";
  }

  function warn() {
    var left = warnBefore;
    returnFocus = document.activeElement;
    count.textContent = words(left);
    dialog.showModal();
    stay.focus();
    ticker = setInterval(function () {
      left -= 1;
      if (left > 0) {
        count.textContent = words(left);
      }
    }, 1000);
  }

  function schedule() {
    clearTimeout(warnTimer);
    clearTimeout(endTimer);
    clearInterval(ticker);
    warnTimer = setTimeout(warn, (idle - warnBefore) * 1000);
    endTimer = setTimeout(end, idle * 1000);
  }

  stay.addEventListener("click", function () {
    fetch("/console/session/keep-alive", { credentials: "same-origin", cache: "no-store" })
      .then(function (response) {
        if (!response.ok) {
          end();
          return;
        }
        dialog.close();
        schedule();
        if (returnFocus && returnFocus.focus) {
          returnFocus.focus();
        }
      }, end);
  });
  // Escape means "stay", as in the GOV.UK pattern: it never signs anyone out by accident.
  dialog.addEventListener("cancel", function (event) {
    event.preventDefault();
    stay.click();
  });
  schedule();
})();
