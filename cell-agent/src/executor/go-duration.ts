// Go's time.Duration.String(), because failure reasons quote it: "exceeded 1m0s timeout".

const SECOND = 1_000_000_000n;

/** Formats nanoseconds like Go: 0s, 999ns, 1.5µs, 10ms, 1s, 1.5s, 1m0s, 2h3m4.5s. */
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
