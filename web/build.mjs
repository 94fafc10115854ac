// Builds dist/ from src/: the learner app (dist/app) and the operator console
// (dist/console). The output is committed, and CI rebuilds it and fails if it
// differs, so it must be deterministic: no timestamps, no absolute paths, no
// source maps, no comments. Run with `npm run build`.

import { build } from 'esbuild';
import { copyFile, mkdir, readFile, rm } from 'node:fs/promises';
import { gzipSync } from 'node:zlib';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = dirname(fileURLToPath(import.meta.url));
process.chdir(root);

const pkg = JSON.parse(await readFile('package.json', 'utf8'));

/** [entry, output] pairs, relative to web/. */
const bundles = [
  ['src/app/main.ts', 'dist/app/app.js'],
  ['src/app/style.css', 'dist/app/app.css'],
  ['src/console/main.ts', 'dist/console/console.js'],
  ['src/console/style.css', 'dist/console/console.css'],
];
const pages = [
  ['src/app/index.html', 'dist/app/index.html'],
  ['src/console/index.html', 'dist/console/index.html'],
];

await rm('dist', { recursive: true, force: true });

for (const [entry, outfile] of bundles) {
  await build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2020',
    minify: true,
    sourcemap: false,
    legalComments: 'none',
    charset: 'utf8',
    treeShaking: true,
    // Relative to web/, never absolute: nothing of this machine in the output.
    absWorkingDir: root,
    define: { __APP_VERSION__: JSON.stringify(pkg.version) },
    logLevel: 'warning',
  });
}

for (const [from, to] of pages) {
  const html = await readFile(from, 'utf8');
  if (html.split('<!--learnsphere-config-->').length !== 2) {
    throw new Error(`${from}: the <!--learnsphere-config--> placeholder must appear exactly once`);
  }
  await mkdir(dirname(to), { recursive: true });
  await copyFile(from, to);
}

const rows = [];
for (const [, file] of [...bundles, ...pages]) {
  const bytes = await readFile(file);
  rows.push(`${file.padEnd(28)} ${String(bytes.length).padStart(8)} B  ${String(gzipSync(bytes, { level: 9 }).length).padStart(7)} B gzip`);
}
console.log(rows.join('\n'));
