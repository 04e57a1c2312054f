// cli.ts, reporting its own peak resident memory as it exits: the last line of stderr is a NUL,
// "peak RSS KiB: " and the KiB (tests/_cli.ts takes the line off again). The kernel's ru_maxrss
// of the process, as /usr/bin/time -f %M reads it too, but on any OS and without that program.
import process from "node:process";
import { writeSync } from "node:fs";

const report = () => writeSync(2, `\0peak RSS KiB: ${process.resourceUsage().maxRSS}\n`);
// Deno.exit() skips process's "exit" event; Deno's "unload" comes on every way out.
if ("Deno" in globalThis) globalThis.addEventListener("unload", report);
else process.on("exit", report);

await import("../cli.ts");
