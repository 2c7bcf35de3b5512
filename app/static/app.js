// Twoway's only custom script. htmx does the rest.
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
