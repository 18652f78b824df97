import { D, N, now } from './core.js'
import { flush } from './transport.js'

export const tz = Intl.DateTimeFormat().resolvedOptions().timeZone

/** A unique id (event and session ids): the time, then 50+ random bits, base 36. */
export const uid = () => now().toString(36) + Math.random().toString(36).slice(2)


/**
 * The visitor id: a hash of device signals computed in the browser on every load, never stored:
 * an audio rendering (an oscillator through a compressor; its samples differ by audio stack, and
 * where Web Audio is missing the error text is the signal), a canvas drawing, the WebGL renderer,
 * screen, locale and hardware. The hash: polynomial, modulo the prime 1e14+31 (47 bits), base 36.
 * Computed once (the first of the audio rendering and a 500 ms timer, as the rendering may never
 * finish), then the outbox is sent.
 */
export let visitor
const id = (a, c, g, s = screen, h = 0) => {
  if (visitor) return
  // (the canvases are made after the check: the second call, audio or timer, makes none)
  c = D.createElement('canvas')
  g = D.createElement('canvas').getContext('webgl')
  c.getContext('2d').fillText('Pixel \u{1F603}', 2, 9)
  // UNMASKED_RENDERER_WEBGL; the screen as its area, so that rotating a phone keeps the id
  for (a of [a, c.toDataURL(), g?.getParameter(g.getExtension('WEBGL_debug_renderer_info') && 37446), s.width * s.height,
    s.colorDepth, devicePixelRatio, tz, N.languages, N.hardwareConcurrency, N.deviceMemory, N.platform] + '')
    h = (h * 31 + a.charCodeAt()) % (1e14 + 31)
  visitor = h.toString(36)
  flush()
}

export const identify = (a, o) => {
  setTimeout(id, 500)
  try {
    a = new OfflineAudioContext(1, 5e3, 44100)
    ;(o = a.createOscillator()).connect(a.createDynamicsCompressor()).connect(a.destination)
    o.start()
    a.startRendering().then((b) => id(b.getChannelData(0)))
  } catch (e) {
    id(e)
  }
}
