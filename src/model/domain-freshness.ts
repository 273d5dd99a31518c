// PUT /v1/domains/:domain's Cache-Control header as the 2015 receptor read it (reference
// diego-2015-behaviour.md 1.3): each header value on its own; the first that starts with
// `max-age=` gives the TTL in seconds; no header at all means fresh for ever (TTL 0).

/** The TTL in seconds, or the 400 InvalidRequest message. */
export type MaxAge = { ttlSeconds: number } | { problem: string };

const MAX_TTL_SECONDS = 0xffffffff; // DomainFreshness.ttl_seconds is a uint32

/** `values`: every Cache-Control value sent (a header sent twice is two values); none: absent. */
export function parseDomainMaxAge(values: readonly string[]): MaxAge {
  if (values.length === 0) return { ttlSeconds: 0 };
  const directive = values.map((v) => v.trim()).find((v) => v.startsWith("max-age="));
  if (directive === undefined) return { problem: "max-age directive missing from request" };
  const digits = directive.slice("max-age=".length);
  // Go's Atoi took a sign; a negative or over-large TTL is refused here rather than stored.
  if (!/^[0-9]{1,10}$/.test(digits) || Number(digits) > MAX_TTL_SECONDS) return { problem: `invalid-max-age-directive: ${directive.slice(0, 100)}` };
  return { ttlSeconds: Number(digits) };
}

/** The domain of the path: "" is 400 InvalidRequest. */
export function domainProblem(domain: string): string | undefined {
  return domain === "" ? "domain missing from request" : undefined;
}
