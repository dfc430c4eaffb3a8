// Run the Khronos glTF validator on one .glb/.gltf file and print a JSON summary on stdout:
// {"errors": n, "warnings": n, "infos": n, "hints": n, "messages": [{code, severity, message, pointer}]}.
// Exit code 0 when the file was validated (whatever it contains), 2 on usage or read errors.
// Used by dinar_core/export/gltf_validator.py; install with `npm ci` in this folder.
import { readFile } from "node:fs/promises";
import path from "node:path";
import validator from "gltf-validator";

const file = process.argv[2];
if (!file) {
  console.error("usage: node validate.mjs FILE.glb");
  process.exit(2);
}
let bytes;
try {
  bytes = new Uint8Array(await readFile(file));
} catch (err) {
  console.error(`cannot read ${file}: ${err.message}`);
  process.exit(2);
}
const report = await validator.validateBytes(bytes, {
  uri: path.basename(file),
  maxIssues: 200,
  // External resources (a .gltf's .bin or images) are read next to the file; a GLB needs none.
  externalResourceFunction: (uri) => readFile(path.join(path.dirname(file), decodeURIComponent(uri))).then((b) => new Uint8Array(b)),
});
const severities = ["error", "warning", "info", "hint"];
const summary = {
  errors: report.issues.numErrors,
  warnings: report.issues.numWarnings,
  infos: report.issues.numInfos,
  hints: report.issues.numHints,
  messages: report.issues.messages.map((m) => ({
    code: m.code, severity: severities[m.severity] ?? String(m.severity), message: m.message, pointer: m.pointer ?? null,
  })),
};
console.log(JSON.stringify(summary));
