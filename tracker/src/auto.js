import { D, L, cfg } from './core.js'
import { engage, leave, navigated, scrolled, track, visible } from './track.js'
import { flush, retry } from './transport.js'

// Every listener is on window in the capture phase: document events (click, submit, visibilitychange)
// pass through it first, and no page handler can stop them before us; at the window itself (popstate)
// listeners run in the order they were added, so a router's may run first (track.js `navigated`).
export const on = (type, fn) => addEventListener(type, fn, 1)

/** Installs every listener once; each checks its config key when it fires, so later config applies. */
export const auto = () => {
  // the hooks run before the router's call, so before it draws the next view
  ;['pushState', 'replaceState'].map((m, _, __, orig = history[m]) => (history[m] = (...a) => (navigated(), orig.apply(history, a))))
  // popstate also fires on hash changes
  on('popstate', navigated)
  on('scroll', scrolled)

  // Tagging without code (extended build): a click in an element with data-pixel-event="name" sends that
  // event, with its data-pixel-prop-<key>="value" attributes as parameters.
  EXT &&
    on('click', (e, g = e.target.closest('[data-pixel-event]'), p = {}) =>
      g && ([...g.attributes].map((b) => b.name.startsWith('data-pixel-prop-') && (p[b.name.slice(16)] = b.value)), track(g.dataset.pixelEvent, p)))

  // A link's extension: what follows its path's last dot (a path without one gives a string starting with /;
  // an SVG link, which has no pathname, 'undefined').
  on('click', (e, a = e.target.closest('a'), x = (a?.pathname + '').split('.').pop()) =>
    a &&
    (cfg.downloadTracking && cfg.downloadExtensions.includes(x.toLowerCase())
      ? track('download', { url: a.href, ext: x })
      : cfg.clickTracking && a.host && a.host != L.host && track('outbound', { url: a.href })))

  // Field names only: values are never read; password fields and buttons (submit, button, reset,
  // image) are left out.
  on('submit', (e, f = e.target) =>
    cfg.formTracking &&
    track('form_submit', {
      id: f.id,
      action: f.action,
      fields: [...new Set([...f.elements].map((x) => !/^(pa|su|bu|re|im)/.test(x.type) && x.name))].filter((x) => x) + '',
    }))

  on('visibilitychange', () => {
    D.hidden ? engage(cfg.visibilityTracking) : visible()
    flush()
  })
  on('pagehide', () => {
    leave()
    flush(1)
  })
  on('online', retry)
}
