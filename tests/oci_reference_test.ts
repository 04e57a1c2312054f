// `oci:DIR:NAME` read as skopeo reads it (the directory ends at the first ":", the name obeys
// the OCI layout's reference grammar), and OciLayoutStore.tag() refusing names that grammar
// refuses: `oci:BASE/inner/x:../../escaped` once wrote to BASE/inner/escaped.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { ociLayoutStore, RegistryError } from "../src/registry/mod.ts";
import { isOciRefName } from "../src/registry/oci_layout.ts";
import { runCli, tempDir } from "./_cli.ts";

const COPY = { denoPermissions: ["--allow-write", "--allow-net", "--allow-run"] };

test("cli.ts copy refuses oci:BASE/inner/x:../../escaped before writing anything (exit 2)", async () => {
  const base = tempDir();
  try {
    mkdirSync(join(base, "inner"));
    // Nothing listens on port 9: a run that got past the names would fail otherwise.
    for (const side of [`${base}/inner/x:../../escaped`, `${base}/inner/x:a/../../escaped`]) {
      const run = await runCli(["copy", "docker://127.0.0.1:9/team/app:1.0", `oci:${side}`], COPY);
      assert.equal(run.code, 2, run.stderr);
      assert.match(
        run.stderr,
        /^error: Cannot copy "oci:.*": invalid image "(a\/)?\.\.\/\.\.\/escaped"/,
      );
      assert.deepEqual(readdirSync(base), ["inner"]);
      assert.deepEqual(readdirSync(join(base, "inner")), []);
    }
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
});

test("isOciRefName() follows the OCI layout's grammar for ref names", () => {
  for (
    const name of [
      "1.0",
      "latest",
      "app:1.0",
      "127.0.0.1:5000/team/app:1.0",
      "a--b",
      "v1+build",
      "sha256:abc",
    ]
  ) {
    assert.ok(isOciRefName(name), name);
  }
  for (
    const name of ["", "../x", "..", "a/../b", "-x", "x-", "a__b", "_x", "a//b", "/a", "a b", "ü"]
  ) {
    assert.ok(!isOciRefName(name), name);
  }
});

test("OciLayoutStore.tag() refuses a name the layout's grammar refuses: TAG_INVALID, index.json unchanged", async () => {
  const dir = tempDir();
  try {
    const store = await ociLayoutStore(dir);
    const descriptor = {
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      digest: "sha256:" + "a".repeat(64),
      size: 2,
    };
    await store.tag("1.0", descriptor);
    const before = readFileSync(join(dir, "index.json"), "utf8");
    for (const name of ["../../escaped", "", "x/../y"]) {
      await assert.rejects(store.tag(name, descriptor), (error: unknown) => {
        assert.ok(error instanceof RegistryError);
        assert.equal(error.code, "TAG_INVALID");
        return true;
      });
    }
    assert.equal(readFileSync(join(dir, "index.json"), "utf8"), before);
    await store.tag("127.0.0.1:5000/team/app:1.0", descriptor);
    assert.equal((await store.resolve("127.0.0.1:5000/team/app:1.0"))?.digest, descriptor.digest);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
