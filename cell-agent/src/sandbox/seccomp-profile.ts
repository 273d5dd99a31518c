// The containers' seccomp filter: an allow-list modelled on Docker's default profile (written from
// the documented syscall names). Anything not listed fails with EPERM. Left out on purpose: mount
// and the new mount API, namespaces (unshare, setns, namespace flags of clone), keyrings, bpf,
// perf_event_open, userfaultfd, kernel modules and kexec, open_by_handle_at, quotactl, acct,
// swap, reboot, syslog, clock/time setting, iopl/ioperm, and socketcall (its arguments sit in
// memory, out of the filter's sight, so AF_VSOCK could pass through it).

const EPERM = 1;
const ENOSYS = 38;
const AF_VSOCK = 40;
// clone() flags that create namespaces: newns, newcgroup, newuts, newipc, newuser, newpid, newnet.
const CLONE_NS_MASK = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000;
// personality(): plain Linux, UNAME26, their 32-bit-compatible forms, and the query value.
const PERSONALITIES = [0x0, 0x8, 0x20000, 0x20008, 0xffffffff];

const ALLOWED = `
accept accept4 access adjtimex alarm arch_prctl bind brk capget capset chdir chmod chown chown32 chroot
clock_getres clock_getres_time64 clock_gettime clock_gettime64 clock_nanosleep clock_nanosleep_time64
close close_range connect copy_file_range creat dup dup2 dup3
epoll_create epoll_create1 epoll_ctl epoll_ctl_old epoll_pwait epoll_pwait2 epoll_wait epoll_wait_old
eventfd eventfd2 execve execveat exit exit_group faccessat faccessat2 fadvise64 fadvise64_64 fallocate
fanotify_mark fchdir fchmod fchmodat fchown fchown32 fchownat fcntl fcntl64 fdatasync fgetxattr
flistxattr flock fork fremovexattr fsetxattr fstat fstat64 fstatat64 fstatfs fstatfs64 fsync ftruncate
ftruncate64 futex futex_time64 futex_waitv futimesat getcpu getcwd getdents getdents64 getegid getegid32
geteuid geteuid32 getgid getgid32 getgroups getgroups32 getitimer getpeername getpgid getpgrp getpid
getppid getpriority getrandom getresgid getresgid32 getresuid getresuid32 getrlimit get_robust_list
getrusage getsid getsockname getsockopt get_thread_area gettid gettimeofday getuid getuid32 getxattr
inotify_add_watch inotify_init inotify_init1 inotify_rm_watch io_cancel ioctl io_destroy io_getevents
io_pgetevents io_pgetevents_time64 ioprio_get ioprio_set io_setup io_submit io_uring_enter
io_uring_register io_uring_setup ipc kill landlock_add_rule landlock_create_ruleset
landlock_restrict_self lchown lchown32 lgetxattr link linkat listen listxattr llistxattr _llseek
lremovexattr lseek lsetxattr lstat lstat64 madvise membarrier memfd_create mincore mkdir mkdirat mknod
mknodat mlock mlock2 mlockall mmap mmap2 modify_ldt mprotect mq_getsetattr mq_notify mq_open
mq_timedreceive mq_timedreceive_time64 mq_timedsend mq_timedsend_time64 mq_unlink mremap msgctl msgget
msgrcv msgsnd msync munlock munlockall munmap name_to_handle_at nanosleep newfstatat _newselect open
openat openat2 pause pidfd_open pidfd_send_signal pipe pipe2 pkey_alloc pkey_free pkey_mprotect poll
ppoll ppoll_time64 prctl pread64 preadv preadv2 prlimit64 process_mrelease process_vm_readv
process_vm_writev pselect6 pselect6_time64 ptrace pwrite64 pwritev pwritev2 read readahead readlink
readlinkat readv recv recvfrom recvmmsg recvmmsg_time64 recvmsg remap_file_pages removexattr rename
renameat renameat2 restart_syscall rmdir rseq rt_sigaction rt_sigpending rt_sigprocmask rt_sigqueueinfo
rt_sigreturn rt_sigsuspend rt_sigtimedwait rt_sigtimedwait_time64 rt_tgsigqueueinfo sched_getaffinity
sched_getattr sched_getparam sched_get_priority_max sched_get_priority_min sched_getscheduler
sched_rr_get_interval sched_rr_get_interval_time64 sched_setaffinity sched_setattr sched_setparam
sched_setscheduler sched_yield seccomp select semctl semget semop semtimedop semtimedop_time64 send
sendfile sendfile64 sendmmsg sendmsg sendto setfsgid setfsgid32 setfsuid setfsuid32 setgid setgid32
setgroups setgroups32 setitimer setpgid setpriority setregid setregid32 setresgid setresgid32 setresuid
setresuid32 setreuid setreuid32 setrlimit set_robust_list setsid setsockopt set_thread_area
set_tid_address setuid setuid32 setxattr shmat shmctl shmdt shmget shutdown sigaltstack signalfd
signalfd4 sigprocmask sigreturn socketpair splice stat stat64 statfs statfs64 statx symlink symlinkat
sync sync_file_range syncfs sysinfo tee tgkill time timer_create timer_delete timer_getoverrun
timer_gettime timer_gettime64 timer_settime timer_settime64 timerfd_create timerfd_gettime
timerfd_gettime64 timerfd_settime timerfd_settime64 times tkill truncate truncate64 ugetrlimit umask
uname unlink unlinkat utime utimensat utimensat_time64 utimes vfork vmsplice wait4 waitid waitpid write
writev
`.trim().split(/\s+/);
// Kernel 6.5+ calls: libseccomp 2.5.4 does not know them yet, and runc and crun then skip the
// name (the call gets the default action); listed so a newer libseccomp allows them.
const NEWER = ["cachestat", "fchmodat2", "map_shadow_stack", "futex_wake", "futex_wait", "futex_requeue"];

const ALLOW = "SCMP_ACT_ALLOW";

export const SECCOMP_PROFILE = {
  defaultAction: "SCMP_ACT_ERRNO",
  defaultErrnoRet: EPERM,
  architectures: ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
  syscalls: [
    { names: [...ALLOWED, ...NEWER], action: ALLOW },
    // Every socket family but AF_VSOCK (a channel to the hypervisor's host).
    { names: ["socket"], action: ALLOW, args: [{ index: 0, value: AF_VSOCK, op: "SCMP_CMP_NE" }] },
    // No READ_IMPLIES_EXEC or ADDR_NO_RANDOMIZE: only these exact personalities.
    ...PERSONALITIES.map((value) => ({ names: ["personality"], action: ALLOW, args: [{ index: 0, value, op: "SCMP_CMP_EQ" }] })),
    // clone without namespace flags only.
    { names: ["clone"], action: ALLOW, args: [{ index: 0, value: CLONE_NS_MASK, valueTwo: 0, op: "SCMP_CMP_MASKED_EQ" }] },
    // clone3 passes flags in memory seccomp cannot see: ENOSYS makes libc fall back to clone().
    { names: ["clone3"], action: "SCMP_ACT_ERRNO", errnoRet: ENOSYS },
  ],
};
