import { formatIpv4, parseIpv4 } from "../../../src/model/index.js";
import { NetworkConfigError, NetworkExhaustedError } from "./errors.js";
import type { Route } from "./host-info.js";

// The cell's private network: the bridge takes the first address, containers the others.

export interface Cidr {
  base: number;
  prefix: number;
}

const MIN_PREFIX = 12; // host offsets must fit the 5 hex digits of a veth name
const MAX_PREFIX = 29;
// Default pools are /22 blocks of 10.128.0.0/9, picked from the cell's key.
const DEFAULT_PREFIX = 22;
const DEFAULT_SPACE = { base: parseIpv4("10.128.0.0")!, prefix: 9 };

export function parseCidr(text: string): Cidr {
  const [addr, bits, ...rest] = text.split("/");
  const base = parseIpv4(addr ?? "");
  const prefix = Number(bits);
  if (base === undefined || rest.length > 0 || !/^[0-9]{1,2}$/.test(bits ?? "") || prefix < MIN_PREFIX || prefix > MAX_PREFIX) {
    throw new NetworkConfigError(`--network-cidr must be an IPv4 CIDR from /${MIN_PREFIX} to /${MAX_PREFIX}, got '${text}'`);
  }
  const size = 2 ** (32 - prefix);
  if (base % size !== 0) throw new NetworkConfigError(`--network-cidr '${text}' has host bits set (network is ${formatIpv4(base - (base % size))}/${prefix})`);
  return { base, prefix };
}

export const formatCidr = (c: Cidr): string => `${formatIpv4(c.base)}/${c.prefix}`;

function overlaps(a: Cidr, b: Cidr): boolean {
  const p = Math.min(a.prefix, b.prefix);
  const size = 2 ** (32 - p);
  return Math.floor(a.base / size) === Math.floor(b.base / size);
}

/** The routes (other than the default route) that overlap `cidr`. */
export function clashingRoutes(cidr: Cidr, routes: Route[]): Route[] {
  return routes.filter((r) => r.prefix > 0 && overlaps(cidr, r));
}

/** The given pool, refused if it clashes; or the first free default /22 from the cell's key. */
export function choosePool(given: string, key: string, routes: Route[]): Cidr {
  if (given !== "") {
    const cidr = parseCidr(given);
    const clash = clashingRoutes(cidr, routes);
    if (clash.length > 0) {
      const names = clash.map((r) => `${formatCidr(r)} on ${r.iface}`).join(", ");
      throw new NetworkConfigError(`--network-cidr ${formatCidr(cidr)} clashes with the machine's route(s) ${names}; choose another range`);
    }
    return cidr;
  }
  const blocks = 2 ** (DEFAULT_PREFIX - DEFAULT_SPACE.prefix);
  const start = parseInt(key.slice(0, 8), 16) % blocks;
  for (let i = 0; i < blocks; i++) {
    const cidr = { base: DEFAULT_SPACE.base + ((start + i) % blocks) * 2 ** (32 - DEFAULT_PREFIX), prefix: DEFAULT_PREFIX };
    if (clashingRoutes(cidr, routes).length === 0) return cidr;
  }
  throw new NetworkConfigError("no /22 of 10.128.0.0/9 is free of the machine's routes: set --network-cidr");
}

/** Container addresses of one pool: offsets 2 .. size-2 (1 is the bridge). */
export class AddressPool {
  private readonly used = new Set<number>();
  private next = 2;

  constructor(readonly cidr: Cidr) {}

  get gateway(): string {
    return formatIpv4(this.cidr.base + 1);
  }

  /** Reserves a free offset; the address is base + offset. */
  allocate(): { offset: number; address: string } {
    const size = 2 ** (32 - this.cidr.prefix);
    for (let i = 0; i < size; i++) {
      const offset = this.next;
      this.next = this.next + 1 >= size - 1 ? 2 : this.next + 1;
      if (!this.used.has(offset)) {
        this.used.add(offset);
        return { offset, address: formatIpv4(this.cidr.base + offset) };
      }
    }
    throw new NetworkExhaustedError(`no free address in ${formatCidr(this.cidr)}`);
  }

  release(offset: number): void {
    this.used.delete(offset);
  }
}
