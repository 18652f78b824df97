// pixel.js: the `_pixel` command queue. See tracker/README.md for the snippet and every option.
import { W, cfg, set, setConfig, warn } from './core.js'
import { auto } from './auto.js'
import { identify } from './identity.js'
import { blocked, hasPageview, track } from './track.js'
import { flush } from './transport.js'

const commands = {
  config: setConfig,
  debug: (on) => setConfig('debug', on),
  track: (name, params) => track(name, params),
  // Email addresses are refused: a user id must not be personal data in clear. null clears it.
  setUserId: (id) =>
    id == null ? set('u', null) : /^(string|number)$/.test(typeof id) && !/\S@\S+\.\S/.test(id) ? set('u', '' + id) : warn('user id refused', id),
}

const run = (c) => {
  const f = Array.isArray(c) && commands[c[0]]
  f ? f(...c.slice(1)) : warn('bad command', c)
}
const isConfig = (c) => c && /^(config|debug)$/.test(c[0])

const queue = W._pixel || []
// A second copy of the script on the page finds the `{push}` object, not an array, and does nothing.
if (queue.map) {
  // Config pushed before load applies first, whatever its position; then the other commands in order.
  queue.map((c) => isConfig(c) && run(c))
  if (!blocked()) identify().then(flush), auto()
  queue.map((c) => isConfig(c) || run(c))
  // Exactly one pageview per load: none if the snippet tracked its own.
  cfg.pageviewTracking && !hasPageview() && track('pageview')
  W._pixel = { push: run }
}
