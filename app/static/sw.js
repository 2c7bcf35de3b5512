// Twoway's service worker, served at /sw.js so it covers the whole app. It shows Web Push
// notifications and opens them. It has no fetch handler and caches nothing: every request
// goes to the network exactly as if there were no worker.

self.addEventListener("install", function () {
  self.skipWaiting(); // a new version takes over at once: it only handles pushes and clicks
});

self.addEventListener("activate", function (event) {
  event.waitUntil(self.clients.claim());
});

// The push's payload is JSON from app/services/push.py: {title, body, url, tag}.
self.addEventListener("push", function (event) {
  var data = {};
  try {
    data = event.data ? event.data.json() : {};
  } catch (error) {
    data = { body: event.data ? event.data.text() : "" };
  }
  event.waitUntil(
    self.registration.showNotification(data.title || "Twoway", {
      body: data.body || "",
      icon: "/static/icon.svg",
      tag: data.tag,
      data: { url: data.url || "/notifications" },
    })
  );
});

// A click opens the notification's page: in an open Twoway window if there is one (focused
// and sent there), else in a new one. Only paths of this app are followed.
self.addEventListener("notificationclick", function (event) {
  event.notification.close();
  var target = new URL((event.notification.data || {}).url || "/notifications", self.location.origin);
  if (target.origin !== self.location.origin) target = new URL("/notifications", self.location.origin);
  event.waitUntil(
    self.clients.matchAll({ type: "window", includeUncontrolled: true }).then(function (windows) {
      var open = windows.find(function (client) {
        return new URL(client.url).origin === self.location.origin;
      });
      if (!open) return self.clients.openWindow(target.href);
      return open.focus().then(function (client) {
        return client.navigate(target.href);
      }).catch(function () {
        return self.clients.openWindow(target.href);
      });
    })
  );
});
