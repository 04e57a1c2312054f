// Debian's nginx-light in front of a registry on 127.0.0.1: every request proxied to it, except
// blob GETs, which are answered `307` to a second origin (another port) that serves them with
// credentials of its own, as a registry redirecting to a storage bucket's presigned URL does.
// The second origin logs the `Authorization` each request brought.
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { onExit } from "./_on_exit.ts";
import { freePort, listening, terminate } from "./_registry_server.ts";

export const NGINX_BINARY = "/usr/sbin/nginx";

/** A running pair of nginx origins. */
export interface RedirectingProxy {
  /** `127.0.0.1:<port>`: the registry's front, the domain of references. */
  host: string;
  /** Each blob request the second origin received: method, path and the Authorization it brought. */
  redirected(): { method: string; path: string; authorization: string }[];
  stop(): Promise<void>;
}

/**
 * Starts nginx in front of `registryHost`.
 *
 * @param registryHost `127.0.0.1:<port>` of the registry.
 * @param authorization The `Authorization` the second origin adds (the bucket's own access).
 */
export async function startRedirectingProxy(
  registryHost: string,
  authorization: string,
): Promise<RedirectingProxy> {
  const dir = mkdtempSync(join(tmpdir(), "nginx-test-"));
  const [front, bucket] = [await freePort(), await freePort()];
  const temp = ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"]
    .map((name) => `  ${name}_temp_path ${dir}/${name};`).join("\n");
  writeFileSync(
    join(dir, "nginx.conf"),
    `worker_processes 1;
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log;
events { worker_connections 64; }
http {
${temp}
  access_log off;
  log_format bucket '$request_method $uri "$http_authorization"';
  client_max_body_size 0;
  proxy_request_buffering off;
  proxy_buffering off;
  proxy_http_version 1.1;
  server {
    listen 127.0.0.1:${front};
    location ~ ^/v2/.+/blobs/sha256:[0-9a-f]+$ {
      if ($request_method = GET) { return 307 http://127.0.0.1:${bucket}$request_uri; }
      proxy_set_header Host $http_host;
      proxy_pass http://${registryHost};
    }
    location / {
      proxy_set_header Host $http_host;
      proxy_pass http://${registryHost};
    }
  }
  server {
    listen 127.0.0.1:${bucket};
    access_log ${dir}/bucket.log bucket;
    location / {
      proxy_set_header Authorization "${authorization}";
      proxy_pass http://${registryHost};
    }
  }
}
`,
  );
  const child: ChildProcess = spawn(NGINX_BINARY, [
    "-p",
    dir,
    "-c",
    join(dir, "nginx.conf"),
    "-e",
    join(dir, "error.log"),
  ], {
    stdio: "ignore",
  });
  const kill = () => {
    child.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  };
  const cancelOnExit = onExit(kill);
  const up = (port: number) => listening(port).then(() => true, () => false);
  for (let attempt = 0; !(await up(front) && await up(bucket)); attempt++) {
    if (attempt === 200 || child.exitCode !== null) {
      cancelOnExit();
      kill();
      throw new Error(`nginx did not start: ${readFileSync(join(dir, "error.log"), "utf8")}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  return {
    host: `127.0.0.1:${front}`,
    redirected: () =>
      readFileSync(join(dir, "bucket.log"), "utf8").trim().split("\n").filter(Boolean).map(
        (line) => {
          const [method, path, quoted] = line.split(" ");
          return { method: method!, path: path!, authorization: JSON.parse(quoted!) };
        },
      ),
    stop: async () => {
      cancelOnExit();
      await terminate(child);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
