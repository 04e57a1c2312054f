// What a failed connection says, in one line: each runtime words a TLS failure its own way
// (Node and Bun by OpenSSL's codes, Deno by rustls' names), and an OpenSSL message can end in a
// newline. A certificate problem says what would fix it.

/** Why a TLS handshake failed, as far as the runtime's error tells. */
export type TlsFailure =
  | "certificate untrusted"
  | "certificate invalid"
  | "client certificate refused"
  | "not TLS";

const UNTRUSTED = new Set([
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
]);
const INVALID = new Set(["CERT_HAS_EXPIRED", "CERT_NOT_YET_VALID", "ERR_TLS_CERT_ALTNAME_INVALID"]);

/** What each failure means, and what to do about it. */
const HINTS: Record<TlsFailure, string> = {
  "certificate untrusted":
    "the registry's certificate is signed by an unknown authority (trust its CA: tls.caCertificates)",
  "certificate invalid": "the registry's certificate is expired or not valid for this host name",
  "client certificate refused":
    "the registry refused the TLS handshake: it wants a client certificate (tls.certificate and tls.key), or refused the one given",
  "not TLS": "the registry does not speak TLS on this port (plain http?)",
};

/** The error and its causes' codes and messages, as one text to look through. */
function causeChain(error: unknown): { codes: string[]; text: string } {
  const codes: string[] = [];
  const texts: string[] = [];
  for (let cause = error, depth = 0; cause !== undefined && cause !== null && depth < 4; depth++) {
    const code = (cause as { code?: unknown }).code;
    if (typeof code === "string") codes.push(code);
    texts.push(cause instanceof Error ? cause.message : String(cause));
    cause = (cause as { cause?: unknown }).cause;
  }
  return { codes, text: texts.join(": ") };
}

/**
 * The TLS failure behind a failed connection, if it is one.
 *
 * @param error What the transport threw.
 * @returns The failure, or `null` when it is no TLS failure this knows.
 */
export function tlsFailure(error: unknown): TlsFailure | null {
  const { codes, text } = causeChain(error);
  if (codes.some((code) => UNTRUSTED.has(code)) || /UnknownIssuer/.test(text)) {
    return "certificate untrusted";
  }
  if (codes.some((code) => INVALID.has(code)) || /NotValidForName|Expired|NotValidYet/.test(text)) {
    return "certificate invalid";
  }
  if (
    codes.some((code) =>
      /ALERT_(BAD_CERTIFICATE|CERTIFICATE_REQUIRED|HANDSHAKE_FAILURE)/.test(code)
    ) ||
    /BadCertificate|CertificateRequired|TLS handshake failed/.test(text)
  ) {
    return "client certificate refused";
  }
  if (
    codes.includes("ERR_SSL_WRONG_VERSION_NUMBER") || /InvalidContentType|CorruptMessage/.test(text)
  ) {
    return "not TLS";
  }
  return null;
}

/**
 * A failed connection in one line: what a TLS failure means and how to fix it, else the
 * runtime's own words with their line breaks folded.
 *
 * @param error What the transport threw.
 * @returns The line.
 */
export function describeNetworkFailure(error: unknown): string {
  const failure = tlsFailure(error);
  if (failure !== null) return HINTS[failure];
  return String(error).replace(/\s+/g, " ").trim();
}
