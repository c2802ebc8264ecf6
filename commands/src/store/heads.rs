//! Where the log is: its head, and the last position known committed in
//! each category of stream.
//!
//! The per-category heads let a cache of one kind of aggregate (the trust
//! registry's issuers and lists) stay valid while other kinds are appended:
//! under load almost every commit is a verification, and a cache checked
//! against the log's head alone read its streams again after each one.
//!
//! They move when this process's writer commits and, on Postgres, when a
//! NOTIFY from another process's writer arrives: its payload is the
//! position, a space, and the categories written as a hexadecimal
//! [`CategorySet`]. A payload without the set (an older writer) or a head
//! read after a reconnection moves every category: a cache reads again
//! rather than miss a change.

use proofline_domain::ids::{Category, StreamId};
use tokio::sync::watch;

const CATEGORIES: usize = Category::ALL.len();

/// Some categories of stream, as a bit set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CategorySet(u32);

impl CategorySet {
    pub const ALL: Self = Self((1 << CATEGORIES) - 1);

    fn bit(category: Category) -> u32 {
        1 << category as u32
    }

    /// The category of `stream`; every category for a stream Proofline
    /// does not write (an imported log may hold some).
    pub fn of_stream(stream: &StreamId) -> Self {
        stream.kind().map_or(Self::ALL, |c| Self(Self::bit(c)))
    }

    pub fn insert(&mut self, other: Self) {
        self.0 |= other.0;
    }

    pub fn contains(self, category: Category) -> bool {
        self.0 & Self::bit(category) != 0
    }

    /// The set in a NOTIFY payload: hexadecimal.
    pub fn hex(self) -> String {
        format!("{:x}", self.0)
    }

    /// A NOTIFY payload: the position and the categories it moves.
    pub fn parse_payload(payload: &str) -> Option<(u64, Self)> {
        let (position, set) = payload.split_once(' ').unwrap_or((payload, ""));
        let position = position.parse().ok()?;
        if set.is_empty() {
            return Some((position, Self::ALL));
        }
        let bits = u32::from_str_radix(set, 16).ok()?;
        // Bits this process does not know (a newer writer's category) are
        // no reason to read anything again; no bit at all is every one.
        let known = bits & Self::ALL.0;
        Some((position, if known == 0 { Self::ALL } else { Self(known) }))
    }
}

/// Per category, the last position known committed in it (at least: a
/// commit's last position stands for all of its categories). At start,
/// every category is at the head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CategoryHeads([u64; CATEGORIES]);

impl CategoryHeads {
    fn at(position: u64) -> Self {
        Self([position; CATEGORIES])
    }

    /// The head of the category of `stream` (the log's head for a stream
    /// Proofline does not write).
    pub fn of_stream(&self, stream: &StreamId) -> u64 {
        match stream.kind() {
            Some(category) => self.0[category as usize],
            None => self.0.iter().copied().max().unwrap_or(0),
        }
    }

    fn bump(&mut self, position: u64, set: CategorySet) -> bool {
        let mut moved = false;
        for category in Category::ALL {
            let head = &mut self.0[category as usize];
            if set.contains(category) && position > *head {
                *head = position;
                moved = true;
            }
        }
        moved
    }
}

/// The writing end of both watches.
pub(crate) struct HeadSender {
    log: watch::Sender<u64>,
    categories: watch::Sender<CategoryHeads>,
}

/// The reading ends, kept by a store and handed out.
#[derive(Clone)]
pub(crate) struct HeadReceiver {
    pub log: watch::Receiver<u64>,
    pub categories: watch::Receiver<CategoryHeads>,
}

impl HeadSender {
    pub fn new(start: u64) -> (Self, HeadReceiver) {
        let (log, log_rx) = watch::channel(start);
        let (categories, categories_rx) = watch::channel(CategoryHeads::at(start));
        (
            Self { log, categories },
            HeadReceiver {
                log: log_rx,
                categories: categories_rx,
            },
        )
    }

    /// Events up to `position` in the categories `set` are committed. The
    /// category heads move before the log's, so whoever wakes on the log's
    /// head sees them.
    pub fn bump(&self, position: u64, set: CategorySet) {
        self.categories
            .send_if_modified(|heads| heads.bump(position, set));
        self.log.send_if_modified(|known| {
            let newer = position > *known;
            if newer {
                *known = position;
            }
            newer
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(s: &str) -> StreamId {
        StreamId::parse(s).unwrap()
    }

    #[test]
    fn payloads_round_trip_and_old_ones_move_every_category() {
        let mut set =
            CategorySet::of_stream(&stream("issuer-0190a0a0-0000-7000-8000-000000000001"));
        set.insert(CategorySet::of_stream(&stream(
            "verification-0190a0a0-0000-7000-8000-000000000002",
        )));
        assert_eq!(
            CategorySet::parse_payload(&format!("42 {}", set.hex())),
            Some((42, set))
        );
        assert!(set.contains(Category::Issuer) && set.contains(Category::Verification));
        assert!(!set.contains(Category::StatusList));
        assert_eq!(
            CategorySet::parse_payload("42"),
            Some((42, CategorySet::ALL))
        );
        assert_eq!(
            CategorySet::parse_payload("42 0"),
            Some((42, CategorySet::ALL))
        );
        assert_eq!(
            CategorySet::parse_payload("42 80000000"),
            Some((42, CategorySet::ALL)),
            "only categories this process does not know"
        );
        assert_eq!(CategorySet::parse_payload("x 1"), None);
        assert_eq!(CategorySet::parse_payload("42 zz"), None);
        assert_eq!(
            CategorySet::of_stream(&stream("elsewhere-1")),
            CategorySet::ALL
        );
    }

    #[test]
    fn a_commit_moves_only_its_categories_and_the_log() {
        let (sender, receiver) = HeadSender::new(10);
        let issuer = stream("issuer-0190a0a0-0000-7000-8000-000000000001");
        let verification = stream("verification-0190a0a0-0000-7000-8000-000000000002");
        sender.bump(11, CategorySet::of_stream(&verification));
        let heads = *receiver.categories.borrow();
        assert_eq!(heads.of_stream(&issuer), 10);
        assert_eq!(heads.of_stream(&verification), 11);
        assert_eq!(heads.of_stream(&stream("elsewhere-1")), 11);
        assert_eq!(*receiver.log.borrow(), 11);
        // An older position moves nothing.
        sender.bump(9, CategorySet::ALL);
        assert_eq!(receiver.categories.borrow().of_stream(&issuer), 10);
        assert_eq!(*receiver.log.borrow(), 11);
        sender.bump(12, CategorySet::ALL);
        assert_eq!(receiver.categories.borrow().of_stream(&issuer), 12);
    }
}
