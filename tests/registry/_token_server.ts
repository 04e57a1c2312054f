// A token server as distribution's `auth.token` expects one (docs: "Token Authentication
// Specification"): GET /token?service=…&scope=… with Basic credentials (or none) answers
// {"token","access_token"}, an RS256 JWT whose `x5c` header carries the signing certificate, so
// the registry checks it against its `rootcertbundle`. USERS get what they ask for, anonymous
// callers `pull` only on repositories under `public/`.
import { createServer, type IncomingMessage, type Server } from "node:http";
import { createSign, X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { USERS } from "./_registry_server.ts";

export const SERVICE = "test-registry";
export const ISSUER = "test-token-issuer";

/** A running token server. */
export interface TokenServer {
  /** `http://127.0.0.1:<port>/token`, the registry's realm. */
  realm: string;
  /** Every request: who asked (`-` for anonymous) and the scopes asked for. */
  requests: { user: string; scope: string[]; authorization: string | undefined }[];
  stop(): Promise<void>;
}

const base64url = (data: string | Uint8Array) =>
  Buffer.from(data).toString("base64").replace(/=+$/, "").replace(/\+/g, "-").replace(/\//g, "_");

function jwt(claims: Record<string, unknown>, certificate: string, key: string): string {
  const der = new X509Certificate(certificate).raw;
  const header = { typ: "JWT", alg: "RS256", x5c: [Buffer.from(der).toString("base64")] };
  const payload = `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(claims))}`;
  const signature = createSign("RSA-SHA256").update(payload).sign(key);
  return `${payload}.${base64url(signature)}`;
}

/** The user of a Basic `Authorization`, `-` without one, `null` when the password is wrong. */
function user(request: IncomingMessage): string | null {
  const header = request.headers.authorization;
  if (header === undefined) return "-";
  const [name, password] = Buffer.from(header.replace(/^Basic /, ""), "base64").toString().split(
    ":",
  );
  return name !== undefined && USERS[name] === password ? name : null;
}

/**
 * Starts the token server on 127.0.0.1.
 *
 * @param certificatePath The PEM certificate JWTs are signed under (the registry's bundle).
 * @param keyPath Its private key.
 */
export function startTokenServer(certificatePath: string, keyPath: string): Promise<TokenServer> {
  const certificate = readFileSync(certificatePath, "utf8");
  const key = readFileSync(keyPath, "utf8");
  const requests: TokenServer["requests"] = [];
  const server: Server = createServer((request, response) => {
    const url = new URL(request.url ?? "/", "http://localhost");
    const scope = url.searchParams.getAll("scope").flatMap((s) => s.split(" "));
    const who = user(request);
    requests.push({ user: who ?? "!", scope, authorization: request.headers.authorization });
    if (who === null) {
      response.writeHead(401, { "content-type": "application/json" });
      response.end(JSON.stringify({ details: "incorrect username or password" }));
      return;
    }
    const access = scope.flatMap((entry) => {
      const [type, name, actions] = entry.split(":");
      if (type !== "repository" || name === undefined || actions === undefined) return [];
      const granted = who === "-"
        ? (name.startsWith("public/") ? actions.split(",").filter((a) => a === "pull") : [])
        : actions.split(",");
      return [{ type, name, actions: granted }];
    });
    const now = Math.floor(Date.now() / 1000);
    const token = jwt(
      {
        iss: ISSUER,
        sub: who === "-" ? "" : who,
        aud: SERVICE,
        exp: now + 300,
        nbf: now - 10,
        iat: now,
        jti: crypto.randomUUID(),
        access,
      },
      certificate,
      key,
    );
    response.writeHead(200, { "content-type": "application/json" });
    response.end(JSON.stringify({ token, access_token: token, expires_in: 300 }));
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      resolve({
        realm: `http://127.0.0.1:${port}/token`,
        requests,
        stop: () => new Promise((done) => server.close(() => done())),
      });
    });
  });
}
