// Go-style durations, as the reference speaks them: the CLI's flags ("500ms", "30s", "1h30m")
// and failure reasons that quote Go's time.Duration.String() ("exceeded 1m0s timeout").

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const SECOND = 1_000_000_000n;

export class InvalidDurationError extends Error {
  override readonly name = "InvalidDurationError";
}

/** Milliseconds in "500ms", "30s", "2m", "1h30m", "1.5s"; a bare integer is milliseconds. */
export function parseDuration(text: string): number {
  const trimmed = text.trim();
  if (/^[0-9]+$/.test(trimmed)) return Number(trimmed);
  const re = /([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)/gy;
  let total = 0;
  let consumed = 0;
  for (const m of trimmed.matchAll(re)) {
    total += Number(m[1]) * UNIT_MS[m[2]!]!;
    consumed += m[0].length;
  }
  if (consumed === 0 || consumed !== trimmed.length) {
    throw new InvalidDurationError(`invalid duration '${text}' (use e.g. 500ms, 30s, 2m, 1h)`);
  }
  return total;
}

/** Milliseconds as Go writes them: 10ms, 1s, 1.5s, 1m0s, 1h0m0s. */
export function formatDuration(ms: number): string {
  return formatGoDuration(BigInt(Math.round(ms * 1_000_000)));
}

/** Nanoseconds as Go writes them: 0s, 999ns, 1.5µs, 10ms, 1s, 1.5s, 1m0s, 2h3m4.5s. */
export function formatGoDuration(nanoseconds: bigint): string {
  const negative = nanoseconds < 0n;
  const u = negative ? -nanoseconds : nanoseconds;
  const text = u < SECOND ? subSecond(u) : withClock(u);
  return negative ? `-${text}` : text;
}

function subSecond(u: bigint): string {
  if (u === 0n) return "0s";
  if (u < 1_000n) return `${u}ns`;
  if (u < 1_000_000n) return `${fraction(u, 3)}µs`;
  return `${fraction(u, 6)}ms`;
}

function withClock(u: bigint): string {
  const seconds = `${fraction(u % (60n * SECOND), 9)}s`;
  const minutes = u / (60n * SECOND);
  if (minutes === 0n) return seconds;
  const hours = minutes / 60n;
  if (hours === 0n) return `${minutes}m${seconds}`;
  return `${hours}h${minutes % 60n}m${seconds}`;
}

/** value / 10^digits as a decimal without trailing zeros (and without "." when whole). */
function fraction(value: bigint, digits: number): string {
  const scale = 10n ** BigInt(digits);
  const whole = value / scale;
  const frac = (value % scale).toString().padStart(digits, "0").replace(/0+$/, "");
  return frac ? `${whole}.${frac}` : `${whole}`;
}
