// Runs one scenario file against a live Runwatch server with the official SDK.
//
//   RUNWATCH_API_URL=http://127.0.0.1:8100 RUNWATCH_API_KEY=tr_dev_… node run.mjs scenarios/runs.mjs
//
// A scenario module exports `checks`: an object of named async functions, run in
// order, each receiving the shared context `t` (see harness.mjs). Every check prints
// one line, `ok <name>` or `FAIL <name>: <reason>`; the process exits 1 if any failed.
import { pathToFileURL } from "node:url";
import { resolve } from "node:path";
import { makeContext } from "./harness.mjs";

const file = process.argv[2];
if (!file) {
  console.error("usage: node run.mjs <scenario file>");
  process.exit(2);
}
const scenario = await import(pathToFileURL(resolve(file)).href);
const t = makeContext();
let failed = 0;
for (const [name, check] of Object.entries(scenario.checks)) {
  const started = Date.now();
  try {
    await check(t);
    console.log(`ok ${name} (${Date.now() - started} ms)`);
  } catch (error) {
    failed += 1;
    const detail = error?.stack ?? String(error);
    console.log(`FAIL ${name}: ${detail.replaceAll("\n", "\n    ")}`);
  }
}
console.log(`${Object.keys(scenario.checks).length - failed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
