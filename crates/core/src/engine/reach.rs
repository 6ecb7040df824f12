//! Whether the hosts uploads go to can be reached, and waiting until they can.
//!
//! A connect error (refused, no route, DNS, connect timeout) says the host or the network is
//! gone, not that the upload is bad. Rather than spend its time budget hammering, a job that
//! meets one parks at that host's gate. One prober per unreachable host knocks with capped
//! backoff — an unauthenticated `HEAD` of the origin through the same client (same proxy, DNS
//! and TLS as the uploads; nothing signed, no key, no file) — and opens the gate as soon as
//! anything answers, so every parked job resumes within one probe interval of the network's
//! return, and a laptop offline for hours costs one small request every few seconds.
//!
//! Tokio's timers run on the monotonic clock, which stops during suspend: after a laptop wakes,
//! the next probe is at most one interval away.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{broadcast, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::job::{Event, OfflineHost};

/// How often an unreachable host is probed: from `first`, doubling, up to `max`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbePolicy {
    pub first: Duration,
    pub max: Duration,
    /// One probe's own time limit.
    pub timeout: Duration,
}

impl Default for ProbePolicy {
    fn default() -> Self {
        Self {
            first: Duration::from_millis(500),
            max: Duration::from_secs(5),
            timeout: Duration::from_secs(10),
        }
    }
}

/// An unreachable origin (`scheme://host:port`), and the jobs parked on it.
struct Gate {
    /// `true` once the origin answered; parked jobs wake on it.
    open: watch::Sender<bool>,
    since: Instant,
    next_probe: Mutex<Instant>,
    parked: AtomicUsize,
    reason: Mutex<String>,
}

pub(crate) struct Reach {
    gates: Mutex<HashMap<String, Arc<Gate>>>,
    policy: ProbePolicy,
    http: reqwest::Client,
    events: broadcast::Sender<Event>,
    tracker: TaskTracker,
    shutdown: CancellationToken,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The origin of `url`, which is what gets probed and what a gate is keyed by.
pub(crate) fn origin(url: &reqwest::Url) -> Option<String> {
    let host = url.host_str()?;
    let port = url.port_or_known_default()?;
    let host = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_owned()
    };
    Some(format!("{}://{host}:{port}", url.scheme()))
}

impl Reach {
    pub(crate) fn new(
        policy: ProbePolicy,
        http: reqwest::Client,
        events: broadcast::Sender<Event>,
        tracker: TaskTracker,
        shutdown: CancellationToken,
    ) -> Self {
        Self {
            gates: Mutex::new(HashMap::new()),
            policy,
            http,
            events,
            tracker,
            shutdown,
        }
    }

    /// Hosts that cannot be reached now, for status lines.
    pub(crate) fn offline(&self) -> Vec<OfflineHost> {
        let now = Instant::now();
        let mut hosts: Vec<OfflineHost> = lock(&self.gates)
            .iter()
            .map(|(origin, gate)| OfflineHost {
                origin: origin.clone(),
                parked: gate.parked.load(Ordering::Relaxed) as u64,
                offline_secs: now.duration_since(gate.since).as_secs(),
                next_probe_secs: lock(&gate.next_probe)
                    .saturating_duration_since(now)
                    .as_secs_f64()
                    .ceil() as u64,
                reason: lock(&gate.reason).clone(),
            })
            .collect();
        hosts.sort_by(|a, b| a.origin.cmp(&b.origin));
        hosts
    }

    /// Parks the caller until `origin` answers again, `deadline` passes (returns `false`), or
    /// `cancel` fires (returns `true`; the caller checks its token). The first job to park on an
    /// origin starts its prober.
    pub(crate) async fn wait_for(
        self: &Arc<Self>,
        origin: &str,
        reason: &str,
        deadline: Instant,
        cancel: &CancellationToken,
    ) -> bool {
        // Parked under the map's lock: the prober retires a gate only when nobody is parked on
        // it, and checks that under the same lock.
        let gate = {
            let mut gates = lock(&self.gates);
            let gate = match gates.get(origin) {
                Some(gate) => {
                    *lock(&gate.reason) = reason.to_owned();
                    gate.clone()
                }
                None => {
                    let now = Instant::now();
                    let gate = Arc::new(Gate {
                        open: watch::channel(false).0,
                        since: now,
                        next_probe: Mutex::new(now + self.policy.first),
                        parked: AtomicUsize::new(0),
                        reason: Mutex::new(reason.to_owned()),
                    });
                    gates.insert(origin.to_owned(), gate.clone());
                    tracing::warn!(%origin, "cannot reach the upload host ({reason}); waiting for it");
                    let this = self.clone();
                    let key = origin.to_owned();
                    let probing = gate.clone();
                    self.tracker
                        .spawn(async move { this.probe(key, probing).await });
                    gate
                }
            };
            gate.parked.fetch_add(1, Ordering::Relaxed);
            gate
        };
        let mut open = gate.open.subscribe();
        self.announce();
        let answered = tokio::select! {
            _ = open.wait_for(|open| *open) => true,
            _ = tokio::time::sleep_until(deadline) => false,
            _ = cancel.cancelled() => true,
        };
        gate.parked.fetch_sub(1, Ordering::Relaxed);
        answered
    }

    async fn probe(self: Arc<Self>, origin: String, gate: Arc<Gate>) {
        let mut delay = self.policy.first;
        loop {
            let at = Instant::now() + delay;
            *lock(&gate.next_probe) = at;
            tokio::select! {
                _ = self.shutdown.cancelled() => return,
                _ = tokio::time::sleep_until(at) => {}
            }
            let answer = self
                .http
                .head(&origin)
                .timeout(self.policy.timeout)
                .send()
                .await;
            let reachable = match &answer {
                Ok(_) => true,
                // A TLS or protocol error is an answer: the host is there, and the upload
                // itself will report what is wrong with it.
                Err(err) => !(err.is_connect() || err.is_timeout()),
            };
            if reachable {
                lock(&self.gates).remove(&origin);
                gate.open.send_replace(true);
                let offline = Instant::now().duration_since(gate.since);
                tracing::info!(%origin, "the upload host answers again after {} s", offline.as_secs());
                let _ = self.events.send(Event::Online {
                    origin,
                    offline_ms: offline.as_millis() as u64,
                });
                return;
            }
            {
                // Every parked job was cancelled, paused or gave up: nobody waits, stop knocking.
                let mut gates = lock(&self.gates);
                if gate.parked.load(Ordering::Relaxed) == 0 {
                    gates.remove(&origin);
                    drop(gates);
                    self.announce();
                    return;
                }
            }
            delay = (delay * 2).min(self.policy.max);
            *lock(&gate.next_probe) = Instant::now() + delay;
            self.announce();
        }
    }

    /// Tells front ends what is offline now; an empty list means nothing is.
    fn announce(&self) {
        let _ = self.events.send(Event::Offline {
            hosts: self.offline(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A loopback address nobody listens on (bound, read, released).
    fn dead_addr() -> std::net::SocketAddr {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap()
    }

    struct Rig {
        reach: Arc<Reach>,
        events: broadcast::Receiver<Event>,
        tracker: TaskTracker,
        shutdown: CancellationToken,
    }

    /// A `Reach` probing every `first` ms, backing off to `max` ms.
    fn rig(first: u64, max: u64) -> Rig {
        let (events, rx) = broadcast::channel(64);
        let tracker = TaskTracker::new();
        let shutdown = CancellationToken::new();
        let reach = Arc::new(Reach::new(
            ProbePolicy {
                first: Duration::from_millis(first),
                max: Duration::from_millis(max),
                timeout: Duration::from_secs(2),
            },
            reqwest::Client::new(),
            events,
            tracker.clone(),
            shutdown.clone(),
        ));
        Rig {
            reach,
            events: rx,
            tracker,
            shutdown,
        }
    }

    impl Rig {
        async fn stop(self) {
            self.shutdown.cancel();
            self.tracker.close();
            tokio::time::timeout(Duration::from_secs(5), self.tracker.wait())
                .await
                .expect("the probers ended");
        }
    }

    #[test]
    fn origins_keep_scheme_host_and_port() {
        let o = |u: &str| origin(&reqwest::Url::parse(u).unwrap());
        assert_eq!(
            o("https://upload.imagekit.io/api/v2/files/upload").as_deref(),
            Some("https://upload.imagekit.io:443")
        );
        assert_eq!(
            o("http://127.0.0.1:7371/api/v1/files/upload").as_deref(),
            Some("http://127.0.0.1:7371")
        );
        assert_eq!(o("http://[::1]:80/x").as_deref(), Some("http://[::1]:80"));
    }

    #[tokio::test]
    async fn a_gate_opens_when_the_host_answers_and_not_before() {
        // A port nobody listens on, then a listener on it.
        let addr = dead_addr();
        let mut rig = rig(20, 100);
        let reach = rig.reach.clone();
        let origin = format!("http://{addr}");
        let waiter = {
            let reach = reach.clone();
            let origin = origin.clone();
            tokio::spawn(async move {
                let cancel = CancellationToken::new();
                let far = Instant::now() + Duration::from_secs(60);
                reach.wait_for(&origin, "refused", far, &cancel).await
            })
        };
        // Offline is announced with the parked job, and probes keep failing.
        let mut offline_seen = 0;
        while offline_seen < 3 {
            if let Event::Offline { hosts } = rig.events.recv().await.unwrap() {
                assert_eq!(hosts.len(), 1);
                assert_eq!(hosts[0].origin, origin);
                assert!(hosts[0].next_probe_secs <= 1);
                offline_seen += 1;
            }
        }
        assert!(!waiter.is_finished());
        assert_eq!(reach.offline()[0].parked, 1);
        // The host comes back: a minimal HTTP server answering anything.
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
            loop {
                let (mut s, _) = listener.accept().await.unwrap();
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf).await;
                let _ = s
                    .write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n")
                    .await;
            }
        });
        assert!(waiter.await.unwrap(), "the parked job wakes");
        loop {
            if let Event::Online { origin: o, .. } = rig.events.recv().await.unwrap() {
                assert_eq!(o, origin);
                break;
            }
        }
        assert!(reach.offline().is_empty());
        rig.stop().await;
    }

    #[tokio::test]
    async fn a_host_nobody_waits_for_is_no_longer_probed() {
        let mut rig = rig(20, 40);
        let cancel = CancellationToken::new();
        cancel.cancel();
        let far = Instant::now() + Duration::from_secs(60);
        let origin = format!("http://{}", dead_addr());
        assert!(rig.reach.wait_for(&origin, "refused", far, &cancel).await);
        // The prober sees nobody parked at its next failed probe and retires the gate.
        loop {
            if let Event::Offline { hosts } = rig.events.recv().await.unwrap() {
                if hosts.is_empty() {
                    break;
                }
            }
        }
        assert!(rig.reach.offline().is_empty());
        // It ended by itself: no shutdown needed.
        rig.tracker.close();
        tokio::time::timeout(Duration::from_secs(5), rig.tracker.wait())
            .await
            .expect("the prober ended");
    }

    #[tokio::test]
    async fn a_deadline_ends_the_wait() {
        let rig = rig(500, 5000);
        let deadline = Instant::now() + Duration::from_millis(50);
        let origin = format!("http://{}", dead_addr());
        let answered = rig
            .reach
            .wait_for(&origin, "refused", deadline, &CancellationToken::new())
            .await;
        assert!(!answered);
        rig.stop().await;
    }
}
