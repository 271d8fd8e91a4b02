// traefik-bluegreen sign-in: POST the read token once; the provider answers with an
// HttpOnly session cookie (no script can read it) and the page reloads into the status.
"use strict";
(function () {
  var form = document.getElementById("login-form");
  var notice = document.getElementById("notice");
  form.addEventListener("submit", function (e) {
    e.preventDefault();
    var input = document.getElementById("login-token");
    var token = input.value.trim();
    input.value = "";
    fetch("/ui/login", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ token: token }),
      credentials: "same-origin",
    })
      .then(function (r) {
        if (r.ok) { window.location.reload(); return; }
        return r.json().then(function (doc) { notice.textContent = "Refused: " + doc.detail; });
      })
      .catch(function (err) { notice.textContent = "Request failed: " + err.message; });
  });
})();
