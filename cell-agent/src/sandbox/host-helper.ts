import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import type { Socket } from "node:net";
import { SandboxError } from "./errors.js";

// Node cannot call mount(2), and spawning `mount` costs an exec per call (several ms here, more
// on a busy host: exec is the expensive part, not the syscall). So the cell keeps one long-lived
// helper that makes the syscalls itself: a short Perl script (perl-base is Essential in Debian,
// so always installed) using syscall() and ioctl(). Requests are answered in order, one line
// each; an idle helper does not keep the Node process alive.

const SYSCALLS: Record<string, { mount: number; umount2: number; eventfd2: number }> = {
  x64: { mount: 165, umount2: 166, eventfd2: 290 },
  arm64: { mount: 40, umount2: 39, eventfd2: 19 },
};

const HELPER = String.raw`
use strict; use warnings; use Fcntl;
$| = 1;
my ($SYS_MOUNT, $SYS_UMOUNT2, $SYS_EVENTFD2) = @ARGV;
my %oom_watches;
my ($LOOP_CTL_GET_FREE, $LOOP_CONFIGURE, $LO_FLAGS_AUTOCLEAR) = (0x4C82, 0x4C0A, 4);

sub fail { my $what = shift; die sprintf("%s: %s\n", $what, $!) }

sub do_mount {
  my ($src, $target, $type, $flags, $data, $cwd) = @_;
  chdir($cwd) or fail("chdir $cwd") if $cwd ne '';
  my $r = syscall($SYS_MOUNT, $src, $target, $type, $flags + 0, $data);
  my $err = "$!";
  chdir('/');
  die "mount $target: $err\n" if $r != 0;
  return '';
}

sub do_umount {
  my ($target, $flags) = @_;
  syscall($SYS_UMOUNT2, $target, $flags + 0) == 0 or fail("umount $target");
  return '';
}

# Attaches image to a free loop device (auto-cleared when unmounted) and mounts it.
sub do_loop_mount {
  my ($image, $target, $type, $flags, $data) = @_;
  sysopen(my $ctl, '/dev/loop-control', O_RDWR) or fail('open /dev/loop-control');
  for my $try (1 .. 50) {
    my $n = ioctl($ctl, $LOOP_CTL_GET_FREE, 0);
    defined $n or fail('LOOP_CTL_GET_FREE');
    my $dev = '/dev/loop' . int($n);
    sysopen(my $lo, $dev, O_RDWR) or fail("open $dev");
    sysopen(my $img, $image, O_RDWR) or fail("open $image");
    # struct loop_config { u32 fd, block_size; struct loop_info64 info; u64 reserved[8] }
    my $cfg = pack('L L Q5 L4 a64 a64 a32 Q2 Q8', fileno($img), 0, (0) x 5, 0, 0, 0, $LO_FLAGS_AUTOCLEAR, '', '', '', 0, 0, (0) x 8);
    my $ok = ioctl($lo, $LOOP_CONFIGURE, $cfg);
    my $err = $! + 0;
    close($img);
    if (!$ok) { close($lo); next if $err == 16; $! = $err; fail("LOOP_CONFIGURE $dev"); }
    my $r = syscall($SYS_MOUNT, $dev, $target, $type, $flags + 0, $data);
    my $merr = "$!";
    close($lo);
    die "mount $dev on $target: $merr\n" if $r != 0;
    return $dev;
  }
  die "no free loop device\n";
}

# Data extents of a sparse file: "offset:length,..." (SEEK_DATA = 3, SEEK_HOLE = 4).
sub do_extents {
  my ($file) = @_;
  sysopen(my $fh, $file, O_RDONLY) or fail("open $file");
  my $size = -s $fh;
  my ($pos, @out) = (0);
  while ($pos < $size) {
    my $data = sysseek($fh, $pos, 3);
    last unless defined $data;
    my $hole = sysseek($fh, $data, 4);
    defined $hole or fail("SEEK_HOLE $file");
    push @out, ($data + 0) . ':' . ($hole - $data);
    $pos = $hole;
  }
  return join(',', @out);
}

# cgroup v1 OOM notification: an eventfd registered on the memcg's memory.oom_control is signalled
# each time that memcg is under OOM. Registered on our own parent cgroup, it outlives the runtime's.
sub do_oom_watch {
  my ($memcg) = @_;
  my $efd = syscall($SYS_EVENTFD2, 0, 2048);   # EFD_NONBLOCK
  fail('eventfd2') if $efd < 0;
  open(my $ev, '<&=', $efd) or fail('fdopen eventfd');
  open(my $oc, '<', "$memcg/memory.oom_control") or fail("open $memcg/memory.oom_control");
  open(my $ctl, '>', "$memcg/cgroup.event_control") or fail("open $memcg/cgroup.event_control");
  print $ctl "$efd " . fileno($oc);
  close($ctl) or fail('register OOM eventfd');
  close($oc);
  $oom_watches{$efd} = { fh => $ev, total => 0 };
  return $efd;
}

sub do_oom_count {
  my ($token) = @_;
  my $w = $oom_watches{$token} or die "unknown OOM watch $token\n";
  my $buf;
  $w->{total} += unpack('Q', $buf) while sysread($w->{fh}, $buf, 8);
  return $w->{total};
}

sub do_oom_unwatch {
  my ($token) = @_;
  my $w = delete $oom_watches{$token};
  close($w->{fh}) if $w;
  return '';
}

my %ops = (
  mount => \&do_mount, umount => \&do_umount, loop_mount => \&do_loop_mount, extents => \&do_extents,
  oom_watch => \&do_oom_watch, oom_count => \&do_oom_count, oom_unwatch => \&do_oom_unwatch,
);
while (my $line = <STDIN>) {
  chomp $line;
  my ($id, $op, @args) = split /\t/, $line, -1;
  my $fn = $ops{$op};
  my $out = eval { $fn ? $fn->(@args) : die "unknown op $op\n" };
  my $ok = defined $out ? 1 : 0;
  $out = $@ unless $ok;
  $out =~ s/[\t\n]+/ /g;
  print "$id\t$ok\t$out\n";
}
`;

export interface HostHelper {
  mount(source: string, target: string, type: string, flags: number, data: string, cwd?: string): Promise<void>;
  umount(target: string, flags?: number): Promise<void>;
  /** Attaches image to a free loop device and mounts it; resolves the device path. */
  loopMount(image: string, target: string, type: string, flags: number, data: string): Promise<string>;
  /** Data extents (offset, length) of a sparse file. */
  extents(file: string): Promise<{ offset: number; length: number }[]>;
  /** Starts counting OOM events of a v1 memory cgroup dir; resolves a watch token. */
  oomWatch(memcgDir: string): Promise<string>;
  /** OOM events seen so far by a watch. */
  oomCount(token: string): Promise<number>;
  oomUnwatch(token: string): Promise<void>;
}

export const MS_NOATIME = 1024;
export const MNT_DETACH = 2;

let shared: HostHelper | undefined;

/** The helper shared by every sandbox runtime in this process, started on first use. */
export function hostHelper(): HostHelper {
  shared ??= createHostHelper();
  return shared;
}

function createHostHelper(): HostHelper {
  const numbers = SYSCALLS[process.arch];
  let child: ChildProcessWithoutNullStreams | undefined;
  // OOM watches live in one helper process; a restarted helper must not answer for them.
  let generation = 0;
  let seq = 0;
  let buffered = "";
  const pending = new Map<number, { resolve(out: string): void; reject(err: Error): void }>();

  const setRef = (on: boolean): void => {
    if (!child) return;
    for (const s of [child.stdin, child.stdout, child.stderr] as unknown as Socket[]) (on ? s.ref() : s.unref());
    if (on) child.ref();
    else child.unref();
  };

  const start = (): ChildProcessWithoutNullStreams => {
    if (!numbers) throw new SandboxError(`no mount syscall numbers for architecture ${process.arch}`);
    const args = [numbers.mount, numbers.umount2, numbers.eventfd2].map(String);
    const c = spawn("perl", ["-e", HELPER, ...args], { stdio: ["pipe", "pipe", "pipe"] });
    generation++;
    c.stdout.setEncoding("utf8");
    c.stdout.on("data", (chunk: string) => {
      buffered += chunk;
      for (let nl = buffered.indexOf("\n"); nl >= 0; nl = buffered.indexOf("\n")) {
        const [id, ok, out] = buffered.slice(0, nl).split("\t");
        buffered = buffered.slice(nl + 1);
        const p = pending.get(Number(id));
        pending.delete(Number(id));
        if (ok === "1") p?.resolve(out ?? "");
        else p?.reject(new SandboxError((out ?? "host helper failed").trim()));
      }
      if (pending.size === 0) setRef(false);
    });
    let stderr = "";
    c.stderr.on("data", (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
    const fail = (why: string): void => {
      if (child === c) child = undefined;
      for (const p of pending.values()) p.reject(new SandboxError(`host helper ${why}: ${stderr.trim()}`));
      pending.clear();
    };
    c.on("error", (err) => fail(`failed to start (${err.message})`));
    c.on("exit", (code, sig) => fail(`exited (${code ?? sig})`));
    c.stdin.on("error", () => undefined); // reported through "exit"
    return c;
  };

  const call = (op: string, args: (string | number)[]): Promise<string> => {
    const fields = args.map(String);
    if (fields.some((f) => /[\t\n]/.test(f))) return Promise.reject(new SandboxError(`${op}: argument contains a tab or newline`));
    child ??= start();
    const id = ++seq;
    return new Promise<string>((resolve, reject) => {
      pending.set(id, { resolve, reject });
      setRef(true);
      child!.stdin.write(`${[id, op, ...fields].join("\t")}\n`);
    });
  };

  const watchFd = (token: string): string => {
    const [gen, fd] = token.split(":");
    if (Number(gen) !== generation || !child) throw new SandboxError("host helper restarted: OOM watch lost");
    return fd ?? "";
  };

  return {
    mount: async (source, target, type, flags, data, cwd = "") => {
      await call("mount", [source, target, type, flags, data, cwd]);
    },
    umount: async (target, flags = 0) => {
      await call("umount", [target, flags]);
    },
    loopMount: (image, target, type, flags, data) => call("loop_mount", [image, target, type, flags, data]),
    extents: async (file) => {
      const out = await call("extents", [file]);
      return out
        .split(",")
        .filter(Boolean)
        .map((e) => {
          const [offset, length] = e.split(":").map(Number);
          return { offset: offset ?? 0, length: length ?? 0 };
        });
    },
    oomWatch: async (memcgDir) => {
      const fd = await call("oom_watch", [memcgDir]);
      return `${generation}:${fd}`;
    },
    oomCount: async (token) => Number(await call("oom_count", [watchFd(token)])),
    oomUnwatch: async (token) => {
      await call("oom_unwatch", [watchFd(token)]);
    },
  };
}
