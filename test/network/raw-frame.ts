// One hand-made Ethernet frame (IPv4 + UDP) sent out of a container's eth0, as a process with
// CAP_NET_RAW in that container could send it: the attacks on the cell the firewall must stop.
import { closeSync, openSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { CLONE_NEWNET, closeFd, setns, socket } from "../../cell-agent/src/libc/index.js";
import { RtNetlink } from "../../cell-agent/src/network/netlink.js";

const require = createRequire(import.meta.url);
// eslint-disable-next-line @typescript-eslint/no-require-imports
const koffi = require("koffi") as typeof import("koffi");
const sendto = koffi.load("libc.so.6").func("long sendto(int fd, const void *buf, size_t len, int flags, const void *addr, uint32_t addrlen)");

const AF_PACKET = 17;
const SOCK_RAW = 3;
const ETH_P_IP = 0x0800;

export interface UdpFrame {
  /** The container's network namespace file. */
  netns: string;
  /** The bridge the frame is addressed to (its MAC is read from sysfs). */
  bridge: string;
  src: string;
  dst: string;
  dstPort: number;
  payload: string;
}

export function sendUdpFrame(f: UdpFrame): void {
  const host = openSync("/proc/thread-self/ns/net", "r");
  const ns = openSync(f.netns, "r");
  let fd = -1;
  let ifindex = 0;
  try {
    setns(ns, CLONE_NEWNET);
    try {
      fd = socket(AF_PACKET, SOCK_RAW, 0);
      const nl = RtNetlink.open();
      ifindex = nl.linkIndex("eth0");
      nl.close();
    } finally {
      setns(host, CLONE_NEWNET);
    }
    const frame = ethernet(mac(readFileSync(`/sys/class/net/${f.bridge}/address`, "utf8")), ipv4Udp(f));
    const addr = Buffer.alloc(20);
    addr.writeUInt16LE(AF_PACKET, 0);
    addr.writeUInt16BE(ETH_P_IP, 2);
    addr.writeInt32LE(ifindex, 4);
    if (Number(sendto(fd, frame, frame.length, 0, addr, addr.length)) !== frame.length) throw new Error("sendto failed");
  } finally {
    if (fd >= 0) closeFd(fd);
    closeSync(ns);
    closeSync(host);
  }
}

const mac = (s: string): Buffer => Buffer.from(s.trim().split(":").map((h) => parseInt(h, 16)));
const ip = (s: string): Buffer => Buffer.from(s.split(".").map(Number));

function ethernet(dstMac: Buffer, payload: Buffer): Buffer {
  const header = Buffer.alloc(14);
  dstMac.copy(header, 0);
  Buffer.from([0x02, 0, 0, 0, 0, 0x01]).copy(header, 6);
  header.writeUInt16BE(ETH_P_IP, 12);
  return Buffer.concat([header, payload]);
}

function ipv4Udp(f: UdpFrame): Buffer {
  const data = Buffer.from(f.payload);
  const udp = Buffer.alloc(8);
  udp.writeUInt16BE(40000, 0);
  udp.writeUInt16BE(f.dstPort, 2);
  udp.writeUInt16BE(8 + data.length, 4); // checksum 0: none, allowed over IPv4
  const header = Buffer.alloc(20);
  header.writeUInt8(0x45, 0);
  header.writeUInt16BE(20 + 8 + data.length, 2);
  header.writeUInt8(64, 8); // TTL
  header.writeUInt8(17, 9); // UDP
  ip(f.src).copy(header, 12);
  ip(f.dst).copy(header, 16);
  header.writeUInt16BE(checksum(header), 10);
  return Buffer.concat([header, udp, data]);
}

function checksum(b: Buffer): number {
  let sum = 0;
  for (let i = 0; i < b.length; i += 2) sum += b.readUInt16BE(i);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >> 16);
  return ~sum & 0xffff;
}
