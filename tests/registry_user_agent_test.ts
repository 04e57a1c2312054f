// Every request names this client: DEFAULT_USER_AGENT (this package and its version) unless the
// caller gives `userAgent`, as docker-registry's access log records it.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { DEFAULT_USER_AGENT, RegistryError, tags } from "../src/registry/mod.ts";
import { repo } from "./_cli.ts";
import { startRegistry } from "./registry/_registry_server.ts";

test("DEFAULT_USER_AGENT names the package and its version", () => {
  const { name, version } = JSON.parse(readFileSync(`${repo}/package.json`, "utf8"));
  // `@distribution/metadata` as one product token: a "/" in it would end the name.
  assert.equal(DEFAULT_USER_AGENT, `${name.slice(1).replace("/", "-")}/${version}`);
});

test("tags() sends DEFAULT_USER_AGENT, or the caller's userAgent, on every request", async () => {
  const server = await startRegistry({ accessLog: true });
  try {
    for (const userAgent of [undefined, "ci-mirror/2.1"]) {
      await assert.rejects(
        tags(`${server.host}/team/app`, { plainHttp: true, ...userAgent ? { userAgent } : {} }),
        RegistryError,
      );
    }
    // The ping and the tag list of each call (the test's own probes of the server left out).
    const agents = (await server.requests()).map((request) => request.userAgent)
      .filter((agent) => !/^(Deno|Bun|node|undici)\b/.test(agent));
    assert.deepEqual(agents, [
      DEFAULT_USER_AGENT,
      DEFAULT_USER_AGENT,
      "ci-mirror/2.1",
      "ci-mirror/2.1",
    ]);
  } finally {
    await server.stop();
  }
});
