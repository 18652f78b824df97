// Builds src/index.js into the three minified IIFEs of dist/: `node build.mjs [outdir]` (default dist/).
// pixel.js: the consent-free default; pixel.ext.js: a superset with web vitals, errors and the device id
// after consent; pixel.debug.js: the extended build with config validation and console warnings. The
// EXT and DEBUG constants select the code (esbuild removes what a build leaves out); the output is the same
// bytes on every run with the pinned esbuild (scripts/check and tests/tracker/test_build.py compare).
import { build } from 'esbuild'

export const BUILDS = {
  'pixel.js': { EXT: 'false', DEBUG: 'false' },
  'pixel.ext.js': { EXT: 'true', DEBUG: 'false' },
  'pixel.debug.js': { EXT: 'true', DEBUG: 'true' },
}

export const options = (define) => ({
  entryPoints: [new URL('src/index.js', import.meta.url).pathname],
  bundle: true,
  minify: true,
  format: 'iife',
  target: 'es2021',
  legalComments: 'none',
  logLevel: 'warning',
  define,
})

if (process.argv[1] == new URL(import.meta.url).pathname) {
  const dir = (process.argv[2] || new URL('dist', import.meta.url).pathname).replace(/\/$/, '')
  for (const [name, define] of Object.entries(BUILDS)) await build({ ...options(define), outfile: `${dir}/${name}` })
}
