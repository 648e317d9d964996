// Bundles this example (React, @ai-sdk/react and ai at the exact versions in the project's
// package.json) with the project's pinned esbuild: `node examples/use-chat/build.mjs <out dir>`
// writes index.html and main.js there, ready for any static server. The test
// (tests/e2e/test_use_chat_example.py) builds it into a temporary directory each run, so what it
// drives is always this source; nothing built is committed.

import { copyFileSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import { build } from "esbuild";

const HERE = dirname(fileURLToPath(import.meta.url));
const out = process.argv[2];
if (!out) throw new Error("usage: node examples/use-chat/build.mjs <out dir>");
mkdirSync(out, { recursive: true });
await build({
  entryPoints: [join(HERE, "main.jsx")],
  outfile: join(out, "main.js"),
  bundle: true,
  format: "esm",
  jsx: "automatic",
  target: "es2022",
  minify: true,
  define: { "process.env.NODE_ENV": '"production"' },
  logLevel: "warning",
});
copyFileSync(join(HERE, "index.html"), join(out, "index.html"));
