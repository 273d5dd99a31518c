// The human sizes Diego writes in "Downloaded app (1.2M)" lines (cloudfoundry bytefmt.ByteSize).

const UNITS: Array<[number, string]> = [
  [1024 ** 4, "T"],
  [1024 ** 3, "G"],
  [1024 ** 2, "M"],
  [1024, "K"],
  [1, "B"],
];

export function formatByteSize(bytes: number): string {
  if (bytes <= 0) return "0";
  const [size, unit] = UNITS.find(([s]) => bytes >= s) ?? [1, "B"];
  return `${oneDecimal(bytes / size).replace(/\.0$/, "")}${unit}`;
}

/** Like Go's %.1f: a tie rounds to even (1.25 -> "1.2"), where toFixed would round up. */
function oneDecimal(value: number): string {
  const tenths = value * 10;
  const floor = Math.floor(tenths);
  const rest = tenths - floor;
  const rounded = rest > 0.5 || (rest === 0.5 && floor % 2 === 1) ? floor + 1 : floor;
  return (rounded / 10).toFixed(1);
}
