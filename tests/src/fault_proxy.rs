//! A fault-injecting TCP proxy on 127.0.0.1 between agents and a hub: each new connection gets a
//! [`Fault`] from the proxy's [`Schedule`] (one fault for everything, a list in order, or drawn
//! at random from a seed), and [`FaultProxy::cut_all`] drops every open connection at once (a
//! dealership's link going down). The upstream can be repointed, so a hub restarted on another
//! port stays behind the same proxy address.
//!
//! The bytes are TLS records: the proxy sees nothing and can only do what a bad network does:
//! refuse, swallow, delay, stall and cut.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// What happens to one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Relayed untouched.
    Pass,
    /// Closed at once, nothing relayed (the hub is down or a firewall resets).
    Refuse,
    /// Accepted, everything read and dropped, nothing answered, for `hold`; then closed.
    BlackHole { hold: Duration },
    /// Every chunk, either way, is held `by` before it is relayed (a slow satellite link).
    Delay { by: Duration },
    /// Relayed until `after` bytes (both ways together), then nothing moves for `hold`, then
    /// relayed again.
    Stall { after: u64, hold: Duration },
    /// Relayed until `after` bytes (both ways together), then both sides closed mid-stream.
    Cut { after: u64 },
}

impl Fault {
    /// The fault's name in reports.
    pub fn name(&self) -> &'static str {
        match self {
            Fault::Pass => "pass",
            Fault::Refuse => "refuse",
            Fault::BlackHole { .. } => "black-hole",
            Fault::Delay { .. } => "delay",
            Fault::Stall { .. } => "stall",
            Fault::Cut { .. } => "cut",
        }
    }
}

/// Which fault each new connection gets.
#[derive(Debug)]
pub enum Schedule {
    /// The same for every connection.
    Always(Fault),
    /// These, one per connection in order, then `Pass`.
    InOrder(VecDeque<Fault>),
    /// Drawn for each connection from a seeded generator (reproducible with the seed).
    Random { seed: u64, rng: Box<ChaCha8Rng> },
}

impl Schedule {
    /// Random faults from `seed`: about half the connections pass, the rest are cut at a random
    /// byte, stalled, delayed, black-holed or refused.
    pub fn random(seed: u64) -> Schedule {
        Schedule::Random {
            seed,
            rng: Box::new(ChaCha8Rng::seed_from_u64(seed)),
        }
    }

    fn next(&mut self) -> Fault {
        match self {
            Schedule::Always(f) => *f,
            Schedule::InOrder(list) => list.pop_front().unwrap_or(Fault::Pass),
            Schedule::Random { rng, .. } => {
                let ms = |rng: &mut ChaCha8Rng, lo: u64, hi: u64| {
                    Duration::from_millis(rng.random_range(lo..hi))
                };
                match rng.random_range(0..100u32) {
                    0..50 => Fault::Pass,
                    50..72 => Fault::Cut {
                        after: rng.random_range(0..400_000),
                    },
                    72..82 => Fault::Stall {
                        after: rng.random_range(0..200_000),
                        hold: ms(rng, 50, 1_500),
                    },
                    82..90 => Fault::Delay { by: ms(rng, 1, 15) },
                    90..95 => Fault::BlackHole {
                        hold: ms(rng, 50, 1_000),
                    },
                    _ => Fault::Refuse,
                }
            }
        }
    }
}

struct State {
    upstream: Option<SocketAddr>,
    schedule: Schedule,
    /// Cancelled by `cut_all`; replaced by a fresh token for later connections.
    link: CancellationToken,
    applied: BTreeMap<&'static str, u64>,
}

/// The proxy; stops (and drops every connection) when dropped.
pub struct FaultProxy {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    task: JoinHandle<()>,
}

impl FaultProxy {
    /// Listens on a free port of 127.0.0.1 and relays to `upstream` (`None`: refuse all).
    pub async fn start(upstream: Option<SocketAddr>, schedule: Schedule) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("proxy binds");
        let addr = listener.local_addr().expect("proxy address");
        let state = Arc::new(Mutex::new(State {
            upstream,
            schedule,
            link: CancellationToken::new(),
            applied: BTreeMap::new(),
        }));
        let task = tokio::spawn(accept(listener, state.clone()));
        FaultProxy { addr, state, task }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Relays new connections to `upstream`; `None` refuses them.
    pub fn set_upstream(&self, upstream: Option<SocketAddr>) {
        self.state().upstream = upstream;
    }

    /// Replaces the schedule for new connections.
    pub fn set_schedule(&self, schedule: Schedule) {
        self.state().schedule = schedule;
    }

    /// Drops every open connection now (new ones follow the schedule).
    pub fn cut_all(&self) {
        let mut state = self.state();
        state.link.cancel();
        state.link = CancellationToken::new();
        *state.applied.entry("cut-all").or_default() += 1;
    }

    /// How many connections got each fault so far (and how many times all were cut).
    pub fn applied(&self) -> BTreeMap<&'static str, u64> {
        self.state().applied.clone()
    }

    /// The seed of a random schedule.
    pub fn seed(&self) -> Option<u64> {
        match self.state().schedule {
            Schedule::Random { seed, .. } => Some(seed),
            _ => None,
        }
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
        self.state().link.cancel();
    }
}

async fn accept(listener: TcpListener, state: Arc<Mutex<State>>) {
    while let Ok((client, _)) = listener.accept().await {
        let (upstream, fault, link) = {
            let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
            let fault = match s.upstream {
                Some(_) => s.schedule.next(),
                None => Fault::Refuse,
            };
            *s.applied.entry(fault.name()).or_default() += 1;
            (s.upstream, fault, s.link.clone())
        };
        tokio::spawn(async move {
            tokio::select! {
                _ = link.cancelled() => {}
                _ = connection(client, upstream, fault) => {}
            }
            // Both sockets are dropped here: the peers see the connection end.
        });
    }
}

/// Relays one connection under `fault` until either side ends or the fault ends it.
async fn connection(client: TcpStream, upstream: Option<SocketAddr>, fault: Fault) {
    let upstream = match (fault, upstream) {
        (Fault::Refuse, _) | (_, None) => return,
        (Fault::BlackHole { hold }, _) => {
            let (mut rd, _wr) = client.into_split();
            let mut sink = vec![0u8; 16 * 1024];
            let _ = tokio::time::timeout(hold, async {
                while matches!(rd.read(&mut sink).await, Ok(n) if n > 0) {}
            })
            .await;
            return;
        }
        (_, Some(addr)) => addr,
    };
    let Ok(server) = TcpStream::connect(upstream).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let budget = Arc::new(Budget::default());
    let (client_rd, client_wr) = client.into_split();
    let (server_rd, server_wr) = server.into_split();
    tokio::select! {
        _ = pump(client_rd, server_wr, fault, budget.clone()) => {}
        _ = pump(server_rd, client_wr, fault, budget) => {}
    }
}

/// Bytes relayed on one connection, both ways, for `Stall` and `Cut`.
#[derive(Default)]
struct Budget {
    relayed: tokio::sync::Mutex<u64>,
    stalled: std::sync::atomic::AtomicBool,
}

/// One direction: reads chunks and writes them on, applying the fault. Returns when the
/// connection should end.
async fn pump<R, W>(mut rd: R, mut wr: W, fault: Fault, budget: Arc<Budget>)
where
    R: AsyncReadExt + Unpin,
    W: AsyncWriteExt + Unpin,
{
    use std::sync::atomic::Ordering;
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match rd.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let mut chunk = &buf[..n];
        match fault {
            Fault::Delay { by } => tokio::time::sleep(by).await,
            Fault::Cut { after } => {
                let mut relayed = budget.relayed.lock().await;
                let left = after.saturating_sub(*relayed) as usize;
                if left < chunk.len() {
                    let _ = wr.write_all(&chunk[..left]).await;
                    return;
                }
                *relayed += chunk.len() as u64;
            }
            Fault::Stall { after, hold } => {
                let mut relayed = budget.relayed.lock().await;
                *relayed += chunk.len() as u64;
                if *relayed > after && !budget.stalled.swap(true, Ordering::SeqCst) {
                    // Everything stops (the other direction waits on the same lock).
                    tokio::time::sleep(hold).await;
                }
            }
            Fault::Pass | Fault::Refuse | Fault::BlackHole { .. } => {}
        }
        while !chunk.is_empty() {
            match wr.write(chunk).await {
                Ok(0) | Err(_) => return,
                Ok(k) => chunk = &chunk[k..],
            }
        }
    }
}
