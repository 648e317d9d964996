// `make vendor`: the page's third-party code in web/vendor/, each library as ONE ES module.
//
//   oidc-client-ts.js  the OpenID client (with jwt-decode), loaded only when sign-in is configured
//   markdown-it.js     the CommonMark parser of replies (with entities, linkify-it, mdurl, punycode.js, uc.micro)
//   highlight.js       highlight.js core with the common languages registered, for code blocks
//
// The page has no build step: it loads these committed files. This script makes them again from
// the exact versions in package.json (npm ci first), with esbuild, so anyone can check that each
// file is what the registry published and nothing else. Each bundle's licence file holds the
// licence of every package esbuild put in it (read from the build's metafile, so none is missed).
// `--check` fails when the committed files differ from a fresh build (a unit test runs it).

import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import { build } from "esbuild";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const MODULES = join(ROOT, "node_modules");
const VENDOR = join(ROOT, "web", "vendor");
const pkg = (name) => JSON.parse(readFileSync(join(MODULES, name, "package.json"), "utf8"));
const esbuildVersion = pkg("esbuild").version;

// The languages a chat reply's code blocks most often use: highlight.js's own "common" set, plus
// Dockerfile and PowerShell. Fewer languages keep the file small and auto-detection fast.
const LANGUAGES = [
  "bash", "c", "cpp", "csharp", "css", "diff", "dockerfile", "go", "graphql", "ini", "java",
  "javascript", "json", "kotlin", "less", "lua", "makefile", "markdown", "objectivec", "perl", "php",
  "php-template", "plaintext", "powershell", "python", "python-repl", "r", "ruby", "rust", "scss",
  "shell", "sql", "swift", "typescript", "vbnet", "wasm", "xml", "yaml",
];

const highlightEntry = [
  'import hljs from "highlight.js/lib/core";',
  ...LANGUAGES.map((name, n) => `import l${n} from "highlight.js/lib/languages/${name}";`),
  ...LANGUAGES.map((name, n) => `hljs.registerLanguage(${JSON.stringify(name)}, l${n});`),
  "export default hljs;",
].join("\n");

const BUNDLES = [
  {
    name: "oidc-client-ts",
    main: "oidc-client-ts",
    entry: { entryPoints: [join(MODULES, "oidc-client-ts", "dist", "esm", "oidc-client-ts.js")] },
    url: "https://github.com/authts/oidc-client-ts",
  },
  {
    name: "markdown-it",
    main: "markdown-it",
    entry: { entryPoints: [join(MODULES, "markdown-it", "dist", "markdown-it.mjs")] },
    url: "https://github.com/markdown-it/markdown-it",
  },
  {
    name: "highlight",
    main: "highlight.js",
    entry: { stdin: { contents: highlightEntry, resolveDir: ROOT, sourcefile: "highlight-entry.js" } },
    url: "https://github.com/highlightjs/highlight.js",
    note: `core with these languages registered: ${LANGUAGES.join(", ")}`,
  },
];

/** The npm packages whose files esbuild put in a bundle, in a stable order. */
function bundledPackages(metafile) {
  const names = new Set();
  for (const input of Object.keys(metafile.inputs)) {
    const found = /(?:^|\/)node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(input);
    if (found) names.add(found[1]);
  }
  return [...names].sort();
}

function licenceText(name) {
  const file = readdirSync(join(MODULES, name)).find((f) => /^licen[cs]e/i.test(f));
  if (!file) throw new Error(`${name} has no LICENSE file to vendor`);
  return readFileSync(join(MODULES, name, file), "utf8");
}

async function make(bundle) {
  const main = pkg(bundle.main);
  const result = await build({
    ...bundle.entry,
    absWorkingDir: ROOT,
    // The path comments in the bundle stay `node_modules/...` where node_modules is a symlink too.
    preserveSymlinks: true,
    bundle: true,
    format: "esm",
    platform: "browser",
    target: "es2022",
    minify: false,
    legalComments: "inline",
    sourcemap: false,
    metafile: true,
    write: false,
    logLevel: "warning",
  });
  const packages = bundledPackages(result.metafile);
  const others = packages.filter((name) => name !== bundle.main).map((name) => `${name} ${pkg(name).version} (${pkg(name).license})`);
  const about = [`${bundle.main} ${main.version} (${main.license}, ${bundle.url})`];
  if (bundle.note) about.push(bundle.note);
  if (others.length) about.push(`bundled with ${others.length > 1 ? "its dependencies" : "its dependency"} ${others.join(", ")}`);
  const banner = [
    "/*!",
    ...about.map((line, n) => ` * ${line}${n === about.length - 1 ? "." : ","}`),
    ` * Licences: ${bundle.name}.LICENSE.txt beside this file. Made by \`make vendor\` (local/vendor_web.mjs)`,
    ` * with esbuild ${esbuildVersion} from the npm packages pinned in package.json; do not edit.`,
    " */",
  ].join("\n");
  const licences = [bundle.main, ...packages.filter((name) => name !== bundle.main)].map((name) => `${name} ${pkg(name).version}\n\n${licenceText(name).trimEnd()}\n`);
  return {
    [`${bundle.name}.js`]: `${banner}\n\n${result.outputFiles[0].text}`,
    [`${bundle.name}.LICENSE.txt`]: licences.join("\n\n"),
  };
}

const files = Object.assign({}, ...(await Promise.all(BUNDLES.map(make))));

if (process.argv.includes("--check")) {
  const stale = Object.entries(files).filter(([name, text]) => {
    const path = join(VENDOR, name);
    return !existsSync(path) || readFileSync(path, "utf8") !== text;
  });
  const unknown = readdirSync(VENDOR).filter((name) => !(name in files));
  if (stale.length || unknown.length) {
    const names = [...stale.map(([name]) => name), ...unknown.map((name) => `${name} (not made by make vendor)`)];
    console.error(`web/vendor is not what \`make vendor\` builds: ${names.join(", ")}`);
    process.exit(1);
  }
  console.log("web/vendor matches a fresh build");
} else {
  for (const [name, text] of Object.entries(files)) {
    writeFileSync(join(VENDOR, name), text);
    console.log(`Wrote web/vendor/${name} (${text.length} bytes)`);
  }
}
