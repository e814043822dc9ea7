//! Kiro drops connections that stay idle: with [`super::FakeKiro::close_idle_after`] the fake
//! shuts a connection down once it has been idle that long after its last response.
//!
//! A watcher thread per response, not a socket read timeout: tiny_http reads small bodies
//! eagerly and is already blocked reading the next request before the handler runs, and a read
//! timeout set then does not apply to that read (Linux).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

/// Per connection (fake's address, client's address): bumped at every request start and
/// response end, so a watcher knows whether its connection stayed idle.
static ACTIVITY: Mutex<BTreeMap<(SocketAddr, SocketAddr), u64>> = Mutex::new(BTreeMap::new());

fn bump(local: SocketAddr, peer: SocketAddr) -> u64 {
    let mut map = ACTIVITY.lock().unwrap_or_else(|p| p.into_inner());
    let n = map.entry((local, peer)).or_insert(0);
    *n += 1;
    *n
}

/// A request arrived on `local` ⇄ `peer`: no watcher may close it now.
pub fn busy(local: SocketAddr, peer: Option<SocketAddr>) {
    if let Some(peer) = peer {
        bump(local, peer);
    }
}

/// The response on `local` ⇄ `peer` went out: shut the connection down after `idle` unless
/// another request arrives on it first.
pub fn close_after(local: SocketAddr, peer: Option<SocketAddr>, idle: Duration) {
    #[cfg(target_os = "linux")]
    if let Some(peer) = peer {
        let mine = bump(local, peer);
        std::thread::spawn(move || {
            std::thread::sleep(idle);
            let map = ACTIVITY.lock().unwrap_or_else(|p| p.into_inner());
            if map.get(&(local, peer)) != Some(&mine) {
                return;
            }
            super::shutdown_connection(local, peer);
        });
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (local, peer, idle);
}
