import { D, L, W, cfg } from './core.js'
import { engage, leave, navigated, resume, scrolled, track } from './track.js'
import { flush, retry, setLeaving } from './transport.js'

const on = (target, type, fn) => target.addEventListener(type, fn, true)

/** Installs every listener once; each checks its config key when it fires, so later config applies. */
export const auto = () => {
  for (const m of ['pushState', 'replaceState']) {
    const orig = history[m]
    history[m] = function () {
      orig.apply(this, arguments)
      navigated()
    }
  }
  // popstate also fires on hash changes
  on(W, 'popstate', navigated)
  on(W, 'scroll', scrolled)

  on(D, 'click', (e) => {
    const a = e.target.closest('a[href]'), x = a && /\.(\w+)$/.exec(a.pathname)
    a &&
      (cfg.downloadTracking && x && cfg.downloadExtensions.includes(x[1].toLowerCase())
        ? track('download', { url: a.href, ext: x[1] })
        : cfg.clickTracking && a.host && a.host != L.host && track('outbound', { url: a.href }))
  })

  // Field names only: values are never read; password fields and buttons are left out.
  on(D, 'submit', (e) => {
    const f = e.target
    cfg.formTracking &&
      track('form_submit', {
        id: f.id,
        action: f.action,
        fields: [...new Set([...f.elements].filter((x) => x.name && !/^(password|submit|button|reset|image)$/.test(x.type)).map((x) => x.name))] + '',
      })
  })

  on(D, 'visibilitychange', () => {
    D.hidden ? engage(cfg.visibilityTracking) : (resume(), cfg.visibilityTracking && track('page_visible'))
    flush()
  })
  on(W, 'pagehide', () => {
    setLeaving()
    leave()
    flush()
  })
  on(W, 'online', retry)
}
