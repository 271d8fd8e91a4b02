// traefik-bluegreen status page: live updates from /events, actions with the operator token.
// No framework, no build step. The operator token lives in sessionStorage (this tab only) and
// is sent as a bearer header by fetch; no cookie ever acts (with --read-token, an HttpOnly
// cookie only lets this page read).
"use strict";
(function () {
  var KEY = "bluegreen.token";
  var KINDS = ["switch", "promotion", "rollback", "canary", "container", "docker", "label_error", "release", "maintenance", "bake", "resync"];
  var services = document.getElementById("services");
  var notice = document.getElementById("notice");
  var liveState = document.getElementById("live-state");
  // Background re-reads report here, never in #notice: that holds the answer to the
  // operator's last action, which a failed refresh must not overwrite.
  var refreshState = document.getElementById("refresh-state");
  var canAct = document.body.dataset.canAct === "yes";
  var refreshing = false;
  var again = false;
  // Reconnecting /events ourselves: a browser's EventSource retries a dropped stream on its
  // own, but gives up for good (readyState CLOSED) on any answer but 200 (the provider's 503
  // too_many_clients, a proxy's 502 while the provider restarts, a 401 once a session ended).
  var BACKOFF_FIRST_MS = 1000;
  var BACKOFF_MAX_MS = 30000;
  var failures = 0;
  var lastEventId = "";

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
        refreshState.textContent = "";
        applyMode();
        tick();
        watchApplied();
        if (focused) { var el = document.getElementById(focused); if (el) { el.focus(); } }
      })
      .catch(function (e) {
        refreshState.textContent = e.message === "HTTP 401"
          ? "Signed out (the session ended): reload the page to sign in."
          : "Could not refresh: " + e.message + " (showing what was last read)";
      })
      .then(function () {
        refreshing = false;
        if (again) { again = false; refresh(); }
      });
  }

  // "Applied by Traefik" changes with no event (Traefik's probe reports it): while a
  // service waits for it, re-read once a second.
  var APPLIED_RECHECK_MS = 1000;
  var appliedTimer = null;
  function watchApplied() {
    if (appliedTimer !== null) { return; }
    if (!services.querySelector('[data-role="traefik"][data-applied="no"]')) { return; }
    appliedTimer = setTimeout(function () { appliedTimer = null; refresh(); }, APPLIED_RECHECK_MS);
  }

  function live(text) { liveState.textContent = text; }

  function follow() {
    if (!window.EventSource) { live("unavailable (reload to update)"); return; }
    var query = lastEventId ? "?last_event_id=" + encodeURIComponent(lastEventId) : "";
    var source = new EventSource("/events" + query);
    source.onopen = function () {
      failures = 0;
      live("connected");
      refresh(); // whatever happened while disconnected: re-read the server's rendering
    };
    source.onerror = function () {
      if (source.readyState === EventSource.CONNECTING) {
        live("disconnected; reconnecting…"); // the browser retries by itself
        return;
      }
      source.close();
      failures += 1;
      var wait = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * Math.pow(2, failures - 1));
      wait = wait / 2 + Math.random() * wait / 2; // jitter: pages do not retry in step
      live("disconnected; retrying in " + Math.ceil(wait / 1000) + " s");
      refresh(); // the stream is refused, the status may still answer: stay as fresh as it
      setTimeout(follow, wait);
    };
    function onEvent(e) {
      if (e.lastEventId) { lastEventId = e.lastEventId; }
      refresh();
    }
    for (var i = 0; i < KINDS.length; i++) { source.addEventListener(KINDS[i], onEvent); }
  }

  function outcome(action, d) {
    if (action === "canary/promote" || action === "canary/abort") {
      var c = d.canary || {};
      if (c.phase === "promoted") { return d.service + ": the " + c.color + " canary was promoted; " + d.active + " is active"; }
      if (c.phase === "aborted") { return d.service + ": the " + c.color + " canary was aborted (" + c.color + " rejected); " + d.active + " is active"; }
      return d.service + ": canary " + (c.phase || "ended") + "; " + d.active + " is active";
    }
    return d.changed ? d.service + " switched: " + (d.previous || "?") + " → " + d.active
                     : d.service + " already serves " + d.active;
  }

  function act(button) {
    var body = { service: button.dataset.service };
    // A rollback names the color the page shows as previous: if another operator moved
    // the service meanwhile, the provider refuses instead of rolling back somewhere else.
    var action = button.dataset.action;
    if (action === "switch" || action === "rollback") { body.color = button.dataset.color; }
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
          say(outcome(action, res.doc));
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
  watchApplied();
  setInterval(tick, 250);
  follow();
})();
