// traefik-bluegreen status page: live updates from /events, actions with the operator token.
// No framework, no build step. The token lives in sessionStorage (this tab only) and is sent
// as a bearer header by fetch; the page never uses cookies.
"use strict";
(function () {
  var KEY = "bluegreen.token";
  var KINDS = ["switch", "promotion", "rollback", "canary", "container", "docker", "label_error", "resync"];
  var services = document.getElementById("services");
  var notice = document.getElementById("notice");
  var liveState = document.getElementById("live-state");
  var canAct = document.body.dataset.canAct === "yes";
  var refreshing = false;
  var again = false;

  function token() {
    try { return sessionStorage.getItem(KEY) || ""; } catch (e) { return ""; }
  }

  function say(text) { notice.textContent = text; }

  function applyMode() {
    var has = canAct && token() !== "";
    document.body.dataset.mode = has ? "operator" : "read-only";
    var actions = services.querySelectorAll(".actions");
    for (var i = 0; i < actions.length; i++) { actions[i].hidden = !has; }
    var mode = document.getElementById("mode");
    var forget = document.getElementById("token-forget");
    if (forget) { forget.hidden = !has; }
    if (mode && canAct) {
      mode.textContent = has
        ? "Operator mode: actions send the token from this tab."
        : "Read-only: enter the operator token to switch or roll back.";
    }
  }

  function tick() {
    var now = Date.now() / 1000;
    var spans = services.querySelectorAll(".countdown");
    for (var i = 0; i < spans.length; i++) {
      var left = parseFloat(spans[i].dataset.dueAt) - now;
      spans[i].textContent = left > 0 ? "due in " + left.toFixed(1) + " s" : "due now";
    }
  }

  // Events are wake-ups: re-read the server's rendering of the services, one request at a time.
  function refresh() {
    if (refreshing) { again = true; return; }
    refreshing = true;
    fetch("/ui/services", { headers: { Accept: "text/html" }, cache: "no-store" })
      .then(function (r) { if (!r.ok) { throw new Error("HTTP " + r.status); } return r.text(); })
      .then(function (html) {
        var focused = document.activeElement && document.activeElement.id;
        var open = [];
        var details = services.querySelectorAll("details[open]");
        for (var i = 0; i < details.length; i++) { open.push(details[i].closest(".container").dataset.id); }
        services.innerHTML = html;
        for (var j = 0; j < open.length; j++) {
          var d = services.querySelector('.container[data-id="' + open[j] + '"] details');
          if (d) { d.open = true; }
        }
        applyMode();
        tick();
        if (focused) { var el = document.getElementById(focused); if (el) { el.focus(); } }
      })
      .catch(function (e) { say("Could not refresh: " + e.message); })
      .then(function () {
        refreshing = false;
        if (again) { again = false; refresh(); }
      });
  }

  function follow() {
    if (!window.EventSource) { liveState.textContent = "unavailable (reload to update)"; return; }
    var source = new EventSource("/events");
    source.onopen = function () { liveState.textContent = "connected"; refresh(); };
    source.onerror = function () { liveState.textContent = "reconnecting…"; };
    for (var i = 0; i < KINDS.length; i++) { source.addEventListener(KINDS[i], refresh); }
  }

  function act(button) {
    var body = { service: button.dataset.service };
    if (button.dataset.action === "switch") { body.color = button.dataset.color; }
    button.disabled = true;
    say(button.textContent + "…");
    fetch("/" + button.dataset.action, {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: "Bearer " + token() },
      body: JSON.stringify(body),
      credentials: "omit",
    })
      .then(function (r) { return r.json().then(function (doc) { return { status: r.status, doc: doc }; }); })
      .then(function (res) {
        if (res.status === 200) {
          var d = res.doc;
          say(d.changed ? d.service + " switched: " + (d.previous || "?") + " → " + d.active
                        : d.service + " already serves " + d.active);
        } else if (res.status === 401) {
          say("The provider rejected the token (" + res.doc.detail + "). Enter it again.");
        } else {
          say("Refused (" + res.status + "): " + res.doc.detail);
        }
      })
      .catch(function (e) { say("Request failed: " + e.message); })
      .then(function () { button.disabled = false; refresh(); });
  }

  services.addEventListener("click", function (e) {
    var button = e.target.closest("button[data-action]");
    if (button) { act(button); }
  });

  var form = document.getElementById("token-form");
  if (form) {
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      var input = document.getElementById("token-input");
      var value = input.value.trim();
      input.value = "";
      if (value) { sessionStorage.setItem(KEY, value); say("Token kept for this tab."); }
      applyMode();
    });
    document.getElementById("token-forget").addEventListener("click", function () {
      sessionStorage.removeItem(KEY);
      say("Token forgotten; the page is read-only.");
      applyMode();
    });
  }

  applyMode();
  tick();
  setInterval(tick, 250);
  follow();
})();
