#!/usr/bin/env node
// The npm package's command: the CLI built into dist/ by `npm run build`.
import "../dist/cli.js";
