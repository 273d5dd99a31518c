import { createHash } from "node:crypto";
import { closeSync, existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { mkdir, readdir, rm, unlink, writeFile } from "node:fs/promises";
import path from "node:path";
import type { Logger } from "pino";
import type { SecurityGroupRule } from "../../../src/gen/diego/v1/task_pb.js";
import { parseIpv4 } from "../../../src/model/index.js";
import { AddressPool, choosePool, formatCidr } from "./address-pool.js";
import { NetworkConfigError } from "./errors.js";
import { addContainerScript, cellTablesScript, dropTablesScript, removeContainerScript, type CellNames, type ContainerEntry } from "./firewall.js";
import { defaultRouteAddress, hostDnsServers, hostRoutes } from "./host-info.js";
import { HostPortPool, parsePortRange } from "./host-ports.js";
import { NetlinkError, RtNetlink } from "./netlink.js";
import { createNamespace, openNamespace, removeNamespace, type NewNamespace } from "./netns.js";
import { hostHelper, type NamespaceFiles, type NamespaceOwner } from "../sandbox/index.js";
import { watchKernelLog } from "./kernel-log.js";
import { nft } from "./nft.js";
import { spareNamespaces } from "./spare-namespaces.js";
import { spans } from "./spans.js";

// The cell's container network: one bridge with the cell's pool, one network namespace per
// container joined to it by a veth pair, egress denied unless a rule allows it, published ports
// DNATed from the cell's address. Netlink and nftables are called in-process (see netns.ts,
// netlink.ts, nft.ts): a container's whole network costs about a millisecond.

export interface CellNetworkOptions {
  /** The cell's work dir: names, pool and files derive from it, so cells never share them. */
  workDir: string;
  /** IPv4 CIDR of the containers' network; "" = a free /22 of 10.128.0.0/9. */
  cidr?: string;
  /** Resolvers named in each container's resolv.conf; empty = the machine's. */
  dnsServers?: string[];
  /** FIRST-LAST host ports for published container ports. */
  hostPorts?: string;
  /** Address published ports are reached at; "" = the default route's interface address. */
  cellAddress?: string;
  logger: Logger;
}

export interface ContainerNetworkSpec {
  id: string;
  rules: SecurityGroupRule[];
  /** Container ports to publish on the cell's address. */
  ports?: number[];
  /** Receives what `log: true` rules log (one line per new connection). */
  onLog?: (line: string) => void;
}

export interface ContainerNetwork {
  /** Where the namespace file is (or will be, once wired). */
  netnsPath: string;
  address: string;
  /** Host file to bind read-only at /etc/resolv.conf. */
  resolvConf: string;
  /** Published ports, in the order asked. */
  ports: Array<{ containerPort: number; hostPort: number }>;
  /** Some rule allows ICMP (protocol icmp or all). */
  allowsIcmp: boolean;
  /**
   * Creates the namespace, wired to the bridge, for the runtime to join. With `owner` it belongs
   * to a user namespace with that mapping, which the runtime joins too (see SandboxNetwork).
   */
  namespaceFiles(owner?: NamespaceOwner): Promise<NamespaceFiles>;
  /** Hands over the last logged connections and stops following the kernel log. */
  stopLogging(): void;
  /** Removes the namespace, veth, chains, lease and port reservations. Idempotent. */
  release(): Promise<void>;
}

export interface CellNetwork {
  readonly pool: string;
  readonly bridge: string;
  readonly gateway: string;
  readonly cellAddress: string;
  readonly names: CellNames;
  /** Host file every container gets read-only at /etc/resolv.conf. */
  readonly resolvConf: string;
  attach(spec: ContainerNetworkSpec): Promise<ContainerNetwork>;
  /** Removes the bridge, the tables and every container's network. */
  close(): Promise<void>;
}

const CONTAINER_SYSCTLS = {
  "net/ipv6/conf/all/disable_ipv6": "1",
  "net/ipv6/conf/default/disable_ipv6": "1",
  "net/ipv4/conf/all/accept_redirects": "0",
  "net/ipv4/conf/default/accept_redirects": "0",
  // Unprivileged containers ping through ICMP datagram sockets.
  "net/ipv4/ping_group_range": "0 2147483647",
};

/** Whether a rule lets ICMP out: then a user-namespaced container must be able to ping. */
export function allowsIcmp(rules: SecurityGroupRule[]): boolean {
  return rules.some((r) => ["icmp", "all"].includes(r.protocol.toLowerCase()));
}

export function cellNames(workDir: string): CellNames {
  const key = createHash("sha256").update(path.resolve(workDir)).digest("hex").slice(0, 8);
  return { table: `diego_${key}`, bridge: `dbr${key}`, vethPrefix: `dv${key}`, spareVethPrefix: `ds${key}`, logTag: `diego-${key}` };
}

/**
 * Removes what a killed cell left (veths, namespaces, tables, leases, port reservations), then
 * sets up the bridge and tables. Call after the sandbox's stale cleanup (containers are gone).
 */
export async function startCellNetwork(opts: CellNetworkOptions): Promise<CellNetwork> {
  const names = cellNames(opts.workDir);
  const dir = path.join(path.resolve(opts.workDir), "network");
  const dirs = { netns: path.join(dir, "netns"), spares: path.join(dir, "spares"), leases: path.join(dir, "leases"), ports: path.join(dir, "ports") };
  const hostPorts = new HostPortPool(parsePortRange(opts.hostPorts || "61000-61999"));
  if (opts.cellAddress && parseIpv4(opts.cellAddress) === undefined) {
    throw new NetworkConfigError(`--cell-address must be an IPv4 address, got '${opts.cellAddress}'`);
  }
  const badDns = (opts.dnsServers ?? []).filter((s) => parseIpv4(s) === undefined);
  if (badDns.length > 0) throw new NetworkConfigError(`--dns-servers must be IPv4 addresses, got '${badDns.join(",")}'`);
  const rt = RtNetlink.open();
  await removeLeftovers(rt, names, dirs, opts.logger);

  const pool = new AddressPool(choosePool(opts.cidr ?? "", names.table.slice(6), hostRoutes()));
  const cellAddress = opts.cellAddress || defaultRouteAddress() || pool.gateway;
  await Promise.all(Object.values(dirs).map((d) => mkdir(d, { recursive: true })));
  const resolvConf = path.join(dir, "resolv.conf");
  const dns = opts.dnsServers?.length ? opts.dnsServers : hostDnsServers();
  await writeFile(resolvConf, dns.map((s) => `nameserver ${s}\n`).join(""), { mode: 0o644 });

  rt.addBridge(names.bridge, bridgeMac(names));
  const bridgeIndex = linkIndex(names.bridge);
  writeFileSync(`/proc/sys/net/ipv6/conf/${names.bridge}/disable_ipv6`, "1");
  // Published ports at 127.0.0.1 leave through the bridge (see firewall.ts for the guard).
  writeFileSync(`/proc/sys/net/ipv4/conf/${names.bridge}/route_localnet`, "1");
  rt.addAddress(bridgeIndex, pool.gateway, pool.cidr.prefix);
  rt.setUp(bridgeIndex);
  enableForwarding(opts.logger);
  await nft().run(cellTablesScript({ names, pool: formatCidr(pool.cidr), cellAddress }));
  opts.logger.info({ pool: formatCidr(pool.cidr), bridge: names.bridge, cellAddress, dns }, "container network ready");

  const kernelLog = watchKernelLog(names.logTag, opts.logger);
  const spares = spareNamespaces({ dir: dirs.spares, sysctls: CONTAINER_SYSCTLS, rt, bridgeIndex, vethPrefix: names.spareVethPrefix, logger: opts.logger });

  const attach = async (spec: ContainerNetworkSpec): Promise<ContainerNetwork> => {
    const span = spans(opts.logger, spec.id);
    const lease = pool.allocate();
    const entry: ContainerEntry = {
      offset: lease.offset,
      id: spec.id,
      address: lease.address,
      veth: `${names.vethPrefix}${lease.offset.toString(16)}`,
      rules: spec.rules,
      published: [],
    };
    const netnsPath = path.join(dirs.netns, spec.id);
    const usernsPath = `${netnsPath}.user`;
    let rulesLoaded = false;
    let namespaced = false;
    let owner: NamespaceOwner | undefined;
    let released = false;
    const logging = spec.onLog && spec.rules.some((r) => r.log) ? kernelLog.follow(spec.id.slice(0, 64), spec.onLog) : undefined;
    const stopLogging = once(() => logging?.());
    const release = once(async () => {
      released = true;
      stopLogging();
      if (rulesLoaded) await span("remove rules", () => nft().run(removeContainerScript(names.table, entry)).catch((err: unknown) => warnCleanup(err, opts.logger)));
      // No explicit veth delete: it costs the kernel ~30 ms of RCU waits in this thread. The
      // veth goes with its namespace, which the kernel tears down in the background once the
      // file is unmounted and the container's processes are gone.
      if (namespaced) span("unmount namespace", () => tryQuietly(() => removeNamespace(netnsPath), opts.logger));
      if (owner) {
        tryQuietly(() => removeNamespace(usernsPath), opts.logger);
        // The next container with this mapping (ids are reused lowest first) finds it made.
        const { hostId, size } = owner;
        void hostHelper().spareNetns(hostId, size).catch((err: unknown) => opts.logger.debug({ err }, "no spare network namespace"));
      }
      await span("remove lease files", () => Promise.all([
        unlink(path.join(dirs.leases, entry.address)).catch(() => undefined),
        ...entry.published.map((p) => unlink(path.join(dirs.ports, String(p.hostPort))).catch(() => undefined)),
      ]));
      for (const p of entry.published) hostPorts.release(p.hostPort);
      pool.release(entry.offset);
    });

    /** Joins a fresh namespace to the bridge: veth, loopback, address, default route. */
    const wire = (make: () => NewNamespace & { hostIndex?: number }): void => {
      const ns = span("enter namespace", make);
      try {
        if (ns.hostIndex === undefined) {
          span("add veth", () => addVeth(rt, entry.veth, bridgeIndex, ns.fd, opts.logger));
          // Isolated ports reach the bridge (the cell) only, never each other: container to
          // container traffic is routed, through the firewall.
          span("isolate port", () => writeFileSync(`/sys/class/net/${entry.veth}/brport/isolated`, "1"));
        } else {
          // A spare's veth is enslaved and isolated already: it takes the container's name.
          const hostIndex = ns.hostIndex;
          span("rename veth", () => renameVeth(rt, hostIndex, entry.veth, opts.logger));
        }
        span("address and route", () => {
          ns.netlink.setUp(1);
          const eth0 = ns.netlink.linkIndex("eth0");
          ns.netlink.addAddress(eth0, entry.address, 32);
          ns.netlink.setUp(eth0);
          ns.netlink.addDefaultRoute(eth0, pool.gateway);
        });
      } finally {
        ns.netlink.close();
        closeSync(ns.fd);
      }
    };

    try {
      for (const containerPort of spec.ports ?? []) entry.published.push({ containerPort, hostPort: hostPorts.allocate() });
      // The files only record what is in use (a restarted cell removes everything of its own
      // anyway): written while the rules load. The rules match the container's address: in
      // force before it has an interface.
      const [files, rules] = await Promise.allSettled([
        span("write lease files", () => Promise.all([
          writeFile(path.join(dirs.leases, entry.address), spec.id),
          ...entry.published.map((p) => writeFile(path.join(dirs.ports, String(p.hostPort)), `${spec.id} ${p.containerPort}`)),
        ])),
        span("load rules", () => nft().run(addContainerScript(names.table, names.logTag, entry))),
      ]);
      rulesLoaded = rules.status === "fulfilled";
      if (rules.status === "rejected") throw rules.reason;
      if (files.status === "rejected") throw files.reason;
    } catch (err) {
      await release();
      throw err;
    }
    return {
      netnsPath,
      address: entry.address,
      resolvConf,
      ports: entry.published,
      allowsIcmp: allowsIcmp(spec.rules),
      async namespaceFiles(userns) {
        if (namespaced) throw new NetworkConfigError(`container ${spec.id}: network namespace already made`);
        namespaced = true;
        if (!userns) {
          wire(() => spares.take(netnsPath) ?? createNamespace(netnsPath, CONTAINER_SYSCTLS));
          return { netns: netnsPath };
        }
        owner = userns;
        await span("make namespaces", () => hostHelper().usernsNetns(userns.hostId, userns.size, netnsPath, usernsPath));
        if (released) {
          // Released while the helper worked: nothing else would remove what it just made.
          for (const f of [netnsPath, usernsPath]) tryQuietly(() => removeNamespace(f), opts.logger);
          throw new NetworkConfigError(`container ${spec.id}: network released while its namespace was made`);
        }
        wire(() => openNamespace(netnsPath, CONTAINER_SYSCTLS));
        return { netns: netnsPath, userns: usernsPath };
      },
      stopLogging,
      release,
    };
  };

  return {
    pool: formatCidr(pool.cidr),
    bridge: names.bridge,
    gateway: pool.gateway,
    cellAddress,
    names,
    resolvConf,
    attach,
    async close() {
      kernelLog.stop();
      spares.close();
      await removeLeftovers(rt, names, dirs, opts.logger);
      rt.close();
    },
  };
}

/** A veth of a long-gone container of the same name may still be being torn down: replace it. */
function addVeth(rt: RtNetlink, name: string, bridgeIndex: number, nsFd: number, logger: Logger): void {
  try {
    rt.addVeth(name, bridgeIndex, "eth0", nsFd);
  } catch (err) {
    if (!(err instanceof NetlinkError && err.errno === 17 /* EEXIST */)) throw err;
    logger.debug({ veth: name }, "replacing a veth left from an earlier container");
    rt.deleteLink(name);
    rt.addVeth(name, bridgeIndex, "eth0", nsFd);
  }
}

/** Gives a spare's veth the container's name (replacing a long-gone container's, as addVeth). */
function renameVeth(rt: RtNetlink, index: number, name: string, logger: Logger): void {
  try {
    rt.renameUp(index, name);
  } catch (err) {
    if (!(err instanceof NetlinkError && err.errno === 17 /* EEXIST */)) throw err;
    logger.debug({ veth: name }, "replacing a veth left from an earlier container");
    rt.deleteLink(name);
    rt.renameUp(index, name);
  }
}

/** A fixed, locally administered unicast address per cell (02:d1 + the cell's key). */
export function bridgeMac(names: CellNames): Buffer {
  return Buffer.concat([Buffer.from([0x02, 0xd1]), Buffer.from(names.table.slice(-8), "hex")]);
}

function linkIndex(name: string): number {
  return Number(readFileSync(`/sys/class/net/${name}/ifindex`, "utf8").trim());
}

/** Routing between the containers' bridge and the machine's other interfaces needs forwarding. */
function enableForwarding(logger: Logger): void {
  const file = "/proc/sys/net/ipv4/ip_forward";
  if (readFileSync(file, "utf8").trim() !== "1") {
    writeFileSync(file, "1");
    logger.info("enabled IPv4 forwarding (net.ipv4.ip_forward=1) for the containers' network");
  }
}

async function removeLeftovers(
  rt: RtNetlink,
  names: CellNames,
  dirs: { netns: string; spares: string; leases: string; ports: string },
  logger: Logger,
): Promise<void> {
  const links = existsSync("/sys/class/net") ? readdirSync("/sys/class/net") : [];
  const veths = links.filter((n) => n.startsWith(names.vethPrefix) || n.startsWith(names.spareVethPrefix));
  for (const v of veths) tryQuietly(() => rt.deleteLink(v), logger);
  const namespaces = await readdir(dirs.netns).catch(() => []);
  for (const ns of namespaces) tryQuietly(() => removeNamespace(path.join(dirs.netns, ns)), logger);
  const spares = await readdir(dirs.spares).catch(() => []);
  for (const ns of spares) tryQuietly(() => removeNamespace(path.join(dirs.spares, ns)), logger);
  const leases = await readdir(dirs.leases).catch(() => []);
  const ports = await readdir(dirs.ports).catch(() => []);
  await nft().run(dropTablesScript(names)).catch((err: unknown) => warnCleanup(err, logger));
  tryQuietly(() => rt.deleteLink(names.bridge), logger);
  await Promise.all(Object.values(dirs).map((d) => rm(d, { recursive: true, force: true })));
  if (veths.length + namespaces.length + spares.length + leases.length + ports.length > 0) {
    logger.info({ veths: veths.length, namespaces: namespaces.length, spares: spares.length, leases: leases.length, ports: ports.length }, "removed stale container networks");
  }
}

function tryQuietly(fn: () => unknown, logger: Logger): void {
  try {
    fn();
  } catch (err) {
    warnCleanup(err, logger);
  }
}

function warnCleanup(err: unknown, logger: Logger): void {
  logger.warn({ err }, "network cleanup step failed");
}

function once<T>(fn: () => T): () => T {
  let done = false;
  let result: T;
  return () => {
    if (!done) {
      done = true;
      result = fn();
    }
    return result;
  };
}
