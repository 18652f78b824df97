import { on } from './auto.js'
import { hash } from './identity.js'
import { track } from './track.js'

// Extended build only: uncaught errors and unhandled promise rejections, as `error` events with the message,
// the source file, line and column, and a hash of those four for grouping. Each distinct error is sent once
// per page load, and at most 10 per page load.
let seen = {}, n = 0

const report = (message, source = '', line = 0, col = 0, h = hash([message, source, line, col])) =>
  n < 10 && !seen[h] && ((seen[h] = ++n), track('error', { message, source, line, col, hash: h }))

export const errors = () => {
  // resource load failures reach this listener too (capture phase), without a message: left out
  on('error', (e) => e.message && report(e.message, e.filename, e.lineno, e.colno))
  // a rejection's place is the first location in its stack, when it has one
  on('unhandledrejection', (e, r = e.reason, m = /([^\s(]+):(\d+):(\d+)/.exec(r?.stack)) =>
    report('' + (r?.message ?? r), m?.[1], +m?.[2] || 0, +m?.[3] || 0))
}
