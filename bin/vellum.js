#!/usr/bin/env node
// The `vellum` command. The CLI is written in TypeScript and compiled to dist/ by `npm run build`
// (run automatically by `npm ci` through the `prepare` script).
import "../dist/cli/main.js";
