import { AF_NETLINK, closeFd, NETLINK_ROUTE, recv, send, SOCK_CLOEXEC, SOCK_RAW, socket, strerror } from "../libc/index.js";

// A minimal rtnetlink client: the handful of link, address and route requests a container's
// network needs, each sent and acknowledged synchronously (microseconds, no exec of `ip`).

const NLM_F_REQUEST = 0x1;
const NLM_F_ACK = 0x4;
const NLM_F_EXCL = 0x200;
const NLM_F_CREATE = 0x400;
const NLMSG_ERROR = 2;
const RTM_NEWLINK = 16;
const RTM_DELLINK = 17;
const RTM_GETLINK = 18;
const RTM_NEWADDR = 20;
const RTM_NEWROUTE = 24;
const IFLA_ADDRESS = 1;
const IFLA_IFNAME = 3;
const IFLA_MASTER = 10;
const IFLA_LINKINFO = 18;
const IFLA_NET_NS_FD = 28;
const IFLA_INFO_KIND = 1;
const IFLA_INFO_DATA = 2;
const VETH_INFO_PEER = 1;
const IFA_LOCAL = 2;
const IFA_ADDRESS = 1;
const RTA_GATEWAY = 5;
const RTA_OIF = 4;
const IFF_UP = 1;
const AF_INET = 2;
const AF_UNSPEC = 0;
const RT_TABLE_MAIN = 254;
const RTPROT_BOOT = 3;
const RTN_UNICAST = 1;
const RTNH_F_ONLINK = 4;
const NLA_F_NESTED = 0x8000;

export class NetlinkError extends Error {
  constructor(
    readonly what: string,
    readonly errno: number,
  ) {
    super(`${what}: ${strerror(errno)} (errno ${errno})`);
    this.name = "NetlinkError";
  }
}

function attr(type: number, payload: Buffer): Buffer {
  const len = 4 + payload.length;
  const out = Buffer.alloc((len + 3) & ~3);
  out.writeUInt16LE(len, 0);
  out.writeUInt16LE(type, 2);
  payload.copy(out, 4);
  return out;
}
const strAttr = (type: number, s: string): Buffer => attr(type, Buffer.from(`${s}\0`));
const u32Attr = (type: number, v: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v >>> 0);
  return attr(type, b);
};
const nested = (type: number, ...parts: Buffer[]): Buffer => attr(type | NLA_F_NESTED, Buffer.concat(parts));
const ipv4 = (addr: string): Buffer => Buffer.from(addr.split(".").map(Number));

function ifinfo(index = 0, flags = 0, change = 0): Buffer {
  const b = Buffer.alloc(16);
  b.writeUInt8(AF_UNSPEC, 0);
  b.writeInt32LE(index, 4);
  b.writeUInt32LE(flags, 8);
  b.writeUInt32LE(change, 12);
  return b;
}

/** One NETLINK_ROUTE socket, bound to the network namespace it was opened in. */
export class RtNetlink {
  private seq = 1;
  private readonly buf = Buffer.alloc(65536);

  private constructor(private readonly fd: number) {}

  /** Opens a socket in the calling thread's current network namespace. */
  static open(): RtNetlink {
    return new RtNetlink(socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE));
  }

  close(): void {
    closeFd(this.fd);
  }

  /** The interface index of `name` in this socket's namespace. */
  linkIndex(name: string): number {
    let index = 0;
    this.request(`find link ${name}`, RTM_GETLINK, 0, Buffer.concat([ifinfo(), strAttr(IFLA_IFNAME, name)]), (type, at) => {
      if (type === RTM_NEWLINK) index = this.buf.readInt32LE(at + 16 + 4);
    });
    return index;
  }

  private request(what: string, type: number, flags: number, body: Buffer, onReply?: (type: number, at: number) => void): void {
    const seq = this.seq++;
    const header = Buffer.alloc(16);
    header.writeUInt32LE(16 + body.length, 0);
    header.writeUInt16LE(type, 4);
    header.writeUInt16LE(flags | NLM_F_REQUEST | NLM_F_ACK, 6);
    header.writeUInt32LE(seq, 8);
    send(this.fd, Buffer.concat([header, body]));
    for (;;) {
      const n = recv(this.fd, this.buf);
      for (let off = 0; off + 16 <= n; ) {
        const len = this.buf.readUInt32LE(off);
        const msgType = this.buf.readUInt16LE(off + 4);
        const msgSeq = this.buf.readUInt32LE(off + 8);
        if (msgType === NLMSG_ERROR && msgSeq === seq) {
          const err = this.buf.readInt32LE(off + 16);
          if (err !== 0) throw new NetlinkError(what, -err);
          return;
        }
        if (msgSeq === seq) onReply?.(msgType, off);
        off += (len + 3) & ~3;
        if (len < 16) break;
      }
    }
  }

  /**
   * A bridge, created down. With `mac` (6 bytes) its address is fixed: otherwise the kernel gives
   * it the lowest address of its ports, which changes when that port goes, and containers that
   * cached the old one lose their gateway until their ARP entry expires (~30 s).
   */
  addBridge(name: string, mac?: Buffer): void {
    const address = mac ? [attr(IFLA_ADDRESS, mac)] : [];
    const body = Buffer.concat([ifinfo(), strAttr(IFLA_IFNAME, name), ...address, nested(IFLA_LINKINFO, strAttr(IFLA_INFO_KIND, "bridge"))]);
    this.request(`create bridge ${name}`, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, body);
  }

  /**
   * A veth pair: `name` here, enslaved to `masterIndex` and up (unless `up` is false); `peer` in
   * the namespace open as `peerNsFd` (down).
   */
  addVeth(name: string, masterIndex: number, peer: string, peerNsFd: number, up = true): void {
    const peerInfo = Buffer.concat([ifinfo(), strAttr(IFLA_IFNAME, peer), u32Attr(IFLA_NET_NS_FD, peerNsFd)]);
    const linkinfo = nested(IFLA_LINKINFO, strAttr(IFLA_INFO_KIND, "veth"), nested(IFLA_INFO_DATA, attr(VETH_INFO_PEER, peerInfo)));
    const flags = up ? IFF_UP : 0;
    const body = Buffer.concat([ifinfo(0, flags, flags), strAttr(IFLA_IFNAME, name), u32Attr(IFLA_MASTER, masterIndex), linkinfo]);
    this.request(`create veth ${name}`, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, body);
  }

  /** Renames a link that is down, and sets it up (the kernel renames first). */
  renameUp(index: number, name: string): void {
    this.request(`rename link ${index} to ${name}`, RTM_NEWLINK, 0, Buffer.concat([ifinfo(index, IFF_UP, IFF_UP), strAttr(IFLA_IFNAME, name)]));
  }

  setUp(index: number): void {
    this.request(`set link ${index} up`, RTM_NEWLINK, 0, ifinfo(index, IFF_UP, IFF_UP));
  }

  /** Deletes a link by name; false when there is none. */
  deleteLink(name: string): boolean {
    try {
      this.request(`delete link ${name}`, RTM_DELLINK, 0, Buffer.concat([ifinfo(), strAttr(IFLA_IFNAME, name)]));
      return true;
    } catch (err) {
      if (err instanceof NetlinkError && err.errno === 19 /* ENODEV */) return false;
      throw err;
    }
  }

  addAddress(index: number, address: string, prefix: number): void {
    const msg = Buffer.alloc(8);
    msg.writeUInt8(AF_INET, 0);
    msg.writeUInt8(prefix, 1);
    msg.writeUInt32LE(index, 4);
    const body = Buffer.concat([msg, attr(IFA_LOCAL, ipv4(address)), attr(IFA_ADDRESS, ipv4(address))]);
    this.request(`add address ${address}/${prefix}`, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, body);
  }

  /** `default via gateway dev index onlink`. */
  addDefaultRoute(index: number, gateway: string): void {
    const msg = Buffer.alloc(12);
    msg.writeUInt8(AF_INET, 0);
    msg.writeUInt8(RT_TABLE_MAIN, 4);
    msg.writeUInt8(RTPROT_BOOT, 5);
    msg.writeUInt8(0, 6); // RT_SCOPE_UNIVERSE
    msg.writeUInt8(RTN_UNICAST, 7);
    msg.writeUInt32LE(RTNH_F_ONLINK, 8);
    const body = Buffer.concat([msg, attr(RTA_GATEWAY, ipv4(gateway)), u32Attr(RTA_OIF, index)]);
    this.request(`add default route via ${gateway}`, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, body);
  }
}
