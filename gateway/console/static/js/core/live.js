// One live inbox stream per session (GET /v1/inbox/events read with fetch, since
// EventSource cannot send DPoP). Screens subscribe to new deliveries; the stream runs
// while someone is logged in and stops at logout.
import { useEffect } from "./html.js";
import { api } from "./api.js";
import { session } from "./session.js";

const listeners = new Set();
let running = null;

function start() {
  const controller = new AbortController();
  running = controller;
  api
    .events("/v1/inbox/events", {
      signal: controller.signal,
      onEvent: (message) => {
        if (message.event === "delivery") for (const fn of listeners) fn(message.data);
        if (message.event === "reconnect") for (const fn of listeners) fn(null);
      },
    })
    .catch(() => {})
    .finally(() => {
      if (running === controller) running = null;
    });
}

function stop() {
  running?.abort();
  running = null;
}

session.subscribe(() => {
  if (session.me && session.passkey !== "setup_required") {
    if (!running) start();
  } else {
    stop();
  }
});

/** Call *fn(inboxItem)* for every delivery that arrives while the screen is shown, and
 * *fn(null)* when the stream was reopened without a position (read the lists again). */
export function useDeliveries(fn, deps = []) {
  useEffect(() => {
    listeners.add(fn);
    return () => listeners.delete(fn);
  }, deps);
}
