// Builds src/index.js into one minified IIFE: `node build.mjs [outfile]` (default dist/pixel.js).
import { build } from 'esbuild'

const outfile = process.argv[2] || new URL('dist/pixel.js', import.meta.url).pathname
await build({
  entryPoints: [new URL('src/index.js', import.meta.url).pathname],
  outfile,
  bundle: true,
  minify: true,
  format: 'iife',
  target: 'es2021',
  legalComments: 'none',
  logLevel: 'warning',
})
