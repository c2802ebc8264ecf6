//! Tailing the log.
//!
//! A [`Tail`] reads pages of `read_all` after its position and, once caught
//! up, waits for the head to move (the writer's and LISTEN's watch) or for a
//! poll interval, whichever is first; the poll covers writers it cannot hear
//! (another process on the same SQLite file, a missed NOTIFY). It checks that
//! positions arrive contiguously and fails rather than skip.
//!
//! A [`DurableTail`] keeps its position in the store under a name, so after a
//! restart it resumes exactly after the last position it acknowledged.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use proofline_domain::log::Envelope;
use tokio::sync::watch;

use super::{EventStore, StoreError};

const PAGE: usize = 500;

pub struct Tail {
    store: Arc<dyn EventStore>,
    after: u64,
    buffer: VecDeque<Envelope>,
    head: watch::Receiver<u64>,
    poll: Duration,
    /// The last read reached the head announced before it: read again only
    /// once the head moves or the poll interval passes.
    reached_head: bool,
}

impl Tail {
    /// A tail that yields the events after `after`.
    pub fn new(store: Arc<dyn EventStore>, after: u64) -> Self {
        let head = store.watch_head();
        Self {
            store,
            after,
            buffer: VecDeque::new(),
            head,
            poll: Duration::from_millis(500),
            reached_head: false,
        }
    }

    /// How often to look for events nobody announced (default 500 ms).
    pub fn with_poll_interval(mut self, poll: Duration) -> Self {
        self.poll = poll;
        self
    }

    /// The position of the last event yielded.
    pub fn position(&self) -> u64 {
        self.after
    }

    /// The next event, waiting for it if need be.
    pub async fn next(&mut self) -> Result<Envelope, StoreError> {
        loop {
            if let Some(event) = self.buffer.pop_front() {
                if event.position != self.after + 1 {
                    let expected = self.after + 1;
                    self.buffer.clear();
                    return Err(StoreError::corrupt(
                        "log positions",
                        format!(
                            "position {} arrived where {expected} was expected",
                            event.position
                        ),
                    ));
                }
                self.after = event.position;
                return Ok(event);
            }
            if !self.reached_head {
                // Mark the current head as seen before reading, so a commit
                // that lands between the read and the wait still wakes the
                // wait.
                let announced = *self.head.borrow_and_update();
                let page = self.store.read_all(self.after, PAGE).await?;
                if let Some(last) = page.last() {
                    // Another read would find nothing the head announced:
                    // wait for it instead (one query less per wake for each
                    // tail of the process).
                    self.reached_head = page.len() < PAGE && last.position >= announced;
                    self.buffer.extend(page);
                    continue;
                }
            }
            self.reached_head = false;
            tokio::select! {
                changed = self.head.changed() => {
                    if changed.is_err() {
                        // The store was closed; keep polling until the caller stops.
                        tokio::time::sleep(self.poll).await;
                    }
                }
                () = tokio::time::sleep(self.poll) => {}
            }
        }
    }
}

/// A tail whose position is saved in the store under a name.
pub struct DurableTail {
    name: String,
    tail: Tail,
    store: Arc<dyn EventStore>,
}

impl DurableTail {
    /// Resumes after the position last acknowledged under `name` (or from
    /// the start of the log).
    pub async fn open(store: Arc<dyn EventStore>, name: &str) -> Result<Self, StoreError> {
        let after = store.consumer_position(name).await?;
        Ok(Self {
            name: name.to_owned(),
            tail: Tail::new(store.clone(), after),
            store,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub async fn next(&mut self) -> Result<Envelope, StoreError> {
        self.tail.next().await
    }

    /// Records that every event up to `position` is handled. After a restart
    /// the tail resumes after it. Acknowledging less than what was yielded is
    /// allowed (those events come again); more is refused.
    pub async fn ack(&mut self, position: u64) -> Result<(), StoreError> {
        if position > self.tail.position() {
            return Err(StoreError::InvalidAppend(format!(
                "cannot acknowledge position {position}: only {} was delivered",
                self.tail.position()
            )));
        }
        self.store
            .save_consumer_position(&self.name, position)
            .await
    }
}
