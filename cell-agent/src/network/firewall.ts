import type { SecurityGroupRule } from "../../../src/gen/diego/v1/task_pb.js";
import { formatIpv4, parseDestination, ruleDestinations } from "../../../src/model/index.js";

// nftables text for the cell's tables and for one container's chains. Everything a container
// sends that is not a reply passes its chain, which accepts what a rule allows and drops the
// rest; rules are checked last first, as 2015 Diego evaluated them ("the last one takes
// precedence"), which matters only for which rule logs.
//
// Published ports answer at 127.0.0.1 too: the output hook DNATs them, the bridge (only) has
// route_localnet so such packets may leave through it, and they are masqueraded to the bridge
// address so the container can answer. route_localnet would also let a container with
// CAP_NET_RAW reach the machine's loopback services with hand-made frames to 127.0.0.1
// (CVE-2020-8558): anything new from the bridge to 127.0.0.0/8 is dropped, rules or not.

export interface CellNames {
  /** inet and bridge table name. */
  table: string;
  bridge: string;
  /** Prefix of every host-side veth of the cell's containers. */
  vethPrefix: string;
  /** Prefix of the host-side veths of spare namespaces (renamed when a container takes one). */
  spareVethPrefix: string;
  /** First word of the cell's kernel log lines. */
  logTag: string;
}

export interface CellTables {
  names: CellNames;
  pool: string;
  cellAddress: string;
}

/** Removes the cell's tables if present (add + delete: nft has no "delete if exists" here). */
export function dropTablesScript(n: CellNames): string {
  return [
    `add table inet ${n.table}`,
    `delete table inet ${n.table}`,
    `add table bridge ${n.table}`,
    `delete table bridge ${n.table}`,
    "",
  ].join("\n");
}

export function cellTablesScript(t: CellTables): string {
  const { table, bridge, vethPrefix } = t.names;
  const br = `"${bridge}"`;
  return `${dropTablesScript(t.names)}
table inet ${table} {
  map egress { type ipv4_addr : verdict; }
  map published { type inet_service : verdict; }
  chain forward {
    type filter hook forward priority filter; policy accept;
    iifname ${br} ct state established,related accept
    iifname ${br} ip daddr 127.0.0.0/8 drop
    iifname ${br} ip saddr vmap @egress
    iifname ${br} drop
    oifname ${br} ct state established,related accept
    oifname ${br} ct status dnat accept
    oifname ${br} drop
  }
  chain input {
    type filter hook input priority filter; policy accept;
    iifname ${br} ct state established,related accept
    iifname ${br} ip daddr 127.0.0.0/8 drop
    iifname ${br} ip saddr vmap @egress
    iifname ${br} drop
  }
  chain prerouting {
    type nat hook prerouting priority dstnat; policy accept;
    ip daddr ${t.cellAddress} tcp dport vmap @published
  }
  chain output {
    type nat hook output priority -100; policy accept;
    ip daddr { ${t.cellAddress}, 127.0.0.1 } tcp dport vmap @published
  }
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    ip saddr ${t.pool} oifname != ${br} masquerade
    ip saddr 127.0.0.0/8 oifname ${br} masquerade
  }
}
table bridge ${table} {
  set ports { type ifname . ipv4_addr; }
  chain input {
    type filter hook input priority filter; policy accept;
    iifname != "${vethPrefix}*" accept
    ether type arp iifname . arp saddr ip @ports accept
    ether type ip iifname . ip saddr @ports accept
    drop
  }
}
`;
}

export interface ContainerEntry {
  /** Unique while the container lives: its address offset in the pool. */
  offset: number;
  id: string;
  address: string;
  veth: string;
  rules: SecurityGroupRule[];
  published: Array<{ containerPort: number; hostPort: number }>;
}

const egressChain = (c: ContainerEntry): string => `c${c.offset}`;
const natChain = (c: ContainerEntry): string => `p${c.offset}`;

export function addContainerScript(table: string, logTag: string, c: ContainerEntry): string {
  const chain = egressChain(c);
  const lines = [`add chain inet ${table} ${chain}`];
  const rules = c.rules.map((rule, i) => ({ rule, i })).reverse();
  for (const { rule, i } of rules) {
    for (const match of ruleMatches(rule)) {
      const log = rule.log ? ` log prefix "${logPrefix(logTag, c.id, i)}"` : "";
      lines.push(`add rule inet ${table} ${chain} ${match}${log} accept`);
    }
  }
  lines.push(`add rule inet ${table} ${chain} drop`);
  lines.push(`add element inet ${table} egress { ${c.address} : jump ${chain} }`);
  lines.push(`add element bridge ${table} ports { "${c.veth}" . ${c.address} }`);
  if (c.published.length > 0) {
    lines.push(`add chain inet ${table} ${natChain(c)}`);
    for (const p of c.published) {
      lines.push(`add rule inet ${table} ${natChain(c)} tcp dport ${p.hostPort} dnat ip to ${c.address}:${p.containerPort}`);
      lines.push(`add element inet ${table} published { ${p.hostPort} : jump ${natChain(c)} }`);
    }
  }
  return `${lines.join("\n")}\n`;
}

export function removeContainerScript(table: string, c: ContainerEntry): string {
  const lines = [
    `delete element inet ${table} egress { ${c.address} }`,
    `delete element bridge ${table} ports { "${c.veth}" . ${c.address} }`,
    `flush chain inet ${table} ${egressChain(c)}`,
    `delete chain inet ${table} ${egressChain(c)}`,
  ];
  if (c.published.length > 0) {
    for (const p of c.published) lines.push(`delete element inet ${table} published { ${p.hostPort} }`);
    lines.push(`flush chain inet ${table} ${natChain(c)}`, `delete chain inet ${table} ${natChain(c)}`);
  }
  return `${lines.join("\n")}\n`;
}

/** Kernel log prefix (at most 127 bytes): which container and which of its rules. */
export function logPrefix(tag: string, id: string, rule: number): string {
  return `${tag} ${id.slice(0, 64)} rule ${rule}: `;
}

/** One nft match per destination (one rule each, so overlapping destinations never clash). */
function ruleMatches(rule: SecurityGroupRule): string[] {
  const protocol = rule.protocol.toLowerCase();
  const l4 = layer4(rule, protocol);
  return ruleDestinations(rule).flatMap((d) => {
    const range = parseDestination(d);
    if (!range) return [];
    const dest = range.first === range.last ? formatIpv4(range.first) : `${formatIpv4(range.first)}-${formatIpv4(range.last)}`;
    return [`ip daddr ${dest}${l4}`];
  });
}

function layer4(rule: SecurityGroupRule, protocol: string): string {
  switch (protocol) {
    case "tcp":
    case "udp": {
      if (rule.portRange) return ` ${protocol} dport ${rule.portRange.start}-${rule.portRange.end}`;
      const ports = [...new Set(rule.ports)].sort((a, b) => a - b);
      return ` ${protocol} dport { ${ports.join(", ")} }`;
    }
    case "icmp": {
      const info = rule.icmpInfo;
      if (!info || info.type < 0) return " meta l4proto icmp";
      return info.code < 0 ? ` icmp type ${info.type}` : ` icmp type ${info.type} icmp code ${info.code}`;
    }
    default:
      return "";
  }
}
