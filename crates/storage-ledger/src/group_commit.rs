//! Group commit: many writes share one flush, and each write learns when it
//! is durable through a [`Durable`] ticket.
//!
//! A write is applied to sled first, then registers a ticket with the
//! committer thread. The committer sleeps until a ticket is pending, then
//! waits until [`MAX_GROUP`] tickets are pending or [`MAX_GROUP_WAIT`] has
//! passed since the first one, takes every pending ticket, flushes once and
//! resolves the tickets it took with the flush's result. A ticket
//! registered while a flush runs waits for the next flush, because its
//! write may have missed the one in progress. Under load the flush itself
//! is the batching window: tickets pile up while the disk works and the
//! next flush takes them all, so one flush serves hundreds of writes.
//!
//! One refinement: the group also closes as soon as every pending ticket
//! has a caller blocked on it (waiting or awaiting). Those writers cannot
//! add to the group, so waiting out the window would only add latency; a
//! lone writer that appends and waits gets one flush per write instead of
//! one flush per 5 ms.
//!
//! A flush error resolves every ticket of that flush with
//! [`LedgerError::Storage`]. If the committer stops without resolving a
//! ticket the ticket resolves with [`LedgerError::Closed`]. Dropping the
//! committer flushes what is pending and joins the thread.
//!
//! Durability limit: sled's flush writes its log and calls
//! `sync_file_range` on Linux, which survives a crash of the process but
//! not every power loss (the disk's write cache and the file's metadata
//! are not synced as `fsync` would).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use futures::channel::oneshot;
use parking_lot::{Condvar, Mutex, MutexGuard};

use crate::error::LedgerError;

/// Flush once this many tickets are pending.
pub const MAX_GROUP: usize = 64;
/// Flush at the latest this long after the first pending ticket.
pub const MAX_GROUP_WAIT: Duration = Duration::from_millis(5);
/// Most tickets waiting for a flush; a writer that would exceed it blocks
/// until the committer takes the pending group (backpressure).
pub const MAX_PENDING_TICKETS: usize = 65_536;

type Outcome = Result<(), LedgerError>;

/// A ticket that resolves once a write is durable.
///
/// Blocking callers call [`Durable::wait`]; async callers `.await` it (it
/// needs no particular runtime). Dropping a ticket does not undo the write.
#[must_use = "a write is only known to be durable once its ticket resolves"]
#[derive(Debug)]
pub struct Durable {
    state: TicketState,
}

#[derive(Debug)]
enum TicketState {
    Ready(Option<Outcome>),
    Waiting {
        receiver: oneshot::Receiver<Outcome>,
        /// Tells the committer once that a caller blocks on this ticket.
        hook: Option<AwaitHook>,
    },
}

/// Lets a committer ticket report that its caller is now blocked on it.
struct AwaitHook {
    shared: Arc<Shared>,
    generation: u64,
}

impl std::fmt::Debug for AwaitHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwaitHook")
            .field("generation", &self.generation)
            .finish()
    }
}

impl AwaitHook {
    fn fire(self) {
        let mut state = self.shared.state.lock();
        // Only tickets of the group still being gathered count.
        if state.generation == self.generation {
            state.awaited += 1;
            if state.awaited >= state.pending.len() {
                self.shared.wake.notify_one();
            }
        }
    }
}

impl Durable {
    /// A ticket that is already resolved with `outcome` (for writes that
    /// were already durable, such as duplicates).
    pub fn resolved(outcome: Result<(), LedgerError>) -> Self {
        Self {
            state: TicketState::Ready(Some(outcome)),
        }
    }

    /// A ticket and the resolver that resolves it (for other
    /// [`LedgerStore`](crate::LedgerStore) implementations).
    pub fn pending() -> (DurableResolver, Self) {
        let (sender, receiver) = oneshot::channel();
        (
            DurableResolver { sender },
            Self {
                state: TicketState::Waiting {
                    receiver,
                    hook: None,
                },
            },
        )
    }

    /// Blocks the thread until the write is durable. Do not call it on an
    /// async runtime's worker thread; `.await` the ticket there.
    ///
    /// # Errors
    /// [`LedgerError::Storage`] if the flush failed, [`LedgerError::Closed`]
    /// if the ledger stopped first.
    pub fn wait(self) -> Result<(), LedgerError> {
        futures::executor::block_on(self)
    }

    /// The outcome if the ticket has resolved, without waiting.
    pub fn try_outcome(&mut self) -> Option<Result<(), LedgerError>> {
        match &mut self.state {
            TicketState::Ready(outcome) => outcome.clone(),
            TicketState::Waiting { receiver, .. } => match receiver.try_recv() {
                Ok(Some(outcome)) => {
                    self.state = TicketState::Ready(Some(outcome.clone()));
                    Some(outcome)
                }
                Ok(None) => None,
                Err(oneshot::Canceled) => Some(Err(LedgerError::Closed)),
            },
        }
    }
}

impl Future for Durable {
    type Output = Result<(), LedgerError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        match &mut this.state {
            // A second poll after completion reports `Closed`.
            TicketState::Ready(outcome) => {
                Poll::Ready(outcome.take().unwrap_or(Err(LedgerError::Closed)))
            }
            TicketState::Waiting { receiver, hook } => match Pin::new(receiver).poll(cx) {
                Poll::Pending => {
                    if let Some(hook) = hook.take() {
                        hook.fire();
                    }
                    Poll::Pending
                }
                Poll::Ready(outcome) => {
                    this.state = TicketState::Ready(None);
                    Poll::Ready(outcome.unwrap_or(Err(LedgerError::Closed)))
                }
            },
        }
    }
}

/// Resolves one [`Durable`] ticket.
#[derive(Debug)]
pub struct DurableResolver {
    sender: oneshot::Sender<Outcome>,
}

impl DurableResolver {
    /// Resolves the ticket (a dropped ticket is ignored).
    pub fn resolve(self, outcome: Result<(), LedgerError>) {
        // The ticket's owner may have dropped it: the write stays durable.
        let _ = self.sender.send(outcome);
    }
}

/// Flushes the database; returns the flush's outcome.
pub(crate) type FlushFn = Box<dyn FnMut() -> Result<(), LedgerError> + Send>;

struct State {
    pending: Vec<DurableResolver>,
    first_at: Option<Instant>,
    /// Counts the groups taken; tickets remember the group they joined.
    generation: u64,
    /// Pending tickets whose callers are blocked on them.
    awaited: usize,
    stopping: bool,
}

struct Shared {
    state: Mutex<State>,
    /// [`MAX_GROUP`] except in tests.
    max_group: usize,
    /// [`MAX_GROUP_WAIT`] except in tests.
    max_wait: Duration,
    /// Wakes the committer: first ticket, full group, or stop.
    wake: Condvar,
    /// Wakes writers blocked on a full queue.
    drained: Condvar,
}

/// The committer thread and its queue of tickets.
pub(crate) struct GroupCommit {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl GroupCommit {
    /// Starts the committer thread.
    pub(crate) fn start(flush: FlushFn) -> Result<Self, LedgerError> {
        Self::start_with(flush, MAX_GROUP, MAX_GROUP_WAIT)
    }

    /// Starts the committer thread with another group size and window.
    fn start_with(
        flush: FlushFn,
        max_group: usize,
        max_wait: Duration,
    ) -> Result<Self, LedgerError> {
        let shared = Arc::new(Shared {
            max_group,
            max_wait,
            state: Mutex::new(State {
                pending: Vec::with_capacity(max_group),
                first_at: None,
                generation: 0,
                awaited: 0,
                stopping: false,
            }),
            wake: Condvar::new(),
            drained: Condvar::new(),
        });
        let thread = std::thread::Builder::new()
            .name("ledger-commit".into())
            .spawn({
                let shared = Arc::clone(&shared);
                move || run(&shared, flush)
            })
            .map_err(|err| LedgerError::Storage {
                operation: "start the group-commit thread",
                message: err.to_string(),
            })?;
        Ok(Self {
            shared,
            thread: Some(thread),
        })
    }

    /// Registers a write that has been applied; the ticket resolves after
    /// the next flush that starts from now on.
    pub(crate) fn register(&self) -> Durable {
        let (resolver, mut ticket) = Durable::pending();
        let mut state = self.shared.state.lock();
        while state.pending.len() >= MAX_PENDING_TICKETS {
            self.shared.drained.wait(&mut state);
        }
        if let TicketState::Waiting { hook, .. } = &mut ticket.state {
            *hook = Some(AwaitHook {
                shared: Arc::clone(&self.shared),
                generation: state.generation,
            });
        }
        state.pending.push(resolver);
        let pending = state.pending.len();
        if pending == 1 {
            state.first_at = Some(Instant::now());
        }
        if pending == 1 || pending == self.shared.max_group {
            self.shared.wake.notify_one();
        }
        ticket
    }
}

impl Drop for GroupCommit {
    fn drop(&mut self) {
        self.shared.state.lock().stopping = true;
        self.shared.wake.notify_one();
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("the ledger's group-commit thread panicked");
        }
    }
}

fn run(shared: &Shared, mut flush: FlushFn) {
    let mut state = shared.state.lock();
    loop {
        while state.pending.is_empty() && !state.stopping {
            shared.wake.wait(&mut state);
        }
        if state.pending.is_empty() {
            // Stopping, and everything registered has been flushed.
            return;
        }
        wait_for_group(shared, &mut state);
        let group = std::mem::replace(&mut state.pending, Vec::with_capacity(shared.max_group));
        state.first_at = None;
        state.generation += 1;
        state.awaited = 0;
        shared.drained.notify_all();
        MutexGuard::unlocked(&mut state, || {
            // A panic must not strand the tickets: report it as a failure.
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(&mut flush))
                .unwrap_or_else(|_| {
                    Err(LedgerError::Storage {
                        operation: "flush",
                        message: "the flush panicked".into(),
                    })
                });
            if let Err(err) = &outcome {
                tracing::warn!(code = err.code(), error = %err, tickets = group.len(), "ledger flush failed");
            }
            for resolver in group {
                resolver.resolve(outcome.clone());
            }
        });
    }
}

/// Waits until the group is full, its time is up, every pending ticket
/// has a blocked caller, or the ledger stops.
fn wait_for_group(shared: &Shared, state: &mut MutexGuard<'_, State>) {
    let deadline = state.first_at.unwrap_or_else(Instant::now) + shared.max_wait;
    while state.pending.len() < shared.max_group
        && state.awaited < state.pending.len()
        && !state.stopping
    {
        if shared.wake.wait_until(state, deadline).timed_out() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn counting(flushes: &Arc<AtomicUsize>, fail: bool) -> FlushFn {
        let flushes = Arc::clone(flushes);
        Box::new(move || {
            flushes.fetch_add(1, Ordering::SeqCst);
            if fail {
                Err(LedgerError::Storage {
                    operation: "flush",
                    message: "injected failure".into(),
                })
            } else {
                Ok(())
            }
        })
    }

    #[test]
    fn tickets_resolve_after_a_shared_flush() {
        let flushes = Arc::new(AtomicUsize::new(0));
        let commit = GroupCommit::start(counting(&flushes, false)).unwrap();
        let tickets: Vec<_> = (0..500).map(|_| commit.register()).collect();
        for ticket in tickets {
            ticket.wait().unwrap();
        }
        let used = flushes.load(Ordering::SeqCst);
        assert!(used >= 1, "at least one flush ran");
        assert!(used < 500, "flushes were shared: {used} for 500 tickets");
    }

    #[test]
    fn a_ticket_resolves_only_after_a_flush_that_started_after_it() {
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let commit = GroupCommit::start(Box::new(move || {
            started_tx.send(()).unwrap();
            release_rx.recv().unwrap();
            Ok(())
        }))
        .unwrap();
        let mut first = commit.register();
        started_rx.recv().unwrap();
        // Registered while the first flush runs: needs the next one.
        let mut second = commit.register();
        assert_eq!(first.try_outcome(), None);
        release_tx.send(()).unwrap();
        assert_eq!(first.wait(), Ok(()));
        started_rx.recv().unwrap();
        assert_eq!(second.try_outcome(), None);
        release_tx.send(()).unwrap();
        assert_eq!(second.wait(), Ok(()));
    }

    /// A window long enough that only the other rules can close a group;
    /// a broken rule shows as a test that does not finish.
    const NEVER: Duration = Duration::from_secs(3_600);
    /// Guards the tests below against hanging when a rule is broken.
    const GUARD: Duration = Duration::from_secs(60);

    #[test]
    fn a_full_group_flushes_without_waiting_for_the_window() {
        let (flushed_tx, flushed_rx) = std::sync::mpsc::channel();
        let commit = GroupCommit::start_with(
            Box::new(move || {
                flushed_tx.send(()).unwrap();
                Ok(())
            }),
            8,
            NEVER,
        )
        .unwrap();
        let tickets: Vec<_> = (0..8).map(|_| commit.register()).collect();
        flushed_rx
            .recv_timeout(GUARD)
            .expect("a full group is flushed");
        // Resolution follows the flush on the committer thread.
        let outcomes: Vec<_> = tickets.into_iter().map(Durable::wait).collect();
        assert!(outcomes.iter().all(Result::is_ok));
    }

    #[test]
    fn a_group_closes_once_every_ticket_is_awaited() {
        let commit = Arc::new(GroupCommit::start_with(Box::new(|| Ok(())), 64, NEVER).unwrap());
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let waiter = std::thread::spawn({
            let commit = Arc::clone(&commit);
            move || {
                // A lone writer that waits for each write in turn.
                for _ in 0..5 {
                    commit.register().wait().unwrap();
                }
                let two = (commit.register(), commit.register());
                let (a, b) = futures::executor::block_on(futures::future::join(two.0, two.1));
                done_tx.send((a, b)).unwrap();
            }
        });
        let (a, b) = done_rx
            .recv_timeout(GUARD)
            .expect("awaited groups close early");
        assert_eq!((a, b), (Ok(()), Ok(())));
        waiter.join().unwrap();
    }

    #[test]
    fn flush_errors_reach_every_ticket() {
        let flushes = Arc::new(AtomicUsize::new(0));
        let commit = GroupCommit::start(counting(&flushes, true)).unwrap();
        let tickets: Vec<_> = (0..10).map(|_| commit.register()).collect();
        for ticket in tickets {
            let err = ticket.wait().unwrap_err();
            assert_eq!(err.code(), "ledger.storage");
            assert!(err.to_string().contains("injected failure"));
        }
    }

    #[test]
    fn many_threads_get_durable_acks() {
        let flushes = Arc::new(AtomicUsize::new(0));
        let commit = Arc::new(GroupCommit::start(counting(&flushes, false)).unwrap());
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let commit = Arc::clone(&commit);
                std::thread::spawn(move || {
                    for _ in 0..200 {
                        commit.register().wait().unwrap();
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        assert!(flushes.load(Ordering::SeqCst) <= 1_600);
    }

    #[test]
    fn dropping_flushes_what_is_pending() {
        let flushes = Arc::new(AtomicUsize::new(0));
        let commit = GroupCommit::start(counting(&flushes, false)).unwrap();
        let tickets: Vec<_> = (0..3).map(|_| commit.register()).collect();
        drop(commit);
        for ticket in tickets {
            ticket.wait().unwrap();
        }
        assert!(flushes.load(Ordering::SeqCst) >= 1);
    }

    #[test]
    fn a_dropped_resolver_closes_the_ticket() {
        let (resolver, ticket) = Durable::pending();
        drop(resolver);
        assert_eq!(ticket.wait(), Err(LedgerError::Closed));

        let (resolver, mut ticket) = Durable::pending();
        assert_eq!(ticket.try_outcome(), None);
        resolver.resolve(Ok(()));
        assert_eq!(ticket.try_outcome(), Some(Ok(())));
        assert_eq!(ticket.wait(), Ok(()));

        assert_eq!(
            Durable::resolved(Err(LedgerError::Closed)).wait(),
            Err(LedgerError::Closed)
        );
    }

    #[test]
    fn a_panicking_flush_fails_its_tickets_and_the_committer_goes_on() {
        let calls = Arc::new(AtomicUsize::new(0));
        let commit = GroupCommit::start({
            let calls = Arc::clone(&calls);
            Box::new(move || {
                if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                    panic!("injected flush panic");
                }
                Ok(())
            })
        })
        .unwrap();
        let err = commit.register().wait().unwrap_err();
        assert_eq!(err.code(), "ledger.storage");
        assert_eq!(commit.register().wait(), Ok(()));
    }
}
