#!/bin/sh
":" //; exec node --max-semi-space-size=64 "$0" "$@"
// The `vellum` command. The CLI is written in TypeScript and compiled to dist/ by `npm run build`
// (run automatically by `npm ci` through the `prepare` script).
//
// Run as a program, this file is a shell script for its first two lines: they re-run it under
// node with V8's young generation raised to 64 MiB a half (16 by default), the one way to set it
// for a process's main thread. The sequencer's batches of thousands of entries live just long
// enough to outlast a 16 MiB scavenge, and copying them was 15-16 % of a sustained run against
// 8-9 % with 64 (`npm run bench:log`, README "Performance"). `exec` keeps the process id, so a
// signal sent to `vellum` reaches node. Run by node (`node bin/vellum.js …`), the second line is a
// string and a comment, and the flag is not set: pass it yourself where it matters. The formatter
// leaves this file alone (biome.json): the semicolon it would add after the string would make the
// shell run `//` as a command. test/e2e/launcher.test.ts checks both ways of running it.
import "../dist/cli/main.js";
