// Shared basics: short names for browser globals (each use minifies to one letter), the
// configuration, debug warnings and localStorage access.
export const W = window
export const D = document
export const N = navigator
export const L = location
export const now = Date.now

const script = D.currentScript || {}, data = script.dataset || {}

/** Defaults; a key pushed with `config` must exist here and keep its type. */
export const cfg = {
  // Where events go: baseUrl + endpoint. The script tag's data-endpoint (a full URL) wins; else the
  // folder the script was loaded from, so `<script src="/telemetry/pixel.js">` behind a first-party
  // proxy posts to `/telemetry/track`.
  baseUrl: data.endpoint ? '' : (script.src || '').replace(/\/[^/]*$/, ''),
  endpoint: data.endpoint || '/track',
  site: data.site || '', // '': the server uses the page's host
  namespace: 'pixel_', // localStorage key prefix
  sessionTimeout: 30, // minutes without an event
  downloadExtensions: 'pdf,doc,docx,xls,xlsx,ppt,pptx,csv,zip,rar,7z,gz,dmg,exe,msi,apk,mp3,mp4,avi,mov'.split(','),
  respectDnt: false, // Do-Not-Track / Global Privacy Control turn the tracker off
  retryDelay: 1000, // ms, first backoff step
  maxFailedEvents: 200, // outbox cap; past it the oldest are dropped, and counted
  debug: false,
}
// <name>Tracking switches: pageview on load, SPA navigation, scroll depth, outbound clicks, downloads,
// form submissions, tab hidden/visible, engagement on leave are on; hash changes as pages are opt-in.
'pageview,spa,scroll,click,download,form,visibility,engagement,hash'.split(',').map((k, i) => (cfg[k + 'Tracking'] = i < 8))

export const warn = (...a) => cfg.debug && console.warn('[pixel]', ...a)

/** The `config` command: an unknown key, a value of another type or a bad endpoint is ignored. */
export const setConfig = (key, value) => {
  const old = cfg[key]
  old == null || typeof value != typeof old || !old.map != !value.map || (key == 'endpoint' && value[0] != '/') || value < 0
    ? warn('bad config', key, value)
    : (cfg[key] = key == 'baseUrl' ? value.replace(/\/$/, '') : value)
}

// localStorage, falling back to memory when it is missing or full (private modes, quota).
const mem = {}
export const get = (k) => {
  try {
    return JSON.parse(localStorage[cfg.namespace + k])
  } catch (e) {
    return mem[k]
  }
}
export const set = (k, v) => {
  mem[k] = v
  try {
    localStorage[cfg.namespace + k] = JSON.stringify(v)
  } catch (e) {}
}
