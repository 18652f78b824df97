// What each feature of pixel.js costs: `node feature-cost.mjs` builds dist/pixel.js's sources once as they are and
// once per feature with that feature patched out (in memory, src/ is not touched), and prints the gzip -9 bytes saved
// (the `gzip` program, as bench/README.md measures). `node feature-cost.mjs "feature a" "feature b"` removes the
// named features together. A patch whose text is no longer in src/ fails loudly: update it with the source.
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { build } from 'esbuild'

const FEATURES = new Map([
  ["whole device-signal visitor id", [
    ["identity.js", "export let visitor\n", "export let visitor = 1\n"],
    ["index.js", "(identify(), auto())", "auto()"],
  ]],
  ["of it: audio signal", [
    ["identity.js", "  try {\n    a = new OfflineAudioContext(1, 5e3, 44100)\n    ;(o = a.createOscillator()).connect(a.createDynamicsCompressor()).connect(a.destination)\n    o.start()\n    a.startRendering().then((b) => id(b.getChannelData(0)))\n  } catch (e) {\n    id(e)\n  }", ""],
  ]],
  ["of it: canvas + WebGL renderer", [
    ["identity.js", "  c = D.createElement('canvas')\n  g = D.createElement('canvas').getContext('webgl')\n", ""],
    ["identity.js", "  c.getContext('2d').fillText('Pixel \\u{1F603}', 2, 9)\n", ""],
    ["identity.js", "c.toDataURL(), g?.getParameter(g.getExtension('WEBGL_debug_renderer_info') && 37446), ", ""],
  ]],
  ["outbound links + downloads (with the extension list)", [
    ["auto.js", "  on('click', (e, a = e.target.closest('a'), x = (a?.pathname + '').split('.').pop()) =>\n    a &&\n    (cfg.downloadTracking && cfg.downloadExtensions.includes(x.toLowerCase())\n      ? track('download', { url: a.href, ext: x })\n      : cfg.clickTracking && a.host && a.host != L.host && track('outbound', { url: a.href })))", ""],
    ["core.js", "  downloadExtensions: 'pdf,doc,docx,xls,xlsx,ppt,pptx,csv,zip,rar,7z,exe,mp3,mp4,avi,mov'.split(','),\n", ""],
    ["core.js", ",click,download,", ","],
  ]],
  ["of it: the default extension list", [
    ["core.js", "'pdf,doc,docx,xls,xlsx,ppt,pptx,csv,zip,rar,7z,exe,mp3,mp4,avi,mov'", "'pdf'"],
  ]],
  ["SPA hooks + popstate", [
    ["auto.js", "  ;['pushState', 'replaceState'].map((m, _, __, orig = history[m]) => (history[m] = (...a) => (navigated(), orig.apply(history, a))))\n", ""],
    ["auto.js", "  on('popstate', navigated)\n", ""],
    ["core.js", ",spa,", ","],
    ["core.js", ",hash'", "'"],
    ["track.js", "(key = cfg.hashTracking ? L.href : L.href.split('#')[0])", "(key = 1)"],
  ]],
  ["form submissions", [
    ["auto.js", "  on('submit', (e, f = e.target) =>\n    cfg.formTracking &&\n    track('form_submit', {\n      id: f.id,\n      action: f.action,\n      fields: [...new Set([...f.elements].map((x) => !/^(pa|su|bu|re|im)/.test(x.type) && x.name))].filter((x) => x) + '',\n    }))", ""],
    ["core.js", ",form,", ","],
  ]],
  ["scroll depth", [
    ["track.js", "  cfg.scrollTracking && track('scroll', 0, { c: scrolled() }),\n  (depth = 0),\n", ""],
    ["auto.js", "  on('scroll', scrolled)\n", ""],
    ["core.js", ",scroll,", ","],
  ]],
  ["parameter validation", [
    ["track.js", "  for (k in params)\n    (v = params[k]),\n      n++ < 25 && (typeof v == 'string' || v === !!v || Number.isFinite(v))\n        ? (a[k.slice(0, 64)] = v.slice ? v.slice(0, 500) : v)\n        : warn('param', k)", "  for (k in params) a[k] = params[k]"],
  ]],
  ["debug warning texts", [
    ["core.js", "warn('config', key, value)", "warn()"],
    ["index.js", "warn('user id', id)", "warn()"],
    ["index.js", "warn('command', c)", "warn()"],
    ["track.js", "warn('event', name)", "warn()"],
    ["track.js", "warn('param', k)", "warn()"],
    ["transport.js", "warn('status', r.status)", "warn()"],
    ["core.js", "console.warn('pixel: bad', ...a)", "console.warn()"],
  ]],
  ["config validation", [
    ["core.js", "old?.constructor != value?.constructor || (key == 'endpoint' && value[0] != '/') || value < 0", "0"],
  ]],
  ["DNT/GPC", [
    ["track.js", "cfg.respectDnt && (N.doNotTrack == 1 || N.globalPrivacyControl)", "0"],
    ["core.js", "  respectDnt: false, // Do-Not-Track / Global Privacy Control turn the tracker off\n", ""],
  ]],
  ["dropped-event count", [
    ["transport.js", "over > 0 && store('d', q.splice(0, over).length + ~~store('d'))", "over > 0 && q.splice(0, over)"],
    ["transport.js", ",\n            (d = store('d')) && track('pixel_dropped', { count: d }, store('d', 0))", ""],
  ]],
  ["Retry-After", [
    ["transport.js", "r.headers?.get('Retry-After') * 1e3 || ", ""],
  ]],
  ["event name check", [
    ["track.js", "  if (typeof name != 'string' || !/^.{1,64}$/.test(name)) return warn('event', name)\n", ""],
  ]],
  ["batch size limit", [
    ["transport.js", ".filter((e, i) => i < 100 && ((size += JSON.stringify(((e.v = visitor), e)).length) < 6e4 || !i))", ".map((e) => ((e.v = visitor), e))"],
  ]],
  ["jitter + 24 h cap", [
    ["transport.js", "Math.min(864e5, (r.headers?.get('Retry-After') * 1e3 || cfg.retryDelay * 2 ** fails++) * (1 + Math.random() / 2))", "r.headers?.get('Retry-After') * 1e3 || cfg.retryDelay * 2 ** fails++"],
  ]],
  ["session timeout between events", [
    ["track.js", "s && t - s.t <= cfg.sessionTimeout * 6e4 ? s.i : uid()", "s?.i || uid()"],
    ["core.js", "  sessionTimeout: 30, // minutes without an event\n", ""],
  ]],
  ["visibility events", [
    ["track.js", "cfg.visibilityTracking && track('page_visible')", "0"],
    ["auto.js", "engage(cfg.visibilityTracking)", "engage()"],
    ["core.js", ",visibility,", ","],
  ]],
  ["beacon path", [
    ["transport.js", "N.sendBeacon(url, body) && (forget(), flush(1))", "0"],
  ]],
  ["engagement on leave", [
    ["track.js", "engage(cfg.engagementTracking)", "engage()"],
    ["core.js", ",engagement,", ","],
  ]],
  ["form field de-duplication", [
    ["auto.js", "[...new Set([...f.elements].map((x) => !/^(pa|su|bu|re|im)/.test(x.type) && x.name))].filter((x) => x) + ''", "[...f.elements].map((x) => !/^(pa|su|bu|re|im)/.test(x.type) && x.name).filter((x) => x) + ''"],
  ]],
  ["email refusal in setUserId", [
    ["index.js", "(/[gr]$/.test(typeof id) && !/@/.test(id))", "/[gr]$/.test(typeof id)"],
  ]],
]);

const src = new URL('src/', import.meta.url).pathname

/** Builds src/index.js like build.mjs, with `patches` ([file, old, new]) applied; returns [minified, gzip -9]. */
const size = async (patches) => {
  const left = new Set(patches)
  const patch = {
    name: 'patch',
    setup: (b) =>
      b.onLoad({ filter: /\.js$/ }, ({ path }) => {
        let text = readFileSync(path, 'utf8')
        for (const p of patches) {
          if (path != src + p[0] || !text.includes(p[1])) continue
          text = text.replace(p[1], p[2])
          left.delete(p)
        }
        return { contents: text, loader: 'js' }
      }),
  }
  const out = await build({
    entryPoints: [src + 'index.js'], bundle: true, minify: true, format: 'iife', target: 'es2021',
    legalComments: 'none', logLevel: 'warning', write: false, plugins: [patch],
  })
  if (left.size) throw new Error('patch text not found in src/: ' + JSON.stringify([...left]))
  const code = out.outputFiles[0].contents
  return [code.length, execFileSync('gzip', ['-9'], { input: code }).length]
}

const [min, gz] = await size([])
console.log(`pixel.js: ${min} bytes minified, ${gz} gzip -9`)
const named = process.argv.slice(2)
if (named.length) {
  const [m, g] = await size(named.flatMap((n) => FEATURES.get(n) ?? (() => { throw new Error('no feature ' + n) })()))
  console.log(`without ${named.join(' + ')}: ${m} minified, ${g} gzip -9 (${gz - g} saved)`)
} else {
  for (const [name, patches] of FEATURES) {
    const [m, g] = await size(patches)
    console.log(`| ${name} | ${gz - g} | (${min - m} minified)`)
  }
}
