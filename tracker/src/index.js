// pixel.js: the `_pixel` command queue. The wire format: bench/README.md, "Wire format". One source, three
// builds (build.mjs): pixel.js (consent-free: no device signals, nothing stored but the outbox),
// pixel.ext.js (adds web vitals, errors and the device id after consent) and pixel.debug.js (the extended
// build with config validation and console warnings, for development).
import { cfg, setConfig, warn } from './core.js'
import { auto } from './auto.js'
import { errors } from './errors.js'
import { consent } from './identity.js'
import { blocked, key, setUser, track } from './track.js'
import { measure } from './vitals.js'

const commands = {
  config: setConfig,
  track, // run passes two arguments: callers cannot set top-level fields
  setUserId: setUser,
}
EXT && (commands.consent = consent)
DEBUG && (commands.debug = (on) => setConfig('debug', on))

const run = (c) => {
  const f = c?.map && commands[c[0]]
  f ? f(c[1], c[2]) : DEBUG && warn('command', c)
}

const queue = self._pixel || []
// A second copy of the script on the page finds the `{push}` object, not an array, and does nothing.
if (queue.map) {
  // Config pushed before load applies first, whatever its position (a stable sort); then the other
  // commands in order.
  // (config and debug: an array's string starts with its command's name; consent, which binds the device id
  // to the configured site, comes after every config)
  queue.sort((x, y) => /^conf|^d/.test(y) - /^conf|^d/.test(x)).map(run)
  blocked() || (EXT && (measure(), errors()), auto())
  // Exactly one pageview per load: none if the snippet tracked its own.
  cfg.pageviewTracking && !key && track('pageview')
  self._pixel = { push: run }
}
