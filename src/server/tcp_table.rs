//! The kernel's TCP tables (`/proc/self/net/tcp` and `tcp6`): whether a connection to the listener
//! was accepted, and whether its client has closed it. tiny_http hands us requests, not sockets,
//! so this is where the state of a client's connection can be seen.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// `CLOSE_WAIT`: the peer has closed its side of the connection.
const CLOSE_WAIT: u8 = 0x08;

/// One connection of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub local_port: u16,
    pub remote: SocketAddr,
    pub state: u8,
    /// 0 while the connection waits in the accept queue.
    pub inode: u64,
}

/// The entries of both tables; `None` when neither can be read (not Linux).
pub fn read() -> Option<Vec<Entry>> {
    let mut found = None;
    for table in ["/proc/self/net/tcp", "/proc/self/net/tcp6"] {
        if let Ok(text) = std::fs::read_to_string(table) {
            found.get_or_insert_with(Vec::new).extend(parse(&text));
        }
    }
    found
}

/// Whether the client at `remote` of our listener on `local_port` has gone: it closed its side,
/// or the connection is no longer in the tables. `false` when the tables cannot be read.
pub fn client_gone(local_port: u16, remote: SocketAddr) -> bool {
    let Some(entries) = read() else {
        return false;
    };
    let remote = canonical(remote);
    match entries
        .iter()
        .find(|e| e.local_port == local_port && canonical(e.remote) == remote)
    {
        Some(e) => e.state == CLOSE_WAIT,
        None => true,
    }
}

/// An IPv4 client of an IPv6 listener shows as `::ffff:a.b.c.d`.
fn canonical(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), v6.port()),
            None => addr,
        },
        v4 => v4,
    }
}

/// Parse the text of one table (a header line, then one connection per line).
pub fn parse(text: &str) -> impl Iterator<Item = Entry> + '_ {
    text.lines().skip(1).filter_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (_, local_port) = address(f.get(1)?)?;
        let (ip, port) = address(f.get(2)?)?;
        Some(Entry {
            local_port,
            remote: SocketAddr::new(ip, port),
            state: u8::from_str_radix(f.get(3)?, 16).ok()?,
            inode: f.get(9)?.parse().ok()?,
        })
    })
}

/// `0100007F:1F90`: the address as the kernel's 32-bit words in host byte order, the port in hex.
fn address(field: &str) -> Option<(IpAddr, u16)> {
    let (ip, port) = field.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let word = |i: usize| -> Option<[u8; 4]> {
        let hex = ip.get(i * 8..i * 8 + 8)?;
        Some(u32::from_str_radix(hex, 16).ok()?.to_ne_bytes())
    };
    let ip = match ip.len() {
        8 => IpAddr::V4(Ipv4Addr::from(word(0)?)),
        32 => {
            let mut bytes = [0u8; 16];
            for i in 0..4 {
                bytes[i * 4..i * 4 + 4].copy_from_slice(&word(i)?);
            }
            IpAddr::V6(Ipv6Addr::from(bytes))
        }
        _ => return None,
    };
    Some((ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::net::{TcpListener, TcpStream};

    const TABLE: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0 100 0 0 10 0
   1: 0100007F:1F90 0100007F:A001 01 00000000:00000000 00:00000000 00000000     0        0 0 1 0 20 4 30 10 -1
   2: 0100007F:1F90 0100007F:A002 08 00000000:00000000 00:00000000 00000000     0        0 5151 1 0 20 4 30 10 -1
";

    #[cfg(target_endian = "little")]
    #[test]
    fn entries_give_ports_addresses_states_and_inodes() {
        let e: Vec<Entry> = parse(TABLE).collect();
        assert_eq!(e.len(), 3);
        assert_eq!(e[1].local_port, 0x1F90);
        assert_eq!(e[1].remote, "127.0.0.1:40961".parse().unwrap());
        assert_eq!((e[1].state, e[1].inode), (1, 0));
        assert_eq!((e[2].state, e[2].inode), (CLOSE_WAIT, 5151));
        let v6 = "header
   0: 00000000000000000000000001000000:1F90 0000000000000000FFFF00000100007F:A001 01 0:0 0:0 0 0 0 77 1";
        let e: Vec<Entry> = parse(v6).collect();
        assert_eq!(e[0].remote, "[::ffff:127.0.0.1]:40961".parse().unwrap());
        assert_eq!(canonical(e[0].remote), "127.0.0.1:40961".parse().unwrap());
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_client_that_closed_its_connection_is_gone() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (_accepted, remote) = listener.accept().unwrap();
        client.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
        assert!(!client_gone(port, remote));
        drop(client);
        let mut gone = false;
        for _ in 0..100 {
            gone = client_gone(port, remote);
            if gone {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(gone);
    }
}
