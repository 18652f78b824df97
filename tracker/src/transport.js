import { D, N, cfg, get, set, warn } from './core.js'
import { visitor } from './identity.js'
import { track } from './track.js'

// Every event goes to the localStorage outbox first and leaves it only when the collector took it
// (2xx), refused it for good (4xx other than 429), or the browser queued it as a beacon while the
// collector was not known to be failing. A closed tab, a crash or a dead collector never loses an
// event; one sent twice keeps its event_id, and the store keeps one copy.
let tick, wait, busy, fails = 0, leaving

export const setLeaving = () => (leaving = 1)
const outbox = () => get('q') || []

/** Adds to the outbox; sends after this task, so events fired together go in one request. */
export const send = (ev) => {
  const q = outbox(), over = q.push(ev) - cfg.maxFailedEvents
  // past the cap the oldest go; how many is reported after the next delivery
  over > 0 && (q.splice(0, over), set('d', over + ~~get('d')))
  set('q', q)
  tick || (tick = setTimeout(flush))
}

export const flush = () => {
  tick = 0
  const beacon = leaving || D.hidden, url = cfg.baseUrl + cfg.endpoint, batch = []
  let size = 0
  if (!visitor || wait || (busy && !beacon)) return
  // up to 100 events and about 60 kB per request (the collector's limits)
  for (const e of outbox()) batch.length < 100 && ((size += JSON.stringify(e).length) < 6e4 || !batch[0]) && batch.push(e)
  if (!batch[0]) return
  const ids = batch.map((e) => ((e.visitor_id = visitor), e.event_id)), body = JSON.stringify(batch)
  // forget re-reads the outbox: other tabs share it
  const forget = () => set('q', outbox().filter((e) => !ids.includes(e.event_id)))
  if (beacon) return N.sendBeacon(url, body) && (forget(), flush())
  busy = 1
  fetch(url, { method: 'POST', body, keepalive: true })
    .then((r) => {
      if (r.status > 499 || r.status == 429) throw r
      r.ok || warn('refused', r.status, batch)
      forget()
      busy = fails = 0
      flush()
      return get('d')
    })
    .then(
      (d) => d && (set('d', 0), track('pixel_dropped', { count: d })),
      (r) => {
        const after = r.headers && r.headers.get('Retry-After')
        busy = 0
          // exponential backoff, or the server's Retry-After, plus up to 50% jitter, at most 24 h
        wait = setTimeout(retry, Math.min(864e5, (after * 1e3 || cfg.retryDelay * 2 ** fails++) * (1 + Math.random() / 2)))
      },
    )
}

/** Ends a backoff wait now (timer, `online` event). */
export const retry = () => {
  clearTimeout(wait)
  wait = 0
  flush()
}
