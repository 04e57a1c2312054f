// The main job on a temp store: record pulled layers with credentials, read them back,
// decide which entries the credentials may mount from, and show the files dockerd would see.
// Run: deno task demo (or: bun demo.ts, node --import tsx demo.ts)
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  checkV2MetadataHMAC,
  computeV2MetadataHMACKey,
  type FileSystem,
  FSMetadataStore,
  V2MetadataService,
} from "./mod.ts";

async function printTree(fs: FileSystem, dir: string, indent = ""): Promise<void> {
  for (const name of (await fs.readDir(dir)).sort()) {
    const info = (await fs.stat(`${dir}/${name}`))!;
    const mode = info.mode.toString(8).padStart(4, "0");
    if (info.kind === "directory") {
      console.log(`${indent}${mode} ${name}/`);
      await printTree(fs, `${dir}/${name}`, indent + "  ");
    } else {
      const text = new TextDecoder().decode(await fs.readFile(`${dir}/${name}`));
      console.log(`${indent}${mode} ${name.slice(0, 20)}… ${info.size} B  ${text.slice(0, 90)}…`);
    }
  }
}

const root = join(mkdtempSync(join(tmpdir(), "distribution-metadata-demo-")), "distribution");
const store = await FSMetadataStore.open(root);
const service = new V2MetadataService(store);
const alice = await computeV2MetadataHMACKey({ username: "alice", password: "s3cret" });
const bob = await computeV2MetadataHMACKey({ username: "bob", password: "hunter2" });
console.log(`store: ${root}`);
console.log(`alice's HMAC key: ${new TextDecoder().decode(alice!)}\n`);

const hex = (n: number) => n.toString(16).repeat(64).slice(0, 64);
const diffID = `sha256:${hex(0xd1)}`;
await service.tagAndAdd(diffID, alice, {
  digest: `sha256:${hex(0xa1)}`,
  sourceRepository: "docker.io/library/busybox",
  hmac: "",
});
await service.tagAndAdd(diffID, bob, {
  digest: `sha256:${hex(0xa1)}`,
  sourceRepository: "registry.example.com:5000/team/app",
  hmac: "",
});
await service.add(diffID, {
  digest: `sha256:${hex(0xa1)}`,
  sourceRepository: "docker.io/library/alpine",
  hmac: "",
});

console.log(`metadata of ${diffID.slice(0, 19)}…, and whether alice's credentials match:`);
for (const entry of await service.getMetadata(diffID)) {
  const ok = await checkV2MetadataHMAC(entry, alice);
  const tag = entry.hmac ? entry.hmac.slice(0, 12) + "…" : "(untagged)";
  console.log(
    `  ${entry.sourceRepository.padEnd(36)} hmac ${tag.padEnd(15)} alice: ${ok ? "yes" : "no"}`,
  );
}
console.log(
  `digest ${hex(0xa1).slice(0, 12)}… belongs to ${await service.getDiffID(
    `sha256:${hex(0xa1)}`,
  )}\n`,
);
console.log("files, as dockerd would write them:");
await printTree(store.fs, root);
