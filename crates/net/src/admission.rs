//! Who may hold a connection: the overall cap and the per-client cap, with room made by closing
//! the longest-idle connection rather than refusing a newcomer while idle ones sit around.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};

use tokio_util::sync::CancellationToken;

use crate::conn::{Clock, ConnState};
use crate::stats::ServerStats;

/// The unit the per-client cap counts: an IPv4 address, or an IPv6 /64 (one subscriber's
/// prefix: an attacker has 2^64 addresses in it). IPv4-mapped IPv6 addresses count as IPv4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClientKey {
    V4([u8; 4]),
    V6Prefix([u8; 8]),
}

impl ClientKey {
    pub fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => ClientKey::V4(v4.octets()),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => ClientKey::V4(v4.octets()),
                None => {
                    let o = v6.octets();
                    ClientKey::V6Prefix([o[0], o[1], o[2], o[3], o[4], o[5], o[6], o[7]])
                }
            },
        }
    }
}

/// Why a connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Every connection of this client is busy and it holds its cap.
    PerClient,
    /// Every connection is busy and the server holds its cap.
    Total,
}

struct Entry {
    key: ClientKey,
    state: Arc<ConnState>,
    close: CancellationToken,
}

#[derive(Default)]
struct Inner {
    next_id: u64,
    clients: HashMap<ClientKey, usize>,
    conns: HashMap<u64, Entry>,
}

/// The open connections of one server.
pub(crate) struct Registry {
    max_total: usize,
    max_per_client: usize,
    clock: Clock,
    stats: ServerStats,
    inner: Mutex<Inner>,
}

/// A place held by one connection; dropping it frees the place (unless the connection was
/// evicted, which already did).
pub(crate) struct Ticket {
    registry: Arc<Registry>,
    id: u64,
    pub(crate) state: Arc<ConnState>,
    /// Cancelled when the connection is evicted to make room.
    pub(crate) close: CancellationToken,
}

impl Registry {
    pub(crate) fn new(
        max_total: usize,
        max_per_client: usize,
        clock: Clock,
        stats: ServerStats,
    ) -> Self {
        Self {
            max_total,
            max_per_client,
            clock,
            stats,
            inner: Mutex::new(Inner::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // The critical sections below cannot panic half-way; a poisoned lock's data is whole.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Admits a connection from `ip`, closing the longest-idle connection (of this client when
    /// it is at its own cap, else of anyone) to make room if needed.
    pub(crate) fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Ticket, Refusal> {
        let key = ClientKey::of(ip);
        let mut inner = self.lock();
        if inner.clients.get(&key).copied().unwrap_or(0) >= self.max_per_client {
            if !Self::evict(&mut inner, Some(key)) {
                return Err(Refusal::PerClient);
            }
            self.stats.c().evicted.fetch_add(1, Ordering::Relaxed);
        }
        if inner.conns.len() >= self.max_total {
            if !Self::evict(&mut inner, None) {
                return Err(Refusal::Total);
            }
            self.stats.c().evicted.fetch_add(1, Ordering::Relaxed);
        }
        let id = inner.next_id;
        inner.next_id += 1;
        let state = Arc::new(ConnState::new(self.clock.clone()));
        let close = CancellationToken::new();
        inner.conns.insert(
            id,
            Entry {
                key,
                state: Arc::clone(&state),
                close: close.clone(),
            },
        );
        *inner.clients.entry(key).or_insert(0) += 1;
        self.stats
            .c()
            .open
            .store(inner.conns.len(), Ordering::Relaxed);
        Ok(Ticket {
            registry: Arc::clone(self),
            id,
            state,
            close,
        })
    }

    /// Closes the connection (of `only` when given) with no request in flight that has been
    /// quiet longest; whether there was one.
    fn evict(inner: &mut Inner, only: Option<ClientKey>) -> bool {
        let victim = inner
            .conns
            .iter()
            .filter(|(_, e)| only.is_none_or(|k| e.key == k))
            .filter_map(|(id, e)| e.state.quiet_since().map(|t| (t, *id)))
            .min()
            .map(|(_, id)| id);
        let Some(id) = victim else { return false };
        if let Some(entry) = inner.conns.remove(&id) {
            Self::release_client(inner, entry.key);
            entry.close.cancel();
        }
        true
    }

    fn release_client(inner: &mut Inner, key: ClientKey) {
        if let Some(n) = inner.clients.get_mut(&key) {
            *n -= 1;
            if *n == 0 {
                inner.clients.remove(&key);
            }
        }
    }

    fn release(&self, id: u64) {
        let mut inner = self.lock();
        if let Some(entry) = inner.conns.remove(&id) {
            Self::release_client(&mut inner, entry.key);
        }
        self.stats
            .c()
            .open
            .store(inner.conns.len(), Ordering::Relaxed);
    }

    /// Connections open now.
    #[cfg(test)]
    fn open(&self) -> usize {
        self.lock().conns.len()
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.registry.release(self.id);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code: a panic is a failed test")]

    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::*;

    fn registry(total: usize, per_client: usize) -> Arc<Registry> {
        Arc::new(Registry::new(
            total,
            per_client,
            Clock::new(),
            ServerStats::default(),
        ))
    }

    fn v6(s: &str) -> IpAddr {
        IpAddr::V6(s.parse::<Ipv6Addr>().unwrap())
    }

    #[test]
    fn an_ipv6_slash_64_is_one_client_and_a_mapped_ipv4_is_its_ipv4() {
        assert_eq!(
            ClientKey::of(v6("2001:db8:1:2::1")),
            ClientKey::of(v6("2001:db8:1:2:ffff:ffff:ffff:ffff"))
        );
        assert_ne!(
            ClientKey::of(v6("2001:db8:1:2::1")),
            ClientKey::of(v6("2001:db8:1:3::1"))
        );
        assert_eq!(
            ClientKey::of(v6("::ffff:192.0.2.7")),
            ClientKey::of(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7)))
        );
        assert_ne!(
            ClientKey::of(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7))),
            ClientKey::of(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 8)))
        );
    }

    #[test]
    fn a_busy_client_at_its_cap_is_refused_and_others_are_not() {
        let r = registry(10, 2);
        let a = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
        let held: Vec<Ticket> = (0..2).map(|_| r.admit(a).unwrap()).collect();
        let _requests: Vec<_> = held.iter().map(|t| t.state.begin_request()).collect();
        assert_eq!(r.admit(a).err(), Some(Refusal::PerClient));
        let from_b = r.admit(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2))).unwrap();
        drop(from_b);
        drop(held);
        assert_eq!(r.open(), 0);
    }

    #[test]
    fn at_the_overall_cap_the_longest_idle_connection_makes_room() {
        let r = registry(3, 3);
        let ip = |n| IpAddr::V4(Ipv4Addr::new(10, 0, 0, n));
        let busy = r.admit(ip(1)).unwrap();
        let _busy_request = busy.state.begin_request();
        let oldest_idle = r.admit(ip(2)).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(5));
        let newer_idle = r.admit(ip(3)).unwrap();
        let newcomer = r.admit(ip(4)).unwrap();
        assert!(oldest_idle.close.is_cancelled());
        assert!(!newer_idle.close.is_cancelled());
        assert!(!busy.close.is_cancelled());
        assert_eq!(r.open(), 3);
        // Everyone busy: the next one is refused.
        let _more = [
            newer_idle.state.begin_request(),
            newcomer.state.begin_request(),
        ];
        assert_eq!(r.admit(ip(5)).err(), Some(Refusal::Total));
        drop(oldest_idle);
        assert_eq!(r.open(), 3, "an evicted ticket was already released");
    }
}
