// Shared basics: the configuration, debug warnings and localStorage access.
export const D = document
export const N = navigator
export const L = location
export const now = Date.now

const { src = '', dataset: data = {} } = D.currentScript || {}

/** Defaults; a key pushed with `config` must exist here and keep its type. */
export const cfg = {
  // Where events go: baseUrl + endpoint. The script tag's data-endpoint (a full URL) wins; else the
  // folder the script was loaded from, so `<script src="/telemetry/pixel.js">` behind a first-party
  // proxy posts to `/telemetry/track`.
  baseUrl: data.endpoint ? '' : src.replace(/\/[^/]*$/, ''),
  endpoint: data.endpoint || '/track',
  site: data.site || '', // '': the server uses the page's host
  namespace: 'pixel_', // localStorage key prefix
  sessionTimeout: 30, // minutes without an event
  downloadExtensions: 'pdf,doc,docx,xls,xlsx,ppt,pptx,csv,zip,rar,7z,exe,mp3,mp4,avi,mov'.split(','),
  respectDnt: false, // Do-Not-Track / Global Privacy Control turn the tracker off
  retryDelay: 1000, // ms, first backoff step
  maxFailedEvents: 200, // outbox cap; past it the oldest are dropped, and counted
  debug: false,
}
// <name>Tracking switches: pageview on load, SPA navigation, scroll depth, outbound clicks, downloads,
// form submissions, tab hidden/visible, engagement on leave are on; hash changes as pages are opt-in.
'pageview,spa,scroll,click,download,form,visibility,engagement,hash'.split(',').map((k, i) => (cfg[k + 'Tracking'] = i < 8))

/** Debug-mode warnings; each starts with what was refused. */
export const warn = (...a) => cfg.debug && console.warn('pixel: bad', ...a)

/**
 * The `config` command: an unknown key or a value of another type (string, number, boolean, array:
 * the constructor tells them apart), an endpoint not starting with / or a negative number is ignored.
 */
export const setConfig = (key, value, old = cfg[key]) =>
  old?.constructor != value?.constructor || (key == 'endpoint' && value[0] != '/') || value < 0
    ? warn('config', key, value)
    : (cfg[key] = key == 'baseUrl' ? value.replace(/\/$/, '') : value)

// localStorage, falling back to memory when it is missing or full (private modes, quota).
const mem = {}
/** store(k) reads key k, store(k, v) writes it; both return the value. */
export const store = (k, v) => {
  try {
    v === undefined
      ? (v = JSON.parse(localStorage[cfg.namespace + k]))
      : (localStorage[cfg.namespace + k] = JSON.stringify((mem[k] = v)))
  } catch (e) {
    v = mem[k]
  }
  return v
}
