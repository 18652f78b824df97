import { D, L, N, W, cfg, get, now, warn } from './core.js'
import { session, tz, uid } from './identity.js'
import { send } from './transport.js'

// The current page: its snapshot taken at its pageview, its URL key, and what is measured on it
// until it is left: visible time not reported yet, maximum scroll depth.
let current, key, referrer = D.referrer, started = D.hidden ? 0 : now(), engaged = 0, depth = 0

const pageKey = () => (cfg.hashTracking ? L.href : L.href.split('#')[0])

/** Do-Not-Track / Global Privacy Control, when the site asked to respect them. */
export const blocked = () => cfg.respectDnt && (N.doNotTrack == 1 || N.globalPrivacyControl)

export const scrolled = () =>
  (depth = Math.max(depth, Math.min(100, Math.round(((W.scrollY + W.innerHeight) / D.documentElement.scrollHeight) * 100))))

/**
 * Builds one wire-format event and sends it. Custom parameters keep flat string, number and boolean
 * values only (25 keys at most, strings cut at 500 characters); `extra` adds top-level fields.
 */
export function track(name, params, extra) {
  let p = {}, n = 0, k, v, t, s = screen, ev
  if (blocked()) return
  if (typeof name != 'string' || !/^.{1,64}$/.test(name)) return warn('bad event name', name)
  for (k in params)
    (v = params[k]),
      (t = typeof v),
      n++ < 25 && (t == 'string' || t == 'boolean' || (t == 'number' && isFinite(v)))
        ? (p[k.slice(0, 64)] = t == 'string' ? v.slice(0, 500) : v)
        : warn('dropped', k)
  name == 'pageview' &&
    (leave(1),
    current && (referrer = current.url),
    (key = pageKey()),
    (current = { url: L.href, title: D.title, referrer }),
    (depth = 0))
  send(
    (ev = {
      event_id: uid(),
      event_name: name,
      ts: now(),
      site: cfg.site,
      session_id: session(),
      user_id: get('u'),
      page: current || { url: L.href, title: D.title, referrer },
      device: {
        screen: s.width + 'x' + s.height,
        viewport: W.innerWidth + 'x' + W.innerHeight,
        lang: N.language,
        tz,
        dpr: W.devicePixelRatio,
        webdriver: !!N.webdriver,
      },
      params: p,
      ...extra,
    }),
  )
  warn(ev)
}

/** Stops the engagement clock; with `on`, reports the visible time not reported yet. */
export const engage = (on) => {
  engaged += started && now() - started
  started = 0
  on && current && engaged && (track('engagement', 0, { engaged_ms: engaged }), (engaged = 0))
}

export const resume = () => (started = now())

/** Leaving the current page (SPA navigation or pagehide): engagement time, then the maximum scroll depth. */
export const leave = (restart) => {
  if (!current) return
  engage(cfg.engagementTracking)
  engaged = 0
  cfg.scrollTracking && track('scroll', 0, { scroll_depth: scrolled() })
  restart && !D.hidden && resume()
}

/** SPA navigation: a pageview when the URL (with the hash if hashTracking) changed since the last one. */
export const navigated = () => setTimeout(() => cfg.spaTracking && key && pageKey() != key && track('pageview'))

export const hasPageview = () => key
