import { D } from './core.js'
import { on } from './auto.js'
import { track } from './track.js'

// Extended build only: Core Web Vitals as Google's web-vitals library defines them, measured from the
// browser's performance entries and sent once per page load, as one `web_vitals` event, when the page is
// first hidden or left (their final values then: nothing that happens after counts in web-vitals either):
// - TTFB: the navigation's responseStart; FCP: the first-contentful-paint;
// - LCP: the last largest-contentful-paint (the browser emits none after the first input), with its element;
// - CLS: the largest session window of layout shifts not caused by input (shifts less than 1 s apart,
//   a window at most 5 s long);
// - INP: the longest interaction (event entries grouped by interaction id, the longest entry of each),
//   leaving out one in 50 interactions as the 98th percentile does (counted among the interactions of 40 ms
//   or more, which the browser reports), with the element interacted with.
// A page loaded hidden (a background tab) reports no FCP and LCP, as web-vitals does; times are not
// adjusted for prerendered pages.
let v = {}, sent, cls = 0, win = 0, first, last, inter = {}

/** An element as a short selector: its tag, then its id, or else its first class. */
const sel = (t) => t ? t.localName + (t.id ? '#' + t.id : t.classList[0] ? '.' + t.classList[0] : '') : ''

const observe = (type, fn) => {
  try {
    new PerformanceObserver((l) => l.getEntries().map(fn)).observe({ type, buffered: 1, durationThreshold: 40 })
  } catch (e) {}
}

export const measure = (n = performance.getEntriesByType('navigation')[0]) => {
  n && (v.ttfb = n.responseStart | 0)
  D.hidden ||
    (observe('paint', (e) => e.name == 'first-contentful-paint' && (v.fcp = e.startTime | 0)),
    observe('largest-contentful-paint', (e) => ((v.lcp = e.startTime | 0), (v.lcp_el = sel(e.element)))))
  // (the callbacks take no second parameter: map passes the entry's index there)
  observe('layout-shift', (e) =>
    e.hadRecentInput ||
    ((win = win && e.startTime - last < 1e3 && e.startTime - first < 5e3 ? win + e.value : ((first = e.startTime), e.value)),
    (last = e.startTime),
    (cls = Math.max(cls, win))))
  observe('event', (e) => e.interactionId && !(inter[e.interactionId]?.[0] >= e.duration) && (inter[e.interactionId] = [e.duration, sel(e.target)]))
  on('visibilitychange', () => D.hidden && vitals())
}

/** The final values, once per page load: at the first hide or leave. */
export const vitals = (x = Object.values(inter).sort((a, b) => b[0] - a[0]), i = x[(x.length / 50) | 0]) =>
  sent ||
  ((sent = 1),
  i && ((v.inp = i[0]), (v.inp_el = i[1])),
  (v.cls = +cls.toFixed(4)),
  track('web_vitals', v))
