//! A TCP relay on 127.0.0.1 between an agent and a hub that a test can point elsewhere, refuse
//! connections with (a hub that is down), or cut mid-stream after a number of bytes from the
//! agent (a link that drops while records are in flight).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

#[derive(Default)]
struct Plan {
    target: Option<SocketAddr>,
    /// Cut each new connection after this many agent->hub bytes.
    cut_after: Option<u64>,
}

/// The relay; stops when dropped.
pub struct Relay {
    pub addr: SocketAddr,
    plan: Arc<Mutex<Plan>>,
    cuts_tx: Arc<watch::Sender<u64>>,
    task: JoinHandle<()>,
}

impl Relay {
    /// Listens on a free port and relays to `target` (`None`: refuse every connection).
    pub async fn start(target: Option<SocketAddr>) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("relay bind");
        let addr = listener.local_addr().expect("relay addr");
        let plan = Arc::new(Mutex::new(Plan {
            target,
            cut_after: None,
        }));
        let cuts_tx = Arc::new(watch::channel(0u64).0);
        let task = tokio::spawn(accept(listener, plan.clone(), cuts_tx.clone()));
        Relay {
            addr,
            plan,
            cuts_tx,
            task,
        }
    }

    /// Relay new connections to `target`; `None` refuses them (a hub that is down).
    pub fn set_target(&self, target: Option<SocketAddr>) {
        self.plan.lock().expect("plan").target = target;
    }

    /// Cut every new connection once the agent has sent `bytes` through it; `None` stops cutting.
    pub fn cut_after(&self, bytes: Option<u64>) {
        self.plan.lock().expect("plan").cut_after = bytes;
    }

    /// Resolves once `n` connections have been cut.
    pub async fn wait_for_cuts(&self, n: u64) {
        let mut cuts = self.cuts_tx.subscribe();
        let _ = cuts.wait_for(|c| *c >= n).await;
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept(listener: TcpListener, plan: Arc<Mutex<Plan>>, cuts_tx: Arc<watch::Sender<u64>>) {
    while let Ok((agent, _)) = listener.accept().await {
        let (target, cut_after) = {
            let plan = plan.lock().expect("plan");
            (plan.target, plan.cut_after)
        };
        let Some(target) = target else {
            drop(agent); // the hub is "down"
            continue;
        };
        let cuts_tx = cuts_tx.clone();
        tokio::spawn(async move {
            let Ok(hub) = TcpStream::connect(target).await else {
                return;
            };
            let _ = agent.set_nodelay(true);
            let _ = hub.set_nodelay(true);
            let (mut agent_rd, mut agent_wr) = agent.into_split();
            let (mut hub_rd, mut hub_wr) = hub.into_split();
            let upstream = async {
                let mut buf = vec![0u8; 16 * 1024];
                let mut sent = 0u64;
                loop {
                    let n = match agent_rd.read(&mut buf).await {
                        Ok(0) | Err(_) => return false,
                        Ok(n) => n,
                    };
                    let n = match cut_after {
                        Some(limit) if sent + n as u64 >= limit => {
                            let keep = (limit - sent) as usize;
                            let _ = hub_wr.write_all(&buf[..keep]).await;
                            return true;
                        }
                        _ => n,
                    };
                    if hub_wr.write_all(&buf[..n]).await.is_err() {
                        return false;
                    }
                    sent += n as u64;
                }
            };
            let downstream = async {
                let _ = tokio::io::copy(&mut hub_rd, &mut agent_wr).await;
                false
            };
            // Whichever side ends first ends the connection: both sockets are dropped here.
            let cut = tokio::select! {
                cut = upstream => cut,
                cut = downstream => cut,
            };
            if cut {
                cuts_tx.send_modify(|c| *c += 1);
            }
        });
    }
}
