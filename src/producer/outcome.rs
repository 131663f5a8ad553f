//! The one-shot hand-over of a record's outcome from the lane that resolves
//! it to the caller's `DeliveryFuture`.
//!
//! Each record needs one slot. Slots are allocated in blocks, handed out
//! one after the other by a per-thread block, so handing a record over does
//! not allocate: a block is freed once every sender and receiver of its
//! slots is gone.

use crate::error::Error;
use crate::wire::report::DeliveryReport;
use std::cell::RefCell;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

pub(crate) type Outcome = Result<DeliveryReport, Error>;

/// Slots per block: enough to make the allocation rare, few enough that a
/// block whose records are long resolved is not held for long by the last
/// one.
const BLOCK_SLOTS: usize = 32;

struct Block([Mutex<Slot>; BLOCK_SLOTS]);

#[derive(Default)]
struct Slot {
    /// Sent and not yet taken.
    outcome: Option<Outcome>,
    /// The task waiting for the outcome.
    waker: Option<Waker>,
    /// The sender is gone, with or without sending.
    sender_gone: bool,
    /// The receiver is gone: an outcome sent now is dropped at once.
    receiver_gone: bool,
}

thread_local! {
    /// The block new slots are taken from, and its next free slot.
    static CURRENT: RefCell<Option<(Arc<Block>, usize)>> = const { RefCell::new(None) };
}

/// A new slot: the lane's end and the caller's end.
pub(crate) fn slot() -> (OutcomeSender, OutcomeReceiver) {
    CURRENT.with_borrow_mut(|current| {
        if current
            .as_ref()
            .is_none_or(|(_, next)| *next == BLOCK_SLOTS)
        {
            let block = Arc::new(Block(std::array::from_fn(|_| Mutex::default())));
            *current = Some((block, 0));
        }
        let (block, next) = current.as_mut().expect("a block with a free slot");
        let index = *next;
        *next += 1;
        let sender = OutcomeSender {
            block: Arc::clone(block),
            index,
            sent: false,
        };
        let receiver = OutcomeReceiver {
            block: Arc::clone(block),
            index,
            done: false,
        };
        (sender, receiver)
    })
}

fn lock(block: &Block, index: usize) -> MutexGuard<'_, Slot> {
    // Nothing panics while a slot is locked; a poisoned slot is still whole.
    block.0[index]
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
}

/// The lane's end of a slot. Dropped without sending, the receiver sees
/// the producer as closed.
pub(crate) struct OutcomeSender {
    block: Arc<Block>,
    index: usize,
    sent: bool,
}

impl OutcomeSender {
    pub(crate) fn send(mut self, outcome: Outcome) {
        self.sent = true;
        self.finish(Some(outcome));
    }

    fn finish(&mut self, outcome: Option<Outcome>) {
        let (waker, unwanted) = {
            let mut slot = lock(&self.block, self.index);
            slot.sender_gone = true;
            let unwanted = if slot.receiver_gone {
                outcome
            } else {
                slot.outcome = outcome;
                None
            };
            (slot.waker.take(), unwanted)
        };
        // Dropped and woken outside the lock.
        drop(unwanted);
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl Drop for OutcomeSender {
    fn drop(&mut self) {
        if !self.sent {
            self.finish(None);
        }
    }
}

/// The caller's end of a slot.
pub(crate) struct OutcomeReceiver {
    block: Arc<Block>,
    index: usize,
    /// The outcome was returned: the sender is gone and the slot empty.
    done: bool,
}

impl OutcomeReceiver {
    /// The outcome once sent; [`Error::Closed`] if the sender went without
    /// sending (or the outcome was already taken).
    pub(crate) fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Outcome> {
        let mut slot = lock(&self.block, self.index);
        if let Some(outcome) = slot.outcome.take() {
            self.done = true;
            return Poll::Ready(outcome);
        }
        if slot.sender_gone {
            self.done = true;
            return Poll::Ready(Err(Error::Closed));
        }
        match &slot.waker {
            Some(waker) if waker.will_wake(cx.waker()) => {}
            _ => slot.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

impl Drop for OutcomeReceiver {
    fn drop(&mut self) {
        // Nothing is left in the slot, and nobody else uses it.
        if self.done {
            return;
        }
        let (outcome, waker) = {
            let mut slot = lock(&self.block, self.index);
            slot.receiver_gone = true;
            (slot.outcome.take(), slot.waker.take())
        };
        drop((outcome, waker));
    }
}

impl std::fmt::Debug for OutcomeReceiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let slot = lock(&self.block, self.index);
        f.debug_struct("OutcomeReceiver")
            .field("sent", &(slot.sender_gone && slot.outcome.is_some()))
            .field("closed", &(slot.sender_gone && slot.outcome.is_none()))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;

    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn report(offset: i64) -> Outcome {
        Ok(DeliveryReport {
            cluster_id: "c".into(),
            topic: "t".into(),
            partition: 0,
            offset,
            timestamp: None,
            key: None,
            value: None,
            attempts: 1,
            possibly_duplicated: false,
        })
    }

    #[test]
    fn outcomes_reach_their_own_receiver_and_wake_it() {
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(Arc::clone(&count));
        let mut cx = Context::from_waker(&waker);
        // More than a block, sent in reverse order.
        let (senders, mut receivers): (Vec<_>, Vec<_>) =
            (0..3 * BLOCK_SLOTS).map(|_| slot()).unzip();
        for receiver in &mut receivers {
            assert!(receiver.poll(&mut cx).is_pending());
        }
        for (i, sender) in senders.into_iter().enumerate().rev() {
            sender.send(report(i as i64));
        }
        assert_eq!(count.0.load(Ordering::SeqCst), 3 * BLOCK_SLOTS);
        for (i, receiver) in receivers.iter_mut().enumerate() {
            match receiver.poll(&mut cx) {
                Poll::Ready(Ok(report)) => assert_eq!(report.offset, i as i64),
                _ => panic!("slot {i} has no report"),
            }
        }
    }

    #[test]
    fn a_sender_gone_without_sending_closes_and_a_gone_receiver_drops() {
        let waker = Waker::noop();
        let mut cx = Context::from_waker(waker);
        let (sender, mut receiver) = slot();
        assert!(receiver.poll(&mut cx).is_pending());
        drop(sender);
        assert!(matches!(
            receiver.poll(&mut cx),
            Poll::Ready(Err(Error::Closed))
        ));

        let (sender, receiver) = slot();
        drop(receiver);
        sender.send(report(1));
        let (sender, mut receiver) = slot();
        sender.send(report(2));
        assert!(matches!(receiver.poll(&mut cx), Poll::Ready(Ok(r)) if r.offset == 2));
    }

    #[test]
    fn slots_work_across_threads() {
        let pairs: Vec<_> = (0..100).map(|_| slot()).collect();
        let (senders, receivers): (Vec<_>, Vec<_>) = pairs.into_iter().unzip();
        let thread = std::thread::spawn(move || {
            for (i, sender) in senders.into_iter().enumerate() {
                sender.send(report(i as i64));
            }
        });
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(async move {
            for (i, mut receiver) in receivers.into_iter().enumerate() {
                let outcome = std::future::poll_fn(|cx| receiver.poll(cx)).await;
                assert_eq!(outcome.unwrap().offset, i as i64);
            }
        });
        thread.join().unwrap();
    }
}
