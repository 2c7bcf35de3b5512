// Twoway's only custom script. htmx does the rest.
//
// The Content-Security-Policy allows scripts from this site's files only: no inline script, no
// hx-on, no eval (htmx's allowEval is off). What pages would otherwise write inline is here.
//
// Keep the live-events URL at the last event this page applied, so that when htmx re-creates
// the event stream (after the server refused it for a while) it resumes from there instead of
// the page's render time: no event is lost, none is applied twice. (The browser's own
// reconnects already send Last-Event-ID; htmx's re-created connections can't.)
document.addEventListener("htmx:sseMessage", function (event) {
  var id = event.detail && event.detail.lastEventId;
  var source = event.target.closest("[sse-connect]");
  if (!id || !source) return;
  var url = new URL(source.getAttribute("sse-connect"), location.href);
  url.searchParams.set("last_event_id", id);
  source.setAttribute("sse-connect", url.pathname + url.search);
});

// An event stream message on an element marked data-sse-reload loads the page again: the
// server sends `session.changed` when this page's session ended (signed out here or elsewhere,
// removed from the team) or its role changed, and the page shows the sign-in page or the new
// role's rights. Not while the page is already leaving: its own sign-out form is on its way.
var leaving = false;
window.addEventListener("beforeunload", function () { leaving = true; });
window.addEventListener("pageshow", function () { leaving = false; });
document.addEventListener("htmx:sseBeforeMessage", function (event) {
  if (!event.target.hasAttribute("data-sse-reload")) return;
  event.preventDefault();
  // A GET of this address, even when the page came from a form's POST.
  if (!leaving) location.replace(location.pathname + location.search);
});

// The stream says events this page missed are no longer kept: reload to show the current
// state, instead of swapping the `reset` message into the page.
document.addEventListener("htmx:sseBeforeMessage", function (event) {
  if (!event.detail || event.detail.type !== "reset") return;
  event.preventDefault();
  location.reload();
});

// A live fragment of one client's card (data-sse-client-id="<id>") is fetched again only for
// events about that client: their data is JSON with a client_id. (An hx-trigger filter would
// say the same, but htmx evaluates filters as code, which the policy refuses.)
document.addEventListener("htmx:confirm", function (event) {
  var wanted = event.detail.elt.getAttribute("data-sse-client-id");
  var trigger = event.detail.triggeringEvent;
  if (wanted === null || !trigger || trigger.type.indexOf("sse:") !== 0) return;
  var about;
  try {
    about = JSON.parse(trigger.detail.data).client_id;
  } catch (error) {
    about = undefined;
  }
  if (String(about) !== wanted) event.preventDefault();
});

// Web Push. Signed-in pages register the service worker (/sw.js shows pushes and opens them);
// on the Notifications page, "Notifications on this device" turns push on or off for this
// browser and tells the server (which lists the staff member's devices).
if ("serviceWorker" in navigator && document.querySelector(".app")) {
  navigator.serviceWorker.register("/sw.js").catch(function () {});
}

(function () {
  var control = document.querySelector("[data-push-control]");
  if (!control) return;
  var status = control.querySelector("[data-push-status]");
  var turnOn = control.querySelector("[data-push-on] button");
  var turnOff = control.querySelector("[data-push-off] button");

  function show(text, button) {
    status.textContent = text;
    turnOn.parentNode.hidden = button !== "on";
    turnOff.parentNode.hidden = button !== "off";
  }
  if (!("serviceWorker" in navigator && "PushManager" in window && "Notification" in window)) {
    show(/iPhone|iPad/.test(navigator.userAgent)
      ? "On iPhone and iPad, add Twoway to your Home Screen (Share → Add to Home Screen) and open it from there to turn notifications on."
      : "This browser can't get push notifications. New texts and leads still show here and in your inbox.");
    return;
  }

  // Tells the server; its answer is the refreshed list of this staff member's devices.
  function tell(url, subscription) {
    return fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRFToken": control.dataset.csrfToken },
      body: JSON.stringify(subscription),
    }).then(function (response) {
      return response.text().then(function (html) {
        if (!response.ok) throw new Error(html);
        document.getElementById("push-devices").outerHTML = html;
      });
    });
  }

  // On means: this browser is subscribed AND the server has that subscription for this staff
  // member (it may have been removed from the list, or belong to whoever signed in before).
  function showState(subscription) {
    var listed = false;
    document.querySelectorAll("[data-push-endpoint]").forEach(function (row) {
      var mine = !!subscription && row.dataset.pushEndpoint === subscription.endpoint;
      listed = listed || mine;
      row.querySelector("[data-this-device]").hidden = !mine;
      row.querySelector("[data-device-remove]").hidden = mine; // "Turn off" above does it
    });
    if (Notification.permission === "denied") {
      show("Notifications are blocked for this site in this browser. Allow them in the browser's site settings, then reload this page.");
    } else if (listed) {
      show("On: this device gets a notification for new texts and leads, until you sign out here.", "off");
    } else {
      show("Off: this device doesn't get notifications.", "on");
    }
  }

  function key() {
    var text = control.dataset.pushKey.replace(/-/g, "+").replace(/_/g, "/");
    var raw = atob(text + "===".slice((text.length + 3) % 4));
    return Uint8Array.from(raw, function (ch) { return ch.charCodeAt(0); });
  }

  function failed(error) {
    var reason = error && error.message && error.message.indexOf("<") < 0 ? error.message + " " : "";
    show("That didn't work. " + reason + "Please try again.", "on");
  }

  var ready = navigator.serviceWorker.register("/sw.js").then(function () {
    return navigator.serviceWorker.ready;
  });
  ready.then(function (registration) {
    return registration.pushManager.getSubscription();
  }).then(showState).catch(failed);

  turnOn.addEventListener("click", function () {
    turnOn.disabled = true;
    Notification.requestPermission().then(function (permission) {
      if (permission !== "granted") return showState(null);
      return ready.then(function (registration) {
        var options = { userVisibleOnly: true, applicationServerKey: key() };
        return registration.pushManager.subscribe(options).catch(function () {
          // Subscribed before with another key (the server's changed): start afresh.
          return registration.pushManager.getSubscription().then(function (old) {
            return old && old.unsubscribe();
          }).then(function () { return registration.pushManager.subscribe(options); });
        });
      }).then(function (subscription) {
        return tell(control.dataset.subscribeUrl, subscription).then(function () { showState(subscription); });
      });
    }).catch(failed).finally(function () { turnOn.disabled = false; });
  });

  turnOff.addEventListener("click", function () {
    turnOff.disabled = true;
    ready.then(function (registration) {
      return registration.pushManager.getSubscription();
    }).then(function (subscription) {
      if (!subscription) return showState(null);
      return subscription.unsubscribe().then(function () {
        return tell(control.dataset.unsubscribeUrl, subscription);
      }).then(function () { showState(null); });
    }).catch(failed).finally(function () { turnOff.disabled = false; });
  });
})();
