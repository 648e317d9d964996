// `make vendor`: web/vendor/oidc-client-ts.js, the page's OpenID client, as ONE ES module.
//
// The page has no build step: it loads this committed file. This script makes it again from the
// exact versions in package.json (npm ci first), with esbuild, so anyone can check that the file
// is what the registry published and nothing else. `--check` fails when the committed files differ
// from a fresh build (a unit test runs it).

import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import { build } from "esbuild";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const VENDOR = join(ROOT, "web", "vendor");
const pkg = (name) => JSON.parse(readFileSync(join(ROOT, "node_modules", name, "package.json"), "utf8"));

const client = pkg("oidc-client-ts");
const jwtDecode = pkg("jwt-decode");
const esbuild = pkg("esbuild");

const banner = `/*!
 * oidc-client-ts ${client.version} (${client.license}, https://github.com/authts/oidc-client-ts),
 * bundled with its dependency jwt-decode ${jwtDecode.version} (${jwtDecode.license}).
 * Licences: oidc-client-ts.LICENSE.txt beside this file. Made by \`make vendor\` (local/vendor_web.mjs)
 * with esbuild ${esbuild.version} from the npm packages pinned in package.json; do not edit.
 */`;

const result = await build({
  entryPoints: [join(ROOT, "node_modules", "oidc-client-ts", "dist", "esm", "oidc-client-ts.js")],
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
  banner: { js: banner },
  write: false,
  logLevel: "warning",
});

const licence = (name) => readFileSync(join(ROOT, "node_modules", name, "LICENSE"), "utf8");
const files = {
  "oidc-client-ts.js": result.outputFiles[0].text,
  "oidc-client-ts.LICENSE.txt": `oidc-client-ts ${client.version}\n\n${licence("oidc-client-ts")}\n\njwt-decode ${jwtDecode.version}\n\n${licence("jwt-decode")}`,
};

if (process.argv.includes("--check")) {
  const stale = Object.entries(files).filter(([name, text]) => {
    try {
      return readFileSync(join(VENDOR, name), "utf8") !== text;
    } catch {
      return true;
    }
  });
  if (stale.length) {
    console.error(`web/vendor is not what \`make vendor\` builds: ${stale.map(([name]) => name).join(", ")}`);
    process.exit(1);
  }
  console.log("web/vendor matches a fresh build");
} else {
  for (const [name, text] of Object.entries(files)) writeFileSync(join(VENDOR, name), text);
  console.log(`Wrote web/vendor/oidc-client-ts.js (oidc-client-ts ${client.version}, ${files["oidc-client-ts.js"].length} bytes)`);
}
