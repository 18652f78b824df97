// pixel.js: the `_pixel` command queue. The wire format: bench/README.md, "Wire format".
import { cfg, setConfig, store, warn } from './core.js'
import { auto } from './auto.js'
import { identify } from './identity.js'
import { blocked, key, track } from './track.js'

const commands = {
  config: setConfig,
  debug: (on) => setConfig('debug', on),
  track, // run passes two arguments: callers cannot set top-level fields
  // Email addresses are refused: a user id must not be personal data in clear. null clears it.
  // A string or a number: /[gr]$/ matches the typeof of exactly those two; any @ is refused.
  setUserId: (id) =>
    id == null || (/[gr]$/.test(typeof id) && !/@/.test(id)) ? store('u', id && id + '') : warn('user id', id),
}

const run = (c) => {
  const f = c?.map && commands[c[0]]
  f ? f(c[1], c[2]) : warn('command', c)
}

const queue = self._pixel || []
// A second copy of the script on the page finds the `{push}` object, not an array, and does nothing.
if (queue.map) {
  // Config pushed before load applies first, whatever its position (a stable sort); then the other
  // commands in order.
  // (config and debug: an array's string starts with its command's name)
  queue.sort((x, y) => /^[cd]/.test(y) - /^[cd]/.test(x)).map(run)
  blocked() || (identify(), auto())
  // Exactly one pageview per load: none if the snippet tracked its own.
  cfg.pageviewTracking && !key && track('pageview')
  self._pixel = { push: run }
}
