//! The only `unsafe` in the gateway: calls into the C library that the standard library does not
//! offer (socket options, the open-files limit, malloc tuning, stop signals), each through `libc`
//! (no hand-typed constants or declarations) and each with its reason. Everything else in the
//! tree is safe Rust.

use std::io;
use std::net::TcpListener;
use std::time::Duration;

/// Set read and write timeouts and `TCP_NODELAY` on a listening socket. Linux copies a listener's
/// socket options to every connection it accepts, and tiny_http gives no hook on accepted
/// sockets, so this is how each client connection gets its timeouts (a stalled client cannot hold
/// a thread forever) and leaves Nagle off (each SSE event goes out at once). `accept()` obeys the
/// read timeout too: see `server::listener`.
#[cfg(target_os = "linux")]
pub fn set_inherited_socket_options(
    listener: &TcpListener,
    read: Duration,
    write: Duration,
) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let fd = listener.as_raw_fd();
    let timeval = |d: Duration| libc::timeval {
        // The field types are inferred: naming `time_t` is deprecated on musl, where it changes width.
        tv_sec: d.as_secs().try_into().unwrap_or(i32::MAX as _),
        tv_usec: d.subsec_micros() as _,
    };
    set_option(fd, libc::SOL_SOCKET, libc::SO_RCVTIMEO, &timeval(read))?;
    set_option(fd, libc::SOL_SOCKET, libc::SO_SNDTIMEO, &timeval(write))?;
    set_option(
        fd,
        libc::IPPROTO_TCP,
        libc::TCP_NODELAY,
        &(1 as libc::c_int),
    )
}

#[cfg(not(target_os = "linux"))]
pub fn set_inherited_socket_options(_: &TcpListener, _: Duration, _: Duration) -> io::Result<()> {
    Ok(())
}

#[cfg(target_os = "linux")]
fn set_option<T>(
    fd: libc::c_int,
    level: libc::c_int,
    name: libc::c_int,
    value: &T,
) -> io::Result<()> {
    let len = std::mem::size_of::<T>() as libc::socklen_t;
    // SAFETY: setsockopt reads `len` bytes from `value`, a live reference to a `T` of exactly that
    // size, and `fd` belongs to a socket the caller keeps open for the duration of the call. The
    // kernel validates level, name and length itself (EINVAL, not undefined behaviour).
    let rc = unsafe { libc::setsockopt(fd, level, name, (value as *const T).cast(), len) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// glibc gives each thread that allocates its own malloc arena (up to 8 per core), so a gateway
/// with hundreds of mostly waiting threads would keep far more memory than it uses. One arena is
/// enough for threads that mostly wait on sockets on a machine of a few cores, and memory freed by
/// one thread is then reusable by all. (musl, the shipped static build, has no arenas.)
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn limit_malloc_arenas() {
    // SAFETY: mallopt only changes allocator tuning and takes plain integers; it is called first
    // thing in `main`, before any other thread exists that could be inside malloc.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn limit_malloc_arenas() {}

thread_local! {
    /// Lowest usable address of this thread's stack, when it is a worker that gives back what its
    /// stack no longer uses (0: not such a thread).
    static STACK_LOW: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Mark this thread as one whose stack [`release_unused_stack`] may trim: a pool worker, started
/// with an explicit stack size. (The main thread's stack grows on demand and is never marked.)
#[cfg(target_os = "linux")]
pub fn mark_trimmable_stack() {
    // SAFETY: pthread_getattr_np fills the attribute object it is given for the calling thread,
    // pthread_attr_getstack reads it into two live locals, and pthread_attr_destroy frees it; the
    // object is only used between a successful init and its destroy.
    let low = unsafe {
        let mut attr: libc::pthread_attr_t = std::mem::zeroed();
        if libc::pthread_getattr_np(libc::pthread_self(), &mut attr) != 0 {
            return;
        }
        let mut addr: *mut libc::c_void = std::ptr::null_mut();
        let mut size: libc::size_t = 0;
        let rc = libc::pthread_attr_getstack(&attr, &mut addr, &mut size);
        libc::pthread_attr_destroy(&mut attr);
        if rc != 0 {
            return;
        }
        addr as usize
    };
    STACK_LOW.with(|c| c.set(low));
}

#[cfg(not(target_os = "linux"))]
pub fn mark_trimmable_stack() {}

/// Give back to the system the pages of this thread's stack below the current frame. A thread
/// keeps every stack page it ever touched, and a worker touches its deepest (parsing the request,
/// building Kiro's payload, connecting) before it settles into relaying a stream for minutes at a
/// shallower depth; hundreds of open streams would otherwise each hold that high-water mark.
/// Only on threads marked with [`mark_trimmable_stack`]; elsewhere it does nothing.
#[cfg(target_os = "linux")]
#[inline(never)]
pub fn release_unused_stack() {
    let low = STACK_LOW.with(|c| c.get());
    if low == 0 {
        return;
    }
    // SAFETY: sysconf takes a plain integer.
    let page = match unsafe { libc::sysconf(libc::_SC_PAGESIZE) } {
        p if p > 0 => p as usize,
        _ => return,
    };
    let marker = 0u8;
    let here = std::hint::black_box(&marker) as *const u8 as usize;
    // One page of margin below this frame's page, for the madvise call itself (and the red zone).
    let end = (here & !(page - 1)).saturating_sub(page);
    if end <= low {
        return;
    }
    // SAFETY: [low, end) lies within this thread's own stack mapping (low is its lowest usable
    // address, end is below the current frame) and entirely below the stack pointer: the stack
    // grows down and nothing lives below the stack pointer beyond the red zone, which the margin
    // covers. MADV_DONTNEED on private anonymous memory only makes those pages read as zeros
    // when next touched, which is what a fresh stack frame expects of memory it has not written.
    unsafe {
        libc::madvise(low as *mut libc::c_void, end - low, libc::MADV_DONTNEED);
    }
}

#[cfg(not(target_os = "linux"))]
pub fn release_unused_stack() {}

/// Raise the soft limit on open files to the hard limit. Each open stream holds three
/// descriptors (the client's socket twice, tiny_http keeps a clone, and the upstream socket), so
/// a full pool of 256 workers with its queue needs more than the usual soft limit of 1024;
/// the hard limit is what the administrator allows.
#[cfg(unix)]
pub fn raise_open_files_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one `rlimit` into the live local it is given; setrlimit only reads
    // it. Neither touches other memory, and a failure leaves the limits as they were.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

#[cfg(not(unix))]
pub fn raise_open_files_limit() {}

/// SIGTERM (systemd, `docker stop`) and SIGINT (Ctrl-C), held back from their default action —
/// ending the process on the spot — so that one thread can wait for them and the gateway can save
/// what it keeps in memory (usage per client key) before it exits.
#[cfg(unix)]
pub struct StopSignals(libc::sigset_t);

#[cfg(unix)]
impl StopSignals {
    /// Block the stop signals in this thread and so in every thread started after it (threads
    /// inherit the mask): call it before any other thread exists.
    pub fn block() -> io::Result<StopSignals> {
        // SAFETY: sigemptyset and sigaddset initialise and fill the local set they are given;
        // pthread_sigmask reads it and changes only this thread's mask (no old mask wanted).
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGTERM);
            libc::sigaddset(&mut set, libc::SIGINT);
            let rc = libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
            if rc != 0 {
                return Err(io::Error::from_raw_os_error(rc));
            }
            Ok(StopSignals(set))
        }
    }

    /// Wait until a stop signal arrives; its number.
    pub fn wait(&self) -> i32 {
        let mut signal: libc::c_int = 0;
        // SAFETY: sigwait reads the set (blocked in every thread, see `block`) and writes the
        // signal's number into a live local.
        let rc = unsafe { libc::sigwait(&self.0, &mut signal) };
        if rc == 0 {
            signal
        } else {
            libc::SIGTERM
        }
    }
}

/// Without Unix signals there is nothing to catch: the periodic flush is all there is.
#[cfg(not(unix))]
pub struct StopSignals;

#[cfg(not(unix))]
impl StopSignals {
    pub fn block() -> io::Result<StopSignals> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "no Unix signals",
        ))
    }

    pub fn wait(&self) -> i32 {
        loop {
            std::thread::park();
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::net::TcpStream;

    #[test]
    fn accepted_connections_inherit_the_listeners_timeouts_and_nodelay() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let read = Duration::from_millis(1500);
        let write = Duration::from_secs(7);
        set_inherited_socket_options(&listener, read, write).unwrap();
        let _client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (accepted, _) = listener.accept().unwrap();
        assert_eq!(accepted.read_timeout().unwrap(), Some(read));
        assert_eq!(accepted.write_timeout().unwrap(), Some(write));
        assert!(accepted.nodelay().unwrap());
    }

    /// Fill about `depth` KiB of stack below the caller and return a checksum of what was written.
    #[inline(never)]
    fn deep(depth: usize) -> u64 {
        let block = std::hint::black_box([depth as u8; 1024]);
        let below = if depth > 1 { deep(depth - 1) } else { 0 };
        below + block.iter().map(|&b| b as u64).sum::<u64>()
    }

    #[test]
    fn a_worker_keeps_its_live_frames_when_its_unused_stack_is_released() {
        std::thread::Builder::new()
            .stack_size(2 * 1024 * 1024)
            .spawn(|| {
                mark_trimmable_stack();
                let live = std::hint::black_box(vec![7u8; 64]);
                let local = std::hint::black_box([3u8; 512]);
                let first = deep(100);
                release_unused_stack();
                assert_eq!(local.iter().map(|&b| b as u64).sum::<u64>(), 3 * 512);
                assert_eq!(live, vec![7u8; 64]);
                assert_eq!(deep(100), first);
                release_unused_stack();
                assert_eq!(deep(150), deep(150));
            })
            .unwrap()
            .join()
            .unwrap();
        // An unmarked thread (here the test's own) is left alone.
        release_unused_stack();
        assert_eq!(deep(10), deep(10));
    }
}
