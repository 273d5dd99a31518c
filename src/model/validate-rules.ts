import type { SecurityGroupRule } from "../gen/diego/v1/task_pb.js";

// Validation of egress rules as bbs did in 2015 (reference 2.3), every problem named. Each item
// names the rule by its index, e.g. `Invalid field: security_group_rules[1].ports`.

const PROTOCOLS = new Set(["tcp", "udp", "icmp", "all"]);
const MAX_PORT = 65535;

/** A destination as the firewall needs it: an inclusive range of IPv4 addresses as numbers. */
export interface AddressRange {
  first: number;
  last: number;
}

/** Problems of one rule (empty when valid); `at` is how the rule is named, e.g. security_group_rules[0]. */
export function validateRule(rule: SecurityGroupRule, at: string): string[] {
  const protocol = rule.protocol.toLowerCase();
  if (!PROTOCOLS.has(protocol)) return [`Invalid field: ${at}.protocol`, ...destinationProblems(rule, at)];
  const problems: string[] = [];
  const hasPorts = rule.ports.length > 0 || isEmptyPortsGiven(rule);
  const hasRange = rule.portRange !== undefined;
  if (protocol === "tcp" || protocol === "udp") {
    if (!hasPorts && !hasRange) problems.push(`Missing required field: ${at}.ports or port_range`);
    else if (hasPorts && hasRange) problems.push(`Invalid: ${at} has both ports and port_range`);
    else if (hasRange && !isValidRange(rule.portRange!.start, rule.portRange!.end)) problems.push(`Invalid field: ${at}.port_range`);
    else if (hasPorts && !(rule.ports.length > 0 && rule.ports.every((p) => p >= 1 && p <= MAX_PORT))) problems.push(`Invalid field: ${at}.ports`);
    if (rule.icmpInfo) problems.push(`Invalid field: ${at}.icmp_info`);
  } else {
    if (hasPorts) problems.push(`Invalid field: ${at}.ports`);
    if (hasRange) problems.push(`Invalid field: ${at}.port_range`);
    if (protocol === "icmp") {
      if (!rule.icmpInfo) problems.push(`Missing required field: ${at}.icmp_info`);
      else if (!isIcmpValue(rule.icmpInfo.type) || !isIcmpValue(rule.icmpInfo.code)) problems.push(`Invalid field: ${at}.icmp_info`);
    } else if (rule.icmpInfo) {
      problems.push(`Invalid field: ${at}.icmp_info`);
    }
  }
  // Logging is for connections: tcp and all, as garden honoured it.
  if (rule.log && (protocol === "udp" || protocol === "icmp")) problems.push(`Invalid field: ${at}.log`);
  return [...problems, ...destinationProblems(rule, at)];
}

// protobuf cannot tell `"ports": []` from no ports; the JSON decoder marks it (see task-json).
const EMPTY_PORTS = new WeakSet<SecurityGroupRule>();
export function markEmptyPorts(rule: SecurityGroupRule): void {
  EMPTY_PORTS.add(rule);
}
function isEmptyPortsGiven(rule: SecurityGroupRule): boolean {
  return EMPTY_PORTS.has(rule);
}

const isValidRange = (start: number, end: number): boolean => start >= 1 && start <= end && end <= MAX_PORT;
// -1 = any type or code; otherwise what fits the ICMP header's byte.
const isIcmpValue = (v: number): boolean => v >= -1 && v <= 255;

/** The single `destination` of the older shape, then `destinations`. */
export function ruleDestinations(rule: SecurityGroupRule): string[] {
  return rule.destination === "" ? rule.destinations : [rule.destination, ...rule.destinations];
}

function destinationProblems(rule: SecurityGroupRule, at: string): string[] {
  const all = ruleDestinations(rule);
  if (all.length === 0) return [`Invalid field: ${at}.destinations [ Must have at least 1 destination ]`];
  const problems: string[] = [];
  for (const d of all) {
    const why = destinationProblem(d);
    if (why) problems.push(`Invalid field: ${at}.destinations [ ${JSON.stringify(d.slice(0, 64))}: ${why} ]`);
  }
  return problems;
}

function destinationProblem(value: string): string | undefined {
  return parseDestination(value) ? undefined : describeBadDestination(value);
}

function describeBadDestination(value: string): string {
  const dash = value.indexOf("-");
  const slash = value.indexOf("/");
  if (dash >= 0 && (slash < 0 || dash < slash)) {
    const [a, b] = [value.slice(0, dash), value.slice(dash + 1)];
    if (parseIpv4(a) === undefined || parseIpv4(b) === undefined) return "Invalid IP range";
    return "Invalid IP range: first address is greater than the last";
  }
  if (slash >= 0) return "Invalid CIDR";
  return "Invalid IP";
}

/** An IPv4 address, CIDR or range as an inclusive address range; undefined when malformed. */
export function parseDestination(value: string): AddressRange | undefined {
  const dash = value.indexOf("-");
  const slash = value.indexOf("/");
  if (dash >= 0 && (slash < 0 || dash < slash)) {
    const first = parseIpv4(value.slice(0, dash));
    const last = parseIpv4(value.slice(dash + 1));
    if (first === undefined || last === undefined || first > last) return undefined;
    return { first, last };
  }
  if (slash >= 0) {
    const base = parseIpv4(value.slice(0, slash));
    const bits = value.slice(slash + 1);
    if (base === undefined || !/^[0-9]{1,2}$/.test(bits) || Number(bits) > 32) return undefined;
    const size = 2 ** (32 - Number(bits));
    const first = base - (base % size);
    return { first, last: first + size - 1 };
  }
  const addr = parseIpv4(value);
  return addr === undefined ? undefined : { first: addr, last: addr };
}

/** Dotted-quad IPv4 as a number (no leading zeros beyond "0", no spaces). */
export function parseIpv4(value: string): number | undefined {
  const octets = value.split(".");
  if (octets.length !== 4) return undefined;
  let n = 0;
  for (const o of octets) {
    if (!/^(0|[1-9][0-9]{0,2})$/.test(o) || Number(o) > 255) return undefined;
    n = n * 256 + Number(o);
  }
  return n;
}

export function formatIpv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join(".");
}
