import { D, L, N, cfg, tz } from './core.js'

/** A string's hash: polynomial, modulo the prime 1e14+31 (47 bits), base 36. */
export const hash = (s, h = 0) => {
  for (s of s + '') h = (h * 31 + s.charCodeAt()) % (1e14 + 31)
  return h.toString(36)
}

/**
 * Extended build only. The visitor id after consent (`_pixel.push(['consent', true])`), undefined without:
 * a hash of device signals computed in the browser at each consent, never stored: a canvas drawing, the
 * WebGL renderer, screen, locale and hardware, bound to the site and to the current UTC month, so that the
 * same device has another id on another site and every month: the id cannot join a person across sites or
 * over months. `consent(false)` forgets it. (An audio rendering, the original's slowest and asynchronous
 * signal, is left out to fit the size budget.)
 */
export let visitor
export const consent = (on, c, g, s = screen) => {
  visitor = undefined
  if (!on) return
  c = D.createElement('canvas')
  g = D.createElement('canvas').getContext('webgl')
  c.getContext('2d').fillText('Pixel \u{1F603}', 2, 9)
  // UNMASKED_RENDERER_WEBGL; the screen as its area, so that rotating a phone keeps the id
  visitor = hash([c.toDataURL(), g?.getParameter(g.getExtension('WEBGL_debug_renderer_info') && 37446), s.width * s.height,
    s.colorDepth, devicePixelRatio, tz, N.languages, N.hardwareConcurrency, N.deviceMemory, N.platform,
    cfg.site || L.hostname, new Date().toISOString().slice(0, 7)])
}
