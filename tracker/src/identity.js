import { D, N, cfg, get, now, set } from './core.js'

export const tz = Intl.DateTimeFormat().resolvedOptions().timeZone

/** A unique id (event and session ids): the time, then 50+ random bits, base 36. */
export const uid = () => now().toString(36) + Math.random().toString(36).slice(2)

const canvas = () => D.createElement('canvas')

/**
 * The visitor id: a hash of device signals computed in the browser on every load, never stored:
 * an audio rendering (a compressed triangle wave; its samples differ by audio stack, and where Web
 * Audio is missing the error text is the signal), a canvas drawing, the WebGL renderer, screen,
 * locale and hardware. The hash: two 32-bit multiplicative lanes (each step a bijection), base 36.
 */
export let visitor = ''
export const identify = () => {
  const id = (a) => {
    let c = canvas(), x = c.getContext('2d'), s = screen, g = canvas().getContext('webgl'), h = 1, k = 2, r
    x.font = '14px Arial'
    x.fillText('Pixel <canvas> \u{1F603}', 2, 15)
    // UNMASKED_RENDERER_WEBGL; the screen as its area, so that rotating a phone keeps the id
    for (r of [a, c.toDataURL(), g && g.getExtension('WEBGL_debug_renderer_info') && g.getParameter(37446), s.width * s.height, s.colorDepth,
      devicePixelRatio, tz, N.languages, N.hardwareConcurrency, N.deviceMemory, N.platform] + '')
      (r = r.charCodeAt()), (h = Math.imul(h ^ r, 2654435761)), (k = Math.imul(k ^ r, 1597334677))
    visitor = (h >>> 0).toString(36) + (k >>> 0).toString(36)
  }
  return new Promise((done) => {
    setTimeout(done, 500)
    const a = new OfflineAudioContext(1, 5e3, 44100), o = a.createOscillator()
    o.type = 'triangle'
    o.frequency.value = 1e4
    o.connect(a.createDynamicsCompressor()).connect(a.destination)
    o.start()
    a.startRendering().then((b) => done(b.getChannelData(0) + ''))
  }).then(id, id)
}

/** Session id kept in localStorage, renewed after `sessionTimeout` minutes without an event. */
export const session = () => {
  let s = get('s'), t = now()
  if (!s || t - s.t > cfg.sessionTimeout * 6e4) s = { i: uid() }
  s.t = t
  set('s', s)
  return s.i
}
