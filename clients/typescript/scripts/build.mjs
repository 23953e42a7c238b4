// Builds the package (dist/, by tsc) and the browser module the gateway
// serves, web/static/client/ccevents.js: the compiled src/index.ts with a
// banner naming the hash of the sources it was built from. The Go test in
// web/ checks that hash without Node; this package's tests compare the
// whole file.
//
//   node scripts/build.mjs          build dist/ and write the served file
//   node scripts/build.mjs --check  build dist/ and fail if the served file is stale
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { readFileSync, readdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { createRequire } from "node:module";

const pkg = join(dirname(fileURLToPath(import.meta.url)), "..");
const served = join(pkg, "..", "..", "web", "static", "client", "ccevents.js");

/** sha256 over tsconfig.json and src/*.ts, each as name NUL content NUL, in name order. */
export function sourcesHash() {
  const files = ["tsconfig.json", ...readdirSync(join(pkg, "src")).filter((f) => f.endsWith(".ts")).sort().map((f) => `src/${f}`)];
  const h = createHash("sha256");
  for (const f of files) {
    h.update(f + "\0");
    h.update(readFileSync(join(pkg, f)));
    h.update("\0");
  }
  return h.digest("hex");
}

export function servedModule() {
  const body = readFileSync(join(pkg, "dist", "index.js"), "utf8");
  return (
    "// ccevents.js: the ccevents client for browsers, served by the gateway as /client/ccevents.js.\n" +
    "// Built from clients/typescript (the npm package @ccevents/client) by `npm run build`; do not edit.\n" +
    `// sources sha256 ${sourcesHash()}\n` +
    body
  );
}

function tsc() {
  const bin = createRequire(import.meta.url).resolve("typescript/bin/tsc");
  execFileSync(process.execPath, [bin, "-p", join(pkg, "tsconfig.json")], { stdio: "inherit" });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  tsc();
  const want = servedModule();
  if (process.argv.includes("--check")) {
    let got = "";
    try {
      got = readFileSync(served, "utf8");
    } catch {}
    if (got !== want) {
      console.error(`${served} is stale: run \`npm run build\` in clients/typescript and commit it`);
      process.exit(1);
    }
  } else {
    writeFileSync(served, want);
    console.log(`wrote ${served}`);
  }
}
