import { D, L, N, cfg, now, store, warn } from './core.js'
import { tz, uid } from './identity.js'
import { send } from './transport.js'

// The current page: its snapshot taken at its pageview (URL, title, referrer: the page before it), its
// URL key (set once a pageview was tracked), and what is measured on it until it is left: visible time
// not reported yet, maximum scroll depth.
export let key
let page, started = D.hidden ? 0 : now(), engaged = 0, depth = 0


/** Do-Not-Track / Global Privacy Control, when the site asked to respect them. */
export const blocked = () => cfg.respectDnt && (N.doNotTrack == 1 || N.globalPrivacyControl)

/**
 * The maximum scroll depth so far, in % of the page's height (the part seen: scrolled + the window's height;
 * a horizontal scrollbar can make it 101, which the shipper caps at 100).
 */
export const scrolled = () => (depth = Math.max(depth, Math.round(((scrollY + innerHeight) / D.documentElement.scrollHeight) * 100)))

/**
 * Builds one event in the compact wire format (bench/README.md, "Wire format") and sends it. Custom
 * parameters keep flat string, number and boolean values only (25 keys at most, strings cut at 500
 * characters); `extra` adds top-level fields. The session is renewed after `sessionTimeout` minutes
 * without an event.
 */
export const track = (name, params, extra, a = {}, n = 0, k, v, t = now(), s = store('s')) => {
  if (blocked()) return
  if (typeof name != 'string' || !/^.{1,64}$/.test(name)) return warn('event', name)
  for (k in params)
    (v = params[k]),
      n++ < 25 && (typeof v == 'string' || v === !!v || Number.isFinite(v))
        ? (a[k.slice(0, 64)] = v.slice ? v.slice(0, 500) : v)
        : warn('param', k)
  name == 'pageview' && (leave(1), (key = cfg.hashTracking ? L.href : L.href.split('#')[0]), (page = { u: L.href, t: D.title, r: page ? page.u : D.referrer }))
  s = store('s', { i: s && t - s.t <= cfg.sessionTimeout * 6e4 ? s.i : uid(), t })
  send({
    i: uid(),
    n: name,
    t,
    h: cfg.site,
    s: s.i,
    u: store('u'),
    p: page || { u: L.href, t: D.title, r: D.referrer },
    d: { s: (s = screen).width + 'x' + s.height, l: N.language, z: tz, r: devicePixelRatio, w: N.webdriver },
    a,
    ...extra,
  })
}

/** Stops the engagement clock; with `on`, reports the visible time not reported yet. */
export const engage = (on) => {
  engaged += started && now() - started
  started = 0
  on && page && engaged && (track('engagement', 0, { e: engaged }), (engaged = 0))
}

/** The tab is visible again: the clock restarts. */
export const visible = () => ((started = now()), cfg.visibilityTracking && track('page_visible'))

/** Leaving the current page (SPA navigation or pagehide): engagement time, then the maximum scroll depth. */
export const leave = (restart) =>
  page &&
  (engage(cfg.engagementTracking),
  (engaged = 0),
  cfg.scrollTracking && track('scroll', 0, { c: scrolled() }),
  (depth = 0),
  restart && !D.hidden && (started = now()))

/** SPA navigation: a pageview when the URL (with the hash if hashTracking) changed since the last one. */
export const navigated = () => setTimeout(() => cfg.spaTracking && key && (cfg.hashTracking ? L.href : L.href.split('#')[0]) != key && track('pageview'))
