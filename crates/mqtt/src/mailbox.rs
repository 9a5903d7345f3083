//! A connection's mailbox: what the rest of the broker hands to one connection — deliveries
//! routed to it (bounded by `OUTBOX_CAPACITY`) and instructions (`Control`) — with the
//! session table holding the sending half ([`MailboxSender`]) and the connection task the
//! receiving half ([`Mailbox`]).
//!
//! Hand-rolled instead of two tokio mpsc channels for memory per idle connection: a bounded
//! `mpsc::channel` allocates its first 32-slot block of `Delivery` when created and the
//! unbounded control channel another block, about 3.5 KB per connection that idle devices
//! never use (heaptrack, `BENCHMARKS.md`). Here both sides share one small allocation and the
//! delivery queue allocates only when something is queued. Every operation takes one short
//! lock, never held across `.await`; checking the state and registering the waker under the
//! same lock means no wake-up is lost.
//!
//! The semantics are those the broker relied on with the channels: `try_send` never waits
//! and fails when the queue is full or the connection is gone; the connection sees the
//! deliveries end (`recv` gives `None`) once the session dropped its sender — another
//! connection took the client id over — and the queue is drained; instructions are seen
//! before deliveries are waited for.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use crate::config::OUTBOX_CAPACITY;
use crate::session::{Control, Delivery};

/// Creates a connection's mailbox: the sender for the session table, the receiver for the
/// connection task.
pub(crate) fn mailbox() -> (MailboxSender, Mailbox) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            deliveries: VecDeque::new(),
            control: None,
            sender_gone: false,
            receiver_gone: false,
            delivery_waker: None,
            control_waker: None,
        }),
    });
    (
        MailboxSender {
            shared: shared.clone(),
        },
        Mailbox { shared },
    )
}

struct Shared {
    state: Mutex<State>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("mailbox lock is never poisoned")
    }
}

struct State {
    /// Empty (and unallocated) while the device is idle.
    deliveries: VecDeque<Delivery>,
    /// The instruction not yet taken by the connection. Instructions coalesce: a pending
    /// `Close` ends the connection, so nothing sent after it matters, and one pending
    /// `Reauthorize` covers any number of permission changes because it re-reads them all.
    control: Option<Control>,
    sender_gone: bool,
    receiver_gone: bool,
    delivery_waker: Option<Waker>,
    control_waker: Option<Waker>,
}

/// Keeps `cx`'s waker in `slot` (one receiver task, so one waker per kind suffices).
fn register(slot: &mut Option<Waker>, cx: &Context<'_>) {
    match slot {
        Some(waker) if waker.will_wake(cx.waker()) => {}
        _ => *slot = Some(cx.waker().clone()),
    }
}

/// The broker's side: held in the session table while the connection serves the session.
/// Dropping it ends the connection's deliveries.
pub(crate) struct MailboxSender {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for MailboxSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailboxSender").finish_non_exhaustive()
    }
}

impl MailboxSender {
    /// Queues a delivery without waiting; gives it back if the queue is full or the
    /// connection has ended.
    pub fn try_send(&self, delivery: Delivery) -> Result<(), Delivery> {
        let waker = {
            let mut state = self.shared.lock();
            if state.receiver_gone || state.deliveries.len() >= OUTBOX_CAPACITY {
                return Err(delivery);
            }
            state.deliveries.push_back(delivery);
            state.delivery_waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
        Ok(())
    }

    /// Hands the connection an instruction (coalesced with one not yet taken, see `State`).
    pub fn send_control(&self, control: Control) {
        let waker = {
            let mut state = self.shared.lock();
            if state.receiver_gone {
                return;
            }
            match (state.control, control) {
                (Some(Control::Close { .. }), _) => return,
                (Some(Control::Reauthorize), Control::Reauthorize) => return,
                _ => state.control = Some(control),
            }
            state.control_waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl Drop for MailboxSender {
    fn drop(&mut self) {
        let waker = {
            let mut state = self.shared.lock();
            state.sender_gone = true;
            state.delivery_waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

/// The connection's side.
pub(crate) struct Mailbox {
    shared: Arc<Shared>,
}

impl Mailbox {
    /// The next delivery; `None` once the sender is gone and every queued delivery was taken.
    pub async fn recv(&self) -> Option<Delivery> {
        poll_fn(|cx| {
            let mut state = self.shared.lock();
            if let Some(delivery) = state.deliveries.pop_front() {
                return Poll::Ready(Some(delivery));
            }
            if state.sender_gone {
                return Poll::Ready(None);
            }
            register(&mut state.delivery_waker, cx);
            Poll::Pending
        })
        .await
    }

    /// A queued delivery, if any, without waiting.
    pub fn try_recv(&self) -> Option<Delivery> {
        self.shared.lock().deliveries.pop_front()
    }

    /// The next instruction; waits for as long as none is sent.
    pub async fn control(&self) -> Control {
        poll_fn(|cx| {
            let mut state = self.shared.lock();
            if let Some(control) = state.control.take() {
                return Poll::Ready(control);
            }
            register(&mut state.control_waker, cx);
            Poll::Pending
        })
        .await
    }
}

impl Drop for Mailbox {
    fn drop(&mut self) {
        // The connection has ended: later offers fail (and are counted as dropped) and what
        // was queued for it is released now rather than when the session lets go.
        let dropped = {
            let mut state = self.shared.lock();
            state.receiver_gone = true;
            state.delivery_waker = None;
            state.control_waker = None;
            std::mem::take(&mut state.deliveries)
        };
        drop(dropped);
    }
}

#[cfg(test)]
mod tests {
    use std::pin::pin;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;

    use super::*;
    use crate::message::Message;
    use crate::protocol::ReasonCode;

    /// Counts wake-ups, so tests see exactly when the connection task would be woken.
    #[derive(Default)]
    struct CountingWaker(AtomicUsize);

    impl Wake for CountingWaker {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn delivery(qos: u8) -> Delivery {
        Delivery {
            message: Arc::new(Message::system("t".to_string(), "p".to_string(), qos)),
            qos,
            retain: false,
            subscription_ids: Vec::new(),
            stored_id: None,
        }
    }

    fn poll<F: Future>(
        future: std::pin::Pin<&mut F>,
        counter: &Arc<CountingWaker>,
    ) -> Poll<F::Output> {
        let waker = Waker::from(counter.clone());
        future.poll(&mut Context::from_waker(&waker))
    }

    #[test]
    fn a_waiting_connection_is_woken_by_a_delivery_and_gets_it() {
        let (sender, mailbox) = mailbox();
        let counter = Arc::new(CountingWaker::default());
        let mut recv = pin!(mailbox.recv());
        assert!(poll(recv.as_mut(), &counter).is_pending());
        assert_eq!(counter.0.load(Ordering::SeqCst), 0);
        sender.try_send(delivery(1)).expect("room");
        assert_eq!(counter.0.load(Ordering::SeqCst), 1);
        match poll(recv.as_mut(), &counter) {
            Poll::Ready(Some(d)) => assert_eq!(d.qos, 1),
            _ => panic!("the delivery is ready"),
        }
    }

    #[test]
    fn a_full_outbox_refuses_without_waiting_and_keeps_order() {
        let (sender, mailbox) = mailbox();
        for i in 0..OUTBOX_CAPACITY {
            let mut d = delivery(0);
            d.stored_id = Some(i as i64);
            sender.try_send(d).expect("room");
        }
        let refused = sender.try_send(delivery(0)).expect_err("full");
        assert_eq!(refused.stored_id, None);
        assert_eq!(mailbox.try_recv().and_then(|d| d.stored_id), Some(0));
        sender
            .try_send(delivery(0))
            .expect("room again after one was taken");
        assert_eq!(mailbox.try_recv().and_then(|d| d.stored_id), Some(1));
    }

    #[test]
    fn deliveries_end_after_the_queue_drains_once_the_sender_is_dropped() {
        let (sender, mailbox) = mailbox();
        let counter = Arc::new(CountingWaker::default());
        sender.try_send(delivery(1)).expect("room");
        drop(sender);
        let mut first = pin!(mailbox.recv());
        assert!(matches!(
            poll(first.as_mut(), &counter),
            Poll::Ready(Some(_))
        ));
        let mut second = pin!(mailbox.recv());
        assert!(matches!(poll(second.as_mut(), &counter), Poll::Ready(None)));
    }

    #[test]
    fn dropping_the_sender_wakes_a_waiting_connection() {
        let (sender, mailbox) = mailbox();
        let counter = Arc::new(CountingWaker::default());
        let mut recv = pin!(mailbox.recv());
        assert!(poll(recv.as_mut(), &counter).is_pending());
        drop(sender);
        assert_eq!(counter.0.load(Ordering::SeqCst), 1);
        assert!(matches!(poll(recv.as_mut(), &counter), Poll::Ready(None)));
    }

    #[test]
    fn offers_fail_once_the_connection_is_gone() {
        let (sender, mailbox) = mailbox();
        sender.try_send(delivery(0)).expect("room");
        drop(mailbox);
        assert!(sender.try_send(delivery(0)).is_err());
        assert_eq!(sender.shared.lock().deliveries.len(), 0);
    }

    #[test]
    fn instructions_wake_the_connection_and_a_close_is_never_superseded() {
        let (sender, mailbox) = mailbox();
        let counter = Arc::new(CountingWaker::default());
        let mut control = pin!(mailbox.control());
        assert!(poll(control.as_mut(), &counter).is_pending());
        sender.send_control(Control::Reauthorize);
        assert_eq!(counter.0.load(Ordering::SeqCst), 1);
        let close = Control::Close {
            reason: ReasonCode::SessionTakenOver,
            why: "DUPLICATE_CLIENTID",
        };
        sender.send_control(close);
        sender.send_control(Control::Reauthorize);
        assert_eq!(poll(control.as_mut(), &counter), Poll::Ready(close));
        let mut next = pin!(mailbox.control());
        assert!(poll(next.as_mut(), &counter).is_pending());
    }

    #[test]
    fn repeated_reauthorizations_coalesce_into_one() {
        let (sender, mailbox) = mailbox();
        let counter = Arc::new(CountingWaker::default());
        sender.send_control(Control::Reauthorize);
        sender.send_control(Control::Reauthorize);
        let mut first = pin!(mailbox.control());
        assert_eq!(
            poll(first.as_mut(), &counter),
            Poll::Ready(Control::Reauthorize)
        );
        let mut second = pin!(mailbox.control());
        assert!(poll(second.as_mut(), &counter).is_pending());
    }
}
