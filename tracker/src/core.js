// Shared basics: the configuration, debug warnings and storage access. EXT and DEBUG are constants that
// build.mjs defines per build (pixel.js: neither; pixel.ext.js: EXT; pixel.debug.js: both), so the code of
// a feature a build leaves out is removed from it.
export const D = document
export const N = navigator
export const L = location
export const now = Date.now
export const tz = Intl.DateTimeFormat().resolvedOptions().timeZone

const { src = '', dataset: data = {} } = D.currentScript || {}

/** Defaults; a key pushed with `config` must exist here (and, in the debug build, keep its type). */
export const cfg = {
  // Where events go: baseUrl + endpoint. The script tag's data-endpoint (a full URL) wins; else the
  // folder the script was loaded from, so `<script src="/telemetry/pixel.js">` behind a first-party
  // proxy posts to `/telemetry/track`.
  baseUrl: data.endpoint ? '' : src.replace(/\/[^/]*$/, ''),
  endpoint: data.endpoint || '/track',
  site: data.site || '', // '': the server uses the page's host
  namespace: 'pixel_', // localStorage key prefix (of the outbox)
  // false (or data-storage="off"): the outbox stays in memory, localStorage is never touched
  storage: data.storage != 'off',
  notFound: false, // the next pageview is of a page not found (a data-not-found attribute does the same)
  downloadExtensions: 'pdf,doc,docx,xls,xlsx,ppt,pptx,csv,zip,rar,7z,exe,mp3,mp4,avi,mov'.split(','),
  respectDnt: false, // Do-Not-Track / Global Privacy Control turn the tracker off
  retryDelay: 1000, // ms, first backoff step
  maxFailedEvents: 200, // outbox cap; past it the oldest are dropped, and counted
}
// the debug build's switch for its console warnings
DEBUG && (cfg.debug = false)
// <name>Tracking switches: pageview on load, SPA navigation, scroll depth, outbound clicks, downloads,
// form submissions, tab hidden/visible, engagement on leave are on; hash changes as pages are opt-in.
'pageview,spa,scroll,click,download,form,visibility,engagement,hash'.split(',').map((k, i) => (cfg[k + 'Tracking'] = i < 8))

/** Debug-build warnings; each starts with what was refused. Call as `DEBUG && warn(...)`. */
export const warn = (...a) => cfg.debug && console.warn('pixel: bad', ...a)

/**
 * The `config` command. In the debug build an unknown key or a value of another type (string, number,
 * boolean, array: the constructor tells them apart), an endpoint not starting with / or a negative number
 * is ignored with a warning; the other builds set what they are given.
 */
export const setConfig = (key, value) =>
  DEBUG && (cfg[key]?.constructor != value?.constructor || (key == 'endpoint' && value[0] != '/') || value < 0)
    ? warn('config', key, value)
    : (cfg[key] = key == 'baseUrl' ? value.replace(/\/$/, '') : value)

// The outbox: the only thing ever written to localStorage (under `<namespace>q`), and only with `storage`
// on; in memory when it is off, or localStorage is missing or full (private modes, quota).
let mem = []
/** outbox() reads the outbox, outbox(q) writes it; both return it. */
export const outbox = (q, s, n = cfg.namespace + 'q') => {
  try {
    s = cfg.storage && localStorage
    q ? ((mem = q), s && (s[n] = JSON.stringify(q))) : (q = JSON.parse(s[n]))
  } catch (e) {
    q = mem
  }
  return q
}
