// A certificate authority of the test's own, made with openssl: a server certificate for
// 127.0.0.1 and localhost, and a client certificate, all signed by it.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** The files made, as paths, and their PEM text. */
export interface TestCertificates {
  dir: string;
  caPath: string;
  serverCertPath: string;
  serverKeyPath: string;
  clientCertPath: string;
  clientKeyPath: string;
  ca: string;
  clientCert: string;
  clientKey: string;
  /** Removes the files. */
  remove(): void;
}

function openssl(dir: string, args: string[]): void {
  execFileSync("openssl", args, { cwd: dir, stdio: ["ignore", "ignore", "pipe"] });
}

/** A new CA, with a server and a client certificate signed by it (valid for two days). */
export function makeCertificates(): TestCertificates {
  const dir = mkdtempSync(join(tmpdir(), "certs-test-"));
  const key = ["-newkey", "rsa:2048", "-nodes"];
  openssl(dir, [
    "req",
    "-x509",
    ...key,
    "-keyout",
    "ca.key",
    "-out",
    "ca.crt",
    "-days",
    "2",
    "-subj",
    "/CN=test CA",
  ]);
  const sign = (name: string, subject: string, extension: string) => {
    writeFileSync(join(dir, `${name}.ext`), `${extension}\n`);
    openssl(dir, [
      "req",
      ...key,
      "-keyout",
      `${name}.key`,
      "-out",
      `${name}.csr`,
      "-subj",
      subject,
    ]);
    openssl(dir, [
      "x509",
      "-req",
      "-in",
      `${name}.csr`,
      "-CA",
      "ca.crt",
      "-CAkey",
      "ca.key",
      "-CAcreateserial",
      "-out",
      `${name}.cert`,
      "-days",
      "2",
      "-extfile",
      `${name}.ext`,
    ]);
  };
  sign("server", "/CN=127.0.0.1", "subjectAltName=IP:127.0.0.1,DNS:localhost");
  sign("client", "/CN=test client", "extendedKeyUsage=clientAuth");
  const read = (name: string) => readFileSync(join(dir, name), "utf8");
  return {
    dir,
    caPath: join(dir, "ca.crt"),
    serverCertPath: join(dir, "server.cert"),
    serverKeyPath: join(dir, "server.key"),
    clientCertPath: join(dir, "client.cert"),
    clientKeyPath: join(dir, "client.key"),
    ca: read("ca.crt"),
    clientCert: read("client.cert"),
    clientKey: read("client.key"),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
