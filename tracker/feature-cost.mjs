// What each feature of the builds costs: `node feature-cost.mjs` builds pixel.js and pixel.ext.js as they are,
// then once per feature with that feature patched out (in memory, src/ is not touched), and prints the gzip -9
// bytes saved (the `gzip` program, as bench/README.md measures) in the build named in the row.
// `node feature-cost.mjs "feature a" "feature b"` removes the named features together (from the build of the
// first). A patch whose text is no longer in src/ fails loudly: update it with the source.
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { build } from 'esbuild'
import { BUILDS, options } from './build.mjs'

const FEATURES = new Map([
  ['pixel.ext.js: web vitals', [
    ['index.js', 'EXT && (measure(), errors())', 'EXT && errors()'],
    ['track.js', '  EXT && vitals(),\n', ''],
  ]],
  ['pixel.ext.js: errors', [['index.js', 'EXT && (measure(), errors())', 'EXT && measure()']]],
  ['pixel.ext.js: device id after consent', [
    ['index.js', 'EXT && (commands.consent = consent)', ''],
    ['transport.js', '(EXT && (e.v = visitor || undefined), e)', 'e'],
  ]],
  ['pixel.ext.js: tagging without code', [['auto.js', "  EXT &&\n    on('click', (e, g", "  0 &&\n    on('click', (e, g"]]],
  ['pixel.js: outbound links + downloads', [
    ['auto.js', "  on('click', (e, a = e.target.closest('a')", "  0 && on('click', (e, a = e.target.closest('a')"],
    ['core.js', "  downloadExtensions: 'pdf,doc,docx,xls,xlsx,ppt,pptx,csv,zip,rar,7z,exe,mp3,mp4,avi,mov'.split(','),\n", ''],
  ]],
  ['pixel.js: SPA hooks + popstate', [
    ['auto.js', "  ;['pushState', 'replaceState'].map(", '  0 && [].map('],
    ['auto.js', "  on('popstate', navigated)\n", ''],
  ]],
  ['pixel.js: form submissions', [['auto.js', "  on('submit', (e, f = e.target) =>", "  0 && on('submit', (e, f = e.target) =>"]]],
  ['pixel.js: scroll depth', [
    ['track.js', "  cfg.scrollTracking && track('scroll', 0, { c: cut ?? scrolled() }),\n", ''],
    ['auto.js', "  on('scroll', scrolled)\n", ''],
  ]],
  ['pixel.js: of it, the SPA depth fix', [
    ['track.js', '(cut ??= key && depth),', ''],
    ['track.js', '(cfg.notFound = false),\n    setTimeout(scrolled))', '(cfg.notFound = false))'],
  ]],
  ['pixel.js: 404 flag', [['track.js', "    (extra = (cfg.notFound || D.querySelector('[data-not-found]')) && { f: 1 }),\n    (cfg.notFound = false),", '0,']]],
  ['pixel.js: storage switch', [['core.js', 's = cfg.storage && localStorage', 's = localStorage']]],
  ['pixel.js: parameter validation', [
    ['track.js', "      n++ < 25 && (typeof v == 'string' || v === !!v || Number.isFinite(v))\n        ? (a[k.slice(0, 64)] = v.slice ? v.slice(0, 500) : v)\n        : DEBUG && warn('param', k)", '      a[k] = v'],
  ]],
  ['pixel.js: DNT/GPC', [['track.js', 'cfg.respectDnt && (N.doNotTrack == 1 || N.globalPrivacyControl)', '0']]],
  ['pixel.js: Retry-After', [['transport.js', "r.headers?.get('Retry-After') * 1e3 || ", '']]],
  ['pixel.js: dropped-event count', [['transport.js', "            dropped && track('pixel_dropped', { count: dropped }, (dropped = 0))\n", '0\n']]],
  ['pixel.js: visibility events', [['track.js', "cfg.visibilityTracking && track('page_visible')", '0']]],
])

const src = new URL('src/', import.meta.url).pathname

/** Builds `name` like build.mjs, with `patches` ([file, old, new]) applied; returns [minified, gzip -9]. */
const size = async (name, patches) => {
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
  const out = await build({ ...options(BUILDS[name]), write: false, plugins: [patch] })
  if (left.size) throw new Error('patch text not found in src/: ' + JSON.stringify([...left]))
  const code = out.outputFiles[0].contents
  return [code.length, execFileSync('gzip', ['-9'], { input: code }).length]
}

const full = {}
for (const name of ['pixel.js', 'pixel.ext.js']) {
  const [min, gz] = await size(name, [])
  full[name] = [min, gz]
  console.log(`${name}: ${min} bytes minified, ${gz} gzip -9`)
}
const of = (feature) => feature.split(':')[0]
const named = process.argv.slice(2)
if (named.length) {
  const name = of(named[0])
  const [m, g] = await size(name, named.flatMap((n) => FEATURES.get(n) ?? (() => { throw new Error('no feature ' + n) })()))
  console.log(`without ${named.join(' + ')}: ${m} minified, ${g} gzip -9 (${full[name][1] - g} saved)`)
} else {
  for (const [feature, patches] of FEATURES) {
    const [m, g] = await size(of(feature), patches)
    console.log(`| ${feature} | ${full[of(feature)][1] - g} | (${full[of(feature)][0] - m} minified)`)
  }
}
