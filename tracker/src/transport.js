import { D, N, cfg, store, warn } from './core.js'
import { visitor } from './identity.js'
import { track } from './track.js'

// Every event goes to the localStorage outbox first and leaves it only when the collector took it
// (2xx), refused it for good (4xx other than 429), or the browser queued it as a beacon while the
// collector was not known to be failing. A closed tab, a crash or a dead collector never loses an
// event; one sent twice keeps its event id, and the store keeps one copy.
let wait, busy, fails = 0

/** Adds to the outbox; sends after this task, so events fired together go in one request. */
export const send = (ev, q = store('q') || [], over = q.push(ev) - cfg.maxFailedEvents) => {
  // past the cap the oldest go; how many is reported after the next delivery
  over > 0 && store('d', q.splice(0, over).length + ~~store('d'))
  store('q', q)
  setTimeout(flush)
}

// Sends the outbox's oldest batch; by beacon when `beacon` (the page is being left) or hidden.
// The batch: up to 100 events and about 60 kB per request (the collector's limits); the visitor id is
// added here, as it is computed asynchronously. `forget` re-reads the outbox (other tabs share it) and
// drops the events sent, found by their ids.
export const flush = (
  beacon,
  size = 0,
  url = cfg.baseUrl + cfg.endpoint,
  body = JSON.stringify((store('q') || []).filter((e, i) => i < 100 && ((size += JSON.stringify(((e.v = visitor), e)).length) < 6e4 || !i))),
  forget = () => store('q', store('q').filter((e) => !body.includes(e.i))),
  d,
) =>
  visitor && !wait && ((beacon ||= D.hidden) || !busy) && body != '[]' &&
    (beacon
      ? N.sendBeacon(url, body) && (forget(), flush(1))
      : ((busy = 1),
        fetch(url, { method: 'POST', body, keepalive: 1 })
          // 5xx and 429: retried later; another 4xx: refused for good
          .then((r) => /^5|429/.test(r.status) ? backoff(r) : (
            r.ok || warn('status', r.status),
            forget(),
            (busy = fails = 0),
            flush(),
            (d = store('d')) && track('pixel_dropped', { count: d }, store('d', 0))
          ), backoff)))

/** Exponential backoff, or the server's Retry-After, plus up to 50% jitter, at most 24 h. */
const backoff = (r) => {
  busy = 0
  wait = setTimeout(retry, Math.min(864e5, (r.headers?.get('Retry-After') * 1e3 || cfg.retryDelay * 2 ** fails++) * (1 + Math.random() / 2)))
}

/** Ends a backoff wait now (timer, `online` event). */
export const retry = () => flush((wait = clearTimeout(wait)))
