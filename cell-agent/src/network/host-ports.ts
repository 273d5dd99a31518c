import { NetworkConfigError, NetworkExhaustedError } from "./errors.js";

// Host ports the cell hands to published container ports, from --host-ports.

export interface PortRange {
  first: number;
  last: number;
}

export function parsePortRange(text: string): PortRange {
  const m = /^([0-9]{1,5})-([0-9]{1,5})$/.exec(text.trim());
  const first = Number(m?.[1]);
  const last = Number(m?.[2]);
  if (!m || first < 1 || last > 65535 || first > last) {
    throw new NetworkConfigError(`--host-ports must be FIRST-LAST within 1-65535, got '${text}'`);
  }
  return { first, last };
}

export class HostPortPool {
  private readonly used = new Set<number>();
  private next: number;

  constructor(readonly range: PortRange) {
    this.next = range.first;
  }

  allocate(): number {
    const size = this.range.last - this.range.first + 1;
    for (let i = 0; i < size; i++) {
      const port = this.next;
      this.next = port === this.range.last ? this.range.first : port + 1;
      if (!this.used.has(port)) {
        this.used.add(port);
        return port;
      }
    }
    throw new NetworkExhaustedError(`no free host port in ${this.range.first}-${this.range.last}`);
  }

  release(port: number): void {
    this.used.delete(port);
  }
}
