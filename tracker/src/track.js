import { D, L, N, cfg, now, tz, warn } from './core.js'
import { visitor } from './identity.js'
import { send } from './transport.js'
import { vitals } from './vitals.js'

// The current page: its snapshot taken at its pageview (URL, title, referrer: the page before it), its
// URL key (set once a pageview was tracked), and what is measured on it until it is left: visible time
// not reported yet, maximum scroll depth (measured on each scroll and once the view is drawn after its
// pageview), and `cut`: that depth as it was when a navigation began.
export let key
let user, page = { u: L.href, t: D.title, r: D.referrer }, started = D.hidden ? 0 : now(), engaged = 0, depth = 0, cut

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
 * characters); `extra` adds top-level fields. No visitor or session id: the server computes them (the
 * extended build adds its device id after consent, in transport.js).
 */
export const track = (name, params, extra, a = {}, n = 0, k, v, s) => {
  if (blocked()) return
  // (the other builds leave a bad name to the shipper, which sends the event to its dead letters)
  if (DEBUG && (typeof name != 'string' || !/^.{1,64}$/.test(name))) return warn('event', name)
  for (k in params)
    (v = params[k]),
      n++ < 25 && (typeof v == 'string' || v === !!v || Number.isFinite(v))
        ? (a[k.slice(0, 64)] = v.slice ? v.slice(0, 500) : v)
        : DEBUG && warn('param', k)
  // a pageview of a page not found: the notFound config (used up here) or a data-not-found attribute
  name == 'pageview' &&
    (leave(1),
    (page = { u: L.href, t: D.title, r: key ? page.u : D.referrer }),
    (key = cfg.hashTracking ? L.href : L.href.split('#')[0]),
    (extra = (cfg.notFound || D.querySelector('[data-not-found]')) && { f: 1 }),
    (cfg.notFound = false),
    setTimeout(scrolled))
  send({
    i: now().toString(36) + Math.random().toString(36).slice(2), // the time, then 50+ random bits
    n: name,
    t: now(),
    h: cfg.site,
    u: user,
    p: page,
    // the screen size, language and time zone every analytics request reports, and the automation flag
    // (bots); the extended build adds the pixel ratio after consent
    d: { s: (s = screen).width + 'x' + s.height, l: N.language, z: tz, w: N.webdriver, ...(EXT && visitor && { r: devicePixelRatio }) },
    a,
    ...extra,
  })
}

/**
 * The `setUserId` command. Email addresses are refused: a user id must not be personal data in clear.
 * null clears it. Kept in memory only (the page sets it on every load). A string or a number: /[gr]$/
 * matches the typeof of exactly those two; any @ is refused.
 */
export const setUser = (id) =>
  id == null || (/[gr]$/.test(typeof id) && !/@/.test(id)) ? (user = id && id + '') : DEBUG && warn('user id', id)

/** Stops the engagement clock; with `on`, reports the visible time not reported yet. */
export const engage = (on) => {
  engaged += started && now() - started
  started = 0
  on && key && engaged && (track('engagement', 0, { e: engaged }), (engaged = 0))
}

/** The tab is visible again: the clock restarts. */
export const visible = () => ((started = now()), cfg.visibilityTracking && track('page_visible'))

/**
 * Leaving the current page (SPA navigation or pagehide): engagement time, then the maximum scroll depth
 * (the one measured when the navigation began, if one did).
 */
export const leave = (restart) =>
  key &&
  (engage(cfg.engagementTracking),
  (engaged = 0),
  cfg.scrollTracking && track('scroll', 0, { c: cut ?? scrolled() }),
  (depth = 0),
  (cut = undefined),
  EXT && vitals(),
  restart && !D.hidden && (started = now()))

/**
 * A history change (pushState, replaceState, popstate): the depth of the view being left is the one
 * measured so far, not the document now, which routers such as Navigo and page.js (they draw before
 * pushState) and a popstate listener registered before ours have already changed to the next view; after
 * this task, a pageview when the URL (with the hash if hashTracking) changed since the last one. A second
 * change before that keeps the first (a router's replaceState after its pushState).
 */
export const navigated = () => (
  (cut ??= key && depth),
  setTimeout(() => (cfg.spaTracking && key && (cfg.hashTracking ? L.href : L.href.split('#')[0]) != key ? track('pageview') : (cut = undefined)))
)
