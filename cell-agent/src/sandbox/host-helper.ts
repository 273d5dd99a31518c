import { spawn } from "node:child_process";
import { SandboxError } from "./errors.js";
import { createHelperProcess } from "./helper-process.js";

// Node cannot call mount(2), and spawning `mount` costs an exec per call (several ms here, more
// on a busy host: exec is the expensive part, not the syscall). So the cell keeps one long-lived
// helper that makes the syscalls itself: a short Perl script (perl-base is Essential in Debian,
// so always installed) using syscall() and ioctl(). Requests are answered in order, one line
// each; an idle helper does not keep the Node process alive.

const SYSCALLS: Record<string, Record<string, number>> = {
  x64: {
    mount: 165, umount2: 166, eventfd2: 290, unshare: 272, setxattr: 188, setns: 308,
    open_tree: 428, move_mount: 429, openat2: 437, mount_setattr: 442,
  },
  arm64: {
    mount: 40, umount2: 39, eventfd2: 19, unshare: 97, setxattr: 5, setns: 268,
    open_tree: 428, move_mount: 429, openat2: 437, mount_setattr: 442,
  },
};

const HELPER = String.raw`
use strict; use warnings; use Fcntl qw(:DEFAULT :flock); use POSIX ();
$| = 1;
my %SYS = map { split /=/ } @ARGV;
my ($SYS_MOUNT, $SYS_UMOUNT2, $SYS_EVENTFD2) = @SYS{qw(mount umount2 eventfd2)};
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


# --- Mounts through the new mount API: clones of a tree, optionally idmapped, never a path
# the container could have changed (targets beneath a root are resolved with openat2).
my ($AT_FDCWD, $AT_EMPTY_PATH, $AT_RECURSIVE) = (-100, 0x1000, 0x8000);
my ($OPEN_TREE_CLONE, $MOVE_MOUNT_F_EMPTY_PATH, $MOVE_MOUNT_T_EMPTY_PATH) = (1, 0x4, 0x40);
my $MOUNT_ATTR_IDMAP = 0x00100000;
my ($O_PATH, $O_CLOEXEC, $RESOLVE_NO_SYMLINKS, $RESOLVE_BENEATH) = (0x200000, 0x80000, 0x04, 0x08);
# "hostid:size" -> handle on a user namespace with that mapping. Kept after the range is released:
# ranges are reused lowest first, so the next container usually finds its namespace here.
my (%userns, @userns_order);
my $USERNS_CACHE = 256;

sub close_fd { POSIX::close($_[0]) if defined $_[0] && $_[0] >= 0 }

# A user namespace mapping 0..size-1 to hostid..: made by a child that unshares and waits.
sub userns_fd {
  my ($hostid, $size) = @_;
  my $key = "$hostid:$size";
  return fileno($userns{$key}) if $userns{$key};
  pipe(my $ready_r, my $ready_w) or fail('pipe');
  pipe(my $done_r, my $done_w) or fail('pipe');
  my $pid = fork();
  fail('fork') unless defined $pid;
  if ($pid == 0) {
    close($ready_r); close($done_w);
    my $ok = syscall($SYS{unshare}, 0x10000000) == 0 ? '1' : '0';   # CLONE_NEWUSER
    syswrite($ready_w, $ok);
    sysread($done_r, my $b, 1);
    POSIX::_exit(0);
  }
  close($ready_w); close($done_r);
  sysread($ready_r, my $ok, 1);
  my $fh;
  my $err = eval {
    die "unshare(CLONE_NEWUSER) failed\n" unless defined $ok && $ok eq '1';
    for my $map ('uid_map', 'gid_map') {
      open(my $m, '>', "/proc/$pid/$map") or fail("open $map");
      print $m "0 $hostid $size\n";
      close($m) or fail("write $map");
    }
    open($fh, '<', "/proc/$pid/ns/user") or fail('open ns/user');
    ''
  };
  close($done_w);
  waitpid($pid, 0);
  die $@ unless defined $err;
  $userns{$key} = $fh;
  push @userns_order, $key;
  close(delete $userns{shift @userns_order}) while @userns_order > $USERNS_CACHE;
  return fileno($fh);
}

# A new network namespace owned by the user namespace hostid:size, bound on the file netns, and
# that user namespace bound on the file userns: the runtime joins both, so the container's root
# holds CAP_NET_RAW (raw sockets, ping) over its network namespace. Making one takes a fork (many
# ms on a busy machine): do_spare_netns makes one ahead, off a task's path, for the next container.
my (%spare_netns, @spare_order);
my $SPARE_NETNS = 16;

sub make_netns {
  my ($ufd) = @_;
  pipe(my $ready_r, my $ready_w) or fail('pipe');
  pipe(my $done_r, my $done_w) or fail('pipe');
  my $pid = fork();
  fail('fork') unless defined $pid;
  if ($pid == 0) {
    close($ready_r); close($done_w);
    my $ok = (syscall($SYS{setns}, $ufd, 0x10000000) == 0 && syscall($SYS{unshare}, 0x40000000) == 0) ? '1' : '0';
    syswrite($ready_w, $ok);
    sysread($done_r, my $b, 1);
    POSIX::_exit(0);
  }
  close($ready_w); close($done_r);
  sysread($ready_r, my $ok, 1);
  my $fh;
  my $err = eval {
    die "joining a user namespace or unshare(CLONE_NEWNET) failed\n" unless defined $ok && $ok eq '1';
    open($fh, '<', "/proc/$pid/ns/net") or fail('open ns/net');
    ''
  };
  close($done_w);
  waitpid($pid, 0);
  die $@ unless defined $err;
  return $fh;
}

sub do_userns_netns {
  my ($hostid, $size, $netns, $userns) = @_;
  my $key = "$hostid:$size";
  my $ufd = userns_fd($hostid, $size);
  my $fh = delete $spare_netns{$key};
  @spare_order = grep { $_ ne $key } @spare_order;
  $fh //= make_netns($ufd);
  for my $f ($netns, $userns) {
    sysopen(my $file, $f, O_WRONLY | O_CREAT | O_EXCL, 0444) or fail("create $f");
    close($file);
  }
  do_mount('/proc/self/fd/' . fileno($fh), $netns, '', 4096, '', '');
  do_mount("/proc/self/fd/$ufd", $userns, '', 4096, '', '');
  close($fh);
  return '';
}

sub do_spare_netns {
  my ($hostid, $size) = @_;
  my $key = "$hostid:$size";
  return '' if $spare_netns{$key};
  $spare_netns{$key} = make_netns(userns_fd($hostid, $size));
  push @spare_order, $key;
  close(delete $spare_netns{shift @spare_order}) while @spare_order > $SPARE_NETNS;
  return '';
}

# O_PATH fd of root/rel resolved beneath root without symlinks, or of an absolute path.
sub target_fd {
  my ($root, $rel) = @_;
  my $fd;
  if ($root eq '') {
    $fd = POSIX::open($rel, $O_PATH | $O_CLOEXEC);
    fail("open $rel") unless defined $fd;
    return $fd;
  }
  sysopen(my $rfh, $root, O_RDONLY | O_DIRECTORY) or fail("open $root");
  my $how = pack('Q3', $O_PATH | $O_CLOEXEC, 0, $RESOLVE_NO_SYMLINKS | $RESOLVE_BENEATH);
  $fd = syscall($SYS{openat2}, fileno($rfh), $rel, $how, 24);
  fail("open $rel beneath $root") if $fd < 0;
  return $fd;
}

# Attaches a clone of the mount tree at src onto root/rel (or the absolute path rel):
# attrs are MOUNT_ATTR_* bits; recursive clones submounts too; hostid:size idmaps it.
sub do_clone_mount {
  my ($src, $root, $rel, $attrs, $recursive, $hostid, $size) = @_;
  my $flags = $OPEN_TREE_CLONE | $O_CLOEXEC | ($recursive ? $AT_RECURSIVE : 0);
  my $tree = syscall($SYS{open_tree}, $AT_FDCWD, $src, $flags + 0);
  fail("open_tree $src") if $tree < 0;
  my ($target, $err);
  eval {
    my $set = $attrs + 0;
    my $ns = 0;
    if ($hostid ne '') { $ns = userns_fd($hostid, $size); $set |= $MOUNT_ATTR_IDMAP; }
    my $attr = pack('Q4', $set, 0, 0, $ns);
    my $at = $AT_EMPTY_PATH | ($recursive ? $AT_RECURSIVE : 0);
    syscall($SYS{mount_setattr}, $tree, my $e1 = '', $at + 0, $attr, 32) == 0 or fail("mount_setattr $src");
    $target = target_fd($root, $rel);
    syscall($SYS{move_mount}, $tree, my $e2 = '', $target, my $e3 = '', ($MOVE_MOUNT_F_EMPTY_PATH | $MOVE_MOUNT_T_EMPTY_PATH) + 0) == 0
      or fail("move_mount $src to $rel");
    1;
  } or $err = $@;
  close_fd($target);
  close_fd($tree);
  die $err if $err;
  return '';
}

# --- Subordinate ids: ranges in /etc/subuid and /etc/subgid, claimed and released under an
# exclusive flock shared by every cell on the host; files replaced atomically.
# In /run (root-only, unlike the world-writable /run/lock) and 0600: any user who can open a file
# can flock it, and would block every cell.
my $SUBID_LOCK = '/run/diego-subid.lock';
my @SUBID_FILES = ('/etc/subuid', '/etc/subgid');

sub with_subid_lock {
  my ($fn) = @_;
  sysopen(my $lock, $SUBID_LOCK, O_WRONLY | O_CREAT | O_NOFOLLOW, 0600) or fail("open $SUBID_LOCK");
  chmod(0600, $lock);
  flock($lock, LOCK_EX) or fail("flock $SUBID_LOCK");
  my $out = eval { $fn->() };
  my $err = $@;
  close($lock);
  die $err unless defined $out;
  return $out;
}

sub read_lines {
  my ($file) = @_;
  open(my $fh, '<', $file) or return ();
  my @lines = <$fh>;
  close($fh);
  chomp(@lines);
  return @lines;
}

sub write_lines {
  my ($file, @lines) = @_;
  my $tmp = "$file.diego-$$";
  open(my $fh, '>', $tmp) or fail("open $tmp");
  print $fh map { "$_\n" } @lines;
  close($fh) or fail("write $tmp");
  chmod(0644, $tmp);
  rename($tmp, $file) or fail("rename $tmp");
}

sub do_subid_claim {
  my ($user, $count, $floor) = @_;
  return with_subid_lock(sub {
    my @taken = map { [ (split /:/)[1, 2] ] } grep { /^[^:#]+:\d+:\d+$/ } map { read_lines($_) } @SUBID_FILES;
    my $start = $floor + 0;
    CANDIDATE: {
      for my $r (@taken) {
        if ($start < $r->[0] + $r->[1] && $r->[0] < $start + $count) {
          # The next slot floor + k*count at or after the end of the overlapping range.
          my $past = $r->[0] + $r->[1] - $floor;
          $start = $floor + $count * int(($past + $count - 1) / $count);
          redo CANDIDATE;
        }
      }
    }
    die "no free subordinate id range of $count\n" if $start + $count > 4294967294;
    write_lines($_, read_lines($_), "$user:$start:$count") for @SUBID_FILES;
    return $start;
  });
}

sub do_subid_release {
  my ($user, $start, $count) = @_;
  return with_subid_lock(sub {
    for my $file (@SUBID_FILES) {
      my @lines = read_lines($file);
      my @kept = grep { $_ ne "$user:$start:$count" } @lines;
      write_lines($file, @kept) if @kept != @lines;
    }
    return '';
  });
}

# --- Search permission on dir for exactly the given uids (POSIX ACL), nobody else.
sub do_acl_search {
  my ($dir, @uids) = @_;
  my @entries = ([1, 7, 0xffffffff], (map { [2, 1, $_ + 0] } sort { $a <=> $b } grep { $_ ne '' } @uids), [4, 0, 0xffffffff]);
  push @entries, [0x10, 1, 0xffffffff] if @entries > 2;
  push @entries, [0x20, 0, 0xffffffff];
  my $acl = pack('L', 2) . join('', map { pack('S S L', @$_) } @entries);
  syscall($SYS{setxattr}, $dir, my $name = 'system.posix_acl_access', $acl, length($acl), 0) == 0 or fail("set ACL on $dir");
  return '';
}

my %ops = (
  clone_mount => \&do_clone_mount,
  subid_claim => \&do_subid_claim, subid_release => \&do_subid_release, acl_search => \&do_acl_search,
  mount => \&do_mount, umount => \&do_umount, loop_mount => \&do_loop_mount, extents => \&do_extents,
  oom_watch => \&do_oom_watch, oom_count => \&do_oom_count, oom_unwatch => \&do_oom_unwatch,
  userns_netns => \&do_userns_netns, spare_netns => \&do_spare_netns,
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
  /**
   * Attaches a clone of the mount tree at source onto target (absolute), or onto targetRel
   * resolved beneath targetRoot without following symlinks. attrs: MOUNT_ATTR_* bits.
   */
  cloneMount(source: string, target: CloneTarget, opts: CloneOptions): Promise<void>;
  /** Registers a free range of count ids (from floor up) for user in /etc/subuid and /etc/subgid. */
  claimSubids(user: string, count: number, floor: number): Promise<number>;
  releaseSubids(user: string, start: number, count: number): Promise<void>;
  /** Sets dir's ACL: full access for its owner, search (x) only for uids, nothing for anyone else. */
  aclSearchOnly(dir: string, uids: number[]): Promise<void>;
  /**
   * A new network namespace owned by a user namespace mapping 0..size-1 to hostId.., bound on
   * the file netns; that user namespace bound on the file userns. Both files are created here.
   */
  usernsNetns(hostId: number, size: number, netns: string, userns: string): Promise<void>;
  /** Makes a namespace for the next usernsNetns with this mapping ahead of time (one kept per mapping). */
  spareNetns(hostId: number, size: number): Promise<void>;
}

export type CloneTarget = { path: string } | { root: string; rel: string };
export interface Idmap {
  hostId: number;
  size: number;
}
export interface CloneOptions {
  attrs: number;
  recursive?: boolean;
  /** Map ids 0..size-1 of the tree to hostId.. (an idmapped mount). */
  idmap?: Idmap;
}

export const MS_NOSUID = 2;
export const MS_NODEV = 4;
export const MS_NOATIME = 1024;
export const MOUNT_ATTR_RDONLY = 0x1;
export const MOUNT_ATTR_NOSUID = 0x2;
export const MOUNT_ATTR_NODEV = 0x4;
export const MNT_DETACH = 2;

let shared: HostHelper | undefined;

/** The helper shared by every sandbox runtime in this process, started on first use. */
export function hostHelper(): HostHelper {
  shared ??= createHostHelper();
  return shared;
}

function createHostHelper(): HostHelper {
  const numbers = SYSCALLS[process.arch];
  const helper = createHelperProcess({
    name: "host helper",
    spawn: () => {
      if (!numbers) throw new SandboxError(`no mount syscall numbers for architecture ${process.arch}`);
      const args = Object.entries(numbers).map(([name, n]) => `${name}=${n}`);
      return spawn("perl", ["-e", HELPER, ...args], { stdio: ["pipe", "pipe", "pipe"] });
    },
    parse: (line) => {
      const [id, ok, out] = line.split("\t");
      return { id: Number(id), ok: ok === "1", text: ok === "1" ? (out ?? "") : (out ?? "host helper failed").trim() };
    },
    error: (message) => new SandboxError(message),
  });
  // OOM watches live in one helper process; a restarted helper must not answer for them.
  const generation = helper.generation;

  const call = (op: string, args: (string | number)[]): Promise<string> => {
    const fields = args.map(String);
    if (fields.some((f) => /[\t\n]/.test(f))) return Promise.reject(new SandboxError(`${op}: argument contains a tab or newline`));
    return helper.call((id) => [id, op, ...fields].join("\t"));
  };

  const watchFd = (token: string): string => {
    const [gen, fd] = token.split(":");
    if (Number(gen) !== generation() || !helper.running()) throw new SandboxError("host helper restarted: OOM watch lost");
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
      return `${generation()}:${fd}`;
    },
    oomCount: async (token) => Number(await call("oom_count", [watchFd(token)])),
    oomUnwatch: async (token) => {
      await call("oom_unwatch", [watchFd(token)]);
    },
    cloneMount: async (source, target, opts) => {
      const [root, rel] = "path" in target ? ["", target.path] : [target.root, target.rel];
      const idmap = opts.idmap ? [opts.idmap.hostId, opts.idmap.size] : ["", ""];
      await call("clone_mount", [source, root, rel, opts.attrs, opts.recursive ? 1 : 0, ...idmap]);
    },
    claimSubids: async (user, count, floor) => Number(await call("subid_claim", [user, count, floor])),
    releaseSubids: async (user, start, count) => {
      await call("subid_release", [user, start, count]);
    },
    usernsNetns: async (hostId, size, netns, userns) => {
      await call("userns_netns", [hostId, size, netns, userns]);
    },
    spareNetns: async (hostId, size) => {
      await call("spare_netns", [hostId, size]);
    },
    aclSearchOnly: async (dir, uids) => {
      await call("acl_search", [dir, ...uids]);
    },
  };
}
