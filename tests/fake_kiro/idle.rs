//! Kiro drops connections that stay idle: with [`super::FakeKiro::close_idle_after`] the fake
//! gives each connection it serves a read timeout, so tiny_http, waiting for the connection's
//! next request, gives up and closes it after that much silence (Linux only).

use std::net::SocketAddr;
use std::time::Duration;

/// Give the accepted socket of the connection `local` ⇄ `peer` a read timeout of `idle`.
pub fn close_after(local: SocketAddr, peer: Option<SocketAddr>, idle: Duration) {
    #[cfg(target_os = "linux")]
    if let Some(peer) = peer {
        const SOL_SOCKET: std::os::raw::c_int = 1;
        const SO_RCVTIMEO: std::os::raw::c_int = 20;
        // struct timeval on 64-bit Linux: two longs.
        let tv: [i64; 2] = [idle.as_secs() as i64, i64::from(idle.subsec_micros())];
        for fd in super::accepted_socket_fds(local, peer) {
            // SAFETY: setting an option on a socket fd we own; the value is a timeval of 16 bytes.
            unsafe {
                super::sys::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, tv.as_ptr().cast(), 16);
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (local, peer, idle);
}
