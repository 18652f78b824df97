import { D, N, cfg, outbox, warn } from './core.js'
import { visitor } from './identity.js'
import { track } from './track.js'

// Every event goes to the outbox first (localStorage, or memory with `storage` off) and leaves it only
// when the collector took it (2xx), refused it for good (4xx other than 429), or the browser queued it as a
// beacon while the collector was not known to be failing. A closed tab, a crash or a dead collector never
// loses an event; one sent twice keeps its event id, and the store keeps one copy.
let wait, busy, fails = 0, dropped = 0

/** Adds to the outbox; sends after this task, so events fired together go in one request. */
export const send = (ev, q = outbox(), over = q.push(ev) - cfg.maxFailedEvents) => {
  // past the cap the oldest go; how many is reported after the next delivery
  over > 0 && (dropped += q.splice(0, over).length)
  outbox(q)
  setTimeout(flush)
}

// Sends the outbox's oldest batch; by beacon when `beacon` (the page is being left) or hidden.
// The batch: up to 100 events and about 60 kB per request (the collector's limits). The extended build
// adds its device id (after consent) here, to the events still in the outbox. `forget` re-reads the outbox (other tabs share it) and drops the events sent, found by their ids.
export const flush = (
  beacon,
  size = 0,
  url = cfg.baseUrl + cfg.endpoint,
  body = JSON.stringify(outbox().filter((e, i) => i < 100 && ((size += JSON.stringify((EXT && (e.v = visitor || undefined), e)).length) < 6e4 || !i))),
  forget = () => outbox(outbox().filter((e) => !body.includes(e.i))),
) =>
  !wait && ((beacon ||= D.hidden) || !busy) && body != '[]' &&
    (beacon
      ? N.sendBeacon(url, body) && (forget(), flush(1))
      : ((busy = 1),
        fetch(url, { method: 'POST', body, keepalive: 1 })
          // 5xx and 429: retried later; another 4xx: refused for good
          .then((r) => /^5|429/.test(r.status) ? backoff(r) : (
            DEBUG && (r.ok || warn('status', r.status)),
            forget(),
            (busy = fails = 0),
            flush(),
            dropped && track('pixel_dropped', { count: dropped }, (dropped = 0))
          ), backoff)))

/** Exponential backoff, or the server's Retry-After, plus up to 50% jitter, at most 24 h. */
const backoff = (r) => {
  busy = 0
  wait = setTimeout(retry, Math.min(864e5, (r.headers?.get('Retry-After') * 1e3 || cfg.retryDelay * 2 ** fails++) * (1 + Math.random() / 2)))
}

/** Ends a backoff wait now (timer, `online` event). */
export const retry = () => flush((wait = clearTimeout(wait)))
