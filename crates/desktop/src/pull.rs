//! The window's event queue: what the backend sends waits here until the page pulls it with
//! `next_events` (a long poll), so a page that is busy or gone costs a bounded queue.

use std::sync::Mutex;
use std::time::Duration;

use crate::backend::lock;
use crate::models::UiEvent;

/// Events waiting for the window, which pulls them with `next_events` (a long poll). Pulled,
/// not pushed through a `tauri::ipc::Channel`: every channel message is a script the webview
/// evaluates, and WebKitGTK's web process keeps memory for each script it has run (measured:
/// +72 MiB of PSS over a 100,000-file batch with a channel, growing with the batch). A pull
/// is an ordinary IPC answer, read from a fetch response and freed with it.
#[derive(Default)]
pub struct UiEvents {
    pending: Mutex<Pending>,
    ready: tokio::sync::Notify,
}

#[derive(Default)]
struct Pending {
    /// The window that pulls (a reload subscribes again and takes over); 0 before any.
    subscriber: u32,
    events: Vec<UiEvent>,
    /// Events were dropped because nobody pulled them: the next pull says so first.
    overflowed: bool,
}

/// Events held for a window that does not pull (a busy or frozen page) at most: past this they
/// are dropped and the window reads its state again instead.
const MAX_PENDING: usize = 4_096;

/// Another window (or the same page, reloaded) subscribed after this one.
#[derive(Debug, thiserror::Error)]
#[error("another window took over the event stream")]
pub struct Superseded;

impl UiEvents {
    /// Makes the caller the window that pulls; what waited for the previous one is dropped
    /// (the new page reads its state itself) and that one's pull ends.
    pub fn subscribe(&self) -> u32 {
        let id = {
            let mut pending = lock(&self.pending);
            pending.subscriber = pending.subscriber.wrapping_add(1).max(1);
            pending.events.clear();
            pending.overflowed = false;
            pending.subscriber
        };
        self.ready.notify_waiters();
        id
    }

    pub fn send(&self, events: Vec<UiEvent>) {
        if events.is_empty() {
            return;
        }
        {
            let mut pending = lock(&self.pending);
            if pending.subscriber == 0 {
                return;
            }
            if pending.events.len() + events.len() > MAX_PENDING {
                pending.events.clear();
                pending.overflowed = true;
            } else {
                pending.events.extend(events);
            }
        }
        self.ready.notify_waiters();
    }

    /// The events sent since the last pull, as soon as there are any, or none after `wait`.
    pub async fn next(&self, subscriber: u32, wait: Duration) -> Result<Vec<UiEvent>, Superseded> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            // Registered before the check, so a send in between still wakes this pull.
            let notified = self.ready.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut pending = lock(&self.pending);
                if pending.subscriber != subscriber {
                    return Err(Superseded);
                }
                if pending.overflowed || !pending.events.is_empty() {
                    let mut events = Vec::with_capacity(pending.events.len() + 1);
                    if std::mem::take(&mut pending.overflowed) {
                        events.push(UiEvent::Resync);
                    }
                    events.append(&mut pending.events);
                    return Ok(events);
                }
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Ok(Vec::new());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn notice(n: usize) -> UiEvent {
        UiEvent::Notice {
            message: format!("n{n}"),
            error: false,
        }
    }

    const WAIT: Duration = Duration::from_secs(30);

    #[tokio::test]
    async fn a_pull_answers_what_was_sent_in_order_and_wakes_on_a_send() {
        let queue = Arc::new(UiEvents::default());
        // Nothing is kept before a window subscribes.
        queue.send(vec![notice(0)]);
        let me = queue.subscribe();
        queue.send(vec![notice(1), notice(2)]);
        queue.send(vec![notice(3)]);
        assert_eq!(
            queue.next(me, WAIT).await.unwrap(),
            vec![notice(1), notice(2), notice(3)]
        );
        // A pull that waits is answered by the next send, long before its time is up.
        let pulling = tokio::spawn({
            let queue = queue.clone();
            async move { queue.next(me, WAIT).await }
        });
        tokio::task::yield_now().await;
        queue.send(vec![notice(4)]);
        let answered = tokio::time::timeout(WAIT / 2, pulling).await;
        assert_eq!(answered.unwrap().unwrap().unwrap(), vec![notice(4)]);
        // With nothing sent, a pull ends empty when its time is up.
        assert!(queue
            .next(me, Duration::from_millis(1))
            .await
            .unwrap()
            .is_empty());
    }

    #[tokio::test]
    async fn a_newer_page_takes_over_and_an_unread_backlog_becomes_a_resync() {
        let queue = UiEvents::default();
        let old = queue.subscribe();
        queue.send(vec![notice(1)]);
        let new = queue.subscribe();
        assert!(queue.next(old, WAIT).await.is_err(), "the old page stops");
        queue.send(vec![notice(2)]);
        assert_eq!(queue.next(new, WAIT).await.unwrap(), vec![notice(2)]);

        // A page that stops pulling holds at most MAX_PENDING events; past that it is told to
        // read everything again, and gets what came after.
        for n in 0..=MAX_PENDING {
            queue.send(vec![notice(n)]);
        }
        queue.send(vec![notice(7)]);
        assert_eq!(
            queue.next(new, WAIT).await.unwrap(),
            vec![UiEvent::Resync, notice(7)]
        );
    }
}
